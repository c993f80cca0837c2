"""The worker: claims due jobs, runs each under its task's timeout, and records the outcome.

It connects as `rapport_worker`. One extra connection LISTENs on `kernel_jobs`, so that a
committed job starts at once; polling every few seconds covers a lost notification, a
connection through PgBouncer (where LISTEN does not work) and jobs waiting for their
`run_at`. A heartbeat keeps the locks of running jobs fresh; a lock left to age past the
timeout means its worker died, and the reaper queues the job again.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterable
from contextlib import suppress
from typing import TYPE_CHECKING
from uuid import UUID, uuid4

import asyncpg
import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.jobs import _queue
from rapport.kernel.jobs._tasks import Job, JobContext, RetryPolicy, TaskRegistry, tasks
from rapport.kernel.pooling import listen_url
from rapport.kernel.provisioning import asyncpg_dsn

if TYPE_CHECKING:
    from rapport.kernel.runtime import Runtime

log = structlog.get_logger(__name__)

CHANNEL = "kernel_jobs"
# What a database that cannot be reached raises, from the pool or from asyncpg directly.
_UNREACHABLE = (OSError, TimeoutError, SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError)


class UnknownTask(LookupError):
    """A job names a task this worker has not registered (a newer or older release)."""


class Worker:
    """Runs the jobs of some queues (by default those of every registered task)."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        registry: TaskRegistry = tasks,
        queues: Iterable[str] | None = None,
        concurrency: int = 4,
        poll_seconds: float = 5.0,
        lock_timeout_seconds: float = 300.0,
        retry: RetryPolicy | None = None,
        dead_retention_days: int = 14,
        name: str | None = None,
    ) -> None:
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"
        self.queues = sorted(registry.queues if queues is None else set(queues))
        # The system pool, connected as rapport_worker: the one role that may read jobs.
        self._engine: AsyncEngine = runtime.system_engine.engine
        self._runtime = runtime
        self._registry = registry
        self._concurrency = max(concurrency, 1)
        self._poll_seconds = poll_seconds
        self._lock_timeout = lock_timeout_seconds
        self._retry = retry or RetryPolicy()
        self._dead_retention_days = dead_retention_days
        self._running: dict[UUID, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._grace_seconds = 10.0

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        """Run in the background of the current event loop (the server's in-process worker)."""
        self._stopping.clear()
        self._task = asyncio.create_task(self.run(), name=f"job worker {self.name}")
        self._task.add_done_callback(_log_crash)

    def request_stop(self, *, grace_seconds: float = 10.0) -> None:
        """Stop claiming; running jobs get `grace_seconds` to finish, then go back to the queue."""
        self._grace_seconds = grace_seconds
        self._stopping.set()
        self._wake.set()

    async def stop(self, *, grace_seconds: float = 10.0) -> None:
        self.request_stop(grace_seconds=grace_seconds)
        if self._task is not None:
            with suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        """Run jobs until `request_stop`."""
        if not self.queues:
            log.warning("jobs.no_queues", worker=self.name)
        await self._listen()
        maintenance = asyncio.create_task(self._maintain(), name=f"job maintenance {self.name}")
        log.info("jobs.worker_started", worker=self.name, queues=self.queues, concurrency=self._concurrency)
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                timeout = await self._fill_slots()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
        finally:
            maintenance.cancel()
            with suppress(asyncio.CancelledError):
                await maintenance
            await self._finish_running()
            await self._unlisten()
            log.info("jobs.worker_stopped", worker=self.name)

    async def wait_idle(self) -> None:
        """Return once no job of this worker's queues is due or running here: what a
        request asked for has been done (tests wait on it, under `asyncio.timeout`, before
        asserting that something was not sent)."""
        while True:
            if not self._running:
                async with self._engine.connect() as db:
                    if not await _queue.has_work(db, queues=self.queues, worker=self.name):
                        return
            await asyncio.sleep(0.02)

    # -- claiming and running ---------------------------------------------------------

    async def _fill_slots(self) -> float:
        """Claim as many due jobs as there are free slots; returns how long to wait before
        looking again, unless woken sooner (a NOTIFY, a finished job, the reaper)."""
        free = self._concurrency - len(self._running)
        if free <= 0:
            return self._poll_seconds
        try:
            async with self._engine.begin() as db:
                claimed = await _queue.claim(db, worker=self.name, queues=self.queues, limit=free)
            for job in claimed:
                self._running[job.id] = asyncio.create_task(self._run(job), name=f"job {job.task} {job.id}")
            if len(claimed) == free:
                return self._poll_seconds
            async with self._engine.connect() as db:
                until = await _queue.seconds_until_next(db, queues=self.queues)
        except _UNREACHABLE as exc:
            log.warning("jobs.claim_failed", worker=self.name, error=str(exc))
            return self._poll_seconds
        if until is None:
            return self._poll_seconds
        # An overdue job we did not get is being claimed by another worker: look again soon.
        return min(max(until, 0.05), self._poll_seconds)

    async def _run(self, job: Job) -> None:
        task = self._registry.get(job.task)
        try:
            if task is None:
                raise UnknownTask(f"No task named {job.task!r} is registered in this worker.")
            deadline = asyncio.timeout(task.timeout_seconds)
            try:
                async with deadline:
                    await task.handler(JobContext(self._runtime, job), job.payload)
            except TimeoutError as exc:
                if deadline.expired():
                    raise TimeoutError(f"The job ran past its task's timeout of {task.timeout_seconds:g} s.") from exc
                raise
        except asyncio.CancelledError:
            raise  # shutting down: _finish_running hands the job back
        except Exception as exc:
            await self._record_failure(job, exc)
        else:
            await self._record_success(job)
        finally:
            self._running.pop(job.id, None)
            self._wake.set()

    async def _record_success(self, job: Job) -> None:
        try:
            async with self._engine.begin() as db:
                await _queue.complete(db, job, worker=self.name)
        except _UNREACHABLE as exc:
            # The lock stays and ages: the reaper queues the job again, which then runs twice.
            log.error("jobs.record_failed", worker=self.name, job_id=str(job.id), task=job.task, error=str(exc))
            return
        log.info("jobs.done", job_id=str(job.id), task=job.task, attempt=job.attempt)

    async def _record_failure(self, job: Job, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        delay = self._retry.delay(job.attempt)
        try:
            async with self._engine.begin() as db:
                status = await _queue.fail(db, job, worker=self.name, error=error, delay_seconds=delay)
        except _UNREACHABLE as store_exc:
            log.error("jobs.record_failed", worker=self.name, job_id=str(job.id), task=job.task, error=str(store_exc))
            return
        fields = {"job_id": str(job.id), "task": job.task, "attempt": job.attempt, "error": error}
        if status == "dead":
            log.error("jobs.dead", max_attempts=job.max_attempts, **fields)
        else:
            log.warning("jobs.retry", retry_in_seconds=round(delay, 1), **fields)

    async def _finish_running(self) -> None:
        if not self._running:
            return
        pending = dict(self._running)
        _done, still_running = await asyncio.wait(pending.values(), timeout=self._grace_seconds)
        if not still_running:
            return
        ids = [job_id for job_id, task in pending.items() if task in still_running]
        for task in still_running:
            task.cancel()
        await asyncio.gather(*still_running, return_exceptions=True)
        try:
            async with self._engine.begin() as db:
                await _queue.release(db, ids, worker=self.name)
        except _UNREACHABLE as exc:
            log.error("jobs.release_failed", worker=self.name, error=str(exc))

    # -- wake-ups, heartbeat and the reaper -------------------------------------------

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _listen(self) -> None:
        try:
            # LISTEN keeps a session: straight to PostgreSQL, past any pooler.
            direct = listen_url(self._engine.url, self._runtime.settings)
            self._listener = await asyncpg.connect(asyncpg_dsn(direct), timeout=10)
            await self._listener.add_listener(CHANNEL, self._on_notify)
        except _UNREACHABLE as exc:
            log.warning("jobs.listen_failed", worker=self.name, error=str(exc), poll_seconds=self._poll_seconds)
            await self._unlisten()

    async def _unlisten(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None and not listener.is_closed():
            with suppress(*_UNREACHABLE):
                await listener.close(timeout=5)

    async def _maintain(self) -> None:
        """Heartbeat, reaper and purge of old dead jobs, at once and then a few times per
        lock timeout, so that a live worker's lock never ages past it."""
        interval = max(self._lock_timeout / 4, 0.05)
        while True:
            if self._listener is None or self._listener.is_closed():
                await self._unlisten()
                await self._listen()
            try:
                async with self._engine.begin() as db:
                    if self._running:
                        await _queue.heartbeat(db, list(self._running), worker=self.name)
                    reaped = await _queue.reap(db, lock_timeout_seconds=self._lock_timeout)
                    await _queue.purge_dead(db, older_than_days=self._dead_retention_days)
            except _UNREACHABLE as exc:
                log.warning("jobs.maintenance_failed", worker=self.name, error=str(exc))
            else:
                for job_id, status in reaped:
                    log.warning("jobs.reaped", job_id=str(job_id), status=status, lock_timeout=self._lock_timeout)
                if reaped:
                    self._wake.set()
            await asyncio.sleep(interval)


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("jobs.worker_crashed", error=repr(task.exception()))
