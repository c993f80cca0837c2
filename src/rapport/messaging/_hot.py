"""The hot paths: each request is one statement (an SQL function of migration
2026_11_29_0014) on the direct asyncpg pool, and its answer is the JSON PostgreSQL built,
passed through untouched (docs/decisions/0013)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.errors import InvalidCursor
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Scope, publish, wakeup
from rapport.kernel.runtime import Runtime
from rapport.messaging._refusals import refusals
from rapport.messaging.schemas import SendMessage

_SEND = (
    "SELECT created, message FROM messaging.send_message($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
)
_HISTORY = "SELECT items, next FROM messaging.read_history($1, $2, $3, $4, $5, $6, $7, $8)"
_LIST = (
    "SELECT items, next_pinned, next_activity, next_id FROM messaging.list_conversations($1, $2, $3, $4, $5, $6, $7)"
)
_MARK_READ = "SELECT messaging.mark_read($1, $2, $3, $4, $5, $6) AS state"


async def _one(runtime: Runtime, query: str, *args: Any) -> asyncpg.Record:
    async with refusals():
        row = await runtime.direct.fetchrow(query, *args)
    assert row is not None  # each function returns exactly one row
    return row


async def _read(runtime: Runtime, query: str, *args: Any) -> asyncpg.Record:
    """As `_one`, for the functions that only read (rapport.kernel.direct bounds them)."""
    async with refusals():
        row = await runtime.direct.fetchrow_read(query, *args)
    assert row is not None
    return row


def _who(actor: Actor) -> tuple[UUID, UUID | None, UUID | None]:
    return actor.user_id, actor.session_id, actor.api_key_id


def _sent(row: asyncpg.Record) -> tuple[bool, str]:
    # The statement has committed: a message made now has an event for readers to read.
    created = bool(row["created"])
    if created:
        wakeup.announce()
    return created, str(row["message"])


async def send_message(runtime: Runtime, actor: Actor, *, conversation_id: UUID, body: SendMessage) -> tuple[bool, str]:
    """Send, or find the message an earlier send with the same client_message_id made.
    Returns whether it was made now, and the message's JSON.

    Raises:
        ConversationNotFound, CannotSend, ConversationNotActive, ReplyNotFound, ThreadNotOpen.
    """
    row = await _one(
        runtime,
        _SEND,
        *_who(actor),
        conversation_id,
        body.client_message_id,
        body.type,
        body.content,
        orjson.dumps(body.content_metadata).decode(),
        body.reply_to,
        body.thread_id,
        None,
        body.mentions,
        body.attachments,
        body.streaming,
    )
    return _sent(row)


async def forward_message(
    runtime: Runtime, actor: Actor, *, conversation_id: UUID, body: SendMessage, forwarded_from: UUID
) -> tuple[bool, str]:
    """Send a copy of a message the caller has read (checked by the caller) to a conversation.

    Raises:
        As send_message.
    """
    row = await _one(
        runtime,
        _SEND,
        *_who(actor),
        conversation_id,
        body.client_message_id,
        body.type,
        body.content,
        orjson.dumps(body.content_metadata).decode(),
        None,
        None,
        forwarded_from,
        [],
        body.attachments,
        False,
    )
    return _sent(row)


async def read_history(
    runtime: Runtime,
    actor: Actor,
    *,
    conversation_id: UUID,
    before: UUID | None,
    after: UUID | None,
    around: UUID | None,
    limit: int,
) -> str:
    """A page of history as JSON: `{"items": [...], "next": id or null}`.

    Raises:
        ConversationNotFound, MessageNotFound (the anchor).
    """
    # Lag-tolerant: the replica's when it has caught up with the primary (rapport.kernel.replica).
    async with refusals():
        row = await runtime.reads.fetchrow(_HISTORY, *_who(actor), conversation_id, before, after, around, limit)
    assert row is not None
    following = f'"{row["next"]}"' if row["next"] is not None else "null"
    return f'{{"items":{row["items"]},"next":{following}}}'


def _encode_list_cursor(pinned: bool, activity: datetime, conversation_id: UUID) -> str:
    raw = orjson.dumps([pinned, activity.isoformat(), str(conversation_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_list_cursor(cursor: str) -> tuple[bool, datetime, UUID]:
    try:
        pinned, activity, conversation_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(pinned, bool):
            raise ValueError("pinned")
        return pinned, datetime.fromisoformat(activity), UUID(conversation_id)
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError) as error:
        raise InvalidCursor("The cursor was not issued by this server.") from error


async def list_conversations(runtime: Runtime, actor: Actor, *, cursor: str | None, limit: int) -> str:
    """The caller's conversations as JSON, pinned first, then by last activity.

    Raises:
        InvalidCursor: a cursor this server did not issue.
    """
    pinned, activity, after_id = _decode_list_cursor(cursor) if cursor else (None, None, None)
    row = await _read(runtime, _LIST, *_who(actor), pinned, activity, after_id, limit)
    following = (
        f'"{_encode_list_cursor(row["next_pinned"], row["next_activity"], row["next_id"])}"'
        if row["next_id"] is not None
        else "null"
    )
    return f'{{"items":{row["items"]},"next":{following}}}'


async def mark_read(runtime: Runtime, actor: Actor, *, conversation_id: UUID, message_id: UUID, unread: bool) -> str:
    """Move the caller's read marker; the new read state as JSON.

    Raises:
        ConversationNotFound, MessageNotFound.
    """
    row = await _one(runtime, _MARK_READ, *_who(actor), conversation_id, message_id, unread)
    wakeup.announce()  # the receipt's event has committed with the statement
    return str(row["state"])


_POST = text(
    """
    INSERT INTO messaging.messages (id, conversation_id, sender_id, type, content, created_at)
    VALUES (:id, :conversation, :sender, 'text', :content, messaging.id_time(:id))
    RETURNING seq
    """
)


async def do_post_message(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, content: str) -> UUID:
    """Send a text message inside a transaction already open as the actor (work that is
    not a request, such as the demo's seeding): the same row and event as a send, under the
    same row-level security, without a client id. Returns the message's id.

    Raises:
        sqlalchemy.exc.DBAPIError: the actor may not send here (the insert policy refuses).
    """
    message_id = uuid7()
    seq = (
        await db.execute(
            _POST, {"id": message_id, "conversation": conversation_id, "sender": actor.user_id, "content": content}
        )
    ).scalar_one()
    await publish(
        db,
        scope=Scope.conversation(conversation_id),
        type="message.created",
        payload={"message_id": str(message_id), "seq": seq, "sender_id": str(actor.user_id), "thread_id": None},
        actor_id=actor.user_id,
    )
    return message_id


_POST_SYSTEM = text(
    """
    INSERT INTO messaging.messages (id, conversation_id, sender_id, type, content, content_metadata, created_at)
    VALUES (:id, :conversation, NULL, :type, :content, CAST(:metadata AS jsonb), messaging.id_time(:id))
    RETURNING seq
    """
)


async def do_post_system_message(
    db: AsyncConnection,
    *,
    conversation_id: UUID,
    content: str,
    content_metadata: dict[str, Any] | None = None,
    type: Literal["system", "ai"] = "system",
) -> UUID:
    """Post a `system` message (someone joined, a pairing ended) or an `ai` one (a
    mediation notice), Rapport's own, in a system transaction: nobody sends either as
    themself. It has no sender, so it notifies nobody; it reaches the participants'
    streams as any message does. Returns its id.

    Raises:
        sqlalchemy.exc.DBAPIError: not system work (the insert policy refuses).
    """
    message_id = uuid7()
    seq = (
        await db.execute(
            _POST_SYSTEM,
            {
                "id": message_id,
                "conversation": conversation_id,
                "type": type,
                "content": content,
                "metadata": orjson.dumps(content_metadata or {}).decode(),
            },
        )
    ).scalar_one()
    await publish(
        db,
        scope=Scope.conversation(conversation_id),
        type="message.created",
        payload={"message_id": str(message_id), "seq": seq, "sender_id": None, "thread_id": None},
        actor_id=None,
    )
    return message_id
