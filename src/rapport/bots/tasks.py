"""The bots' jobs (kernel.jobs, docs/decisions/0010), on the queue `bots`.

- `bots.deliver`: one attempt at POSTing an interaction to its bot's webhook
  (rapport.bots._delivery); queued by the dispatcher (rapport.bots._dispatch) for each
  message a bot is to hear. A failed attempt is retried with the queue's backoff until
  MAX_ATTEMPTS are spent; the job is then dead and the interaction stays `failed`.
"""

from __future__ import annotations

from uuid import UUID

from rapport.bots import _delivery
from rapport.kernel import jobs

QUEUE = "bots"
# With the worker's backoff (10 s, doubling), the last attempt comes some five minutes after the first.
MAX_ATTEMPTS = 6


# Longer than any webhook may take (RAPPORT_BOT_WEBHOOK_TIMEOUT_S is at most 60 s).
@jobs.tasks.task("bots.deliver", queue=QUEUE, max_attempts=MAX_ATTEMPTS, timeout_seconds=120)
async def deliver(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    await _delivery.deliver(
        ctx.runtime, interaction_id=UUID(payload["interaction_id"]), final=ctx.job.attempt >= ctx.job.max_attempts
    )
