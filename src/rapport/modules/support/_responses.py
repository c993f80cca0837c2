"""The first-response watcher: a room's first response is its agents' first message in it
(an agent who joined it, or was assigned an escalation in it), which stops the clock of
the first-response SLA and takes the room out of its level's queue.

It reads the outbox (`message.created`) from its own durable cursor, in system
transactions, after the send has committed: the send path never waits for it, nor knows
the desk exists. A batch is one statement over the messages it read; each room answered
publishes `support.room.answered`. Its cursor, lock and loop are
rapport.kernel.outbox.CursorReader's."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.db import AnyRow, SystemEngine
from rapport.kernel.outbox import Event, Scope, publish
from rapport.kernel.outbox.readers import CursorReader, ReaderLoop

# Each open room not yet answered takes the earliest of the batch's messages its agents
# sent (a message's time is its UUIDv7's).
_ANSWER = text(
    """
    WITH sent AS (
        SELECT DISTINCT ON (s.conversation_id) s.conversation_id, s.sender_id, messaging.id_time(s.message_id) AS at
          FROM unnest(:conversations, :senders, :messages) AS s (conversation_id, sender_id, message_id)
          JOIN support.room_agents a ON a.conversation_id = s.conversation_id AND a.agent_id = s.sender_id
         ORDER BY s.conversation_id, messaging.id_time(s.message_id)
    )
    UPDATE support.rooms r
       SET first_response_at = sent.at, first_responder_id = sent.sender_id
      FROM sent
     WHERE r.conversation_id = sent.conversation_id AND r.first_response_at IS NULL AND r.status = 'open'
    RETURNING r.conversation_id, r.level, r.priority, r.status, r.first_response_at, r.first_responder_id
    """
).bindparams(
    bindparam("conversations", type_=ARRAY(PG_UUID(as_uuid=True))),
    bindparam("senders", type_=ARRAY(PG_UUID(as_uuid=True))),
    bindparam("messages", type_=ARRAY(PG_UUID(as_uuid=True))),
)


async def _answer(db: AsyncConnection, events: list[Event]) -> int:
    """The rooms a batch of messages answers, marked and announced; how many."""
    sent = [
        (event.scope_id, UUID(event.payload["sender_id"]), UUID(event.payload["message_id"]))
        for event in events
        if event.scope_kind == "conversation" and event.payload.get("sender_id")
    ]
    if not sent:
        return 0
    conversations, senders, messages = (list(column) for column in zip(*sent, strict=True))
    answered: Sequence[AnyRow] = (
        await db.execute(_ANSWER, {"conversations": conversations, "senders": senders, "messages": messages})
    ).all()
    for room in answered:
        await publish(
            db,
            scope=Scope.conversation(room.conversation_id),
            type="support.room.answered",
            payload={
                "conversation_id": str(room.conversation_id),
                "level": room.level,
                "priority": room.priority,
                "status": room.status,
                "first_response_at": room.first_response_at.isoformat(),
                "first_responder_id": str(room.first_responder_id),
            },
            actor_id=None,
        )
    return len(answered)


# Its cursor, lock ("support" in ASCII) and loop are rapport.kernel.outbox's.
READER = CursorReader(
    name="support-first-responses",
    cursor_table="support.cursor",
    cursor="first-responses",
    lock_key=0x737570706F7274,
    types=("message.created",),
    handle=_answer,
    batch=500,
)


async def watch_responses(engine: SystemEngine, *, limit: int = READER.batch) -> tuple[int, int | None]:
    """One batch: the messages after the cursor (up to `limit`), the rooms they answer,
    and the cursor moved, in one system transaction. Returns how many rooms were answered
    and the position reached (None when another process holds the watcher's lock)."""
    return await READER.read_batch(engine, limit=limit)


async def watch_all(engine: SystemEngine) -> int:
    """Batches until the watcher has read past every message committed when it was
    called; how many rooms were answered."""
    return await READER.read_all(engine)


class ResponseWatcher(ReaderLoop):
    """The watcher's loop beside the job worker (rapport.kernel.outbox.ReaderLoop)."""

    def __init__(self, engine: SystemEngine) -> None:
        super().__init__(READER, engine)
