"""An unexpected exception (a bug) is answered with a 500 problem+json, and the
connection it came on stays open and usable: checked against a real server, since only
a server shows what happens to the connection."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI, Request

from rapport.app import create_app
from rapport.config import Settings
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from tests.kernel.live_server import live_server
from tests.support import problem_type


class Bug(Exception):
    pass


@pytest.fixture
async def full_role(database: DatabaseUrls) -> AsyncIterator[str]:
    """The DSN of a role PostgreSQL takes no connection for (its limit is 0): a database
    that refuses a connection as a full server does, with `too many connections`."""
    name = f"full_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(asyncpg_dsn(database.admin))
    try:
        await admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'full' CONNECTION LIMIT 0")
        yield asyncpg_dsn(database.app.set(username=name, password="full"))
    finally:
        await admin.execute(f"DROP ROLE IF EXISTS {name}")
        await admin.close()


@pytest.fixture
async def buggy_app(settings: Settings, database: DatabaseUrls, full_role: str) -> AsyncIterator[FastAPI]:
    """The app with a route that fails as a bug would, one that names the connection, and
    one whose database refuses to connect."""
    application = create_app(settings, database_url=database.app, system_database_url=database.worker)

    @application.get("/test/database-full")
    async def database_full() -> None:
        await asyncpg.connect(full_role)

    @application.get("/test/bug")
    async def bug() -> None:
        raise Bug("a bug")

    @application.get("/test/connection")
    async def connection(request: Request) -> dict[str, int]:
        assert request.client is not None
        return {"port": request.client.port}

    async with LifespanManager(application):
        yield application


@pytest.fixture
async def server(buggy_app: FastAPI, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """One keep-alive connection at most, to a running server."""
    async with live_server(buggy_app, settings) as url:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=url, limits=limits) as http:
            yield http


async def test_a_bug_is_a_500_problem_with_the_request_id(server: httpx.AsyncClient) -> None:
    response = await server.get("/test/bug", headers={"X-Request-ID": "find-me"})

    assert (response.status_code, problem_type(response)) == (500, "internal-error")
    assert response.json()["request_id"] == response.headers["x-request-id"] == "find-me"


async def test_the_connection_stays_open_after_a_500(server: httpx.AsyncClient) -> None:
    before = (await server.get("/test/connection")).json()["port"]
    failed = await server.get("/test/bug")
    after = await server.get("/test/connection")

    assert failed.status_code == 500
    assert failed.headers.get("connection") != "close"
    assert after.status_code == 200
    assert after.json()["port"] == before


async def test_two_bugs_in_a_row_on_one_connection(server: httpx.AsyncClient) -> None:
    first = await server.get("/test/bug")
    second = await server.get("/test/bug")

    assert [first.status_code, second.status_code] == [500, 500]
    assert problem_type(second) == "internal-error"


async def test_a_database_that_refuses_connections_is_a_503_to_retry(server: httpx.AsyncClient) -> None:
    """Not a bug and not the request's fault: the answer says to come back in a moment,
    and the connection stays usable."""
    refused = await server.get("/test/database-full")
    after = await server.get("/test/connection")

    assert (refused.status_code, problem_type(refused)) == (503, "service-unavailable")
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["request_id"] == refused.headers["x-request-id"]
    assert after.status_code == 200
