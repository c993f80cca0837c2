"""End-to-end encryption against mallory, through the API and through SQL as rapport_app:
nobody reads or acknowledges another device's envelopes, a device's keys change only
through its owner, one-time prekeys leave only through encryption.claim_key_bundles (each
once), and row-level security is FORCE'd on every table of the schema.

Alice and bob share an encrypted group, each with a device; alice sent one message, so
bob's device holds an envelope. Mallory, a stranger, has a device of her own."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.provisioning import DatabaseUrls
from tests.encryption.support import b64, device_keys, open_encrypted, register, send_encrypted
from tests.module_scope import build_once
from tests.security.messaging_sql import DENIED, POLICY, attempt, changed
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

REFUSED = DENIED  # the function raised insufficient_privilege: it needs a user
NOT_FOUND = "UnknownPostgresError"  # RE404 user-not-found, an SQLSTATE of Rapport's own


@dataclass(frozen=True)
class World:
    alice: Persona
    bob: Persona
    mallory: Persona
    alice_device: str
    bob_device: str
    mallory_device: str
    room: str
    message_id: str
    envelope_id: str


@pytest.fixture(scope="module")
async def module_world(module_app: FastAPI, module_database: DatabaseUrls) -> World:
    async with build_once(module_app, module_database) as built:
        alice, bob, mallory = await built.personas("alice", "bob", "mallory")
        client = built.client
        alice_device = await register(client, alice)
        bob_device = await register(client, bob)
        mallory_device = await register(client, mallory)
        room = await open_encrypted(client, alice, bob)
        sent = await send_encrypted(client, alice, room, alice_device, [bob_device])
        assert sent.status_code == 201, sent.text
        [envelope] = (await client.get(f"/v1/encryption/devices/{bob_device}/envelopes", headers=bob.headers)).json()[
            "items"
        ]
        return World(
            alice=alice,
            bob=bob,
            mallory=mallory,
            alice_device=alice_device,
            bob_device=bob_device,
            mallory_device=mallory_device,
            room=room,
            message_id=sent.json()["id"],
            envelope_id=envelope["id"],
        )


@pytest.fixture
def world(module_world: World, database: DatabaseUrls) -> World:
    return module_world


# Through the API


async def test_nobody_fetches_another_devices_envelopes(client: httpx.AsyncClient, world: World) -> None:
    for persona in (world.mallory, world.alice):
        listed = await client.get(f"/v1/encryption/devices/{world.bob_device}/envelopes", headers=persona.headers)
        acked = await client.post(
            f"/v1/encryption/devices/{world.bob_device}/envelopes/ack",
            json={"up_to": world.envelope_id},
            headers=persona.headers,
        )
        assert (listed.status_code, problem_type(listed)) == (404, "encryption-device-not-found")
        assert (acked.status_code, problem_type(acked)) == (404, "encryption-device-not-found")
    still = await client.get(f"/v1/encryption/devices/{world.bob_device}/envelopes", headers=world.bob.headers)
    assert [e["id"] for e in still.json()["items"]] == [world.envelope_id]


async def test_only_the_owner_replaces_a_devices_keys(client: httpx.AsyncClient, world: World) -> None:
    keys = device_keys()
    base = f"/v1/encryption/devices/{world.bob_device}"
    for response in (
        await client.put(f"{base}/identity", json=keys, headers=world.mallory.headers),
        await client.put(f"{base}/signed-prekey", json=keys["signed_prekey"], headers=world.mallory.headers),
        await client.post(
            f"{base}/one-time-prekeys", json={"keys": keys["one_time_prekeys"]}, headers=world.mallory.headers
        ),
        await client.delete(base, headers=world.mallory.headers),
    ):
        assert (response.status_code, problem_type(response)) == (404, "encryption-device-not-found"), response.text
    bundles = await client.post(f"/v1/users/{world.bob.user_id}/key-bundles", headers=world.alice.headers)
    [device] = bundles.json()["devices"]
    assert device["identity_key"] != keys["identity_key"]


async def test_a_stranger_cannot_send_into_the_room(client: httpx.AsyncClient, world: World) -> None:
    response = await send_encrypted(client, world.mallory, world.room, world.mallory_device, [world.bob_device])
    assert (response.status_code, problem_type(response)) == (404, "conversation-not-found")


# Through SQL as rapport_app


async def test_row_level_security_is_forced_on_every_table(app_engine: AsyncEngine) -> None:
    async with app_engine.connect() as db:
        rows = (
            await db.execute(
                text(
                    "SELECT c.relname, c.relrowsecurity AND c.relforcerowsecurity AS forced FROM pg_class c"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'encryption' AND c.relkind = 'r'"
                )
            )
        ).all()
    assert {row.relname: row.forced for row in rows} == {"devices": True, "one_time_prekeys": True, "envelopes": True}


@pytest.mark.parametrize("who", ["mallory", "alice", None])
async def test_nobody_reads_another_devices_envelopes_in_sql(
    app_engine: AsyncEngine, world: World, who: str | None
) -> None:
    persona = getattr(world, who) if who else None
    count = "SELECT count(*) FROM encryption.envelopes WHERE device_id = :d"
    assert await attempt(app_engine, persona, count, d=world.bob_device) == 0
    assert await attempt(app_engine, world.bob, count, d=world.bob_device) == 1


async def test_nobody_deletes_another_devices_envelopes_in_sql(app_engine: AsyncEngine, world: World) -> None:
    gone = "DELETE FROM encryption.envelopes WHERE device_id = :d RETURNING 1"
    assert await changed(app_engine, world.mallory, gone, d=world.bob_device) == 0
    assert await changed(app_engine, world.alice, gone, d=world.bob_device) == 0
    changing = "UPDATE encryption.envelopes SET ciphertext = '\\x00' WHERE device_id = :d RETURNING 1"
    assert await changed(app_engine, world.bob, changing, d=world.bob_device) == DENIED


async def test_nobody_forges_an_envelope(app_engine: AsyncEngine, world: World) -> None:
    """Mallory cannot slip a ciphertext to bob's device: not for alice's message, not as
    alice's device, not into a room she is not in."""
    insert = (
        "INSERT INTO encryption.envelopes (id, device_id, recipient_id, conversation_id, message_id, seq,"
        " sender_id, sender_device_id, type, ciphertext)"
        " VALUES (gen_random_uuid(), :d, :r, :c, :m, 1, :s, :sd, 'message', '\\x01')"
    )
    base = {"d": world.bob_device, "r": world.bob.user_id, "c": world.room, "m": world.message_id}
    as_mallory = await attempt(
        app_engine, world.mallory, insert, **base, s=world.mallory.user_id, sd=world.mallory_device
    )
    as_alice = await attempt(app_engine, world.mallory, insert, **base, s=world.alice.user_id, sd=world.alice_device)
    # Alice may write to bob's device only for her own message, from her own device.
    from_bobs = await attempt(app_engine, world.alice, insert, **base, s=world.alice.user_id, sd=world.bob_device)
    to_mallory = await attempt(
        app_engine,
        world.alice,
        insert,
        d=world.mallory_device,
        r=world.mallory.user_id,
        c=world.room,
        m=world.message_id,
        s=world.alice.user_id,
        sd=world.alice_device,
    )
    assert (as_mallory, as_alice, from_bobs, to_mallory) == (POLICY, POLICY, POLICY, POLICY)


async def test_a_devices_keys_change_only_through_its_owner_in_sql(app_engine: AsyncEngine, world: World) -> None:
    new_key = b64(b"m" * 32)
    update = "UPDATE encryption.devices SET identity_key = decode(:k, 'base64') WHERE id = :d RETURNING 1"
    assert await changed(app_engine, world.mallory, update, k=new_key, d=world.bob_device) == 0
    moved = "UPDATE encryption.devices SET user_id = :u WHERE id = :d RETURNING 1"
    stolen = await changed(app_engine, world.mallory, moved, u=world.bob.user_id, d=world.mallory_device)
    assert stolen == POLICY
    planted = await attempt(
        app_engine,
        world.mallory,
        "INSERT INTO encryption.devices (id, user_id, name, identity_key, signing_key, signed_prekey_id,"
        " signed_prekey, signed_prekey_signature) VALUES (gen_random_uuid(), :u, 'x', :k, :k, 1, :k, :sig)",
        u=world.bob.user_id,
        k=b"k" * 32,
        sig=b"s" * 64,
    )
    assert planted == POLICY
    seen = "SELECT count(*) FROM encryption.devices WHERE user_id = :u"
    assert await attempt(app_engine, world.mallory, seen, u=world.bob.user_id) == 0


async def test_one_time_prekeys_leave_only_through_the_claim(app_engine: AsyncEngine, world: World) -> None:
    count = "SELECT count(*) FROM encryption.one_time_prekeys WHERE device_id = :d"
    assert await attempt(app_engine, world.alice, count, d=world.bob_device) == 0
    assert await attempt(app_engine, world.bob, count, d=world.bob_device) == 5
    taken = "DELETE FROM encryption.one_time_prekeys WHERE device_id = :d RETURNING 1"
    assert await changed(app_engine, world.alice, taken, d=world.bob_device) == 0
    planted = await attempt(
        app_engine,
        world.mallory,
        "INSERT INTO encryption.one_time_prekeys (device_id, key_id, user_id, public_key) VALUES (:d, 999, :u, :k)",
        d=world.bob_device,
        u=world.mallory.user_id,
        k=b"k" * 32,
    )
    assert planted == POLICY
    claim = "SELECT count(one_time_key) FROM encryption.claim_key_bundles(:t)"
    assert await attempt(app_engine, world.alice, claim, t=world.bob.user_id) == 1
    assert await attempt(app_engine, world.bob, count, d=world.bob_device) == 4


async def test_claim_key_bundles_out_of_context_hands_out_nothing(
    client: httpx.AsyncClient, app_engine: AsyncEngine, world: World
) -> None:
    claim = "SELECT count(*) FROM encryption.claim_key_bundles(:t)"
    left = "SELECT count(*) FROM encryption.one_time_prekeys"
    assert await attempt(app_engine, None, claim, t=world.bob.user_id) == REFUSED
    blocked = await client.put(f"/v1/blocks/{world.mallory.user_id}", headers=world.bob.headers)
    assert blocked.status_code == 200, blocked.text
    assert await attempt(app_engine, world.mallory, claim, t=world.bob.user_id) == NOT_FOUND
    assert await attempt(app_engine, world.bob, left) == 5


async def test_device_owner_in_answers_only_within_the_callers_conversations(
    app_engine: AsyncEngine, world: World
) -> None:
    asked = "SELECT encryption.device_owner_in(:d, :c)"
    assert await attempt(app_engine, world.alice, asked, d=world.bob_device, c=world.room) == UUID(world.bob.user_id)
    assert await attempt(app_engine, world.mallory, asked, d=world.bob_device, c=world.room) is None
    assert await attempt(app_engine, None, asked, d=world.bob_device, c=world.room) is None
    assert await attempt(app_engine, world.alice, asked, d=world.mallory_device, c=world.room) is None


async def test_the_database_refuses_text_in_an_encrypted_room(app_engine: AsyncEngine, world: World) -> None:
    plain = await attempt(
        app_engine,
        world.alice,
        "INSERT INTO messaging.messages (id, conversation_id, sender_id, content, created_at)"
        " VALUES (:m, :c, :u, 'in the clear', now()) RETURNING seq",
        m="0192f0c0-0000-7000-8000-0000000000aa",
        c=world.room,
        u=world.alice.user_id,
    )
    assert plain == "RM409 conversation-encrypted"
    edited = await changed(
        app_engine,
        world.alice,
        "UPDATE messaging.messages SET content = 'in the clear' WHERE conversation_id = :c AND id = :m RETURNING 1",
        c=world.room,
        m=world.message_id,
    )
    assert edited == "RM409 conversation-encrypted"
    flipped = await changed(
        app_engine,
        world.alice,
        "UPDATE messaging.conversations SET is_encrypted = false WHERE id = :c RETURNING 1",
        c=world.room,
    )
    assert flipped == DENIED
