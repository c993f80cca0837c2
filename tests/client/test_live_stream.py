"""The client's stream against Rapport's own `/v1/stream`, through a TCP proxy that can
cut every connection as a failing network would: events arrive, and after the cut the
client resumes from its last position with no gap and no duplicate."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from rapport.client import CaughtUp, Client, Connected, Event
from tests.client.conftest import FAST
from tests.client.test_stream import all_positions, messages_created, next_of
from tests.support import Persona


class CuttableProxy:
    """Forwards TCP connections to a server; `cut()` drops them all without a goodbye."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> CuttableProxy:
        self.server = await asyncio.start_server(self._pipe, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        self.cut()
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    def cut(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, upstream_writer]

        async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(copy(reader, upstream_writer), copy(upstream_reader, writer))


@pytest.fixture
async def proxy(server_url: str) -> AsyncIterator[CuttableProxy]:
    port = urlsplit(server_url).port
    assert port is not None
    async with CuttableProxy(port) as running:
        yield running


async def test_events_from_the_real_stream(server_url: str, alice: Persona, bob_client: Client, bob: Persona) -> None:
    async with Client(server_url, backoff=FAST) as client:
        await client.login(alice.email, alice.password)
        room = await client.create_group("Real", [bob.user_id])
        async with client.stream() as stream:
            connected = await next_of(stream, Connected)
            assert isinstance(connected, Connected) and str(connected.user_id) == alice.user_id
            said = await bob_client.send(room.id, "over the real stream")
            [event] = await messages_created(stream, 1)
            assert event.payload["message_id"] == str(said.id)
            sent = await stream.send_message(room.id, "answered over the socket")
            newest = await anext(bob_client.history(room.id, page_size=1))
            assert (newest.id, newest.content) == (sent.id, "answered over the socket")


async def test_the_real_stream_resumes_after_the_network_fails(
    server_url: str, proxy: CuttableProxy, alice: Persona, bob_client: Client, bob: Persona
) -> None:
    stream_url = f"ws://127.0.0.1:{proxy.port}/v1/stream"
    async with Client(server_url, stream_url=stream_url, backoff=FAST, heartbeat_timeout=5) as client:
        await client.login(alice.email, alice.password)
        room = await client.create_group("Cut", [bob.user_id])
        async with client.stream(since=0) as stream:
            await next_of(stream, CaughtUp)
            sent = [await bob_client.send(room.id, f"before {n}") for n in range(3)]
            received = await messages_created(stream, 3)
            proxy.cut()
            sent += [await bob_client.send(room.id, f"during {n}") for n in range(3)]
            received += await messages_created(stream, 3)
            assert stream.connections == 2

        positions = [e.position for e in received]
        assert positions == sorted(set(positions))
        assert [e.payload["message_id"] for e in received] == [str(m.id) for m in sent]
        message_events = {e.position for e in (await client.sync(0, limit=1000)).events if e.type == "message.created"}
        assert set(positions) == message_events
        assert set(positions) <= set(await all_positions(client))
        assert all(isinstance(e, Event) for e in received)
