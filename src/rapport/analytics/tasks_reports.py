"""The analytics rollup's job (kernel.jobs, docs/decisions/0010), on the queue
`analytics`, and what a process that runs it runs beside it: the hourly round.

- `analytics.rollup_day`: computes one UTC day's figures again (rapport.analytics._rollups);
  idempotent, so a repeated or retried run changes nothing. Queued by the round, by
  `rapport analytics rollup` and by POST /v1/admin/analytics/rollups.

The round looks every hour: today's figures so far are refreshed, and yesterday's are
computed once more after it has ended (until then they were partial), unless a run of
that day is already waiting or running.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.analytics import _rollups
from rapport.kernel import jobs
from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime

log = structlog.get_logger(__name__)

QUEUE = "analytics"
FIRST_CHECK_SECONDS = 60.0
CHECK_EVERY_SECONDS = 60 * 60.0


@jobs.tasks.task("analytics.rollup_day", queue=QUEUE, max_attempts=5, timeout_seconds=3600)
async def rollup_day(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    """Roll up the payload's `day` (YYYY-MM-DD)."""
    async with system_transaction(ctx.runtime.system_engine) as db:
        done = await _rollups.rollup_day(db, day=date.fromisoformat(payload["day"]))
    log.info("analytics.rolled_up", day=str(done.day), metrics=done.metrics_written)


_WAITING = text(
    """
    SELECT EXISTS (SELECT 1 FROM kernel.jobs j
                    WHERE j.task = :task AND j.status IN ('queued', 'running') AND j.payload ->> 'day' = :day)
    """
)


async def enqueue_rollup(db: AsyncConnection, *, day: date) -> bool:
    """Queue the rollup of `day` unless one is waiting or running; whether it was queued.
    `db` is a system transaction, or any transaction that may queue jobs."""
    if (await db.execute(_WAITING, {"task": rollup_day.name, "day": day.isoformat()})).scalar_one():
        return False
    await jobs.enqueue(db, rollup_day, {"day": day.isoformat()})
    return True


async def enqueue_due(db: AsyncConnection, *, now: datetime | None = None) -> list[date]:
    """Queue today's rollup (UTC), and yesterday's if it was not computed since it ended;
    the days queued. `db` is a system transaction."""
    moment = now or datetime.now(UTC)
    today = moment.date()
    yesterday = today - timedelta(days=1)
    queued = []
    last = await _rollups.computed_at(db, day=yesterday)
    if (last is None or last < datetime.combine(today, time(), tzinfo=UTC)) and await enqueue_rollup(db, day=yesterday):
        queued.append(yesterday)
    if await enqueue_rollup(db, day=today):
        queued.append(today)
    return queued


def rollup_round(
    runtime: Runtime,
    *,
    first_check_seconds: float = FIRST_CHECK_SECONDS,
    check_every_seconds: float = CHECK_EVERY_SECONDS,
) -> jobs.Rounds:
    """Queues `analytics.rollup_day` for today and, once it is over, yesterday, in each
    process that runs the `analytics` queue's jobs: a minute after the start, then hourly."""
    return jobs.Rounds(
        runtime,
        name="analytics rollup round",
        work=enqueue_due,
        every_seconds=check_every_seconds,
        first_after_seconds=first_check_seconds,
    )
