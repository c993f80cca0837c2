"""Durable readers of the outbox: a domain that must act on events after they commit
(deliver them to bots, organise topics, stop an SLA clock) reads them from a cursor of its
own, in system transactions, one process at a time, and never holds up the change that
published them.

Each batch, in one system transaction: the reader's advisory lock (a process that does
not get it leaves the batch to the one that did), the events of its types after its
cursor, its handling of them, and the cursor moved. The barrier and the read are one
statement, hence one snapshot, as `read_after` reads; the barrier is brought down to just
past the last event below it, since no event can come between the two later, so the
cursor moves only when the outbox does and an idle round writes nothing.

A module of its own, not re-exported by rapport.kernel.outbox: it needs
rapport.kernel.db's transactions, and rapport.kernel.db needs the outbox."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.db import SystemEngine, system_transaction
from rapport.kernel.outbox._events import ORDINAL_BITS, Event, batch_of
from rapport.kernel.outbox._wakeup import wakeup

log = structlog.get_logger(__name__)

# A round at least this often, announced or not.
POLL_S = 2.0
# After a round held back by a running transaction, the next one this soon.
RECHECK_S = 0.05

_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(:key)")
# The cursor, the barrier and the read are one statement, after the lock is granted (so
# its snapshot sees the cursor as the last holder of the lock left it): `after` is the
# cursor (null before the reader's first start), `last` the last position committed.
_READ = """
    WITH cursor AS (
        SELECT (SELECT position FROM {table} WHERE name = :name) AS after
    ), ended AS (
        SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint << :bits AS below
    ), barrier AS (
        SELECT coalesce((SELECT max(position) FROM kernel.events WHERE position < ended.below), 0) + 1 AS safe,
               (SELECT coalesce(max(position), 0) FROM kernel.events) AS last
          FROM ended
    )
    SELECT cursor.after, barrier.safe, barrier.last, e.position, e.scope_kind, e.scope_id, e.type, e.payload,
           e.actor_id, e.created_at
      FROM cursor CROSS JOIN barrier
      LEFT JOIN LATERAL (
          SELECT *
            FROM kernel.events
           WHERE position > cursor.after AND position < barrier.safe AND type = ANY(CAST(:types AS text[]))
           ORDER BY position
           LIMIT :limit
      ) e ON true
     ORDER BY e.position
"""
_LAST_COMMITTED = text("SELECT coalesce(max(position), 0) FROM kernel.events")

Handle = Callable[[AsyncConnection, list[Event]], Awaitable[int]]


@dataclass(frozen=True)
class CursorReader:
    """A reader of the events of some `types`, from the row `cursor` of `cursor_table`
    (a table of (name, position, updated_at) the domain owns), under the advisory lock
    `lock_key`; `handle` acts on a batch in its transaction and says how many things it did."""

    name: str
    cursor_table: str
    cursor: str
    lock_key: int
    types: tuple[str, ...]
    handle: Handle
    batch: int = 200

    async def read_batch(self, engine: SystemEngine, *, limit: int | None = None) -> tuple[int, int | None]:
        """One batch: how many things `handle` did, and the position reached (None when
        another process holds the lock and did the batch)."""
        done, position, _ = await self._batch(engine, limit or self.batch)
        return done, position

    async def _batch(self, engine: SystemEngine, limit: int) -> tuple[int, int | None, int | None]:
        """As `read_batch`, with the last position committed in the batch's snapshot (None
        when the lock was elsewhere). An idle round is two statements and writes nothing."""
        async with system_transaction(engine) as db:
            if not (await db.execute(_TRY_LOCK, {"key": self.lock_key})).scalar_one():
                return 0, None, None
            params = {"name": self.cursor, "bits": ORDINAL_BITS, "limit": limit, "types": list(self.types)}
            read = text(_READ.format(table=self.cursor_table))
            rows = (await db.execute(read, params)).all()
            if rows[0].after is None:
                # A first start reads the outbox from its beginning.
                start = f"INSERT INTO {self.cursor_table} (name, position) VALUES (:name, 0) ON CONFLICT DO NOTHING"
                await db.execute(text(start), {"name": self.cursor})
                rows = (await db.execute(read, params)).all()
            after = int(rows[0].after)
            batch = batch_of(rows, after=after, limit=limit)
            done = await self.handle(db, batch.events)
            if batch.position != after:
                await db.execute(
                    text(f"UPDATE {self.cursor_table} SET position = :position, updated_at = now() WHERE name = :name"),
                    {"name": self.cursor, "position": batch.position},
                )
        return done, batch.position, int(rows[0].last)

    async def read_all(self, engine: SystemEngine) -> int:
        """Batches until the reader has read past every event committed when it was called
        (a transaction still running below them holds it back a moment); how many things
        `handle` did."""
        target: int | None = None
        total = 0
        while True:
            done, position, last = await self._batch(engine, self.batch)
            total += done
            if target is None:
                target = last if last is not None else await self._last_committed(engine)
            if position is not None and position >= target:
                return total
            await asyncio.sleep(RECHECK_S)

    @staticmethod
    async def _last_committed(engine: SystemEngine) -> int:
        async with system_transaction(engine) as db:
            return int((await db.execute(_LAST_COMMITTED)).scalar_one())


class ReaderLoop:
    """A reader's loop beside the job worker: a round whenever the outbox announces new
    events (`wakeup`) and at least every POLL_S seconds; a failed round is logged and the
    next one tries again."""

    def __init__(self, reader: CursorReader, engine: SystemEngine) -> None:
        self._reader = reader
        self._engine = engine
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._reader.name)

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
                await self._reader.read_all(self._engine)
            except (SQLAlchemyError, OSError):
                log.exception("outbox.reader_failed", reader=self._reader.name)
            seen = await wakeup.changed(seen, timeout=POLL_S)
