"""/v1/events against a real server: the same events and positions as the WebSocket,
and resuming with Last-Event-ID."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest

from tests.realtime.support import Server, create_group, send_message
from tests.support import Persona

pytestmark = pytest.mark.module_database

Person = Callable[..., Awaitable[Persona]]


async def read_events(
    server: Server, persona: Persona, *, until: str, headers: dict[str, str] | None = None, since: int | None = None
) -> list[dict[str, Any]]:
    """The SSE messages of one response, up to the message.created of message `until`."""
    found: list[dict[str, Any]] = []
    params = {"since": str(since)} if since is not None else {}
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
        client.stream("GET", "/v1/events", headers={**persona.headers, **(headers or {})}, params=params) as answer,
    ):
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        async with asyncio.timeout(10):
            message: dict[str, str] = {}
            async for line in answer.aiter_lines():
                if line:
                    field, _, value = line.partition(": ")
                    message[field] = value
                    continue
                if "data" in message:
                    found.append(
                        {"id": message.get("id"), "event": message["event"], "data": orjson.loads(message["data"])}
                    )
                    if message["event"] == "message.created" and found[-1]["data"]["payload"]["message_id"] == until:
                        return found
                message = {}
    raise AssertionError("the stream ended")


async def test_events_carry_positions_and_resume_with_last_event_id(
    server: Server, http: httpx.AsyncClient, person: Person
) -> None:
    alice, bob = await person("alice"), await person("bob")
    group = await create_group(http, alice, bob)
    first = await send_message(http, alice, group, "one")
    heard = await read_events(server, bob, until=first["id"], since=0)
    last = heard[-1]
    assert last["id"] == str(last["data"]["position"])
    assert last["data"]["scope"] == {"kind": "conversation", "id": group}

    missed = await send_message(http, alice, group, "two")
    # Last-Event-ID wins over `since`.
    resumed = await read_events(server, bob, until=missed["id"], since=0, headers={"Last-Event-ID": last["id"]})
    assert [m["data"]["payload"].get("message_id") for m in resumed] == [missed["id"]]
    assert int(resumed[0]["id"]) > int(last["id"])


async def test_events_refuse_a_bad_token_and_a_bad_position(
    server: Server, http: httpx.AsyncClient, person: Person
) -> None:
    bob = await person("bob")
    assert (await http.get("/v1/events", headers={"Authorization": "Bearer nope"})).status_code == 401
    bad = await http.get("/v1/events", headers={**bob.headers, "Last-Event-ID": "yesterday"})
    assert (bad.status_code, bad.json()["type"].rsplit(":", 1)[-1]) == (400, "invalid-position")
