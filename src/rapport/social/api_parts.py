"""The API of extended profile parts, devices and status updates, under /v1.

Each part has its own routes (made from one template below) so that OpenAPI shows its
exact fields; a part name that does not exist is a 404 like any unknown path.
"""

# No `from __future__ import annotations` here: the part routes are made in a loop, and
# FastAPI must see each route's model as an object, not as a name to look up.

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel

from rapport.kernel.deps import NO_CONTENT, CallerDep, PageDep
from rapport.kernel.pagination import Page
from rapport.social import schemas_parts as s
from rapport.social import service

router = APIRouter(prefix="/v1", tags=["social"])

_SENSITIVE_NOTE = (
    " This part is sensitive: only its owner reads or writes it, only with a signed-in session"
    " (not an API key), and every read and write is recorded (`GET /v1/profile/sensitive-access`)."
)


def _add_part_routes(part: service.Part) -> None:
    response_model = part.response
    note = _SENSITIVE_NOTE if part.sensitive else " Others see it when they may see the profile."
    # Health and money are not for bots and scripts: a leaked key must not reach them.
    session_required = part.sensitive

    async def get_own(caller: CallerDep) -> BaseModel:
        async with caller.transaction(session_required=session_required) as (db, actor):
            return await service.get_part(db, actor=actor, part=part)

    async def put_own(body: BaseModel, caller: CallerDep) -> BaseModel:
        async with caller.transaction(session_required=session_required) as (db, actor):
            return await service.do_put_part(db, actor=actor, part=part, values=body)

    # FastAPI reads the body's model from the annotation: this part's own, not BaseModel.
    # (The answers' models are given to add_api_route as response_model.)
    put_own.__annotations__["body"] = part.request

    async def delete_own(caller: CallerDep) -> None:
        async with caller.transaction(session_required=session_required) as (db, actor):
            await service.do_delete_part(db, actor=actor, part=part)

    path = f"/profile/parts/{part.name}"
    router.add_api_route(
        path,
        get_own,
        methods=["GET"],
        response_model=response_model,
        name=f"get_{part.name}",
        summary=f"Get my {part.name}",
        description=f"Your {part.name}; every field is null until first saved." + note,
    )
    router.add_api_route(
        path,
        put_own,
        methods=["PUT"],
        response_model=response_model,
        name=f"put_{part.name}",
        summary=f"Replace my {part.name}",
        description=f"Replace your {part.name}: fields left out are cleared." + note,
    )
    router.add_api_route(
        path,
        delete_own,
        methods=["DELETE"],
        name=f"delete_{part.name}",
        summary=f"Erase my {part.name}",
        description=f"Erase your {part.name}." + note,
        **NO_CONTENT,
    )

    if not part.sensitive:

        async def get_theirs(user_id: UUID, caller: CallerDep) -> BaseModel:
            async with caller.transaction() as (db, actor):
                return await service.access_user_part(db, actor=actor, user_id=user_id, part=part)

        router.add_api_route(
            f"/users/{{user_id}}/parts/{part.name}",
            get_theirs,
            methods=["GET"],
            response_model=response_model,
            name=f"get_user_{part.name}",
            summary=f"Get someone's {part.name}",
            description=f"Someone's {part.name}, when you may see their profile; empty when they have "
            "not filled it in.",
        )


for _part in service.PARTS.values():
    _add_part_routes(_part)


@router.get("/profile/sensitive-access", response_model=Page[s.SensitiveAccessOut])
async def list_sensitive_access(caller: CallerDep, page: PageDep) -> Page[s.SensitiveAccessOut]:
    """Every read and write of your health and financial parts: when, by whom, which
    fields (never their values), newest first."""
    async with caller.transaction() as (db, actor):
        return await service.list_sensitive_access(db, actor=actor, page=page)


@router.post(
    "/devices",
    status_code=status.HTTP_201_CREATED,
    response_model=s.DeviceOut,
    responses={200: {"model": s.DeviceOut, "description": "A device of this name was updated."}},
)
async def register_device(body: s.DeviceRegisterRequest, caller: CallerDep, response: Response) -> s.DeviceOut:
    """Register the device you use (201), or update the one of the same name and mark it
    seen now (200)."""
    async with caller.transaction() as (db, actor):
        device, created = await service.do_register_device(db, actor=actor, device=body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return device


@router.get("/devices", response_model=Page[s.DeviceOut])
async def list_devices(caller: CallerDep, page: PageDep) -> Page[s.DeviceOut]:
    """Your devices, newest first."""
    async with caller.transaction() as (db, actor):
        return await service.list_devices(db, actor=actor, page=page)


@router.get("/devices/{device_id}", response_model=s.DeviceOut)
async def get_device(device_id: UUID, caller: CallerDep) -> s.DeviceOut:
    """One of your devices."""
    async with caller.transaction() as (db, actor):
        return await service.access_device(db, actor=actor, device_id=device_id)


@router.delete("/devices/{device_id}", **NO_CONTENT)
async def remove_device(device_id: UUID, caller: CallerDep) -> None:
    """Forget one of your devices."""
    async with caller.transaction() as (db, actor):
        await service.do_remove_device(db, actor=actor, device_id=device_id)


@router.post("/statuses", status_code=status.HTTP_201_CREATED, response_model=s.StatusOut)
async def post_status(body: s.StatusCreateRequest, caller: CallerDep) -> s.StatusOut:
    """Post a status: text, a picture or both. Whoever may see your profile sees it for
    24 hours, unless either of you blocks the other."""
    async with caller.transaction() as (db, actor):
        return await service.do_post_status(db, actor=actor, status=body)


@router.get("/statuses/me", response_model=Page[s.StatusOut])
async def list_my_statuses(
    caller: CallerDep,
    page: PageDep,
    include_expired: Annotated[bool, Query(description="Also those past their 24 hours.")] = False,
) -> Page[s.StatusOut]:
    """Your statuses, newest first."""
    async with caller.transaction() as (db, actor):
        return await service.list_my_statuses(db, actor=actor, page=page, include_expired=include_expired)


@router.get("/users/{user_id}/statuses", response_model=Page[s.StatusOut])
async def list_user_statuses(user_id: UUID, caller: CallerDep, page: PageDep) -> Page[s.StatusOut]:
    """Someone's live statuses, newest first, when you may see their profile."""
    async with caller.transaction() as (db, actor):
        return await service.list_user_statuses(db, actor=actor, user_id=user_id, page=page)


@router.delete("/statuses/{status_id}", **NO_CONTENT)
async def delete_status(status_id: UUID, caller: CallerDep) -> None:
    """Remove one of your statuses."""
    async with caller.transaction() as (db, actor):
        await service.do_delete_status(db, actor=actor, status_id=status_id)
