"""What the pipeline tests share besides fixtures (conftest.py): the `Pipeline` a test
drives, and the steps that make the situations (a push subscription, preferences, quiet
hours) and read what came of them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import time
from typing import Any
from uuid import UUID

from fastapi import FastAPI
from sqlalchemy import text

from rapport.kernel import jobs
from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.runtime import Runtime
from rapport.notifications._consumer import Consumer
from rapport.notifications.vapid import new_key_pair
from tests.notifications.fakes import BrowserSubscription
from tests.support import Persona

KEYS = new_key_pair()
# Short enough for a test, long enough that no timing below is luck.
RETRY_BASE_S = 0.2


@dataclass
class Pipeline:
    """The outbox consumer and a job worker, both driven by the test."""

    app: FastAPI
    runtime: Runtime
    consumer: Consumer
    worker: jobs.Worker

    async def settle(self, *, within: float = 10.0) -> None:
        """Everything committed so far is read into notifications, and every job that is
        due has run (retries included, once due)."""
        await self.consumer.catch_up(within=within)
        async with asyncio.timeout(within):
            await self.worker.wait_idle()

    async def use_worker(self, **options: Any) -> None:
        """Run the jobs on a new worker with these options (see `make_worker`)."""
        await self.worker.stop(grace_seconds=2)
        self.worker = make_worker(self.runtime, **options)
        self.worker.start()

    def connect(self, persona: Persona, device: str = "phone") -> None:
        """The persona's device holds a stream socket (as the stream tells realtime)."""
        self.app.state.realtime.ephemeral.device_connected(UUID(persona.user_id), device)

    def disconnect(self, persona: Persona, device: str = "phone") -> None:
        self.app.state.realtime.ephemeral.device_disconnected(UUID(persona.user_id), device)


def make_worker(runtime: Runtime, **options: Any) -> jobs.Worker:
    options = {
        "poll_seconds": 0.1,
        "lock_timeout_seconds": 60,
        "retry": jobs.RetryPolicy(RETRY_BASE_S, jitter=0),
    } | options
    return jobs.Worker(runtime, **options)


# -- situations ---------------------------------------------------------------------------------------


async def subscribe(runtime: Runtime, persona: Persona, browser: BrowserSubscription) -> UUID:
    """Register the browser's push subscription for the persona, as the route does."""
    async with user_transaction(runtime.engine, UUID(persona.user_id)) as db:
        row = (
            await db.execute(
                text(
                    "SELECT id FROM notifications.register_push_subscription(:id, 'webpush', :url, :key, :secret, "
                    "NULL, NULL, 'test browser')"
                ),
                {"id": uuid7(), "url": browser.endpoint, "key": browser.p256dh, "secret": browser.auth},
            )
        ).one()
    return UUID(str(row.id))


async def set_preference(runtime: Runtime, persona: Persona, *, channel: str, enabled: bool, type: str | None) -> None:
    async with user_transaction(runtime.engine, UUID(persona.user_id)) as db:
        await db.execute(
            text(
                "INSERT INTO notifications.preferences (id, user_id, type, category, channel, enabled) "
                "VALUES (:id, :u, :type, NULL, :channel, :enabled)"
            ),
            {"id": uuid7(), "u": persona.user_id, "type": type, "channel": channel, "enabled": enabled},
        )


async def set_settings(runtime: Runtime, persona: Persona, **values: Any) -> None:
    """The persona's notification settings (time_zone, quiet_start, quiet_end, ...)."""
    columns = {"user_id": persona.user_id, **values}
    names = ", ".join(columns)
    params = ", ".join(f":{name}" for name in columns)
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in values)
    async with user_transaction(runtime.engine, UUID(persona.user_id)) as db:
        await db.execute(
            text(
                f"INSERT INTO notifications.settings ({names}) VALUES ({params}) "
                f"ON CONFLICT (user_id) DO UPDATE SET {updates}"
            ),
            columns,
        )


def quiet_now() -> dict[str, time]:
    """Quiet hours that hold now in UTC, for a few hours either side."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    return {
        "quiet_start": (now - timedelta(hours=2)).time().replace(microsecond=0, second=0),
        "quiet_end": (now + timedelta(hours=3)).time().replace(microsecond=0, second=0),
    }


async def notifications_of(runtime: Runtime, persona: Persona) -> list[Any]:
    """The persona's notifications, newest first, as system work sees them."""
    async with system_transaction(runtime.system_engine) as db:
        rows = await db.execute(
            text(
                "SELECT id, type, category, priority, title, body, group_key, bundle_count, is_read, actor_id, "
                "       conversation_id, source_position, data "
                "  FROM notifications.notifications WHERE user_id = :u ORDER BY created_at DESC, id DESC"
            ),
            {"u": persona.user_id},
        )
        return list(rows)


async def delivery_log(runtime: Runtime, notification_id: UUID) -> list[Any]:
    async with system_transaction(runtime.system_engine) as db:
        rows = await db.execute(
            text(
                "SELECT l.subscription_id, l.status, l.http_status, l.attempts, l.error, l.time_to_deliver_ms, "
                "       s.is_active "
                "  FROM notifications.push_delivery_log l "
                "  JOIN notifications.push_subscriptions s ON s.id = l.subscription_id "
                " WHERE l.notification_id = :n ORDER BY l.id"
            ),
            {"n": notification_id},
        )
        return list(rows)


async def job_rows(runtime: Runtime, task: jobs.Task) -> list[Any]:
    async with system_transaction(runtime.system_engine) as db:
        rows = await db.execute(
            text("SELECT id, status, attempts, last_error, run_at FROM kernel.jobs WHERE task = :task ORDER BY id"),
            {"task": task.name},
        )
        return list(rows)


async def make_due(runtime: Runtime, task: jobs.Task) -> None:
    """Move the waiting jobs of a task to now (a digest's delay, quiet hours' end), as
    the clock would."""
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text("UPDATE kernel.jobs SET run_at = now() WHERE task = :task AND status = 'queued'"), {"task": task.name}
        )
        await db.execute(text("SELECT pg_notify('kernel_jobs', '')"))
