"""Heartbeats on /v1/stream: the server pings every `PING_S`, and closes with 4408 a socket
from which it heard nothing for `SILENCE_S`; one that answers stays open.

The intervals are the stream's constants (25 s and 60 s): the app is served in the test's
process (tests/kernel/live_server.py) with them shortened, so that this takes a second,
not a minute."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from websockets.exceptions import ConnectionClosed

from rapport.config import Settings
from rapport.realtime import _stream
from tests.kernel.live_server import live_server
from tests.realtime.support import Follower, create_group, send_message
from tests.support import Persona

pytestmark = pytest.mark.module_database

PING_S = 0.2
SILENCE_S = 0.7


@dataclass(frozen=True)
class Served:
    url: str

    @property
    def stream_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/v1/stream"


@pytest.fixture
async def served(app: FastAPI, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Served]:
    monkeypatch.setattr(_stream, "PING_S", PING_S)
    monkeypatch.setattr(_stream, "SILENCE_S", SILENCE_S)
    async with live_server(app, settings) as url:
        yield Served(url)


class Answering:
    """A follower that answers every ping with a pong, in a task of its own; it keeps the
    other frames for the test."""

    def __init__(self, follower: Follower) -> None:
        self.follower = follower
        self.pings = 0
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task = asyncio.create_task(self._answer())

    async def _answer(self) -> None:
        while True:
            frame = await self.follower.frame(within=60)
            if frame["type"] == "ping":
                self.pings += 1
                await self.follower.send({"type": "pong"})
            else:
                self.frames.put_nowait(frame)

    async def event(self, message_id: str) -> dict[str, Any]:
        while True:
            frame = await asyncio.wait_for(self.frames.get(), 5)
            if frame["type"] == "event" and frame["event"]["payload"].get("message_id") == message_id:
                return frame

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def test_a_socket_that_answers_no_ping_is_closed_and_one_that_answers_stays(
    served: Served, client: httpx.AsyncClient, alice: Persona, bob: Persona
) -> None:
    loop = asyncio.get_running_loop()
    opened = loop.time()
    silent = await Follower.open(served, bob)
    answering = Answering(await Follower.open(served, alice))
    try:
        silent_pings = 0
        with pytest.raises(ConnectionClosed):
            while True:
                frame = await silent.frame(within=SILENCE_S + 2 * PING_S)
                silent_pings += frame["type"] == "ping"
        closed_after = loop.time() - opened
        assert (silent.socket.close_code, silent.socket.close_reason) == (4408, "silent")
        # Pinged meanwhile, and closed once the silence had lasted, not at its first ping
        # (how soon after is the frame wait's bound above: no timing assertion here, which
        # a stalled machine would fail).
        assert silent_pings >= 2
        assert closed_after >= SILENCE_S

        # Twice the silence later, the socket that answers is open and still receives.
        await asyncio.sleep(SILENCE_S)
        group = await create_group(client, alice)
        sent = await send_message(client, alice, group, "still here")
        assert (await answering.event(sent["id"]))["event"]["scope"]["id"] == group
        assert answering.follower.socket.close_code is None
        assert answering.pings >= int(2 * SILENCE_S / PING_S) - 1
        assert not answering.task.done()
    finally:
        await answering.stop()
