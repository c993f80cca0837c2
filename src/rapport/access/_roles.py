"""The catalogue of permissions, and roles: what each bundles, made, changed and deleted by
access administrators.

Built-in roles (support-t1, bot-developer...) are named by the code that grants them, so
they keep their names and are never deleted; what they hold may be changed like any
role's. Deleting a role revokes its grants, each announced to its holder."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Select, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.access import _admin, _grants
from rapport.access import models as m
from rapport.access import schemas as s
from rapport.access.errors import BuiltinRoleRefused, RoleNameTaken, RoleNotFound, UnknownPermission
from rapport.kernel.actor import Actor
from rapport.kernel.errors import constraint_of
from rapport.kernel.ids import uuid7
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page

r, rp, p = m.roles, m.role_permissions, m.permissions


def _permissions_of(role_id: ColumnElement[UUID]) -> ColumnElement[list[str]]:
    return func.array(
        select(rp.c.permission).where(rp.c.role_id == role_id).order_by(rp.c.permission).scalar_subquery()
    )


def _roles() -> Select[Any]:
    return select(r, _permissions_of(r.c.id).label("permissions"))


async def list_permissions(db: AsyncConnection, *, actor: Actor) -> s.PermissionsOut:
    """Every permission there is, by name.

    Raises:
        PermissionRequired: the actor is not an access administrator.
    """
    await _admin.require_access_admin(db, actor)
    rows = await db.execute(select(p.c.name, p.c.domain, p.c.action, p.c.description).order_by(p.c.name))
    return s.PermissionsOut(items=[s.PermissionOut.model_validate(row._mapping) for row in rows])


async def list_roles(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[s.RoleOut]:
    """Every role with what it holds, newest first.

    Raises:
        PermissionRequired: the actor is not an access administrator.
    """
    await _admin.require_access_admin(db, actor)
    rows = await db.execute(keyset(_roles(), r.c.id, page))
    return make_page([s.RoleOut.model_validate(row._mapping) for row in rows], page)


async def _role(db: AsyncConnection, role_id: UUID, *, lock: bool = False) -> s.RoleOut:
    query = _roles().where(r.c.id == role_id)
    if lock:
        query = query.with_for_update(of=r)
    row = (await db.execute(query)).one_or_none()
    if row is None:
        raise RoleNotFound()
    return s.RoleOut.model_validate(row._mapping)


async def access_role(db: AsyncConnection, *, actor: Actor, role_id: UUID) -> s.RoleOut:
    """One role with what it holds.

    Raises:
        PermissionRequired: the actor is not an access administrator.
        RoleNotFound: no such role.
    """
    await _admin.require_access_admin(db, actor)
    return await _role(db, role_id)


async def _check_permissions(db: AsyncConnection, names: list[str]) -> None:
    if not names:
        return
    known = set((await db.execute(select(p.c.name).where(p.c.name.in_(names)))).scalars())
    unknown = sorted(set(names) - known)
    if unknown:
        raise UnknownPermission(f"No permission is named {', '.join(unknown)}.", permissions=unknown)


async def _add_permissions(db: AsyncConnection, role_id: UUID, names: list[str]) -> None:
    if names:
        await db.execute(
            insert(rp).values([{"role_id": role_id, "permission": name} for name in names]).on_conflict_do_nothing()
        )


async def do_create_role(db: AsyncConnection, *, actor: Actor, role: s.RoleIn) -> s.RoleOut:
    """Make a role holding these permissions; recorded in the audit.

    Raises:
        PermissionRequired: the actor is not an access administrator.
        UnknownPermission: a permission that does not exist (422, naming it).
        RoleNameTaken: a role of that name exists.
    """
    await _admin.require_access_admin(db, actor)
    await _check_permissions(db, role.permissions)
    role_id = uuid7()
    try:
        async with db.begin_nested():
            await db.execute(r.insert().values(id=role_id, name=role.name, description=role.description))
    except IntegrityError as error:
        if constraint_of(error) == "uq_roles_name":
            raise RoleNameTaken(f"The role {role.name} exists already.") from None
        raise
    await _add_permissions(db, role_id, role.permissions)
    await _admin.record_action(
        db,
        action="role_created",
        reason=role.reason,
        target=f"role:{role.name}",
        details={"role_id": str(role_id), "permissions": role.permissions},
    )
    return await _role(db, role_id)


async def do_update_role(db: AsyncConnection, *, actor: Actor, role_id: UUID, changes: s.RoleUpdate) -> s.RoleOut:
    """Rename a role or change its description; recorded in the audit.

    Raises:
        PermissionRequired: the actor is not an access administrator.
        RoleNotFound: no such role.
        BuiltinRoleRefused: a new name for a built-in role.
        RoleNameTaken: another role has the new name.
    """
    await _admin.require_access_admin(db, actor)
    before = await _role(db, role_id, lock=True)
    wanted = changes.changes()
    reason = wanted.pop("reason", None)
    if before.is_builtin and wanted.get("name", before.name) != before.name:
        raise BuiltinRoleRefused(f"The built-in role {before.name} keeps its name.")
    if wanted:
        try:
            async with db.begin_nested():
                await db.execute(update(r).where(r.c.id == role_id).values(**wanted))
        except IntegrityError as error:
            if constraint_of(error) == "uq_roles_name":
                raise RoleNameTaken(f"The role {wanted['name']} exists already.") from None
            raise
    await _admin.record_action(
        db,
        action="role_changed",
        reason=reason,
        target=f"role:{wanted.get('name', before.name)}",
        details={"role_id": str(role_id), "before": {key: getattr(before, key) for key in wanted}, "after": wanted},
    )
    return await _role(db, role_id)


async def do_set_role_permissions(
    db: AsyncConnection, *, actor: Actor, role_id: UUID, wanted: s.RolePermissionsIn
) -> s.RoleOut:
    """Make a role hold exactly these permissions (its holders gain and lose them at once);
    recorded in the audit with what was added and removed.

    Raises:
        PermissionRequired: the actor is not an access administrator.
        RoleNotFound: no such role.
        UnknownPermission: a permission that does not exist (422, naming it).
    """
    await _admin.require_access_admin(db, actor)
    before = await _role(db, role_id, lock=True)
    await _check_permissions(db, wanted.permissions)
    await db.execute(delete(rp).where(rp.c.role_id == role_id, rp.c.permission.not_in(wanted.permissions)))
    await _add_permissions(db, role_id, wanted.permissions)
    await _admin.record_action(
        db,
        action="role_permissions_set",
        reason=wanted.reason,
        target=f"role:{before.name}",
        details={
            "role_id": str(role_id),
            "added": sorted(set(wanted.permissions) - set(before.permissions)),
            "removed": sorted(set(before.permissions) - set(wanted.permissions)),
        },
    )
    return await _role(db, role_id)


async def do_delete_role(db: AsyncConnection, *, actor: Actor, role_id: UUID, reason: str | None) -> None:
    """Delete a role and revoke every grant of it (each holder is told); recorded in the audit.

    Raises:
        PermissionRequired: the actor is not an access administrator.
        RoleNotFound: no such role.
        BuiltinRoleRefused: a built-in role.
    """
    await _admin.require_access_admin(db, actor)
    role = await _role(db, role_id, lock=True)
    if role.is_builtin:
        raise BuiltinRoleRefused(f"The built-in role {role.name} cannot be deleted.")
    revoked = await _grants.revoke_grants_of_role(db, actor=actor, role_id=role_id, role_name=role.name)
    await db.execute(delete(r).where(r.c.id == role_id))
    await _admin.record_action(
        db,
        action="role_deleted",
        reason=reason,
        target=f"role:{role.name}",
        details={"role_id": str(role_id), "permissions": role.permissions, "grants_revoked": revoked},
    )


async def list_all_roles(db_system: AsyncConnection) -> list[s.RoleOut]:
    """Every role with what it holds, by name (system work: the command line)."""
    rows = await db_system.execute(_roles().order_by(r.c.name))
    return [s.RoleOut.model_validate(row._mapping) for row in rows]
