"""The social API: profiles, settings, contact requests, contacts, groups and blocks."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, status

from rapport.kernel.deps import NO_CONTENT, CallerDep, PageDep
from rapport.kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from rapport.social import schemas as s
from rapport.social import service

router = APIRouter(prefix="/v1", tags=["social"])


@router.get("/profile", response_model=s.ProfileOut)
async def get_profile(caller: CallerDep) -> s.ProfileOut:
    """The caller's own profile."""
    async with caller.transaction() as (db, actor):
        return await service.get_own_profile(db, actor=actor)


@router.patch("/profile", response_model=s.ProfileOut)
async def update_profile(body: s.ProfileUpdate, caller: CallerDep) -> s.ProfileOut:
    """Change the fields sent. Usernames are unique regardless of case."""
    async with caller.transaction() as (db, actor):
        return await service.do_update_profile(db, actor=actor, changes=body)


@router.get("/profile/activity", response_model=Page[s.ActivityOut])
async def profile_activity(caller: CallerDep, page: PageDep) -> Page[s.ActivityOut]:
    """The caller's profile changes, newest first."""
    async with caller.transaction() as (db, actor):
        return await service.list_activity(db, actor=actor, page=page)


@router.get("/users/{user_id}/profile", response_model=s.ProfileOut)
async def get_user_profile(user_id: UUID, caller: CallerDep) -> s.ProfileOut:
    """Someone's profile, if its visibility lets the caller see it (404 otherwise)."""
    async with caller.transaction() as (db, _):
        return await service.access_profile(db, user_id=user_id)


@router.get("/users/by-username/{username}", response_model=s.ProfileOut)
async def get_profile_by_username(
    username: Annotated[str, Path(min_length=1, max_length=30)], caller: CallerDep
) -> s.ProfileOut:
    """A profile by username (any case), if visible to the caller."""
    async with caller.transaction() as (db, _):
        return await service.access_profile(db, username=username)


@router.put("/admin/users/{user_id}/verified", response_model=s.ProfileOut)
async def set_verified_badge(user_id: UUID, body: s.VerifiedBadge, caller: CallerDep) -> s.ProfileOut:
    """Grant or withdraw the verified badge (administrators only)."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.do_set_verified_badge(db, actor=actor, user_id=user_id, is_verified=body.is_verified)


@router.get("/settings", response_model=s.SettingsOut)
async def get_settings(caller: CallerDep) -> s.SettingsOut:
    """Privacy and app settings."""
    async with caller.transaction() as (db, actor):
        return await service.get_settings(db, actor=actor)


@router.patch("/settings", response_model=s.SettingsOut)
async def update_settings(body: s.SettingsUpdate, caller: CallerDep) -> s.SettingsOut:
    """Change the settings sent; `notification_defaults` merges into the current ones."""
    async with caller.transaction() as (db, actor):
        return await service.do_update_settings(db, actor=actor, changes=body)


@router.post("/contact-requests", status_code=status.HTTP_201_CREATED, response_model=s.ContactRequestOut)
async def request_contact(body: s.ContactRequestCreate, caller: CallerDep) -> s.ContactRequestOut:
    """Ask someone to become a contact. If they had already asked you, you become
    contacts at once and their request is returned, accepted."""
    async with caller.transaction() as (db, actor):
        return await service.do_request_contact(db, actor=actor, user_id=body.user_id, message=body.message)


@router.get("/contact-requests", response_model=Page[s.ContactRequestOut])
async def list_contact_requests(
    caller: CallerDep,
    page: PageDep,
    direction: Literal["incoming", "outgoing"] = "incoming",
    request_status: Annotated[s.ContactRequestStatus | None, Query(alias="status")] = "pending",
) -> Page[s.ContactRequestOut]:
    """Requests to the caller (`incoming`) or from the caller (`outgoing`), newest first."""
    async with caller.transaction() as (db, actor):
        return await service.list_requests(db, actor=actor, direction=direction, status=request_status, page=page)


@router.post("/contact-requests/{request_id}/{answer}", response_model=s.ContactRequestOut)
async def answer_contact_request(
    request_id: UUID, answer: Literal["accept", "reject", "cancel"], caller: CallerDep
) -> s.ContactRequestOut:
    """`accept` or `reject` a request made to you; `cancel` one you made."""
    async with caller.transaction() as (db, actor):
        return await service.do_answer_request(db, actor=actor, request_id=request_id, answer=answer)


@router.get("/contacts", response_model=Page[s.ContactOut])
async def list_contacts(
    caller: CallerDep, page: PageDep, favorites: bool = False, group_id: UUID | None = None
) -> Page[s.ContactOut]:
    """The caller's contacts, newest first; filter by favourites or by group."""
    async with caller.transaction() as (db, actor):
        return await service.list_contacts(db, actor=actor, page=page, favorites_only=favorites, group_id=group_id)


@router.post("/contacts", status_code=status.HTTP_201_CREATED, response_model=s.ContactOut)
async def add_contact(body: s.ContactCreate, caller: CallerDep) -> s.ContactOut:
    """Add someone without an account here (a child, a co-parent by e-mail). When they
    join and verify that address, the contact becomes their account."""
    async with caller.transaction() as (db, actor):
        return await service.do_add_contact(db, actor=actor, contact=body)


@router.get("/contacts/{contact_id}", response_model=s.ContactOut)
async def get_contact(contact_id: UUID, caller: CallerDep) -> s.ContactOut:
    """One of the caller's contacts."""
    async with caller.transaction() as (db, actor):
        return s.ContactOut.model_validate(
            (await service.access_contact(db, actor=actor, contact_id=contact_id))._mapping
        )


@router.patch("/contacts/{contact_id}", response_model=s.ContactOut)
async def update_contact(contact_id: UUID, body: s.ContactUpdate, caller: CallerDep) -> s.ContactOut:
    """Nickname, favourite, mute, names, relationship, notes."""
    async with caller.transaction() as (db, actor):
        return await service.do_update_contact(db, actor=actor, contact_id=contact_id, changes=body)


@router.delete("/contacts/{contact_id}", **NO_CONTENT)
async def remove_contact(contact_id: UUID, caller: CallerDep) -> None:
    """Remove a contact. For another account, you both stop being each other's contacts."""
    async with caller.transaction() as (db, actor):
        await service.do_remove_contact(db, actor=actor, contact_id=contact_id)


async def get_group_page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=400, description="The `next` value of the previous page.")] = None,
) -> service.GroupPageRequest:
    """`limit` and `cursor` of the group list, which is ordered by name (its cursor
    carries one)."""
    return service.GroupPageRequest(limit=limit, after_name=service.decode_group_cursor(cursor) if cursor else None)


@router.get("/contact-groups", response_model=Page[s.ContactGroupOut])
async def list_contact_groups(
    caller: CallerDep, page: Annotated[service.GroupPageRequest, Depends(get_group_page_request)]
) -> Page[s.ContactGroupOut]:
    """The caller's contact groups, by name regardless of case."""
    async with caller.transaction() as (db, actor):
        return await service.list_groups(db, actor=actor, page=page)


@router.post("/contact-groups", status_code=status.HTTP_201_CREATED, response_model=s.ContactGroupOut)
async def create_contact_group(body: s.ContactGroupCreate, caller: CallerDep) -> s.ContactGroupOut:
    """Make a group (Family, Work...)."""
    async with caller.transaction() as (db, actor):
        return await service.do_create_group(db, actor=actor, name=body.name)


@router.patch("/contact-groups/{group_id}", response_model=s.ContactGroupOut)
async def rename_contact_group(group_id: UUID, body: s.ContactGroupUpdate, caller: CallerDep) -> s.ContactGroupOut:
    """Rename a group (a body without `name` changes nothing)."""
    async with caller.transaction() as (db, actor):
        return await service.do_rename_group(db, actor=actor, group_id=group_id, name=body.name)


@router.delete("/contact-groups/{group_id}", **NO_CONTENT)
async def delete_contact_group(group_id: UUID, caller: CallerDep) -> None:
    """Delete a group; its contacts stay."""
    async with caller.transaction() as (db, actor):
        await service.do_delete_group(db, actor=actor, group_id=group_id)


@router.put("/contact-groups/{group_id}/members/{contact_id}", **NO_CONTENT)
async def add_to_contact_group(group_id: UUID, contact_id: UUID, caller: CallerDep) -> None:
    """Put a contact in a group."""
    async with caller.transaction() as (db, actor):
        await service.do_add_to_group(db, actor=actor, group_id=group_id, contact_id=contact_id)


@router.delete("/contact-groups/{group_id}/members/{contact_id}", **NO_CONTENT)
async def remove_from_contact_group(group_id: UUID, contact_id: UUID, caller: CallerDep) -> None:
    """Take a contact out of a group."""
    async with caller.transaction() as (db, actor):
        await service.do_remove_from_group(db, actor=actor, group_id=group_id, contact_id=contact_id)


@router.get("/blocks", response_model=Page[s.BlockOut])
async def list_blocks(caller: CallerDep, page: PageDep) -> Page[s.BlockOut]:
    """The people the caller blocks."""
    async with caller.transaction() as (db, actor):
        return await service.list_blocks(db, actor=actor, page=page)


@router.put("/blocks/{user_id}", response_model=s.BlockOut)
async def block_user(user_id: UUID, caller: CallerDep, body: s.BlockCreate | None = None) -> s.BlockOut:
    """Block someone: to them you no longer exist, exactly as if your profile were
    private (your profile, its parts and statuses answer 404, search leaves you out, a
    contact request answers as for an unknown user), and they cannot message you. An
    existing contact ends. They are not told. You still see their profile.

    Any id is accepted and answered alike, whether an account has it or not."""
    async with caller.transaction() as (db, actor):
        return await service.do_block(db, actor=actor, user_id=user_id, reason=body.reason if body else None)


@router.delete("/blocks/{user_id}", **NO_CONTENT)
async def unblock_user(user_id: UUID, caller: CallerDep) -> None:
    """Unblock someone (contacts do not come back)."""
    async with caller.transaction() as (db, actor):
        await service.do_unblock(db, actor=actor, user_id=user_id)
