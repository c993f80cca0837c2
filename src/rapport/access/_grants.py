"""Grants of roles to people, platform-wide or within one conversation.

Access administrators grant and revoke through the API, and operators through the command
line (`rapport access`, as the system), each change recorded in the audit; other system
work (the demo, tests, another domain's jobs) grants through grant_role_system. Either way
the person is told on their own stream (`access.grant.created`, `access.grant.revoked`),
so a client can ask again what it may do."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import Select, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.access import _admin
from rapport.access import models as m
from rapport.access import schemas as s
from rapport.access.errors import GrantConversationNotFound, GrantExists, GrantNotFound, RoleNotFound
from rapport.kernel.actor import Actor
from rapport.kernel.errors import constraint_of
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.social import service as social_service

g, r = m.grants, m.roles

GRANT_CREATED = "access.grant.created"
GRANT_REVOKED = "access.grant.revoked"


def _grants() -> Select[Any]:
    return select(g, r.c.name.label("role")).select_from(g.join(r, r.c.id == g.c.role_id))


async def _announce(
    db: AsyncConnection,
    *,
    kind: str,
    grant_id: UUID,
    user_id: UUID,
    role: str,
    conversation_id: UUID | None,
    actor_id: UUID | None,
) -> None:
    await publish(
        db,
        scope=Scope.user(user_id),
        type=kind,
        payload={
            "grant_id": str(grant_id),
            "role": role,
            "conversation_id": str(conversation_id) if conversation_id else None,
        },
        actor_id=actor_id,
    )


async def _changed(
    db: AsyncConnection,
    *,
    created: bool,
    grant_id: UUID,
    user_id: UUID,
    role: str,
    conversation_id: UUID | None,
    actor_id: UUID | None,
    reason: str | None,
    details: dict[str, Any],
) -> None:
    """A grant made or revoked: its holder told, the change in the audit."""
    await _announce(
        db,
        kind=GRANT_CREATED if created else GRANT_REVOKED,
        grant_id=grant_id,
        user_id=user_id,
        role=role,
        conversation_id=conversation_id,
        actor_id=actor_id,
    )
    await _admin.record_action(
        db,
        action="grant_created" if created else "grant_revoked",
        reason=reason,
        target=f"grant:{grant_id}",
        target_user_id=user_id,
        details=details,
    )


def _details(role: str, conversation_id: UUID | None) -> dict[str, Any]:
    return {"role": role, "conversation_id": str(conversation_id) if conversation_id else None}


def _held(user_id: UUID, role_id: UUID, conversation_id: UUID | None) -> Select[Any]:
    """The grant of this role to this person there (everywhere when `conversation_id` is None)."""
    return _grants().where(
        g.c.user_id == user_id,
        g.c.role_id == role_id,
        g.c.conversation_id.is_not_distinct_from(conversation_id),
    )


async def _insert(db: AsyncConnection, values: dict[str, Any]) -> UUID | None:
    """Insert a grant; its id, or None when the person holds that role there already.

    Raises:
        UserNotFound: no such account.
        GrantConversationNotFound: no such conversation.
    """
    statement = insert(g).values(**values).on_conflict_do_nothing(constraint="uq_grants_scope").returning(g.c.id)
    try:
        async with db.begin_nested():
            made: UUID | None = (await db.execute(statement)).scalar_one_or_none()
    except IntegrityError as error:
        if constraint_of(error) == "fk_grants_user_id_users":
            raise social_service.UserNotFound("No account has this id.") from None
        if constraint_of(error) == "fk_grants_conversation_id_conversations":
            raise GrantConversationNotFound() from None
        raise
    return made


async def _role_id(db: AsyncConnection, name: str) -> UUID:
    role_id: UUID | None = (await db.execute(select(r.c.id).where(r.c.name == name))).scalar_one_or_none()
    if role_id is None:
        raise RoleNotFound(f"No role is named {name}.")
    return role_id


async def list_grants(
    db: AsyncConnection,
    *,
    actor: Actor,
    page: PageRequest,
    user_id: UUID | None = None,
    conversation_id: UUID | None = None,
) -> Page[s.GrantOut]:
    """Grants, newest first: one person's and those within one conversation when asked.

    Raises:
        PermissionRequired: the actor is not an access administrator.
    """
    await _admin.require_access_admin(db, actor)
    query = _grants()
    if user_id is not None:
        query = query.where(g.c.user_id == user_id)
    if conversation_id is not None:
        query = query.where(g.c.conversation_id == conversation_id)
    rows = await db.execute(keyset(query, g.c.id, page))
    return make_page([s.GrantOut.model_validate(row._mapping) for row in rows], page)


async def do_grant_role(db: AsyncConnection, *, actor: Actor, grant: s.GrantIn) -> s.GrantOut:
    """Grant a role to a person, everywhere or within one conversation; recorded in the
    audit, and the person is told.

    Raises:
        PermissionRequired: the actor is not an access administrator.
        RoleNotFound: no role of that name.
        UserNotFound: no such account.
        GrantConversationNotFound: no such conversation.
        GrantExists: the person holds that role there already.
    """
    await _admin.require_access_admin(db, actor)
    role_id = await _role_id(db, grant.role)
    grant_id = uuid7()
    made = await _insert(
        db,
        {
            "id": grant_id,
            "user_id": grant.user_id,
            "role_id": role_id,
            "conversation_id": grant.conversation_id,
            "granted_by": actor.user_id,
        },
    )
    if made is None:
        existing = (await db.execute(_held(grant.user_id, role_id, grant.conversation_id))).one()
        raise GrantExists(grant_id=str(existing.id))
    await _changed(
        db,
        created=True,
        grant_id=grant_id,
        user_id=grant.user_id,
        role=grant.role,
        conversation_id=grant.conversation_id,
        actor_id=actor.user_id,
        reason=grant.reason,
        details=_details(grant.role, grant.conversation_id),
    )
    return await _grant_out(db, grant_id)


async def do_revoke_grant(db: AsyncConnection, *, actor: Actor, grant_id: UUID, reason: str | None) -> None:
    """Revoke a grant; recorded in the audit, and its holder is told.

    Raises:
        PermissionRequired: the actor is not an access administrator.
        GrantNotFound: no such grant.
    """
    await _admin.require_access_admin(db, actor)
    gone = (
        await db.execute(
            delete(g)
            .where(g.c.id == grant_id, r.c.id == g.c.role_id)
            .returning(g.c.user_id, g.c.conversation_id, r.c.name)
        )
    ).one_or_none()
    if gone is None:
        raise GrantNotFound()
    await _changed(
        db,
        created=False,
        grant_id=grant_id,
        user_id=gone.user_id,
        role=gone.name,
        conversation_id=gone.conversation_id,
        actor_id=actor.user_id,
        reason=reason,
        details=_details(gone.name, gone.conversation_id),
    )


async def revoke_grants_of_role(db: AsyncConnection, *, actor: Actor, role_id: UUID, role_name: str) -> int:
    """Revoke every grant of a role (it is being deleted), telling each holder; how many."""
    gone = (
        await db.execute(delete(g).where(g.c.role_id == role_id).returning(g.c.id, g.c.user_id, g.c.conversation_id))
    ).all()
    for row in gone:
        await _announce(
            db,
            kind=GRANT_REVOKED,
            grant_id=row.id,
            user_id=row.user_id,
            role=role_name,
            conversation_id=row.conversation_id,
            actor_id=actor.user_id,
        )
    return len(gone)


# System work


async def grant_role_system(
    db_system: AsyncConnection, user_id: UUID, role_name: str, conversation_id: UUID | None = None
) -> UUID:
    """Grant a role as system work (no administrator, no audit row); the person is told.
    Granting what the person holds already changes nothing. The grant's id.

    Raises:
        RoleNotFound: no role of that name.
        UserNotFound: no such account.
        GrantConversationNotFound: no such conversation.
    """
    role_id = await _role_id(db_system, role_name)
    values = {"id": uuid7(), "user_id": user_id, "role_id": role_id, "conversation_id": conversation_id}
    made = await _insert(db_system, values)
    if made is not None:
        await _announce(
            db_system,
            kind=GRANT_CREATED,
            grant_id=made,
            user_id=user_id,
            role=role_name,
            conversation_id=conversation_id,
            actor_id=None,
        )
        return made
    existing: UUID = (await db_system.execute(_held(user_id, role_id, conversation_id))).one().id
    return existing


async def revoke_role_system(
    db_system: AsyncConnection, user_id: UUID, role_name: str, conversation_id: UUID | None = None
) -> bool:
    """Revoke a role's grant (the one platform-wide, or the one for `conversation_id`) as
    system work; the person is told. Whether there was one."""
    gone = (
        await db_system.execute(
            delete(g)
            .where(
                g.c.user_id == user_id,
                g.c.role_id == r.c.id,
                r.c.name == role_name,
                g.c.conversation_id.is_not_distinct_from(conversation_id),
            )
            .returning(g.c.id)
        )
    ).scalar_one_or_none()
    if gone is None:
        return False
    await _announce(
        db_system,
        kind=GRANT_REVOKED,
        grant_id=gone,
        user_id=user_id,
        role=role_name,
        conversation_id=conversation_id,
        actor_id=None,
    )
    return True


# System work at an operator's command (`rapport access`): audited as an administrator's
# change is, with no administrator (audit.admin_actions.admin_id NULL) and the operator's
# login, when known, in its details.

VIA_COMMAND_LINE = "command line"


def _operator_details(role: str, conversation_id: UUID | None, operator: str | None) -> dict[str, Any]:
    details = _details(role, conversation_id) | {"via": VIA_COMMAND_LINE}
    if operator:
        details["operator"] = operator[:100]
    return details


async def _grant_out(db: AsyncConnection, grant_id: UUID) -> s.GrantOut:
    row = (await db.execute(_grants().where(g.c.id == grant_id))).one()
    return s.GrantOut.model_validate(row._mapping)


async def do_grant_role_operator(
    db_system: AsyncConnection,
    *,
    user_id: UUID,
    role: str,
    conversation_id: UUID | None = None,
    reason: str | None = None,
    operator: str | None = None,
) -> tuple[s.GrantOut, bool]:
    """Grant a role as the system at an operator's command, everywhere or within one
    conversation: recorded in the audit (with no administrator), and the person is told.
    Granting what they hold there already changes and records nothing. The grant, and
    whether it is new.

    Raises:
        RoleNotFound: no role of that name.
        UserNotFound: no such account.
        GrantConversationNotFound: no such conversation.
    """
    role_id = await _role_id(db_system, role)
    grant_id = uuid7()
    values = {"id": grant_id, "user_id": user_id, "role_id": role_id, "conversation_id": conversation_id}
    if await _insert(db_system, values) is None:
        held = (await db_system.execute(_held(user_id, role_id, conversation_id))).one()
        return s.GrantOut.model_validate(held._mapping), False
    await _changed(
        db_system,
        created=True,
        grant_id=grant_id,
        user_id=user_id,
        role=role,
        conversation_id=conversation_id,
        actor_id=None,
        reason=reason,
        details=_operator_details(role, conversation_id, operator),
    )
    return await _grant_out(db_system, grant_id), True


async def do_revoke_role_operator(
    db_system: AsyncConnection,
    *,
    user_id: UUID,
    role: str,
    conversation_id: UUID | None = None,
    reason: str | None = None,
    operator: str | None = None,
) -> s.GrantOut | None:
    """Revoke a role's grant (the one everywhere, or the one within `conversation_id`) as
    the system at an operator's command: recorded in the audit (with no administrator),
    and its holder is told. The grant revoked, or None when there was none.

    Raises:
        RoleNotFound: no role of that name.
    """
    role_id = await _role_id(db_system, role)
    held = (await db_system.execute(_held(user_id, role_id, conversation_id))).one_or_none()
    # Deleted by its id: revoked meanwhile, it is not revoked (nor recorded) twice.
    if held is None or (await db_system.execute(delete(g).where(g.c.id == held.id).returning(g.c.id))).first() is None:
        return None
    revoked = s.GrantOut.model_validate(held._mapping)
    await _changed(
        db_system,
        created=False,
        grant_id=revoked.id,
        user_id=user_id,
        role=role,
        conversation_id=conversation_id,
        actor_id=None,
        reason=reason,
        details=_operator_details(role, conversation_id, operator),
    )
    return revoked


async def list_all_grants(db_system: AsyncConnection, *, user_id: UUID | None = None) -> list[s.GrantOut]:
    """Every grant, or one person's, newest first (system work: the command line)."""
    query = _grants().order_by(g.c.id.desc())
    if user_id is not None:
        query = query.where(g.c.user_id == user_id)
    return [s.GrantOut.model_validate(row._mapping) for row in await db_system.execute(query)]
