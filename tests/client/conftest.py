"""The client's tests talk to a real server: the app served by uvicorn on a free port over
the test's database (tests/kernel/live_server.py), and, for the stream, a WebSocket
server speaking the realtime protocol over that same API (stream_bridge.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from rapport.client import Backoff, Client
from rapport.config import Settings
from tests.client.stream_bridge import StreamBridge
from tests.kernel.live_server import live_server
from tests.support import Persona

# Quick reconnections: the tests drop connections on purpose.
FAST = Backoff(initial=0.05, maximum=0.2)


@pytest.fixture
async def test_server_url(app: FastAPI, settings: Settings) -> AsyncIterator[str]:
    """A server for this test alone, over its app."""
    async with live_server(app, settings) as url:
        yield url


@pytest.fixture(scope="module")
async def module_server_url(module_app: FastAPI, module_settings: Settings) -> AsyncIterator[str]:
    """One server per module, over the module's app (a module marked `module_database`)."""
    async with live_server(module_app, module_settings) as url:
        yield url


@pytest.fixture
def server_url(request: pytest.FixtureRequest, app: FastAPI) -> str:
    """The base URL of a real server over the test's app: the module's one in a module
    marked `module_database` (its database emptied before each test like any other), or
    one started for the test."""
    # A plain fixture on purpose, as conftest's `app`: it picks an async fixture to start.
    shared = request.node.get_closest_marker("module_database") is not None
    url: str = request.getfixturevalue("module_server_url" if shared else "test_server_url")
    return url


@pytest.fixture
async def bridge(server_url: str) -> AsyncIterator[StreamBridge]:
    async with StreamBridge(server_url) as running:
        yield running


async def signed_in(url: str, persona: Persona) -> Client:
    """A client of `url` signed in as the persona (a session of its own)."""
    client = Client(url, backoff=FAST, heartbeat_timeout=5)
    await client.login(persona.email, persona.password)
    return client


@pytest.fixture
async def alice_client(server_url: str, alice: Persona) -> AsyncIterator[Client]:
    client = await signed_in(server_url, alice)
    yield client
    await client.aclose()


@pytest.fixture
async def bob_client(server_url: str, bob: Persona) -> AsyncIterator[Client]:
    client = await signed_in(server_url, bob)
    yield client
    await client.aclose()
