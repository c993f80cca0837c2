"""The job queue: a job exists only if its transaction commits, runs once, is retried with
backoff and kept when dead, survives its worker's death, and is never run by two workers;
identity's mail leaves through it."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from rapport.kernel import jobs
from rapport.kernel.mail import Mailer
from rapport.kernel.runtime import Runtime
from tests.support import PASSWORD, Mailbox

QUEUE = "test"
# Short enough for a test, long enough that no timing below is luck.
BASE = 0.2


@asynccontextmanager
async def running(worker: jobs.Worker) -> AsyncIterator[jobs.Worker]:
    worker.start()
    try:
        yield worker
    finally:
        await worker.stop(grace_seconds=2)


def make_worker(runtime: Runtime, registry: jobs.TaskRegistry, **options: Any) -> jobs.Worker:
    options = {"poll_seconds": 0.2, "lock_timeout_seconds": 60, "retry": jobs.RetryPolicy(BASE, jitter=0)} | options
    return jobs.Worker(runtime, registry=registry, **options)


async def enqueue(runtime: Runtime, task: jobs.Task, payload: dict[str, Any]) -> UUID:
    """A job added by the server's role, as a request would."""
    async with runtime.engine.begin() as db:
        return await jobs.enqueue(db, task, payload)


async def job_rows(runtime: Runtime) -> list[Any]:
    """kernel.jobs as the worker's role sees it (the only role that may read it)."""
    async with runtime.system_engine.engine.connect() as db:
        rows = await db.execute(
            text("SELECT id, task, queue, status, attempts, last_error, payload FROM kernel.jobs ORDER BY id")
        )
        return list(rows)


async def until(condition: Any, *, within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.02)


@pytest.fixture
def registry() -> jobs.TaskRegistry:
    return jobs.TaskRegistry()


async def test_a_job_enqueued_in_a_rolled_back_transaction_never_runs(runtime, registry):
    ran: list[str] = []

    @registry.task("test.record", queue=QUEUE)
    async def record(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
        ran.append(payload["name"])

    with pytest.raises(RuntimeError):
        async with runtime.engine.begin() as db:
            await jobs.enqueue(db, record, {"name": "rolled back"})
            raise RuntimeError("the request failed after asking for the job")
    await enqueue(runtime, record, {"name": "committed"})

    async with running(make_worker(runtime, registry)) as worker, asyncio.timeout(5):
        await worker.wait_idle()

    assert ran == ["committed"]
    assert await job_rows(runtime) == []


async def test_a_committed_job_runs_once_and_is_gone(runtime, registry):
    ran: list[UUID] = []

    @registry.task("test.record", queue=QUEUE)
    async def record(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
        ran.append(ctx.job.id)

    job_id = await enqueue(runtime, record, {})
    async with running(make_worker(runtime, registry)) as worker:
        async with asyncio.timeout(5):
            await worker.wait_idle()
        await asyncio.sleep(0.5)  # a few more polls: nothing runs it again

    assert ran == [job_id]
    assert await job_rows(runtime) == []


async def test_a_listening_worker_starts_a_committed_job_at_once(runtime, registry):
    started = asyncio.Event()

    @registry.task("test.signal", queue=QUEUE)
    async def signal(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
        started.set()

    # Polling alone would take a minute: only the NOTIFY of the commit can wake it.
    async with running(make_worker(runtime, registry, poll_seconds=60)):
        await asyncio.sleep(0.3)  # the worker is asleep, listening
        await enqueue(runtime, signal, {})
        async with asyncio.timeout(3):
            await started.wait()


async def test_a_failing_job_is_retried_with_backoff_and_kept_dead(runtime, registry):
    loop = asyncio.get_running_loop()
    tried_at: list[float] = []

    @registry.task("test.fail", queue=QUEUE, max_attempts=3)
    async def fail(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
        tried_at.append(loop.time())
        raise ConnectionRefusedError("the mail server is down")

    job_id = await enqueue(runtime, fail, {})

    async def dead() -> bool:
        return [row.status for row in await job_rows(runtime)] == ["dead"]

    async with running(make_worker(runtime, registry)):
        await until(dead)
        await asyncio.sleep(3 * BASE)  # a dead job is not tried again

    [row] = await job_rows(runtime)
    assert (row.id, row.attempts) == (job_id, 3)
    assert "ConnectionRefusedError" in row.last_error
    assert len(tried_at) == 3
    first_wait, second_wait = tried_at[1] - tried_at[0], tried_at[2] - tried_at[1]
    assert first_wait >= BASE
    assert second_wait >= 2 * BASE
    async with runtime.system_engine.engine.connect() as db:
        listed = await jobs.list_dead_jobs(db)
    assert [(job.id, job.task, job.attempts) for job in listed] == [(job_id, "test.fail", 3)]


async def test_a_dead_job_can_be_queued_again(runtime, registry):
    outcomes = iter([ValueError("first"), None])

    @registry.task("test.flaky", queue=QUEUE, max_attempts=1)
    async def flaky(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    job_id = await enqueue(runtime, flaky, {})
    async with running(make_worker(runtime, registry)) as worker:

        async def dead() -> bool:
            return [row.status for row in await job_rows(runtime)] == ["dead"]

        await until(dead)
        async with runtime.system_engine.engine.begin() as db:
            assert await jobs.retry_dead_job(db, job_id=job_id)
        async with asyncio.timeout(5):
            await worker.wait_idle()

    assert await job_rows(runtime) == []


async def test_a_job_whose_worker_died_runs_again(runtime, registry):
    ran: list[str] = []

    @registry.task("test.record", queue=QUEUE)
    async def record(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
        ran.append(payload["name"])

    orphan = await enqueue(runtime, record, {"name": "orphan"})
    busy = await enqueue(runtime, record, {"name": "busy elsewhere"})
    # One worker claimed the orphan an hour ago and died; another live one holds `busy`.
    async with runtime.system_engine.engine.begin() as db:
        await db.execute(
            text(
                "UPDATE kernel.jobs SET status = 'running', attempts = 1, locked_by = :by, "
                "       locked_at = now() - CAST(:age AS interval) WHERE id = :id"
            ),
            [
                {"id": orphan, "by": "crashed-host:1234", "age": timedelta(hours=1)},
                {"id": busy, "by": "live-host:5678", "age": timedelta(seconds=1)},
            ],
        )

    async with running(make_worker(runtime, registry, lock_timeout_seconds=60)):

        async def orphan_done() -> bool:
            return ran == ["orphan"]

        await until(orphan_done)
        await asyncio.sleep(0.5)

    assert ran == ["orphan"]
    [row] = await job_rows(runtime)
    assert (row.id, row.status) == (busy, "running")


def counting(into: list[UUID]) -> tuple[jobs.TaskRegistry, jobs.Task]:
    """A registry whose one task notes each job it runs in `into`."""
    registry = jobs.TaskRegistry()

    @registry.task("test.count", queue=QUEUE)
    async def count(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
        into.append(ctx.job.id)
        await asyncio.sleep(0.005)

    return registry, count


async def test_two_workers_never_run_the_same_job(runtime):
    runs: dict[str, list[UUID]] = {"first": [], "second": []}
    workers = []
    for name, into in runs.items():
        registry, task = counting(into)
        workers.append(make_worker(runtime, registry, concurrency=4, name=name))

    async with runtime.engine.begin() as db:
        ids = [await jobs.enqueue(db, task, {"n": n}) for n in range(120)]

    async with running(workers[0]), running(workers[1]), asyncio.timeout(20):
        for worker in workers:
            await worker.wait_idle()

    everything = runs["first"] + runs["second"]
    assert sorted(everything) == sorted(ids)  # each job once: none twice, none missed
    assert runs["first"] and runs["second"]  # and both workers took part
    assert await job_rows(runtime) == []


async def test_register_mail_waits_in_the_queue_until_a_worker_sends_it(
    app: FastAPI, client: httpx.AsyncClient, runtime: Runtime, mailbox: Mailbox
):
    await app.state.worker.stop()  # the server's worker is down, or the process died

    response = await client.post("/v1/auth/register", json={"email": "zoe@example.com", "password": PASSWORD})
    assert response.status_code == 202, response.text
    await asyncio.sleep(0.3)
    assert mailbox.to("zoe@example.com") == []
    [row] = await job_rows(runtime)
    assert (row.task, row.queue, row.status, row.payload["to"]) == (
        "kernel.send_mail",
        "mail",
        "queued",
        "zoe@example.com",
    )

    async with running(jobs.Worker(runtime)):
        [message] = await mailbox.wait_for("zoe@example.com")

    assert re.search(r"\b\d{6}\b", message.get_payload())
    assert await job_rows(runtime) == []


async def test_mail_the_server_refuses_is_sent_on_a_later_attempt(
    app: FastAPI, client: httpx.AsyncClient, runtime: Runtime, mailbox: Mailbox, settings
):
    await app.state.worker.stop()
    nowhere = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": 9})  # discard: refused
    unreachable = dataclasses.replace(runtime, mailer=Mailer(nowhere))
    failing = jobs.Worker(unreachable, retry=jobs.RetryPolicy(BASE, jitter=0), poll_seconds=0.2)

    response = await client.post("/v1/auth/register", json={"email": "zoe@example.com", "password": PASSWORD})
    assert response.status_code == 202

    async def failed_once() -> bool:
        return [(row.status, row.attempts) for row in await job_rows(runtime)] == [("queued", 1)]

    async with running(failing):
        await until(failed_once)
    [row] = await job_rows(runtime)
    assert row.last_error
    assert mailbox.to("zoe@example.com") == []

    async with running(jobs.Worker(runtime, poll_seconds=0.2)):
        await mailbox.wait_for("zoe@example.com")
    assert await job_rows(runtime) == []
