"""The conversations API: create (direct ones at most once per pair), read, change,
delete; public channels, join and leave; participants and their roles; each person's own
settings in a conversation; invite links.

Included by rapport.messaging.api's router, under its /v1 prefix."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query, Response, status

from rapport.kernel.deps import NO_CONTENT, CallerDep, PageDep
from rapport.kernel.pagination import Page
from rapport.messaging import schemas_conversations as s
from rapport.messaging import service

router = APIRouter(tags=["conversations"])

_EXISTING: dict[int | str, dict[str, Any]] = {
    200: {"model": s.ConversationOut, "description": "The direct conversation the caller already has."}
}


@router.post(
    "/conversations", response_model=s.ConversationOut, status_code=status.HTTP_201_CREATED, responses=_EXISTING
)
async def create_conversation(body: s.ConversationCreate, caller: CallerDep, response: Response) -> s.ConversationOut:
    """Create a conversation; the caller is its owner, the people in `participant_ids`
    its members, each told by a `participant.joined` event.

    `direct`: with exactly one other person, at most one per pair: when the caller already
    has one with them it answers 200 with it (re-opened for whichever of the two had left
    it). Refused while one blocks the other: 409 `you-block-this-user` when the caller
    blocks them, 404 `user-not-found` when they block the caller, as for an unknown id.
    `channel`: public, findable by name and joinable by anyone.

    Errors: `user-not-found` (404) for someone unknown or invisible to the caller (or
    whom the caller blocks, in a group); `conversation-not-found` (404) for a parent the
    caller cannot see; `conversation-full` (409) for more people than `max_participants`.
    """
    async with caller.transaction() as (db, actor):
        conversation, made = await service.do_create_conversation(db, actor=actor, body=body)
    if not made:
        response.status_code = status.HTTP_200_OK
    return conversation


@router.get("/channels", response_model=Page[s.ConversationOut])
async def list_channels(
    caller: CallerDep,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=200, description="Part of the channel's name, any case.")] = None,
) -> Page[s.ConversationOut]:
    """Public channels, newest first, those whose name contains `q` when given; each with
    the caller's part in it, if any."""
    async with caller.transaction() as (db, actor):
        return await service.list_public_channels(db, actor=actor, query=q.strip() if q else None, page=page)


@router.get("/conversations/{conversation_id}", response_model=s.ConversationOut)
async def get_conversation(conversation_id: UUID, caller: CallerDep) -> s.ConversationOut:
    """A conversation the caller takes part in, or any public channel, with the caller's
    own part (`membership`, null when they take none)."""
    async with caller.transaction() as (db, actor):
        return await service.get_conversation(db, actor=actor, conversation_id=conversation_id)


@router.patch("/conversations/{conversation_id}", response_model=s.ConversationOut)
async def update_conversation(
    conversation_id: UUID, body: s.ConversationUpdate, caller: CallerDep
) -> s.ConversationOut:
    """Change the fields sent (owners and admins; others 403 `not-allowed-in-conversation`).
    `status` archived or closed stops all sending until it is active again. Publishes
    `conversation.changed`."""
    async with caller.transaction() as (db, actor):
        return await service.do_update_conversation(db, actor=actor, conversation_id=conversation_id, changes=body)


@router.delete("/conversations/{conversation_id}", **NO_CONTENT)
async def delete_conversation(conversation_id: UUID, caller: CallerDep) -> None:
    """Delete a conversation (owners only): from now on nobody sees it or its messages.
    Publishes `conversation.deleted`."""
    async with caller.transaction() as (db, actor):
        await service.do_delete_conversation(db, actor=actor, conversation_id=conversation_id)


@router.post("/conversations/{conversation_id}/join", response_model=s.ConversationOut)
async def join_conversation(conversation_id: UUID, caller: CallerDep) -> s.ConversationOut:
    """Join a public channel as a member (joining again changes nothing). Someone removed
    from it comes back only when a moderator adds them."""
    async with caller.transaction() as (db, actor):
        return await service.do_join(db, actor=actor, conversation_id=conversation_id)


@router.post("/conversations/{conversation_id}/leave", **NO_CONTENT)
async def leave_conversation(conversation_id: UUID, caller: CallerDep) -> None:
    """Leave: the caller keeps the history up to now and receives nothing after. The last
    owner cannot leave while others remain: 409 `owner-must-hand-over` (make someone else
    an owner first)."""
    async with caller.transaction() as (db, actor):
        await service.do_leave(db, actor=actor, conversation_id=conversation_id)


@router.patch("/conversations/{conversation_id}/me", response_model=s.MembershipOut)
async def update_membership(conversation_id: UUID, body: s.MembershipUpdate, caller: CallerDep) -> s.MembershipOut:
    """The caller's own mute (no notifications), pin (first in the list) and nickname
    (shown to the others)."""
    async with caller.transaction() as (db, actor):
        return await service.do_update_membership(db, actor=actor, conversation_id=conversation_id, changes=body)


@router.get("/conversations/{conversation_id}/participants", response_model=Page[s.ParticipantOut])
async def list_participants(
    conversation_id: UUID,
    caller: CallerDep,
    page: PageDep,
    participant_status: Annotated[
        s.ParticipantStatus | None,
        Query(alias="status", description="Only those of this status; by default those who take part (active, muted)."),
    ] = None,
) -> Page[s.ParticipantOut]:
    """The participants, with their role, status and permissions (participants only)."""
    async with caller.transaction() as (db, actor):
        return await service.list_participants(
            db, actor=actor, conversation_id=conversation_id, status=participant_status, page=page
        )


@router.post(
    "/conversations/{conversation_id}/participants",
    response_model=s.ParticipantOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": s.ParticipantOut, "description": "They already took part."}},
)
async def add_participant(
    conversation_id: UUID, body: s.ParticipantAdd, caller: CallerDep, response: Response
) -> s.ParticipantOut:
    """Add someone (those who may invite: owners, admins, moderators, and anyone given
    `can_invite`), in a role below the caller's own (owners may add admins). Someone who
    left or was removed comes back. `can_see_history: false` shows them only what is
    sent from now on.

    Errors: 403 `not-allowed-in-conversation`, or `bot-add-not-allowed` for a bot added by
    someone who neither manages it nor holds `chat:robot:add` here; 404 `user-not-found` for
    someone unknown, invisible, or blocked either way; 409 `conversation-full`."""
    async with caller.transaction() as (db, actor):
        participant, added = await service.do_add_participant(
            db,
            actor=actor,
            conversation_id=conversation_id,
            user_id=body.user_id,
            role=body.role,
            can_see_history=body.can_see_history,
        )
    if not added:
        response.status_code = status.HTTP_200_OK
    return participant


@router.patch("/conversations/{conversation_id}/participants/{user_id}", response_model=s.ParticipantOut)
async def change_participant(
    conversation_id: UUID, user_id: UUID, body: s.ParticipantChange, caller: CallerDep
) -> s.ParticipantOut:
    """Change someone ranked below the caller: moderators silence (`muted`), bring back
    (`active`) and remove (`removed`); admins also set roles up to moderator and the
    permissions; owners also make admins and hand over ownership (`role: owner`, which
    makes the giver an admin). On oneself only `status: left` (leaving)."""
    async with caller.transaction() as (db, actor):
        return await service.do_change_participant(
            db, actor=actor, conversation_id=conversation_id, user_id=user_id, changes=body
        )


@router.delete("/conversations/{conversation_id}/participants/{user_id}", **NO_CONTENT)
async def remove_participant(conversation_id: UUID, user_id: UUID, caller: CallerDep) -> None:
    """Remove someone ranked below the caller (moderators and above); one's own id leaves."""
    async with caller.transaction() as (db, actor):
        await service.do_remove_participant(db, actor=actor, conversation_id=conversation_id, user_id=user_id)


@router.post(
    "/conversations/{conversation_id}/invites", response_model=s.InviteCreated, status_code=status.HTTP_201_CREATED
)
async def create_invite(conversation_id: UUID, body: s.InviteCreate, caller: CallerDep) -> s.InviteCreated:
    """Make an invite link (those who may invite). Its `token` is shown here only: Rapport
    keeps its hash."""
    async with caller.transaction() as (db, actor):
        return await service.do_create_invite(db, actor=actor, conversation_id=conversation_id, body=body)


@router.get("/conversations/{conversation_id}/invites", response_model=Page[s.InviteOut])
async def list_invites(conversation_id: UUID, caller: CallerDep, page: PageDep) -> Page[s.InviteOut]:
    """The conversation's invite links, newest first, without their tokens."""
    async with caller.transaction() as (db, actor):
        return await service.list_invites(db, actor=actor, conversation_id=conversation_id, page=page)


@router.delete("/conversations/{conversation_id}/invites/{invite_id}", **NO_CONTENT)
async def revoke_invite(conversation_id: UUID, invite_id: UUID, caller: CallerDep) -> None:
    """Revoke an invite link: it opens nothing any more."""
    async with caller.transaction() as (db, actor):
        await service.do_revoke_invite(db, actor=actor, conversation_id=conversation_id, invite_id=invite_id)


@router.post("/invites/{token}/join", response_model=s.ConversationOut)
async def join_by_invite(
    token: Annotated[str, Path(min_length=1, max_length=200)], caller: CallerDep
) -> s.ConversationOut:
    """Join the conversation an invite link leads to. A wrong, expired, used-up or revoked
    link answers 404 `invite-not-found`, all alike."""
    async with caller.transaction() as (db, actor):
        return await service.do_join_by_invite(db, actor=actor, token=token)
