"""kernel.jobs holds addresses and codes on their way out: the server's role may add a job
in its request's transaction, and nothing more; only the worker's role reads them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from rapport.kernel import jobs
from rapport.kernel.runtime import Runtime

QUEUE = "test"


async def enqueue(runtime: Runtime, task: jobs.Task, payload: dict[str, Any]) -> UUID:
    """A job added by the server's role, as a request would."""
    async with runtime.engine.begin() as db:
        return await jobs.enqueue(db, task, payload)


async def job_rows(runtime: Runtime) -> list[Any]:
    """kernel.jobs as the worker's role sees it."""
    async with runtime.system_engine.engine.connect() as db:
        rows = await db.execute(text("SELECT payload FROM kernel.jobs ORDER BY id"))
        return list(rows)


@pytest.fixture
def registry() -> jobs.TaskRegistry:
    return jobs.TaskRegistry()


async def test_the_server_role_may_add_jobs_but_not_read_or_change_them(runtime, registry):
    @registry.task("test.secret", queue=QUEUE)
    async def secret(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
        pass

    await enqueue(runtime, secret, {"code": "123456"})
    refused = []
    for statement in (
        "SELECT payload FROM kernel.jobs",
        "UPDATE kernel.jobs SET run_at = now()",
        "DELETE FROM kernel.jobs",
        "INSERT INTO kernel.jobs (id, queue, task, status, locked_at, locked_by, max_attempts) "
        "VALUES (gen_random_uuid(), 'test', 'test.secret', 'running', now(), 'forged', 1)",
    ):
        with pytest.raises(DBAPIError) as caught:
            async with runtime.engine.begin() as db:
                await db.execute(text(statement))
        refused.append(isinstance(caught.value.orig.__cause__, asyncpg.exceptions.InsufficientPrivilegeError))

    async with runtime.engine.connect() as db:
        table = (
            await db.execute(
                text("SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'kernel.jobs'::regclass")
            )
        ).one()
    assert refused == [True] * 4
    assert tuple(table) == (True, True)
    assert [row.payload for row in await job_rows(runtime)] == [{"code": "123456"}]
