"""Grants of roles to people, platform-wide or within one conversation.

Access administrators grant and revoke through the API, each change recorded in the audit;
system work (the demo, tests, the command line, another domain's jobs) grants through
grant_role_system. Either way the person is told on their own stream
(`access.grant.created`, `access.grant.revoked`), so a client can ask again what it may do."""

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
        existing = await db.execute(
            select(g.c.id).where(
                g.c.user_id == grant.user_id,
                g.c.role_id == role_id,
                g.c.conversation_id.is_not_distinct_from(grant.conversation_id),
            )
        )
        raise GrantExists(grant_id=str(existing.scalar_one()))
    await _announce(
        db,
        kind=GRANT_CREATED,
        grant_id=grant_id,
        user_id=grant.user_id,
        role=grant.role,
        conversation_id=grant.conversation_id,
        actor_id=actor.user_id,
    )
    await _admin.record_action(
        db,
        action="grant_created",
        reason=grant.reason,
        target=f"grant:{grant_id}",
        target_user_id=grant.user_id,
        details={"role": grant.role, "conversation_id": str(grant.conversation_id) if grant.conversation_id else None},
    )
    row = (await db.execute(_grants().where(g.c.id == grant_id))).one()
    return s.GrantOut.model_validate(row._mapping)


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
    await _announce(
        db,
        kind=GRANT_REVOKED,
        grant_id=grant_id,
        user_id=gone.user_id,
        role=gone.name,
        conversation_id=gone.conversation_id,
        actor_id=actor.user_id,
    )
    await _admin.record_action(
        db,
        action="grant_revoked",
        reason=reason,
        target=f"grant:{grant_id}",
        target_user_id=gone.user_id,
        details={"role": gone.name, "conversation_id": str(gone.conversation_id) if gone.conversation_id else None},
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
    existing: UUID = (
        await db_system.execute(
            select(g.c.id).where(
                g.c.user_id == user_id,
                g.c.role_id == role_id,
                g.c.conversation_id.is_not_distinct_from(conversation_id),
            )
        )
    ).scalar_one()
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
