"""The notifications' jobs (kernel.jobs, docs/decisions/0010), and the pipeline a worker
process runs beside them: the outbox consumer that enqueues them.

- `notifications.push`: one notification to every active push subscription of its
  recipient (payload `notification_id`);
- `notifications.sms`: one notification by SMS to the recipient's verified number
  (payload `notification_id`);
- `notifications.email`: one e-mail of `email_notifications` at once (security);
- `notifications.email_digest`: the digest e-mail, due after the person's delay.

Each is safe to run twice (docs/decisions/0018): it reads its delivery rows before
acting. Failures worth another try raise, so the queue retries with backoff, and a job out
of attempts is kept dead.
"""

from __future__ import annotations

from uuid import UUID

import structlog

from rapport.kernel import jobs
from rapport.kernel.db import SystemEngine
from rapport.kernel.runtime import Runtime
from rapport.notifications import _consumer, _deliver, _digest

log = structlog.get_logger(__name__)

QUEUE = "notifications"


# Eight attempts: about 40 minutes of backoff (10 s doubling), long enough for a push
# service's outage, short enough that a push is still news.
@jobs.tasks.task("notifications.push", queue=QUEUE, max_attempts=8, timeout_seconds=60)
async def push(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    await _deliver.deliver_push(
        ctx.runtime,
        notification_id=UUID(payload["notification_id"]),
        attempt=ctx.job.attempt,
        max_attempts=ctx.job.max_attempts,
    )


@jobs.tasks.task("notifications.sms", queue=QUEUE, max_attempts=5, timeout_seconds=60)
async def sms(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    await _deliver.deliver_sms(
        ctx.runtime,
        notification_id=UUID(payload["notification_id"]),
        phone=payload.get("phone"),
        attempt=ctx.job.attempt,
        max_attempts=ctx.job.max_attempts,
    )


@jobs.tasks.task("notifications.email", queue=QUEUE, max_attempts=6, timeout_seconds=60)
async def email(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    await _digest.deliver_email(
        ctx.runtime, email_id=UUID(payload["email_id"]), attempt=ctx.job.attempt, max_attempts=ctx.job.max_attempts
    )


@jobs.tasks.task("notifications.email_digest", queue=QUEUE, max_attempts=6, timeout_seconds=60)
async def email_digest(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    await _digest.deliver_email(
        ctx.runtime, email_id=UUID(payload["email_id"]), attempt=ctx.job.attempt, max_attempts=ctx.job.max_attempts
    )


class Pipeline:
    """What a process that runs jobs also runs for notifications: the outbox consumer
    and the delivery providers. Started and stopped with the job worker (`rapport serve`
    with its in-process worker, and `rapport worker`).

    `status_of(user_id)` is realtime presence as this process knows it (the realtime
    service's `Ephemeral.status_of`): someone with a device present anywhere is not
    notified of messages. Without it, everyone counts as away.
    """

    def __init__(self, runtime: Runtime, *, status_of: _consumer.StatusOf | None = None) -> None:
        self.runtime = runtime
        engine: SystemEngine = runtime.system_engine
        connected = _consumer.connected_from(status_of) if status_of is not None else _consumer.nobody_connected
        self.consumer = _consumer.Consumer(engine, connected=connected)
        self.started = False

    async def start(self) -> None:
        # Built now, so that settings that do not parse stop the start, not the first job.
        _deliver.providers_for(self.runtime)
        await self.consumer.start()
        self.started = True

    async def catch_up(self, *, within: float = 10.0) -> None:
        """Return once everything committed so far is read into notifications (and their
        jobs queued); at once when this process does not run the pipeline. Tests wait on
        it before waiting for the jobs.

        Raises:
            TimeoutError: not within `within` seconds.
        """
        if self.started:
            await self.consumer.catch_up(within=within)

    async def stop(self) -> None:
        self.started = False
        await self.consumer.stop()
        await _deliver.close_providers(self.runtime)
