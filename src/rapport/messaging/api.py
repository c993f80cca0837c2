"""The messaging API's hot routes: send, history, the conversation list, read markers.

Each is one statement to PostgreSQL through the direct pool (rapport.messaging.service), and
its answer is the JSON PostgreSQL built; the response models document it. Sending,
history and the list (and, from other modules, search and participants) are answered first
by the hot lane (rapport.messaging.api_hot) when a request is plainly well formed; these
routes answer the rest and document all of them. The rest of the
messaging API lives in the `api_*` modules beside this one and is gathered into `router`.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from rapport.kernel.deps import CallerDep, RuntimeDep
from rapport.kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT
from rapport.messaging import schemas as s
from rapport.messaging import service
from rapport.messaging.api_calls import router as calls_router
from rapport.messaging.api_conversations import router as conversations_router
from rapport.messaging.api_hot import one_anchor
from rapport.messaging.api_messages import router as messages_router
from rapport.messaging.api_moderation import router as moderation_router
from rapport.messaging.api_search import router as search_router
from rapport.messaging.api_sync import router as sync_router

router = APIRouter(prefix="/v1", tags=["messaging"])

JSON = "application/json"


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=s.MessageOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": s.MessageOut, "description": "A retry: the message this client_message_id made."}},
)
async def send_message(conversation_id: UUID, body: s.SendMessage, caller: CallerDep, runtime: RuntimeDep) -> Response:
    """Send a message. With a `client_message_id`, a retry (even one racing the first)
    answers 200 with the message already made, never a second one.

    Mentions name participants; anyone else named is left out. Observers, silenced
    participants and, in a broadcast, everyone but owners and admins get 403 `cannot-send`,
    as does either person of a direct conversation while one blocks the other.
    """
    created, message = await service.send_message(
        runtime, await caller.actor(), conversation_id=conversation_id, body=body
    )
    return Response(message, status_code=201 if created else 200, media_type=JSON)


@router.get("/conversations/{conversation_id}/messages", response_model=s.MessagePage)
async def read_history(
    conversation_id: UUID,
    caller: CallerDep,
    runtime: RuntimeDep,
    before: Annotated[UUID | None, Query(description="Messages older than this one, newest first.")] = None,
    after: Annotated[UUID | None, Query(description="Messages newer than this one, oldest first.")] = None,
    around: Annotated[UUID | None, Query(description="About half older, half newer, newest first.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Response:
    """History: by default the newest messages, newest first. Only what the caller may
    see: from the start, or from joining where history is withheld, up to leaving; never
    what they hid. Deleted messages keep their place, without content."""
    one_anchor(before, after, around)
    page = await service.read_history(
        runtime,
        await caller.actor(),
        conversation_id=conversation_id,
        before=before,
        after=after,
        around=around,
        limit=limit,
    )
    return Response(page, media_type=JSON)


@router.get("/conversations", response_model=s.ConversationList)
async def list_conversations(
    caller: CallerDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200, description="The `next` of the previous page.")] = None,
) -> Response:
    """The caller's conversations: pinned first, then by latest activity, each with its
    exact unread count, unread mentions and the last message they may see."""
    page = await service.list_conversations(runtime, await caller.actor(), cursor=cursor, limit=limit)
    return Response(page, media_type=JSON)


@router.post("/conversations/{conversation_id}/read", response_model=s.ReadState)
async def mark_read(conversation_id: UUID, body: s.MarkRead, caller: CallerDep, runtime: RuntimeDep) -> Response:
    """Everything up to this message is read (the marker never moves back here). Others
    see it as read receipts if the caller shares them."""
    state = await service.mark_read(
        runtime, await caller.actor(), conversation_id=conversation_id, message_id=body.message_id, unread=False
    )
    return Response(state, media_type=JSON)


@router.post("/conversations/{conversation_id}/unread", response_model=s.ReadState)
async def mark_unread(conversation_id: UUID, body: s.MarkRead, caller: CallerDep, runtime: RuntimeDep) -> Response:
    """Mark this message and everything after it unread."""
    state = await service.mark_read(
        runtime, await caller.actor(), conversation_id=conversation_id, message_id=body.message_id, unread=True
    )
    return Response(state, media_type=JSON)


router.include_router(sync_router)
router.include_router(messages_router)
router.include_router(conversations_router)
router.include_router(calls_router)
router.include_router(moderation_router)
router.include_router(search_router)
