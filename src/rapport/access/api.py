"""Routes of access: what the caller may do, and the access administrators' roles and grants.

The administration routes need `access:admin:manage` (platform administrators hold it)
and a signed-in session, not an API key. Each change is recorded in `audit.admin_actions`
with an optional `reason`."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, status

from rapport.access import schemas as s
from rapport.access import service
from rapport.kernel.deps import NO_CONTENT, CallerDep, PageDep
from rapport.kernel.pagination import Page

router = APIRouter(prefix="/v1", tags=["access"])

RolePath = Annotated[UUID, Path(description="The role.")]
ReasonQuery = Annotated[s.Reason | None, Query(description=s.REASON)]


@router.get("/permissions/me", response_model=s.MyPermissionsOut)
async def get_my_permissions(caller: CallerDep) -> s.MyPermissionsOut:
    """What you may do: each permission your roles give you, platform-wide or within one
    conversation, and whether you are a platform administrator (who may do everything)."""
    async with caller.transaction() as (db, actor):
        return await service.get_my_permissions(db, actor=actor)


@router.get("/admin/permissions", response_model=s.PermissionsOut, tags=["access administration"])
async def list_permissions(caller: CallerDep) -> s.PermissionsOut:
    """Every permission, named domain:function:action."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.list_permissions(db, actor=actor)


@router.get("/admin/roles", response_model=Page[s.RoleOut], tags=["access administration"])
async def list_roles(caller: CallerDep, page: PageDep) -> Page[s.RoleOut]:
    """Every role with its permissions, newest first."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.list_roles(db, actor=actor, page=page)


@router.post(
    "/admin/roles", status_code=status.HTTP_201_CREATED, response_model=s.RoleOut, tags=["access administration"]
)
async def create_role(body: s.RoleIn, caller: CallerDep) -> s.RoleOut:
    """Make a role holding some permissions."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.do_create_role(db, actor=actor, role=body)


@router.get("/admin/roles/{role_id}", response_model=s.RoleOut, tags=["access administration"])
async def get_role(role_id: RolePath, caller: CallerDep) -> s.RoleOut:
    """One role with its permissions."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.access_role(db, actor=actor, role_id=role_id)


@router.patch("/admin/roles/{role_id}", response_model=s.RoleOut, tags=["access administration"])
async def update_role(role_id: RolePath, body: s.RoleUpdate, caller: CallerDep) -> s.RoleOut:
    """Rename a role (not a built-in one) or change its description."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.do_update_role(db, actor=actor, role_id=role_id, changes=body)


@router.delete("/admin/roles/{role_id}", **NO_CONTENT, tags=["access administration"])
async def delete_role(role_id: RolePath, caller: CallerDep, reason: ReasonQuery = None) -> None:
    """Delete a role (not a built-in one); every grant of it is revoked."""
    async with caller.transaction(session_required=True) as (db, actor):
        await service.do_delete_role(db, actor=actor, role_id=role_id, reason=reason)


@router.put("/admin/roles/{role_id}/permissions", response_model=s.RoleOut, tags=["access administration"])
async def set_role_permissions(role_id: RolePath, body: s.RolePermissionsIn, caller: CallerDep) -> s.RoleOut:
    """Make the role hold exactly these permissions: its holders gain and lose them at once."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.do_set_role_permissions(db, actor=actor, role_id=role_id, wanted=body)


@router.get("/admin/grants", response_model=Page[s.GrantOut], tags=["access administration"])
async def list_grants(
    caller: CallerDep,
    page: PageDep,
    user_id: Annotated[UUID | None, Query(description="Only this person's grants.")] = None,
    conversation_id: Annotated[UUID | None, Query(description="Only the grants within this conversation.")] = None,
) -> Page[s.GrantOut]:
    """Grants of roles, newest first."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.list_grants(db, actor=actor, page=page, user_id=user_id, conversation_id=conversation_id)


@router.post(
    "/admin/grants", status_code=status.HTTP_201_CREATED, response_model=s.GrantOut, tags=["access administration"]
)
async def grant_role(body: s.GrantIn, caller: CallerDep) -> s.GrantOut:
    """Grant a role to a person, platform-wide or within one conversation; they are told
    on their stream (`access.grant.created`)."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.do_grant_role(db, actor=actor, grant=body)


@router.delete("/admin/grants/{grant_id}", **NO_CONTENT, tags=["access administration"])
async def revoke_grant(
    grant_id: Annotated[UUID, Path(description="The grant.")], caller: CallerDep, reason: ReasonQuery = None
) -> None:
    """Revoke a grant; its holder is told on their stream (`access.grant.revoked`)."""
    async with caller.transaction(session_required=True) as (db, actor):
        await service.do_revoke_grant(db, actor=actor, grant_id=grant_id, reason=reason)
