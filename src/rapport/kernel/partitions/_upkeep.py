"""Calling kernel.ensure_partitions(): at every start, once a day, and on demand."""

from __future__ import annotations

import asyncio
from contextlib import suppress

import structlog
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.db import SystemEngine, system_transaction

log = structlog.get_logger(__name__)

DAILY = 24 * 60 * 60.0
# After a failed attempt the next comes sooner than a day later: a database that was down
# for a moment should not leave the upkeep a day behind.
_RETRY_SECONDS = 15 * 60.0
# What a database that cannot be reached raises: logged as a warning, as the job worker does.
_UNREACHABLE = (OSError, TimeoutError, OperationalError, InterfaceError)

_ENSURE = text("SELECT kernel.ensure_partitions()")


async def ensure_partitions(db: AsyncConnection) -> int:
    """Make the missing monthly partitions of every table registered in
    `kernel.monthly_partitions`, from the current month (UTC) through its `months_ahead`;
    returns how many were made (0 when none was missing). `db` is a system transaction
    (`rapport.kernel.db.system_transaction(runtime.system_engine)`): the function refuses
    every other caller but migrations.

    Raises:
        sqlalchemy.exc.DBAPIError: not a system transaction (insufficient_privilege), or a
            registered table is not partitioned by range on one timestamptz column
            (wrong_object_type), or a partition's name is taken by another table.
    """
    made: int = (await db.execute(_ENSURE)).scalar_one()
    return made


async def make_partitions_ahead(system_engine: SystemEngine) -> int:
    """`ensure_partitions` in a system transaction of its own, committed on return.

    Raises:
        sqlalchemy.exc.DBAPIError: as `ensure_partitions`.
    """
    async with system_transaction(system_engine) as db:
        return await ensure_partitions(db)


class PartitionUpkeep:
    """Makes the partitions ahead when a server process starts, then once a day while it runs.

    A plain task in every server process rather than a job: the job queue has no schedule,
    and a job that queued its own next run would stop for good once a long database outage
    had spent its attempts, while this loop needs nothing but the process it runs in.
    Every process runs one, as a single-process server would: the function is idempotent
    and takes an advisory lock, so several processes cost a few cheap statements a day.
    A month turning needs nothing at that moment: `months_ahead` months already exist, so
    even weeks of missed upkeep leave every row a partition.
    """

    def __init__(self, system_engine: SystemEngine, *, every_seconds: float = DAILY) -> None:
        self._engine = system_engine
        self._every = every_seconds
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, system_engine: SystemEngine, *, every_seconds: float = DAILY) -> PartitionUpkeep:
        """Make what is missing now, then repeat every `every_seconds` in the background.
        A failure is logged, never raised, and tried again sooner: the partitions made
        before cover the months it takes to mend, and serving should not stop for it."""
        upkeep = cls(system_engine, every_seconds=every_seconds)
        delay = await upkeep._attempt()
        upkeep._task = asyncio.create_task(upkeep._repeat(delay), name="partition upkeep")
        return upkeep

    async def _repeat(self, delay: float) -> None:
        while True:
            await asyncio.sleep(delay)
            delay = await self._attempt()

    async def _attempt(self) -> float:
        """One call of the function; returns how long to wait before the next."""
        retry = min(_RETRY_SECONDS, self._every)
        try:
            made = await make_partitions_ahead(self._engine)
        except _UNREACHABLE as exc:
            log.warning("partitions.unreachable", error=str(exc), retry_in_seconds=retry)
        except Exception as exc:  # a refusal (a table it cannot partition): for the operator
            log.error("partitions.upkeep_failed", error=f"{type(exc).__name__}: {exc}", retry_in_seconds=retry)
        else:
            if made:
                log.info("partitions.made", count=made)
            return self._every
        return retry

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
