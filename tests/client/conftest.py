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
async def server_url(app: FastAPI, settings: Settings) -> AsyncIterator[str]:
    async with live_server(app, settings) as url:
        yield url


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
