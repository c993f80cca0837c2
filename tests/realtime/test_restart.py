"""A server killed with SIGKILL mid-stream and started again: the client resumes from its
last position and receives every message once, in order, whatever was in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.realtime.support import Follower, Server, create_group
from tests.support import Persona

pytestmark = pytest.mark.module_database

Person = Callable[..., Awaitable[Persona]]
MESSAGES = 30


async def send_until_stored(http: httpx.AsyncClient, persona: Persona, group: str, n: int) -> str:
    """Send message n, retrying (same client_message_id) through the server's death."""
    while True:
        try:
            answer = await http.post(
                f"/v1/conversations/{group}/messages",
                headers=persona.headers,
                json={"content": f"message {n}", "client_message_id": f"m{n}"},
            )
            if answer.status_code in (200, 201):
                message_id: str = answer.json()["id"]
                return message_id
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)


async def reconnect(server: Server, persona: Persona, since: int) -> Follower:
    while True:
        try:
            return await Follower.open(server, persona, since=since)
        except (OSError, ConnectionClosed, TimeoutError, AssertionError):
            await asyncio.sleep(0.2)


async def test_sigkill_mid_stream_then_resume_loses_nothing_and_repeats_nothing(
    server: Server, http: httpx.AsyncClient, person: Person
) -> None:
    alice, bob = await person("alice"), await person("bob")
    group = await create_group(http, alice, bob)
    follower = await Follower.open(server, bob)
    received: list[dict[str, Any]] = []

    async def sender() -> list[str]:
        ids = []
        for n in range(MESSAGES):
            ids.append(await send_until_stored(http, alice, group, n))
            await asyncio.sleep(0.02)
        return ids

    sending = asyncio.create_task(sender())
    while len([f for f in received if f["event"]["type"] == "message.created"]) < MESSAGES // 3:
        received.append(await follower.event())
    await asyncio.to_thread(server.kill)
    restart = asyncio.create_task(asyncio.to_thread(server.start))
    try:  # whatever was still on its way before the kill
        while True:
            received.append(await follower.event(within=1))
    except (ConnectionClosed, TimeoutError):
        pass
    await restart
    position = received[-1]["position"]
    follower = await reconnect(server, bob, position)
    sent = await sending
    while sent[-1] not in {f["event"]["payload"].get("message_id") for f in received}:
        received.append(await follower.event(within=10))

    created = [f["event"]["payload"]["message_id"] for f in received if f["event"]["type"] == "message.created"]
    assert created == sent
    positions = [f["position"] for f in received]
    assert positions == sorted(set(positions))
