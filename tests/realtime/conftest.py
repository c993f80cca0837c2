"""Fixtures of the realtime tests: one real server per module over the module's database,
and the buses' servers (NATS, Redis) for the modules that need them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import httpx
import pytest
from sqlalchemy.engine import URL

from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime
from tests.realtime.servers import REDIS_MISSING, REDIS_SERVER, nats_server, redis_server
from tests.realtime.support import Server
from tests.support import PASSWORD, Persona, create_verified_user, sign_in


@pytest.fixture(scope="module")
def server(admin_url: URL, module_database: DatabaseUrls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(admin_url, module_database, tmp_path_factory.mktemp("serve"))
    running.start()
    yield running
    running.stop()


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture
def person(http: httpx.AsyncClient, runtime: Runtime) -> Callable[..., Awaitable[Persona]]:
    """A verified account signed in on the real server (a new session each call)."""

    async def make(name: str, *, new_account: bool = True) -> Persona:
        persona = Persona(name=name, email=f"{name}@example.com", password=PASSWORD)
        if new_account:
            await create_verified_user(runtime, persona.email)
        return await sign_in(http, persona)

    return make


@pytest.fixture(scope="module")
def nats_url() -> Iterator[str]:
    """A real NATS server (tests/realtime/servers.py)."""
    with nats_server() as url:
        yield url


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A real Redis server, where redis-server is installed."""
    if REDIS_SERVER is None:
        pytest.skip(REDIS_MISSING)
    with redis_server() as url:
        yield url
