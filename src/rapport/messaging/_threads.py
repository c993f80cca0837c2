"""Threads: the replies under a root message, or topic threads with a title, category and
parent thread (seed 000 threads). Messages go into one by sending with its `thread_id`;
the trigger messaging.sequence_message keeps its count and last message."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow
from rapport.kernel.errors import InvalidCursor
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.pagination import Page
from rapport.messaging._messages import access_membership, access_message, render_message
from rapport.messaging.errors import (
    MessageInReplyThread,
    MessageNotFound,
    NotAllowed,
    ThreadCycle,
    ThreadNotFound,
    ThreadNotOpen,
)
from rapport.messaging.schemas_messages import CreateThread, ThreadOut, UpdateThread

_COLUMNS = """
    t.id, t.conversation_id, t.root_message_id, t.title, t.category, t.parent_thread_id, t.creator_id,
    t.message_count, t.last_message_id, t.last_message_at, t.archived_at IS NOT NULL AS is_archived,
    t.archived_at, t.created_at, t.updated_at
"""
_THREAD = text(f"SELECT {_COLUMNS} FROM messaging.threads t WHERE t.conversation_id = :c AND t.id = :t")
_BY_ROOT = text(
    f"SELECT {_COLUMNS} FROM messaging.threads t WHERE t.conversation_id = :c AND t.root_message_id = :root"
)
_CREATE_REPLIES = text(
    f"""
    INSERT INTO messaging.threads AS t (id, conversation_id, root_message_id, creator_id)
    VALUES (:t, :c, :root, :u)
    ON CONFLICT (conversation_id, root_message_id) WHERE root_message_id IS NOT NULL DO NOTHING
    RETURNING {_COLUMNS}
    """
)
_CREATE_TOPIC = text(
    f"""
    INSERT INTO messaging.threads AS t (id, conversation_id, title, category, parent_thread_id, creator_id)
    VALUES (:t, :c, :title, :category, :parent, :u)
    RETURNING {_COLUMNS}
    """
)
_OPEN_THREAD = text("SELECT 1 FROM messaging.threads WHERE conversation_id = :c AND id = :t AND archived_at IS NULL")
_OPEN_TOPIC = text(
    """
    SELECT 1 FROM messaging.threads
     WHERE conversation_id = :c AND id = :t AND root_message_id IS NULL AND archived_at IS NULL
    """
)
_PLACE = text(
    """
    SELECT m.thread_id, t.root_message_id IS NOT NULL AS in_replies
      FROM messaging.messages m LEFT JOIN messaging.threads t ON t.id = m.thread_id
     WHERE m.conversation_id = :c AND m.id = :m AND m.created_at = messaging.id_time(:m)
    """
)
_MOVE = text(
    """
    UPDATE messaging.messages SET thread_id = :t
     WHERE conversation_id = :c AND id = :m AND created_at = messaging.id_time(:m)
    """
)
# Who moves messages between topic threads: whoever takes part, as in Zulip's default.
_MOVERS = frozenset({"owner", "admin", "moderator", "member"})
# The thread itself among the ancestors of its would-be parent: the move would close a loop.
# UNION, not UNION ALL: a loop made by a race elsewhere still ends the walk.
_WOULD_LOOP = text(
    """
    WITH RECURSIVE up (id, parent) AS (
        SELECT id, parent_thread_id FROM messaging.threads WHERE conversation_id = :c AND id = :parent
        UNION
        SELECT t.id, t.parent_thread_id FROM messaging.threads t JOIN up ON t.id = up.parent
         WHERE t.conversation_id = :c
    )
    SELECT EXISTS (SELECT 1 FROM up WHERE id = :t)
    """
)


def _out(row: AnyRow) -> ThreadOut:
    return ThreadOut.model_validate(row._mapping)


async def access_thread(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, thread_id: UUID) -> ThreadOut:
    """A thread of a conversation the caller takes part in.

    Raises:
        ConversationNotFound: see access_membership.
        ThreadNotFound: not a thread of this conversation.
    """
    await access_membership(db, actor=actor, conversation_id=conversation_id)
    return await _thread(db, conversation_id=conversation_id, thread_id=thread_id)


async def _thread(db: AsyncConnection, *, conversation_id: UUID, thread_id: UUID) -> ThreadOut:
    row = (await db.execute(_THREAD, {"c": conversation_id, "t": thread_id})).one_or_none()
    if row is None:
        raise ThreadNotFound()
    return _out(row)


async def _check_parent(db: AsyncConnection, *, conversation_id: UUID, parent_id: UUID) -> None:
    if (await db.execute(_OPEN_THREAD, {"c": conversation_id, "t": parent_id})).first() is None:
        raise ThreadNotOpen("The parent thread is not an open thread of this conversation.")


async def do_create_thread(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, thread: CreateThread
) -> tuple[bool, ThreadOut]:
    """Open the reply thread of a message (or find the one it has: there is one per
    message), or a topic thread. Returns whether it was made now, and the thread.

    Raises:
        ConversationNotFound: see access_membership.
        MessageNotFound: the root message is not one the caller can see here, or is deleted.
        NotAllowed: an observer.
        ThreadNotOpen: the parent thread is not an open thread of this conversation.
    """
    membership = await access_membership(db, actor=actor, conversation_id=conversation_id)
    if membership.role == "observer":
        raise NotAllowed("Observers do not open threads.")
    params: dict[str, Any] = {"t": uuid7(), "c": conversation_id, "u": actor.user_id}
    if thread.root_message_id is not None:
        await access_message(db, actor=actor, conversation_id=conversation_id, message_id=thread.root_message_id)
        params["root"] = thread.root_message_id
        row = (await db.execute(_CREATE_REPLIES, params)).one_or_none()
        if row is None:
            existing = (await db.execute(_BY_ROOT, params)).one()
            return False, _out(existing)
    else:
        if thread.parent_thread_id is not None:
            await _check_parent(db, conversation_id=conversation_id, parent_id=thread.parent_thread_id)
        params.update(title=thread.title, category=thread.category, parent=thread.parent_thread_id)
        row = (await db.execute(_CREATE_TOPIC, params)).one()
    created = _out(row)
    await publish(
        db,
        scope=Scope.conversation(conversation_id),
        type="thread.created",
        payload={
            "thread_id": str(created.id),
            "root_message_id": str(created.root_message_id) if created.root_message_id else None,
        },
        actor_id=actor.user_id,
    )
    return True, created


async def do_update_thread(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, thread_id: UUID, changes: UpdateThread
) -> ThreadOut:
    """Rename, recategorise, move or (un)archive a thread: its creator, or the
    conversation's moderators and above.

    Raises:
        ConversationNotFound, ThreadNotFound: see access_thread.
        NotAllowed: neither its creator nor a moderator.
        ThreadNotOpen: the new parent is not an open thread of this conversation.
        ThreadCycle: the new parent is the thread itself or sits under it.
    """
    membership = await access_membership(db, actor=actor, conversation_id=conversation_id)
    current = await _thread(db, conversation_id=conversation_id, thread_id=thread_id)
    if current.creator_id != actor.user_id and not membership.moderates:
        raise NotAllowed("Only the thread's creator or a moderator changes it.")
    values: dict[str, Any] = changes.changes()
    if not values:
        return current
    parent = values.get("parent_thread_id")
    if parent is not None:
        if parent == thread_id:
            raise ThreadCycle()
        await _check_parent(db, conversation_id=conversation_id, parent_id=parent)
        if (await db.execute(_WOULD_LOOP, {"c": conversation_id, "parent": parent, "t": thread_id})).scalar_one():
            raise ThreadCycle()
    assignments = [f"{column} = :{column}" for column in ("title", "category", "parent_thread_id") if column in values]
    if "archived" in values:
        # Archiving again keeps the first moment it was archived.
        assignments.append("archived_at = CASE WHEN :archived THEN coalesce(t.archived_at, now()) END")
    # The column names come from the fixed list above, never from the request.
    statement = text(
        f"UPDATE messaging.threads AS t SET {', '.join(assignments)}"
        f" WHERE t.conversation_id = :c AND t.id = :t RETURNING {_COLUMNS}"
    )
    row = (await db.execute(statement, {**values, "c": conversation_id, "t": thread_id})).one()
    await publish(
        db,
        scope=Scope.conversation(conversation_id),
        type="thread.changed",
        payload={"thread_id": str(thread_id), "changed": sorted(values)},
        actor_id=actor.user_id,
    )
    return _out(row)


def encode_thread_cursor(last_message_at: datetime | None, thread_id: UUID) -> str:
    raw = orjson.dumps([last_message_at.isoformat() if last_message_at else None, str(thread_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_thread_cursor(cursor: str) -> tuple[datetime | None, UUID]:
    """Raises:
    InvalidCursor: a cursor this server did not issue.
    """
    try:
        activity, thread_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return (datetime.fromisoformat(activity) if activity is not None else None), UUID(thread_id)
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError) as error:
        raise InvalidCursor("The cursor was not issued by this server.") from error


# The order of ix_threads_conversation_id: latest activity first, threads without any
# message last, then by id.
_THREADS = """
    SELECT {columns} FROM messaging.threads t
     WHERE t.conversation_id = :c {archived} {after}
     ORDER BY t.last_message_at DESC NULLS LAST, t.id
     LIMIT :n
"""
_AFTER_ACTIVE = (
    "AND (t.last_message_at < :at OR (t.last_message_at = :at AND t.id > :after) OR t.last_message_at IS NULL)"
)
_AFTER_QUIET = "AND t.last_message_at IS NULL AND t.id > :after"


async def list_threads(
    db: AsyncConnection,
    *,
    actor: Actor,
    conversation_id: UUID,
    include_archived: bool,
    limit: int,
    cursor: str | None,
) -> Page[ThreadOut]:
    """A conversation's threads by latest activity; archived ones only when asked.

    Raises:
        ConversationNotFound: see access_membership.
        InvalidCursor: a cursor this server did not issue.
    """
    await access_membership(db, actor=actor, conversation_id=conversation_id)
    params: dict[str, Any] = {"c": conversation_id, "n": limit + 1}
    after = ""
    if cursor is not None:
        at, params["after"] = decode_thread_cursor(cursor)
        if at is None:
            after = _AFTER_QUIET
        else:
            after, params["at"] = _AFTER_ACTIVE, at
    statement = _THREADS.format(
        columns=_COLUMNS, archived="" if include_archived else "AND t.archived_at IS NULL", after=after
    )
    rows = [_out(row) for row in (await db.execute(text(statement), params)).all()]
    items = rows[:limit]
    following = encode_thread_cursor(items[-1].last_message_at, items[-1].id) if len(rows) > limit else None
    return Page[ThreadOut](items=items, next=following)


_ANCHOR = text("SELECT messaging.seq_of(:c, :m)")
_THREAD_MESSAGES = """
    SELECT m.id, messaging.render_message(m, :u)::text AS message
      FROM messaging.messages m
     WHERE m.conversation_id = :c AND m.thread_id = :t {before}
       AND NOT EXISTS (SELECT 1 FROM messaging.hidden_messages h
                        WHERE h.user_id = :u AND h.conversation_id = :c AND h.seq = m.seq)
     ORDER BY m.seq DESC
     LIMIT :n
"""


async def list_thread_messages(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, thread_id: UUID, before: UUID | None, limit: int
) -> str:
    """A page of a thread's messages as JSON, in history's shape (`{"items", "next"}`):
    newest first, before a message when given; within the caller's window of the
    history (row-level security), without what they hid.

    Raises:
        ConversationNotFound, ThreadNotFound: see access_thread.
        MessageNotFound: `before` is not a message the caller can see here.
    """
    await access_thread(db, actor=actor, conversation_id=conversation_id, thread_id=thread_id)
    params: dict[str, Any] = {"c": conversation_id, "t": thread_id, "u": actor.user_id, "n": limit + 1}
    anchor = ""
    if before is not None:
        params["anchor"] = (await db.execute(_ANCHOR, {"c": conversation_id, "m": before})).scalar_one()
        if params["anchor"] is None:
            raise MessageNotFound()
        anchor = "AND m.seq < :anchor"
    rows = (await db.execute(text(_THREAD_MESSAGES.format(before=anchor)), params)).all()
    page = rows[:limit]
    following = f'"{page[-1].id}"' if len(rows) > limit else "null"
    return f'{{"items":[{",".join(row.message for row in page)}],"next":{following}}}'


async def do_move_to_thread(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, message_id: UUID, thread_id: UUID | None
) -> str:
    """Put a message in an open topic thread of its conversation, move it to another, or
    (`thread_id` None) take it out of its thread; the threads' counts and last messages
    follow (messaging.guard_message_update). Anyone who takes part may, not observers or
    guests. Returns the message's JSON; a move to where it is changes nothing and tells
    nobody.

    Raises:
        ConversationNotFound, MessageNotFound: see access_message.
        NotAllowed: an observer or a guest.
        MessageInReplyThread: the message is a reply, which stays under its root.
        ThreadNotOpen: the target is not an open topic thread of this conversation.
    """
    found = await access_message(db, actor=actor, conversation_id=conversation_id, message_id=message_id)
    if found.membership.role not in _MOVERS or found.membership.status != "active":
        raise NotAllowed("Only those who take part in the conversation move its messages between threads.")
    params = {"c": conversation_id, "m": message_id, "t": thread_id}
    place = (await db.execute(_PLACE, params)).one()
    if place.in_replies:
        raise MessageInReplyThread()
    if thread_id is not None and (await db.execute(_OPEN_TOPIC, params)).first() is None:
        raise ThreadNotOpen()
    if place.thread_id != thread_id:
        await db.execute(_MOVE, params)
        await publish(
            db,
            scope=Scope.conversation(conversation_id),
            type="message.threaded",
            payload={
                "message_id": str(message_id),
                "seq": found.seq,
                "thread_id": str(thread_id) if thread_id else None,
                "previous_thread_id": str(place.thread_id) if place.thread_id else None,
            },
            actor_id=actor.user_id,
        )
    return await render_message(db, actor=actor, conversation_id=conversation_id, message_id=message_id)
