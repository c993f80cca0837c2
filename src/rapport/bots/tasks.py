"""The bots' jobs (kernel.jobs, docs/decisions/0010), on the queue `bots`, and what a
process that runs them runs beside them: the bots' round.

- `bots.deliver`: one attempt at POSTing an interaction to its bot's webhook
  (rapport.bots._delivery); queued by the dispatcher (rapport.bots._dispatch) for each
  message a bot is to hear. A failed attempt is retried with the queue's backoff until
  MAX_ATTEMPTS are spent; the job is then dead and the interaction stays `failed`.
- `bots.expire_streams`: ends as failed the bots' streamed messages still open
  RAPPORT_BOT_STREAM_TIMEOUT_S after they began (rapport.bots._streams); queued by the round.
"""

from __future__ import annotations

from uuid import UUID

from rapport.bots import _delivery, _streams
from rapport.kernel import jobs
from rapport.kernel.runtime import Runtime

QUEUE = "bots"
# With the worker's backoff (10 s, doubling), the last attempt comes some five minutes after the first.
MAX_ATTEMPTS = 6
# How often the round looks for abandoned streams, at most: a stream is ended at most this
# long after its time is up (sooner with a short RAPPORT_BOT_STREAM_TIMEOUT_S).
STREAMS_EVERY_S = 60.0


# Longer than any webhook may take (RAPPORT_BOT_WEBHOOK_TIMEOUT_S is at most 60 s).
@jobs.tasks.task("bots.deliver", queue=QUEUE, max_attempts=MAX_ATTEMPTS, timeout_seconds=120)
async def deliver(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    await _delivery.deliver(
        ctx.runtime, interaction_id=UUID(payload["interaction_id"]), final=ctx.job.attempt >= ctx.job.max_attempts
    )


@jobs.tasks.task("bots.expire_streams", queue=QUEUE, max_attempts=3, timeout_seconds=300)
async def expire_streams(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    await _streams.expire_streams(ctx.runtime.system_engine, timeout_s=ctx.runtime.settings.bot_stream_timeout_s)


def rounds(runtime: Runtime) -> jobs.Rounds:
    """Queues `bots.expire_streams` every minute (or half the stream timeout, when that is
    shorter), in each process that runs the bots' jobs. The job is idempotent and takes
    its messages with SKIP LOCKED: several processes' rounds cost a few statements."""
    every = min(STREAMS_EVERY_S, max(1.0, runtime.settings.bot_stream_timeout_s / 2))
    return jobs.Rounds(runtime, name="bots rounds", work=jobs.enqueue_each(expire_streams), every_seconds=every)
