"""The first-response watcher: a room's first response is its agents' first message in it
(an agent who joined it, or was assigned an escalation in it), which stops the clock of
the first-response SLA and takes the room out of its level's queue.

It reads the outbox (`message.created`) from its own durable cursor, in system
transactions, after the send has committed: the send path never waits for it, nor knows
the desk exists. A batch is one statement over the messages it read; each room answered
publishes `support.room.answered`. Its cursor stands on the last event below the barrier,
so it moves only when the outbox does and an idle round writes nothing (as the
co-parenting topic organiser's)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from uuid import UUID

import structlog
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.exc import SQLAlchemyError

from rapport.kernel.db import AnyRow, SystemEngine, system_transaction
from rapport.kernel.outbox import ORDINAL_BITS, EventBatch, Scope, batch_of, publish, wakeup

log = structlog.get_logger(__name__)

CURSOR = "first-responses"
BATCH = 500
POLL_S = 2.0
# After a round held back by a running transaction, the next one this soon.
RECHECK_S = 0.05
# pg_advisory_xact_lock's key for "the first-response watcher advances" ("support" in ASCII).
_LOCK_KEY = 0x737570706F7274

_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(:key)")
_START = text("INSERT INTO support.cursor (name, position) VALUES (:name, 0) ON CONFLICT (name) DO NOTHING")
_CURSOR = text("SELECT position FROM support.cursor WHERE name = :name")
_MOVE = text(
    "UPDATE support.cursor SET position = :position, updated_at = now() WHERE name = :name AND position <> :position"
)
# The barrier and the read in one statement, hence one snapshot, brought down to just past
# the last event below it (rapport.modules.coparenting._topics reads the same way).
_READ = text(
    """
    WITH ended AS (
        SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint << :bits AS below
    ), barrier AS (
        SELECT coalesce((SELECT max(position) FROM kernel.events WHERE position < ended.below), 0) + 1 AS safe
          FROM ended
    )
    SELECT barrier.safe, e.position, e.scope_kind, e.scope_id, e.type, e.payload, e.actor_id, e.created_at
      FROM barrier
      LEFT JOIN LATERAL (
          SELECT *
            FROM kernel.events
           WHERE position > :after AND position < barrier.safe AND type = 'message.created'
           ORDER BY position
           LIMIT :limit
      ) e ON true
     ORDER BY e.position
    """
)
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
_LAST_COMMITTED = text("SELECT coalesce(max(position), 0) FROM kernel.events")


async def watch_responses(engine: SystemEngine, *, limit: int = BATCH) -> tuple[int, int | None]:
    """One batch: the messages after the cursor (up to `limit`), the rooms they answer,
    and the cursor moved, in one system transaction. Returns how many rooms were answered
    and the position reached (None when another process holds the watcher's lock)."""
    async with system_transaction(engine) as db:
        if not (await db.execute(_TRY_LOCK, {"key": _LOCK_KEY})).scalar_one():
            return 0, None
        await db.execute(_START, {"name": CURSOR})
        position = int((await db.execute(_CURSOR, {"name": CURSOR})).scalar_one())
        rows = (await db.execute(_READ, {"bits": ORDINAL_BITS, "after": position, "limit": limit})).all()
        batch: EventBatch = batch_of(rows, after=position, limit=limit)
        sent = [
            (event.scope_id, UUID(event.payload["sender_id"]), UUID(event.payload["message_id"]))
            for event in batch.events
            if event.scope_kind == "conversation" and event.payload.get("sender_id")
        ]
        answered: Sequence[AnyRow] = []
        if sent:
            conversations, senders, messages = (list(column) for column in zip(*sent, strict=True))
            answered = (
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
        await db.execute(_MOVE, {"name": CURSOR, "position": batch.position})
    return len(answered), batch.position


async def watch_all(engine: SystemEngine) -> int:
    """Batches until the watcher has read past every message committed when it was called
    (a transaction still running below them holds it back a moment). Returns how many
    rooms were answered."""
    async with system_transaction(engine) as db:
        target = int((await db.execute(_LAST_COMMITTED)).scalar_one())
    total = 0
    while True:
        answered, position = await watch_responses(engine)
        total += answered
        if position is not None and position >= target:
            return total
        await asyncio.sleep(RECHECK_S)


class ResponseWatcher:
    """The watcher's loop beside the job worker: a round whenever the outbox announces new
    events (rapport.kernel.outbox.wakeup) and at least every POLL_S seconds."""

    def __init__(self, engine: SystemEngine) -> None:
        self._engine = engine
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="support-first-responses")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        seen = wakeup.generation
        while True:
            try:
                await watch_all(self._engine)
            except (SQLAlchemyError, OSError):
                log.exception("support.first_responses_failed")
            seen = await wakeup.changed(seen, timeout=POLL_S)
