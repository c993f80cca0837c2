"""The statements on kernel.jobs. Enqueueing runs in the caller's transaction; everything
else is the worker's, as `rapport_worker`, in short transactions of its own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.ids import uuid7
from rapport.kernel.jobs._tasks import Job, Task
from rapport.kernel.jobs.models import JobStatus

_ENQUEUE = text(
    "INSERT INTO kernel.jobs (id, queue, task, payload, run_at, max_attempts) "
    "VALUES (:id, :queue, :task, CAST(:payload AS jsonb), coalesce(CAST(:run_at AS timestamptz), now()), "
    "        :max_attempts)"
)


async def enqueue(
    db: AsyncConnection, task: Task, payload: Mapping[str, Any], *, run_at: datetime | None = None
) -> UUID:
    """Add a job to the queue inside the caller's transaction: it runs once that transaction
    commits, and never if it rolls back. No RETURNING: the server's role may add jobs but
    not read them.

    Raises:
        TypeError: the payload is not JSON (a bug in the caller).
    """
    job_id = uuid7()
    await db.execute(
        _ENQUEUE,
        {
            "id": job_id,
            "queue": task.queue,
            "task": task.name,
            "payload": orjson.dumps(payload).decode(),
            "run_at": run_at,
            "max_attempts": task.max_attempts,
        },
    )
    return job_id


_ENQUEUE_MANY = text(
    """
    INSERT INTO kernel.jobs (id, queue, task, payload, run_at, max_attempts)
    SELECT j.id, j.queue, j.task, CAST(j.payload AS jsonb), coalesce(j.run_at, now()), j.max_attempts
      FROM unnest(CAST(:ids AS uuid[]), CAST(:queues AS text[]), CAST(:tasks AS text[]), CAST(:payloads AS text[]),
                  CAST(:run_ats AS timestamptz[]), CAST(:max_attempts AS integer[]))
           AS j(id, queue, task, payload, run_at, max_attempts)
    """
)


async def enqueue_many(
    db: AsyncConnection, jobs: Sequence[tuple[Task, Mapping[str, Any], datetime | None]]
) -> list[UUID]:
    """Add many jobs (task, payload, run_at or None for now) in one statement, as `enqueue`
    adds one: for work that makes hundreds at once (the notifications of a batch).

    Raises:
        TypeError: a payload is not JSON (a bug in the caller).
    """
    if not jobs:
        return []
    ids = [uuid7() for _ in jobs]
    await db.execute(
        _ENQUEUE_MANY,
        {
            "ids": ids,
            "queues": [task.queue for task, _, _ in jobs],
            "tasks": [task.name for task, _, _ in jobs],
            "payloads": [orjson.dumps(payload).decode() for _, payload, _ in jobs],
            "run_ats": [run_at for _, _, run_at in jobs],
            "max_attempts": [task.max_attempts for task, _, _ in jobs],
        },
    )
    return ids


# The subquery takes each row lock with SKIP LOCKED, so concurrent workers claim disjoint
# jobs without waiting on each other; the claim commits at once, and the job then runs
# outside any transaction.
_CLAIM = text(
    """
    WITH due AS (
        SELECT id FROM kernel.jobs
         WHERE status = 'queued' AND queue = ANY(CAST(:queues AS text[])) AND run_at <= now()
         ORDER BY run_at, id
         LIMIT :limit
         FOR UPDATE SKIP LOCKED
    )
    UPDATE kernel.jobs AS j
       SET status = 'running', locked_at = now(), locked_by = :worker, attempts = j.attempts + 1
      FROM due
     WHERE j.id = due.id
    RETURNING j.id, j.queue, j.task, j.payload, j.attempts, j.max_attempts
    """
)


async def claim(db: AsyncConnection, *, worker: str, queues: Sequence[str], limit: int) -> list[Job]:
    rows = await db.execute(_CLAIM, {"worker": worker, "queues": list(queues), "limit": limit})
    return [Job(row.id, row.queue, row.task, row.payload, row.attempts, row.max_attempts) for row in rows]


# Every statement below names the worker that holds the lock: a worker that lost its job
# to the reaper (it stalled past the lock timeout) cannot overwrite the new holder's state.
_COMPLETE = text("DELETE FROM kernel.jobs WHERE id = :id AND status = 'running' AND locked_by = :worker")

_FAIL = text(
    """
    UPDATE kernel.jobs
       SET status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,
           run_at = CASE WHEN attempts >= max_attempts THEN run_at ELSE now() + make_interval(secs => :delay) END,
           locked_at = NULL, locked_by = NULL, last_error = :error
     WHERE id = :id AND status = 'running' AND locked_by = :worker
    RETURNING status
    """
)

# A job interrupted by an orderly shutdown was not at fault: the attempt is given back.
_RELEASE = text(
    "UPDATE kernel.jobs SET status = 'queued', run_at = now(), locked_at = NULL, locked_by = NULL, "
    "       attempts = greatest(attempts - 1, 0) "
    " WHERE id = ANY(CAST(:ids AS uuid[])) AND status = 'running' AND locked_by = :worker"
)

_HEARTBEAT = text(
    "UPDATE kernel.jobs SET locked_at = now() "
    " WHERE id = ANY(CAST(:ids AS uuid[])) AND status = 'running' AND locked_by = :worker"
)

# A lock older than the timeout belongs to a worker that died (its heartbeat stopped): the
# job runs again, or is dead if that was its last attempt.
_REAP = text(
    """
    UPDATE kernel.jobs
       SET status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,
           run_at = now(), locked_at = NULL, locked_by = NULL,
           last_error = format('The worker %s stopped answering while running the job (locked at %s).',
                               locked_by, locked_at)
     WHERE status = 'running' AND locked_at < now() - make_interval(secs => :timeout)
    RETURNING id, status
    """
)

_PURGE_DEAD = text(
    "DELETE FROM kernel.jobs WHERE status = 'dead' AND updated_at < now() - make_interval(days => :days)"
)

_NEXT_DUE = text(
    "SELECT extract(epoch FROM min(run_at) - now())::float8 FROM kernel.jobs "
    " WHERE status = 'queued' AND queue = ANY(CAST(:queues AS text[]))"
)

_BUSY = text(
    "SELECT EXISTS (SELECT FROM kernel.jobs WHERE queue = ANY(CAST(:queues AS text[])) "
    "   AND ((status = 'queued' AND run_at <= now()) OR (status = 'running' AND locked_by = :worker)))"
)


async def complete(db: AsyncConnection, job: Job, *, worker: str) -> None:
    await db.execute(_COMPLETE, {"id": job.id, "worker": worker})


async def fail(db: AsyncConnection, job: Job, *, worker: str, error: str, delay_seconds: float) -> JobStatus | None:
    """Record a failed attempt; returns the job's new status ('queued' or 'dead'), or None
    when the worker no longer held the job."""
    row = await db.execute(_FAIL, {"id": job.id, "worker": worker, "error": error, "delay": delay_seconds})
    return row.scalar_one_or_none()


async def release(db: AsyncConnection, ids: Sequence[UUID], *, worker: str) -> None:
    await db.execute(_RELEASE, {"ids": list(ids), "worker": worker})


async def heartbeat(db: AsyncConnection, ids: Sequence[UUID], *, worker: str) -> None:
    await db.execute(_HEARTBEAT, {"ids": list(ids), "worker": worker})


async def reap(db: AsyncConnection, *, lock_timeout_seconds: float) -> list[tuple[UUID, JobStatus]]:
    rows = await db.execute(_REAP, {"timeout": lock_timeout_seconds})
    return [(row.id, row.status) for row in rows]


async def purge_dead(db: AsyncConnection, *, older_than_days: int) -> int:
    return (await db.execute(_PURGE_DEAD, {"days": older_than_days})).rowcount


async def seconds_until_next(db: AsyncConnection, *, queues: Sequence[str]) -> float | None:
    """Seconds until the next queued job of these queues is due (negative: overdue), or None."""
    value = (await db.execute(_NEXT_DUE, {"queues": list(queues)})).scalar_one()
    return None if value is None else float(value)


async def has_work(db: AsyncConnection, *, queues: Sequence[str], worker: str) -> bool:
    """Whether a job of these queues is due, or still running on this worker."""
    return bool((await db.execute(_BUSY, {"queues": list(queues), "worker": worker})).scalar_one())


@dataclass(frozen=True)
class DeadJob:
    """A job whose attempts are spent, without its payload (it may hold codes)."""

    id: UUID
    queue: str
    task: str
    attempts: int
    last_error: str | None
    created_at: datetime
    died_at: datetime


_LIST_DEAD = text(
    "SELECT id, queue, task, attempts, last_error, created_at, updated_at AS died_at FROM kernel.jobs "
    " WHERE status = 'dead' ORDER BY updated_at DESC LIMIT :limit"
)

_RETRY_DEAD = text(
    "UPDATE kernel.jobs SET status = 'queued', run_at = now(), attempts = 0, last_error = NULL "
    " WHERE id = :id AND status = 'dead'"
)


async def list_dead_jobs(db: AsyncConnection, *, limit: int = 100) -> list[DeadJob]:
    """The dead jobs, the most recently failed first (as `rapport_worker`)."""
    rows = await db.execute(_LIST_DEAD, {"limit": limit})
    return [DeadJob(**row._asdict()) for row in rows]


async def retry_dead_job(db: AsyncConnection, *, job_id: UUID) -> bool:
    """Queue a dead job again with fresh attempts; False when no dead job has that id."""
    if (await db.execute(_RETRY_DEAD, {"id": job_id})).rowcount != 1:
        return False
    # Only inserts wake the workers by trigger; this says it by hand (delivered on commit).
    await db.execute(text("SELECT pg_notify('kernel_jobs', '')"))
    return True
