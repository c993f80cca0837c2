"""Catching up and receipts in an encrypted conversation, with the reference client
(tests/e2ee/client.py): bob's phone was offline while alice wrote; resuming `GET /v1/sync`
from where it stopped brings the `message.created` event (ids and a seq, never a word of
the text), his phone decrypts the text from its envelope, and the delivered marker it then
sets reaches alice as for any conversation."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from rapport.kernel.runtime import Runtime
from tests.e2ee.client import Device
from tests.messaging.streams_support import newest_position
from tests.support import Persona, befriend

pytestmark = pytest.mark.module_database

SAID = "Hedgewhistle pickup moved to four, bring the Marrowfen jacket"


@dataclass
class CaughtUp:
    events: list[dict[str, Any]]
    raw: str  # every answer's body, as sent
    position: int


async def sync_from(client: httpx.AsyncClient, runtime: Runtime, persona: Persona, since: int) -> CaughtUp:
    """What `GET /v1/sync` answers the persona from `since` up to the newest event."""
    target = await newest_position(runtime)
    found: list[dict[str, Any]] = []
    bodies: list[str] = []
    position = since
    async with asyncio.timeout(10):
        while True:
            response = await client.get("/v1/sync", headers=persona.headers, params={"since": position})
            assert response.status_code == 200, response.text
            bodies.append(response.text)
            body: dict[str, Any] = response.json()
            found += body["events"]
            position = body["position"]
            if position >= target and not body["more"]:
                return CaughtUp(found, "\n".join(bodies), position)
            if not body["events"]:
                await asyncio.sleep(0.02)


@pytest.fixture
async def pair(client: httpx.AsyncClient, alice: Persona, bob: Persona) -> tuple[Device, Device, str]:
    """Alice's laptop, bob's phone, and their encrypted direct conversation."""
    await befriend(client, alice, bob)
    laptop = await Device.register(client, alice, "Alice's laptop")
    phone = await Device.register(client, bob, "Bob's phone")
    made = await client.post(
        "/v1/conversations",
        headers=alice.headers,
        json={"type": "direct", "is_encrypted": True, "participant_ids": [bob.user_id]},
    )
    assert made.status_code == 201, made.text
    return laptop, phone, str(made.json()["id"])


async def test_resuming_sync_brings_the_encrypted_message_without_its_text(
    client: httpx.AsyncClient, runtime: Runtime, bob: Persona, pair: tuple[Device, Device, str]
) -> None:
    laptop, phone, room = pair
    stopped = await sync_from(client, runtime, bob, 0)
    sent = await laptop.send(room, SAID)

    caught_up = await sync_from(client, runtime, bob, stopped.position)

    [created] = [e for e in caught_up.events if e["type"] == "message.created"]
    assert created["scope"] == {"kind": "conversation", "id": room}
    assert (created["payload"]["message_id"], created["payload"]["seq"]) == (sent["id"], sent["seq"])
    assert "content" not in created["payload"]
    for word in [SAID, *SAID.replace(",", "").split()]:
        if len(word) >= 8:
            assert word.lower() not in caught_up.raw.lower(), word
    shown = await client.get(f"/v1/conversations/{room}/messages/{sent['id']}", headers=bob.headers)
    assert (shown.json()["content"], shown.json()["content_encrypted"]) == ("", True)
    assert [(r.message_id, r.text) for r in await phone.receive()] == [(sent["id"], SAID)]


async def test_the_delivered_marker_works_as_in_any_conversation(
    client: httpx.AsyncClient,
    runtime: Runtime,
    alice: Persona,
    bob: Persona,
    pair: tuple[Device, Device, str],
) -> None:
    laptop, phone, room = pair
    sent = await laptop.send(room, SAID)
    before = await sync_from(client, runtime, alice, 0)
    [received] = await phone.receive()

    delivered = await client.post(
        f"/v1/conversations/{room}/delivered", headers=bob.headers, json={"message_id": received.message_id}
    )

    assert delivered.status_code == 200, delivered.text
    assert (delivered.json()["delivered_seq"], delivered.json()["read_seq"]) == (sent["seq"], 0)
    receipts = await client.get(f"/v1/conversations/{room}/messages/{sent['id']}/receipts", headers=alice.headers)
    assert receipts.status_code == 200, receipts.text
    assert (receipts.json()["delivered_to"], receipts.json()["read_by"]) == ([{"user_id": bob.user_id}], [])
    heard = await sync_from(client, runtime, alice, before.position)
    [marker] = [e["payload"] for e in heard.events if e["type"] == "receipt.delivered"]
    assert marker == {"conversation_id": room, "user_id": bob.user_id, "delivered_seq": sent["seq"]}
    again = await client.post(
        f"/v1/conversations/{room}/delivered", headers=bob.headers, json={"message_id": received.message_id}
    )
    assert (again.status_code, again.json()["delivered_seq"]) == (200, sent["seq"])
