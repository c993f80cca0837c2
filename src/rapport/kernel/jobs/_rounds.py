"""Rounds: what a process that runs jobs queues on a schedule, beside its worker.

A loop queues the round's jobs every period (the first time one period after the start,
unless told) rather than jobs that queue their next run, which a long outage would stop for good once
their attempts were spent. Every process that runs the round's queue runs the loop, so
the jobs must be idempotent and cheap to run twice: several processes' rounds then cost a
few statements each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.db import system_transaction
from rapport.kernel.jobs._queue import enqueue
from rapport.kernel.jobs._tasks import Task

if TYPE_CHECKING:
    from rapport.kernel.runtime import Runtime

log = structlog.get_logger(__name__)

HOURLY = 60 * 60.0
# The database out of reach: the round waits for its next turn instead of ending.
_UNREACHABLE = (OSError, TimeoutError, OperationalError, InterfaceError)


# What a round does each time: queue its jobs, in the system transaction it is given.
RoundWork = Callable[[AsyncConnection], Awaitable[object]]


def enqueue_each(*jobs: Task) -> RoundWork:
    """A round's work that queues each of `jobs` with an empty payload."""

    async def work(db: AsyncConnection) -> None:
        for job in jobs:
            await enqueue(db, job, {})

    return work


class Rounds:
    """Runs `work` in a system transaction every `every_seconds`, the first time
    `first_after_seconds` after the start (one period unless told)."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        name: str,
        work: RoundWork,
        every_seconds: float,
        first_after_seconds: float | None = None,
    ) -> None:
        self._runtime = runtime
        self._name = name
        self._work = work
        self._every = every_seconds
        self._first = every_seconds if first_after_seconds is None else first_after_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._repeat(), name=self._name)

    async def _repeat(self) -> None:
        delay = self._first
        while True:
            await asyncio.sleep(delay)
            delay = self._every
            try:
                async with system_transaction(self._runtime.system_engine) as db:
                    await self._work(db)
            except _UNREACHABLE as exc:
                log.warning("jobs.round_unreachable", round=self._name, error=str(exc))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
