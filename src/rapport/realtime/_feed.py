"""The feed: one reader of the outbox per process, for every follower it holds.

It wakes on `kernel.outbox.wakeup` (this process committed events, or another process
announced that it did) and at least every `POLL_S` seconds whatever happens (an
announcement only makes delivery sooner: one lost, or a commit by something that does
not announce, is read on the timer). Each read takes every event after its position on
the worker's role, behind the outbox's safe-position barrier (so nothing that commits
later is ever passed), and hands the batch to the hub, which routes each event once.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from rapport.kernel.db import SystemEngine, system_transaction
from rapport.kernel.outbox import wakeup
from rapport.realtime._hub import Hub
from rapport.realtime._reading import current_position, read_all_after

log = structlog.get_logger(__name__)

# Read at least this often, announced or not.
POLL_S = 0.5
# After an announced read, read once more this soon: the announced events may have been
# behind the barrier of a transaction that was still running (decisions/0012), whose end
# announces nothing when it published nothing.
RECHECK_S = 0.05
BATCH = 1000


class Feed:
    """Reads the outbox after the hub's position and dispatches it, until stopped."""

    def __init__(self, system_engine: SystemEngine, hub: Hub) -> None:
        self._engine = system_engine
        self.hub = hub
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Begin at the current position: earlier events reach a follower from the
        database, when it catches up."""
        async with system_transaction(self._engine) as db:
            self.hub.position = await current_position(db)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="rapport-realtime-feed")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def read_available(self) -> int:
        """Read and dispatch everything committed after the hub's position; how many events."""
        count = 0
        while True:
            async with system_transaction(self._engine) as db:
                batch = await read_all_after(db, position=self.hub.position, limit=BATCH)
            self.hub.dispatch(batch.events, batch.position)
            count += len(batch.events)
            if len(batch.events) < BATCH:
                return count

    async def skip_ahead(self) -> None:
        """No one follows here: move to the current position without reading events, so
        that a process holding no sockets costs the database one short statement per
        `POLL_S`, not reads after every commit of every process. A follower that began
        meanwhile keeps the position where it was (the events after it are theirs)."""
        begun = self.hub.begun
        async with system_transaction(self._engine) as db:
            position = await current_position(db)
        if self.hub.followers == 0 and self.hub.begun == begun:
            self.hub.position = max(self.hub.position, position)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        seen = wakeup.generation
        timeout = POLL_S
        skipped_at = loop.time()
        while True:
            try:
                if self.hub.followers:
                    await self.read_available()
                elif loop.time() - skipped_at >= POLL_S:
                    await self.skip_ahead()
                    skipped_at = loop.time()
            except Exception:  # the database went away for a moment: the timer retries
                log.warning("realtime.feed.read_failed", exc_info=True)
            before = seen
            seen = await wakeup.changed(seen, timeout=timeout)
            # Woken by an announcement: read again soon after this read, in case the
            # announced events were still behind the barrier. With no one to read for,
            # only time moves the position on.
            timeout = RECHECK_S if seen != before and self.hub.followers else POLL_S
