"""The co-parenting module's jobs (kernel.jobs, docs/decisions/0010), on the queue
`coparenting`.

- `coparenting.learn_profile`: learns one person's communication profile from their own
  newest messages (rapport.modules.coparenting._communication_profiles); queued when they
  ask for it (POST /v1/coparenting/communication-profile/learn).
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel import jobs
from rapport.kernel.actor import Actor
from rapport.modules.coparenting import _communication_profiles

QUEUE = "coparenting"


@jobs.tasks.task("coparenting.learn_profile", queue=QUEUE, max_attempts=3, timeout_seconds=300)
async def learn_profile(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    await _communication_profiles.learn_profile(ctx.runtime, user_id=UUID(payload["user_id"]))


async def do_request_learning(db: AsyncConnection, *, actor: Actor) -> None:
    """Queue the learning of the actor's profile, once this transaction commits."""
    await jobs.enqueue(db, learn_profile, {"user_id": str(actor.user_id)})
