"""Push delivery from the job queue: one record per (notification, subscription), a
subscription the service says is gone is deactivated, a failing service is retried with
backoff and ends dead, and no subscription gets a notification twice, whether the job
runs twice or its worker dies halfway and another runs it again."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from rapport.kernel import jobs
from rapport.kernel.db import system_transaction
from rapport.notifications import tasks
from tests.messaging.support import make_conversation, send
from tests.notifications.fakes import PushService
from tests.notifications.pipeline.support import KEYS, Pipeline, delivery_log, job_rows, notifications_of, subscribe
from tests.support import rapport_env


async def until(condition: Callable[[], Awaitable[bool]], *, within: float = 15.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.05)


async def message_to_bob(client: Any, app_engine: Any, alice: Any, bob: Any, pipeline: Pipeline) -> Any:
    conversation = await make_conversation(app_engine, alice, bob, type="direct")
    await send(client, alice, conversation, "ping")
    await pipeline.settle()
    [note] = await notifications_of(pipeline.runtime, bob)
    return note


async def test_a_subscription_the_service_says_is_gone_is_deactivated(
    client, app_engine, alice, bob, pipeline: Pipeline, push_service
):
    kept, dropped = push_service.subscribe(), push_service.subscribe()
    kept_id = await subscribe(pipeline.runtime, bob, kept)
    dropped_id = await subscribe(pipeline.runtime, bob, dropped)
    push_service.mark_gone(dropped.endpoint, 410)

    note = await message_to_bob(client, app_engine, alice, bob, pipeline)

    records = {row.subscription_id: row for row in await delivery_log(pipeline.runtime, note.id)}
    assert (records[kept_id].status, records[dropped_id].status) == ("sent", "gone")
    assert records[dropped_id].http_status == 410 and records[dropped_id].is_active is False
    assert len(push_service.received_by(kept.endpoint)) == 1
    # The next notification is not even tried on it.
    await send(client, alice, note.conversation_id, "again")
    await pipeline.settle()
    assert len(push_service.received_by(kept.endpoint)) == 2
    assert [refusal for refusal in push_service.refused if refusal[0] == dropped.endpoint] == [
        (dropped.endpoint, 410, "subscription gone")
    ]


async def test_a_failing_push_service_is_retried_with_backoff(
    client, app_engine, alice, bob, pipeline: Pipeline, push_service
):
    browser = push_service.subscribe()
    await subscribe(pipeline.runtime, bob, browser)
    push_service.fail_next(503, times=2)

    note = await message_to_bob(client, app_engine, alice, bob, pipeline)

    async def sent() -> bool:
        return [row.status for row in await delivery_log(pipeline.runtime, note.id)] == ["sent"]

    await until(sent)
    [record] = await delivery_log(pipeline.runtime, note.id)
    assert record.attempts == 3 and record.http_status == 201
    [push] = push_service.received_by(browser.endpoint)
    assert push.json()["body"].endswith("ping")
    assert await job_rows(pipeline.runtime, tasks.push) == []


async def test_a_push_service_that_keeps_failing_leaves_the_job_dead_and_the_record_failed(
    client, app_engine, alice, bob, pipeline: Pipeline, push_service
):
    await pipeline.use_worker(retry=jobs.RetryPolicy(0.02, jitter=0))
    browser = push_service.subscribe()
    await subscribe(pipeline.runtime, bob, browser)
    push_service.fail_next(503, times=100)

    note = await message_to_bob(client, app_engine, alice, bob, pipeline)

    async def dead() -> bool:
        return [row.status for row in await job_rows(pipeline.runtime, tasks.push)] == ["dead"]

    await until(dead)
    [job] = await job_rows(pipeline.runtime, tasks.push)
    assert job.attempts == tasks.push.max_attempts and "503" in job.last_error
    [record] = await delivery_log(pipeline.runtime, note.id)
    assert (record.status, record.http_status, record.attempts) == ("failed", 503, tasks.push.max_attempts)
    assert push_service.received == []
    async with system_transaction(pipeline.runtime.system_engine) as db:
        listed = await jobs.list_dead_jobs(db)
    assert [dead_job.task for dead_job in listed] == ["notifications.push"]


async def test_a_push_job_run_twice_sends_once(client, app_engine, alice, bob, pipeline: Pipeline, push_service):
    browser = push_service.subscribe()
    await subscribe(pipeline.runtime, bob, browser)
    note = await message_to_bob(client, app_engine, alice, bob, pipeline)

    async with system_transaction(pipeline.runtime.system_engine) as db:
        await jobs.enqueue(db, tasks.push, {"notification_id": str(note.id)})
    await pipeline.settle()

    assert len(push_service.received_by(browser.endpoint)) == 1
    [record] = await delivery_log(pipeline.runtime, note.id)
    assert (record.status, record.attempts) == ("sent", 1)


class HoldingPushService(PushService):
    """A push service that can hold requests to some endpoints unanswered and unrecorded:
    the request has left the worker, the service has not taken it."""

    def __init__(self) -> None:
        super().__init__()
        self.holding: set[str] = set()
        self.held = asyncio.Event()

    async def _push(self, request: Request) -> Response:
        endpoint = f"{self.url}/push/{request.path_params['id']}"
        if endpoint in self.holding:
            self.held.set()
            await asyncio.Event().wait()
        return await super()._push(request)


async def test_a_worker_that_dies_mid_job_sends_nothing_twice(
    client, app_engine, alice, bob, pipeline: Pipeline, admin_url, database, tmp_path: Path
):
    async with HoldingPushService() as push_service:
        first, second = push_service.subscribe(), push_service.subscribe()
        first_id = await subscribe(pipeline.runtime, bob, first)
        second_id = await subscribe(pipeline.runtime, bob, second)
        push_service.holding.add(second.endpoint)
        # This test's worker stands aside: a real `rapport worker` process runs the job.
        await pipeline.worker.stop(grace_seconds=2)
        conversation = await make_conversation(app_engine, alice, bob, type="direct")
        await send(client, alice, conversation, "ping")
        await pipeline.consumer.catch_up()
        [note] = await notifications_of(pipeline.runtime, bob)

        env = rapport_env(
            admin_url,
            database,
            RAPPORT_DATA_DIR=str(tmp_path),
            RAPPORT_VAPID_PRIVATE_KEY=KEYS.private_key,
            RAPPORT_VAPID_SUBJECT="mailto:ops@rapport.test",
        )
        log = (tmp_path / "worker.log").open("wb")
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rapport",
            "worker",
            "--queue",
            "notifications",
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=log,
        )
        try:
            async with asyncio.timeout(60):
                await push_service.held.wait()

            async def first_recorded() -> bool:
                statuses = {row.subscription_id: row.status for row in await delivery_log(pipeline.runtime, note.id)}
                return statuses == {first_id: "sent", second_id: "sending"}

            await until(first_recorded)
            os.kill(worker.pid, signal.SIGKILL)  # dies holding the job, the second push unanswered
            await worker.wait()
        finally:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
            log.close()

        [job] = await job_rows(pipeline.runtime, tasks.push)
        assert job.status == "running"
        push_service.holding.clear()
        # Another worker finds the dead one's lock aged past its timeout and runs the job again.
        await pipeline.use_worker(lock_timeout_seconds=1)

        async def both_sent() -> bool:
            return [row.status for row in await delivery_log(pipeline.runtime, note.id)] == ["sent", "sent"]

        await until(both_sent)
        assert len(push_service.received_by(first.endpoint)) == 1
        assert len(push_service.received_by(second.endpoint)) == 1
        records = {row.subscription_id: row for row in await delivery_log(pipeline.runtime, note.id)}
        assert (records[first_id].attempts, records[second_id].attempts) == (1, 2)
        assert await job_rows(pipeline.runtime, tasks.push) == []
