"""The calls API: start, join, leave, decline, end and rate a conversation's calls, and
read their history. Media signalling is out of scope: these are the records, and the
events (call.started, call.changed, call.ended) that tell the conversation."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, status

from rapport.kernel.deps import CallerDep, PageDep
from rapport.kernel.pagination import Page
from rapport.messaging import schemas_calls as s
from rapport.messaging import service

router = APIRouter(tags=["calls"])

CALLS = "/conversations/{conversation_id}/calls"
CALL = CALLS + "/{call_id}"


@router.post(CALLS, status_code=status.HTTP_201_CREATED, response_model=s.CallOut)
async def start_call(conversation_id: UUID, body: s.StartCall, caller: CallerDep) -> s.CallOut:
    """Start a call. The caller joins it; everyone else who may take part is rung (those
    who muted the conversation are invited without ringing). Whoever may send in the
    conversation may call (403 `cannot-call` otherwise); 409 `call-in-progress`, with the
    live call's `call_id`, while another call rings or goes on there."""
    async with caller.transaction() as (db, actor):
        return await service.do_start_call(db, actor=actor, conversation_id=conversation_id, call_type=body.type)


@router.get(CALLS, response_model=Page[s.CallOut])
async def list_calls(conversation_id: UUID, caller: CallerDep, page: PageDep) -> Page[s.CallOut]:
    """The conversation's calls, newest first, with who took part and how long each lasted."""
    async with caller.transaction() as (db, actor):
        return await service.list_calls(db, actor=actor, conversation_id=conversation_id, page=page)


@router.get(CALL, response_model=s.CallOut)
async def get_call(conversation_id: UUID, call_id: UUID, caller: CallerDep) -> s.CallOut:
    """One call of the conversation."""
    async with caller.transaction() as (db, actor):
        return await service.access_call(db, actor=actor, conversation_id=conversation_id, call_id=call_id)


@router.post(CALL + "/join", response_model=s.CallOut)
async def join_call(conversation_id: UUID, call_id: UUID, caller: CallerDep) -> s.CallOut:
    """Join a ringing or ongoing call (again, after leaving or declining it). The second
    person in answers the call: it becomes ongoing. 409 `call-not-live` once it is over."""
    async with caller.transaction() as (db, actor):
        return await service.do_join_call(db, actor=actor, conversation_id=conversation_id, call_id=call_id)


@router.post(CALL + "/leave", response_model=s.CallOut)
async def leave_call(conversation_id: UUID, call_id: UUID, caller: CallerDep) -> s.CallOut:
    """Leave the call. The last person to leave ends it: `ended`, with its duration, if it
    was answered; `missed` if not. 409 `not-in-call` for someone who is not in it."""
    async with caller.transaction() as (db, actor):
        return await service.do_leave_call(db, actor=actor, conversation_id=conversation_id, call_id=call_id)


@router.post(CALL + "/decline", response_model=s.CallOut)
async def decline_call(conversation_id: UUID, call_id: UUID, caller: CallerDep) -> s.CallOut:
    """Decline a call that rings for the caller. Once everyone rung has declined, with
    nobody but its starter in it, the call is `declined`. 409 `call-not-ringing` for
    someone who joined, left or declined it already."""
    async with caller.transaction() as (db, actor):
        return await service.do_decline_call(db, actor=actor, conversation_id=conversation_id, call_id=call_id)


@router.post(CALL + "/end", response_model=s.CallOut)
async def end_call(conversation_id: UUID, call_id: UUID, caller: CallerDep) -> s.CallOut:
    """End the call for everyone: its starter, or the conversation's moderators, admins
    and owners (403 `not-allowed-in-conversation` for anyone else, who may leave it)."""
    async with caller.transaction() as (db, actor):
        return await service.do_end_call(db, actor=actor, conversation_id=conversation_id, call_id=call_id)


@router.put(CALL + "/rating", response_model=s.CallOut)
async def rate_call(conversation_id: UUID, call_id: UUID, body: s.RateCall, caller: CallerDep) -> s.CallOut:
    """Rate how the call went for the caller, 1 to 5; a new rating replaces the last.
    Only those who joined the call rate it (409 `not-in-call`)."""
    async with caller.transaction() as (db, actor):
        return await service.do_rate_call(
            db, actor=actor, conversation_id=conversation_id, call_id=call_id, quality_rating=body.quality_rating
        )
