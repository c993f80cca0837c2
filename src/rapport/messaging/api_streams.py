"""The messaging API of support rooms and bots: streaming a message in steps, and a room's
history for its supervisors."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from rapport.kernel.deps import CallerDep, PageDep, RuntimeDep
from rapport.kernel.pagination import Page
from rapport.messaging import schemas_streams as ss
from rapport.messaging import service

router = APIRouter(prefix="/v1", tags=["messaging"])

JSON = "application/json"


@router.post("/conversations/{conversation_id}/messages/{message_id}/stream", response_model=ss.StreamState)
async def stream_message(
    conversation_id: UUID, message_id: UUID, body: ss.StreamStep, caller: CallerDep, runtime: RuntimeDep
) -> Response:
    """One step of a message sent with `streaming: true`: `append` adds text at its end (as
    given, untrimmed; at most 3,500 bytes of JSON a step), `done` ends it delivered,
    `failed` ends it failed. Only its sender, only while it streams (409
    `message-not-streaming` after); the whole stays within 10,000 characters (422
    `message-too-long`).

    Every reader hears each step: `message.streamed` (the text appended and the new
    length), then `message.stream.ended` (the status) and, once delivered,
    `message.created`, by which notifications and bots hear of it once, whole."""
    state = await service.do_stream(
        runtime, await caller.actor(), conversation_id=conversation_id, message_id=message_id, step=body
    )
    return Response(state, media_type=JSON)


@router.get("/conversations/{conversation_id}/history", response_model=Page[ss.RoomChange])
async def list_room_history(conversation_id: UUID, caller: CallerDep, page: PageDep) -> Page[ss.RoomChange]:
    """How the room and its people's places in it were before each change (its name,
    settings, status, deletion; someone's role, status, permissions, leaving), newest
    first. For supervisors (`supervisor:chat:observe` granted for this room, or
    platform-wide for a support or escalated room) and platform admins, participants or
    not; a participant without it gets 403 `permission-required`, anyone else 404."""
    async with caller.transaction() as (db, actor):
        return await service.list_room_history(db, actor=actor, conversation_id=conversation_id, page=page)
