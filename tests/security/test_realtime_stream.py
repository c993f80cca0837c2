"""Mallory on the stream: she never receives an event of a conversation she takes no part
in, nor any of a conversation's events after she is removed from it, live or on resume;
she cannot send through the socket where HTTP refuses her; a token goes only in a header
or a frame, never the URL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.realtime.conftest import http, person, server
from tests.realtime.support import SUBPROTOCOL, Follower, Server, create_group, send_message
from tests.support import Persona

pytestmark = pytest.mark.module_database

# The real server's fixtures, shared with tests/realtime.
REAL_SERVER = (server, http, person)

Person = Callable[..., Awaitable[Persona]]


def scopes(frames: list[dict[str, Any]]) -> set[str]:
    return {f["event"]["scope"]["id"] for f in frames}


async def test_mallory_never_receives_another_conversations_events(
    server: Server, http: httpx.AsyncClient, person: Person
) -> None:
    alice, bob, mallory = await person("alice"), await person("bob"), await person("mallory")
    mallorys = [await Follower.open(server, mallory) for _ in range(4)]
    secret = await create_group(http, alice, bob, name="Secret")
    await send_message(http, alice, secret, "not for mallory")
    await http.post(f"/v1/conversations/{secret}/read", headers=bob.headers, json={"message_id": secret})
    own = await create_group(http, mallory, name="Mallory's")
    for follower in mallorys:
        heard = await follower.events_until(lambda f: f["event"]["scope"]["id"] == own)
        assert scopes(heard) == {own}
    # Nor from the database, resuming from the start of the stream.
    resumed = await Follower.open(server, mallory, since=0)
    caught_up = await resumed.until("caught_up")
    assert scopes([f for f in caught_up if f["type"] == "event"]) <= {own, mallory.user_id}


async def test_removed_mallory_hears_that_she_was_removed_and_nothing_after(
    server: Server, http: httpx.AsyncClient, person: Person
) -> None:
    alice, mallory = await person("alice"), await person("mallory")
    group = await create_group(http, alice, mallory)
    mallorys = await Follower.open(server, mallory)
    before = await send_message(http, alice, group, "while mallory is here")
    heard = await mallorys.events_until(lambda f: f["event"]["payload"].get("message_id") == before["id"])
    position = heard[-1]["position"]
    removed = await http.delete(f"/v1/conversations/{group}/participants/{mallory.user_id}", headers=alice.headers)
    assert removed.status_code == 204, removed.text
    after = await send_message(http, alice, group, "after mallory left")
    own = await create_group(http, mallory, name="Mallory's")

    live = await mallorys.events_until(lambda f: f["event"]["scope"]["id"] == own)
    assert [f["event"]["type"] for f in live if f["event"]["scope"]["id"] == group] == ["participant.left"]
    assert after["id"] not in {f["event"]["payload"].get("message_id") for f in live}
    # Resuming from before the removal: the same, from the database.
    resumed = await Follower.open(server, mallory, since=position)
    caught_up = [f for f in await resumed.until("caught_up") if f["type"] == "event"]
    assert [f["event"]["type"] for f in caught_up if f["event"]["scope"]["id"] == group] == ["participant.left"]


async def test_mallory_cannot_send_or_mark_read_through_the_socket(
    server: Server, http: httpx.AsyncClient, person: Person
) -> None:
    alice, bob, mallory = await person("alice"), await person("bob"), await person("mallory")
    group = await create_group(http, alice, bob)
    message = await send_message(http, alice, group, "hello bob")
    mallorys = await Follower.open(server, mallory)
    await mallorys.send({"type": "send", "ref": "s", "conversation_id": group, "message": {"content": "hi"}})
    await mallorys.send({"type": "read", "ref": "r", "conversation_id": group, "message_id": message["id"]})
    errors = [f for f in await mallorys.until("error") + await mallorys.until("error") if f["type"] == "error"]
    assert {(e["ref"], e["problem"]["status"]) for e in errors} == {("s", 404), ("r", 404)}
    history = await http.get(f"/v1/conversations/{group}/messages", headers=alice.headers)
    assert [m["id"] for m in history.json()["items"]] == [message["id"]]


async def test_a_token_in_the_url_is_not_authentication(server: Server, person: Person) -> None:
    mallory = await person("mallory")
    token = mallory.access_token
    url = f"{server.stream_url}?token={token}&access_token={token}&authorization=Bearer%20{token}"
    url_token = Follower(await connect(url, subprotocols=[SUBPROTOCOL]), {})  # type: ignore[list-item]
    # A token in the query string is ignored: the first frame must still authenticate.
    await url_token.send({"type": "send", "ref": "x", "conversation_id": mallory.user_id, "message": {"content": "x"}})
    assert await url_token.closed_with() == 4401
