"""The co-parenting module's jobs (kernel.jobs, docs/decisions/0010), on the queue
`coparenting`.

- `coparenting.learn_profile`: learns one person's communication profile from their own
  newest messages (rapport.modules.coparenting._communication_profiles); queued when they
  ask for it (POST /v1/coparenting/communication-profile/learn), and by the next job.
- `coparenting.relearn_profiles`: queues the learning again of each profile whose person
  has sent messages since it was last learned; an hourly round (`profile_rounds`) queues it.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel import jobs
from rapport.kernel.actor import Actor
from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime
from rapport.modules.coparenting import _communication_profiles

QUEUE = "coparenting"


@jobs.tasks.task("coparenting.learn_profile", queue=QUEUE, max_attempts=3, timeout_seconds=300)
async def learn_profile(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    await _communication_profiles.learn_profile(ctx.runtime, user_id=UUID(payload["user_id"]))


async def do_request_learning(db: AsyncConnection, *, actor: Actor) -> None:
    """Queue the learning of the actor's profile, once this transaction commits."""
    await jobs.enqueue(db, learn_profile, {"user_id": str(actor.user_id)})


async def do_queue_relearning(
    db: AsyncConnection, *, overlap: timedelta = _communication_profiles.LEARNING_OVERLAP, limit: int = 1000
) -> list[UUID]:
    """Queue the learning of each profile whose person has sent messages since it was last
    learned (system work; at most `limit`, least recently learned first; a message up to
    `overlap` older than the last learning counts as new). Returns whose."""
    people = await _communication_profiles.due_for_learning(db, overlap=overlap, limit=limit)
    await jobs.enqueue_many(db, [(learn_profile, {"user_id": str(person)}, None) for person in people])
    return people


@jobs.tasks.task("coparenting.relearn_profiles", queue=QUEUE, max_attempts=3, timeout_seconds=300)
async def relearn_profiles(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    async with system_transaction(ctx.runtime.system_engine) as db:
        await do_queue_relearning(db)


def profile_rounds(runtime: Runtime) -> jobs.Rounds:
    """Learns again, every hour, the profiles of people who wrote since their last learning,
    in each process that runs the module's jobs (a second process's round finds only what
    was written since the first's: learning twice is harmless)."""
    work = jobs.enqueue_each(relearn_profiles)
    return jobs.Rounds(runtime, name="coparenting profile rounds", work=work, every_seconds=jobs.HOURLY)
