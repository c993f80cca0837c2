"""The messaging API for what is done to messages after sending: reading one, editing,
deleting for everyone, hiding for oneself, earlier versions, reactions, pins, drafts,
threads, forwarding, receipts and the delivered marker.

Messages are answered in history's shape (messaging.render_message), passed through as
PostgreSQL built them; `MessageOut` documents it.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from rapport.kernel.deps import NO_CONTENT, CallerDep, PageDep, RuntimeDep
from rapport.kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from rapport.messaging import schemas as s
from rapport.messaging import schemas_messages as sm
from rapport.messaging import service

router = APIRouter(tags=["messaging"])

JSON = "application/json"
MESSAGE = "/conversations/{conversation_id}/messages/{message_id}"


@router.get(MESSAGE, response_model=s.MessageOut)
async def get_message(conversation_id: UUID, message_id: UUID, caller: CallerDep) -> Response:
    """One message, as history gives it. A deleted one keeps its place, without content;
    one the caller hid is still found by its id."""
    async with caller.transaction() as (db, actor):
        message = await service.get_message(db, actor=actor, conversation_id=conversation_id, message_id=message_id)
    return Response(message, media_type=JSON)


@router.patch(MESSAGE, response_model=s.MessageOut)
async def edit_message(conversation_id: UUID, message_id: UUID, body: sm.EditMessage, caller: CallerDep) -> Response:
    """Edit one's own message: its text, metadata or mentions. The earlier version is kept
    (`GET .../edits`) and the message shows as edited. Someone else's message: 403
    `not-allowed-in-conversation`; a deleted one: 404."""
    async with caller.transaction() as (db, actor):
        message = await service.do_edit_message(
            db, actor=actor, conversation_id=conversation_id, message_id=message_id, changes=body
        )
    return Response(message, media_type=JSON)


@router.delete(MESSAGE, **NO_CONTENT)
async def delete_message(conversation_id: UUID, message_id: UUID, caller: CallerDep) -> None:
    """Delete a message for everyone: its sender, or the conversation's moderators, admins
    and owners. It keeps its place in history, empty; its reactions, pins and mentions go,
    and unread counts stay exact."""
    async with caller.transaction() as (db, actor):
        await service.do_delete_message(db, actor=actor, conversation_id=conversation_id, message_id=message_id)


@router.post(f"{MESSAGE}/hide", **NO_CONTENT)
async def hide_message(conversation_id: UUID, message_id: UUID, caller: CallerDep) -> None:
    """Hide a message for oneself: history and the unread count leave it out."""
    async with caller.transaction() as (db, actor):
        await service.do_hide_message(
            db, actor=actor, conversation_id=conversation_id, message_id=message_id, hidden=True
        )


@router.delete(f"{MESSAGE}/hide", **NO_CONTENT)
async def unhide_message(conversation_id: UUID, message_id: UUID, caller: CallerDep) -> None:
    """Show a hidden message again."""
    async with caller.transaction() as (db, actor):
        await service.do_hide_message(
            db, actor=actor, conversation_id=conversation_id, message_id=message_id, hidden=False
        )


@router.put(f"{MESSAGE}/thread", response_model=s.MessageOut)
async def move_to_thread(conversation_id: UUID, message_id: UUID, body: sm.MoveToThread, caller: CallerDep) -> Response:
    """Put a message in an open topic thread of the conversation, move it to another, or
    (`thread_id` null) take it out of its thread; the threads' counts follow and
    participants hear `message.threaded`. Anyone who takes part may (observers and guests:
    403); a reply stays under its root message (409 `message-in-reply-thread`); a thread
    that is not an open topic thread here: 422 `thread-not-open`."""
    async with caller.transaction() as (db, actor):
        message = await service.do_move_to_thread(
            db, actor=actor, conversation_id=conversation_id, message_id=message_id, thread_id=body.thread_id
        )
    return Response(message, media_type=JSON)


@router.get(f"{MESSAGE}/edits", response_model=sm.MessageVersions)
async def list_edits(conversation_id: UUID, message_id: UUID, caller: CallerDep) -> sm.MessageVersions:
    """A message's earlier versions, oldest first. None once it is deleted."""
    async with caller.transaction() as (db, actor):
        return await service.list_edits(db, actor=actor, conversation_id=conversation_id, message_id=message_id)


@router.put(f"{MESSAGE}/reactions/{{emoji}}", **NO_CONTENT)
async def add_reaction(conversation_id: UUID, message_id: UUID, emoji: str, caller: CallerDep) -> None:
    """React with an emoji (1 to 32 characters, no spaces or control characters; 422
    `invalid-emoji` otherwise). Once per emoji per person: doing it again changes nothing.
    Observers do not react (403)."""
    async with caller.transaction() as (db, actor):
        await service.do_react(
            db, actor=actor, conversation_id=conversation_id, message_id=message_id, emoji=emoji, on=True
        )


@router.delete(f"{MESSAGE}/reactions/{{emoji}}", **NO_CONTENT)
async def remove_reaction(conversation_id: UUID, message_id: UUID, emoji: str, caller: CallerDep) -> None:
    """Take one's reaction back (none there is fine)."""
    async with caller.transaction() as (db, actor):
        await service.do_react(
            db, actor=actor, conversation_id=conversation_id, message_id=message_id, emoji=emoji, on=False
        )


@router.post(f"{MESSAGE}/forward", response_model=sm.ForwardResults)
async def forward_message(
    conversation_id: UUID, message_id: UUID, body: sm.ForwardMessage, caller: CallerDep, runtime: RuntimeDep
) -> Response:
    """Send a copy of a message the caller can read (same type, content and metadata,
    `forwarded_from_id` set) to each conversation named: each a send of its own, answered
    in `results` with its status (201 sent, 200 a retry with the same `client_message_id`,
    or the refusal's 4xx and problem), so one refused does not stop the others."""
    async with caller.transaction() as (db, actor):
        copy = await service.access_forward_source(
            db,
            actor=actor,
            conversation_id=conversation_id,
            message_id=message_id,
            client_message_id=body.client_message_id,
        )
    results = await service.do_forward(
        runtime, actor=actor, message_id=message_id, copy=copy, conversation_ids=body.conversation_ids
    )
    return Response(results, media_type=JSON)


@router.get(f"{MESSAGE}/receipts", response_model=sm.MessageReceipts)
async def list_receipts(
    conversation_id: UUID, message_id: UUID, caller: CallerDep, page: PageDep
) -> sm.MessageReceipts:
    """Who read the message and whom it reached, derived from each participant's markers.
    Someone who does not share read receipts shows as delivered only."""
    async with caller.transaction() as (db, actor):
        return await service.list_receipts(
            db, actor=actor, conversation_id=conversation_id, message_id=message_id, page=page
        )


@router.post("/conversations/{conversation_id}/delivered", response_model=s.ReadState)
async def mark_delivered(conversation_id: UUID, body: sm.MarkDelivered, caller: CallerDep) -> s.ReadState:
    """Every message up to this one reached a device of the caller (the marker never
    moves back). Senders see it in receipts."""
    async with caller.transaction() as (db, actor):
        return await service.do_mark_delivered(
            db, actor=actor, conversation_id=conversation_id, message_id=body.message_id
        )


PIN = "/conversations/{conversation_id}/pins/{message_id}"


@router.put(PIN, **NO_CONTENT)
async def pin_message(conversation_id: UUID, message_id: UUID, caller: CallerDep) -> None:
    """Pin a message (members and above; guests and observers get 403). Pinning again
    changes nothing."""
    async with caller.transaction() as (db, actor):
        await service.do_pin(db, actor=actor, conversation_id=conversation_id, message_id=message_id, pinned=True)


@router.delete(PIN, **NO_CONTENT)
async def unpin_message(conversation_id: UUID, message_id: UUID, caller: CallerDep) -> None:
    """Unpin a message (members and above)."""
    async with caller.transaction() as (db, actor):
        await service.do_pin(db, actor=actor, conversation_id=conversation_id, message_id=message_id, pinned=False)


@router.get("/conversations/{conversation_id}/pins", response_model=Page[sm.PinOut])
async def list_pins(conversation_id: UUID, caller: CallerDep, page: PageDep) -> Response:
    """The pinned messages, newest message first, each as history gives it."""
    async with caller.transaction() as (db, actor):
        pins = await service.list_pins(db, actor=actor, conversation_id=conversation_id, page=page)
    return Response(pins, media_type=JSON)


DRAFT = "/conversations/{conversation_id}/draft"


@router.put(DRAFT, response_model=sm.DraftOut)
async def put_draft(conversation_id: UUID, body: sm.DraftIn, caller: CallerDep) -> sm.DraftOut:
    """Keep the caller's unsent message in this conversation (one per conversation; this
    replaces it). The caller's other devices hear of it."""
    async with caller.transaction() as (db, actor):
        return await service.do_put_draft(db, actor=actor, conversation_id=conversation_id, draft=body)


@router.get(DRAFT, response_model=sm.DraftOut)
async def get_draft(conversation_id: UUID, caller: CallerDep) -> sm.DraftOut:
    """The caller's draft here (404 `draft-not-found` when there is none)."""
    async with caller.transaction() as (db, actor):
        return await service.get_draft(db, actor=actor, conversation_id=conversation_id)


@router.delete(DRAFT, **NO_CONTENT)
async def delete_draft(conversation_id: UUID, caller: CallerDep) -> None:
    """Throw the draft away (none there is fine)."""
    async with caller.transaction() as (db, actor):
        await service.do_delete_draft(db, actor=actor, conversation_id=conversation_id)


THREADS = "/conversations/{conversation_id}/threads"


@router.post(
    THREADS,
    response_model=sm.ThreadOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": sm.ThreadOut, "description": "The reply thread this message already has."}},
)
async def create_thread(
    conversation_id: UUID, body: sm.CreateThread, caller: CallerDep, response: Response
) -> sm.ThreadOut:
    """Open the reply thread of a message (`root_message_id`; there is one per message, so
    asking again answers 200 with it), or a topic thread (`title`, optional `category` and
    `parent_thread_id`). Post into a thread by sending with its `thread_id`."""
    async with caller.transaction() as (db, actor):
        created, thread = await service.do_create_thread(db, actor=actor, conversation_id=conversation_id, thread=body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return thread


@router.get(THREADS, response_model=Page[sm.ThreadOut])
async def list_threads(
    conversation_id: UUID,
    caller: CallerDep,
    include_archived: Annotated[bool, Query(description="Archived threads too.")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200, description="The `next` of the previous page.")] = None,
) -> Page[sm.ThreadOut]:
    """The conversation's threads, latest activity first (threads without messages last)."""
    async with caller.transaction() as (db, actor):
        return await service.list_threads(
            db,
            actor=actor,
            conversation_id=conversation_id,
            include_archived=include_archived,
            limit=limit,
            cursor=cursor,
        )


@router.get(f"{THREADS}/{{thread_id}}", response_model=sm.ThreadOut)
async def get_thread(conversation_id: UUID, thread_id: UUID, caller: CallerDep) -> sm.ThreadOut:
    """One thread, with its message count and last activity."""
    async with caller.transaction() as (db, actor):
        return await service.access_thread(db, actor=actor, conversation_id=conversation_id, thread_id=thread_id)


@router.patch(f"{THREADS}/{{thread_id}}", response_model=sm.ThreadOut)
async def update_thread(
    conversation_id: UUID, thread_id: UUID, body: sm.UpdateThread, caller: CallerDep
) -> sm.ThreadOut:
    """Rename, recategorise, move under another thread, archive or unarchive: the thread's
    creator, or the conversation's moderators and above. Archived threads take no new
    messages."""
    async with caller.transaction() as (db, actor):
        return await service.do_update_thread(
            db, actor=actor, conversation_id=conversation_id, thread_id=thread_id, changes=body
        )


@router.get(f"{THREADS}/{{thread_id}}/messages", response_model=s.MessagePage)
async def list_thread_messages(
    conversation_id: UUID,
    thread_id: UUID,
    caller: CallerDep,
    before: Annotated[UUID | None, Query(description="Messages older than this one.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Response:
    """A thread's messages, newest first, in history's shape."""
    async with caller.transaction() as (db, actor):
        page = await service.list_thread_messages(
            db, actor=actor, conversation_id=conversation_id, thread_id=thread_id, before=before, limit=limit
        )
    return Response(page, media_type=JSON)
