"""The media domain's jobs (kernel.jobs, docs/decisions/0010), and what a process that
runs jobs runs beside them for media: the collector's hourly round.

- `media.collect`: removes deleted files no live message carries, old processing steps,
  and blobs nothing references, rows and stored bytes (rapport.media._collect). Queued
  when a file is deleted, and every hour by `Collector`.
- `media.scan`, `media.metadata`, `media.thumbnails`: each upload's processing
  (rapport.media._processing): the scan queued with the file, the others by the scan.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress

import structlog
from sqlalchemy.exc import InterfaceError, OperationalError

from rapport.kernel import jobs
from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime
from rapport.media import _collect
from rapport.media._processing import register_tasks
from rapport.media._storage import staging_dir, storage_from_settings

log = structlog.get_logger(__name__)

QUEUE = "media"
HOURLY = 60 * 60.0
_UNREACHABLE = (OSError, TimeoutError, OperationalError, InterfaceError)


# Processing's tasks run wherever the app's modules are imported, as this module's do.
register_tasks()


@jobs.tasks.task("media.collect", queue=QUEUE, max_attempts=5, timeout_seconds=600)
async def collect(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    storage = storage_from_settings(ctx.runtime.settings)
    try:
        await _collect.collect(ctx.runtime.system_engine, storage, staging=staging_dir(ctx.runtime.settings))
    finally:
        await storage.close()


class Collector:
    """Queues a `media.collect` job every `every_seconds` (the first one period after the
    start: a deleted file queues its own at once), in each process that runs jobs: files
    deleted long ago whose message went since, and blobs of failed uploads, have no other
    moment to go. A loop rather than a job that queues its next run, which a long outage
    would stop for good once its attempts were spent; the collector is idempotent, so
    several processes' rounds cost a few cheap statements."""

    def __init__(self, runtime: Runtime, *, every_seconds: float = HOURLY) -> None:
        self._runtime = runtime
        self._every = every_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._repeat(), name="media collector")

    async def _repeat(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            try:
                async with system_transaction(self._runtime.system_engine) as db:
                    await jobs.enqueue(db, collect, {})
            except _UNREACHABLE as exc:
                log.warning("media.collector_unreachable", error=str(exc))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
