"""The topic organiser and end-to-end encrypted rooms: an encrypted message has no text on
the server (its `content` is empty, its words only in each device's ciphertext), so the
organiser neither places it in a topic thread nor proposes one for it. The same words sent
in a plain organised room are organised, which shows the organiser ran over both."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
import pytest

from rapport.kernel.runtime import Runtime
from rapport.modules.coparenting import service
from tests.encryption.support import open_encrypted, register, send_encrypted
from tests.messaging.support import make_conversation, send
from tests.support import Persona

pytestmark = pytest.mark.module_database

SAID = "Practice moved to Tuesday, bring the boots"


async def organised(client: httpx.AsyncClient, persona: Persona, room: UUID | str) -> None:
    enabled = await client.put(f"/v1/coparenting/rooms/{room}/topics", headers=persona.headers)
    assert enabled.status_code == 201, enabled.text


async def soccer_thread(client: httpx.AsyncClient, persona: Persona, room: UUID | str) -> str:
    made = await client.post(
        f"/v1/conversations/{room}/threads", headers=persona.headers, json={"title": "Soccer practice"}
    )
    assert made.status_code == 201, made.text
    thread_id: str = made.json()["id"]
    return thread_id


async def suggestions(client: httpx.AsyncClient, persona: Persona, room: UUID | str) -> list[dict[str, Any]]:
    listed = await client.get(f"/v1/coparenting/rooms/{room}/topic-suggestions", headers=persona.headers)
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


async def test_an_encrypted_message_is_neither_placed_nor_proposed(
    client: httpx.AsyncClient, runtime: Runtime, app_engine: Any, alice: Persona, bob: Persona
) -> None:
    alice_phone, bob_phone = await register(client, alice), await register(client, bob)
    secret = await open_encrypted(client, alice, bob, type="direct")
    plain = await make_conversation(app_engine, alice, bob, type="direct")
    for room in (secret, plain):
        await organised(client, alice, room)
    secret_thread = await soccer_thread(client, alice, secret)
    plain_thread = await soccer_thread(client, alice, plain)
    # The same words twice: as ciphertexts for the devices, and in the clear.
    sealed = await send_encrypted(client, bob, secret, bob_phone, [alice_phone, bob_phone])
    assert sealed.status_code == 201, sealed.text
    spoken = await send(client, bob, plain, SAID)

    await service.organise_all(runtime.system_engine)

    assert await suggestions(client, alice, secret) == []
    thread = (await client.get(f"/v1/conversations/{secret}/threads/{secret_thread}", headers=bob.headers)).json()
    assert (thread["message_count"], thread["last_message_id"]) == (0, None)
    shown = await client.get(f"/v1/conversations/{secret}/messages/{sealed.json()['id']}", headers=bob.headers)
    assert (shown.json()["thread_id"], shown.json()["content_encrypted"]) == (None, True)
    [placed] = await suggestions(client, alice, plain)
    assert (placed["message_id"], placed["kind"], placed["thread_id"]) == (spoken["id"], "place", plain_thread)


async def test_an_encrypted_room_without_threads_is_proposed_none(
    client: httpx.AsyncClient, runtime: Runtime, app_engine: Any, alice: Persona, bob: Persona
) -> None:
    alice_phone, bob_phone = await register(client, alice), await register(client, bob)
    secret = await open_encrypted(client, alice, bob, type="direct")
    plain = await make_conversation(app_engine, alice, bob, type="direct")
    for room in (secret, plain):
        await organised(client, alice, room)
    sent = await send_encrypted(client, alice, secret, alice_phone, [alice_phone, bob_phone])
    assert sent.status_code == 201, sent.text
    spoken = await send(client, alice, plain, "The teacher says the homework is late again")

    await service.organise_all(runtime.system_engine)

    assert await suggestions(client, bob, secret) == []
    threads = await client.get(f"/v1/conversations/{secret}/threads", headers=bob.headers)
    assert threads.json()["items"] == []
    [proposal] = await suggestions(client, bob, plain)
    assert (proposal["message_id"], proposal["kind"], proposal["category"]) == (spoken["id"], "new", "school")
