"""The matching module's jobs (kernel.jobs, docs/decisions/0010), on the queue `matching`,
and what a process that runs them runs beside them: the daily round.

- `matching.propose_daily`: remakes the feature vectors an older layout made
  (rapport.modules.matching._features), then proposes the day's matches to everyone who
  takes part (rapport.modules.matching._daily); queued by the round once a day.
"""

from __future__ import annotations

from datetime import date

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel import jobs
from rapport.kernel.runtime import Runtime
from rapport.modules.matching import _daily, _features

log = structlog.get_logger(__name__)

QUEUE = "matching"
# The round looks a minute after the start, then every hour, whether today's proposals
# are due: restarts neither skip a day nor run it twice.
FIRST_CHECK_SECONDS = 60.0
CHECK_EVERY_SECONDS = 60 * 60.0


@jobs.tasks.task("matching.propose_daily", queue=QUEUE, max_attempts=3, timeout_seconds=6 * 60 * 60.0)
async def propose_daily(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    """Propose the matches of the payload's `for_date` (safe to run again: it only tops
    people up to the day's limit), with every vector made by the current layout first."""
    rebuilt = await _features.rebuild_stale_features(ctx.runtime.system_engine)
    if rebuilt:
        log.info("matching.rebuilt_features", people=rebuilt, version=_features.FEATURE_VERSION)
    report = await _daily.propose_daily(ctx.runtime.system_engine, for_date=date.fromisoformat(payload["for_date"]))
    log.info("matching.proposed_daily", for_date=str(report.for_date), people=report.people, pairs=report.pairs)


# Due: no proposal made for today yet, and no run waiting or running.
_DUE = text(
    """
    SELECT NOT EXISTS (SELECT 1 FROM matching.matches m WHERE m.for_date = CAST(:day AS date))
       AND NOT EXISTS (SELECT 1 FROM kernel.jobs j WHERE j.task = :task AND j.status IN ('queued', 'running'))
    """
)


async def enqueue_if_due(db: AsyncConnection) -> date | None:
    """Queue today's (UTC) proposals unless they exist or are on their way; the day queued,
    or None. `db` is a system transaction."""
    day = await _daily.today(db)
    due: bool = (await db.execute(_DUE, {"day": day, "task": propose_daily.name})).scalar_one()
    if not due:
        return None
    await jobs.enqueue(db, propose_daily, {"for_date": day.isoformat()})
    return day


def daily_round(
    runtime: Runtime,
    *,
    first_check_seconds: float = FIRST_CHECK_SECONDS,
    check_every_seconds: float = CHECK_EVERY_SECONDS,
) -> jobs.Rounds:
    """Queues `matching.propose_daily` once a day, in each process that runs the `matching`
    queue's jobs: it looks `first_check_seconds` after the start and then every
    `check_every_seconds` whether today's proposals are due."""
    return jobs.Rounds(
        runtime,
        name="matching daily round",
        work=enqueue_if_due,
        every_seconds=check_every_seconds,
        first_after_seconds=first_check_seconds,
    )
