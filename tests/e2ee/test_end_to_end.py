"""End-to-end encryption, proved with the reference client (tests/e2ee/client.py): alice
and bob, two devices each, set up Signal sessions through Rapport's key directory and
talk in an encrypted direct conversation and an encrypted group; every device reads what
was addressed to it, its owner's own messages from their other device included; a device
added later reads only what was sent after it existed; and afterwards no table holds any
of the plaintext, nor of a draft the co-parenting analysis was asked to look at."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from rapport.kernel import provisioning
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from tests.e2ee.client import Device, Received, b64
from tests.support import Persona, befriend, problem_type

pytestmark = pytest.mark.module_database


@dataclass
class World:
    alice: Persona
    bob: Persona
    alice_laptop: Device
    alice_phone: Device
    bob_laptop: Device
    bob_phone: Device

    @property
    def devices(self) -> list[Device]:
        return [self.alice_laptop, self.alice_phone, self.bob_laptop, self.bob_phone]


@pytest.fixture
async def world(client: httpx.AsyncClient, alice: Persona, bob: Persona) -> World:
    await befriend(client, alice, bob)
    return World(
        alice,
        bob,
        await Device.register(client, alice, "Alice's laptop"),
        await Device.register(client, alice, "Alice's phone"),
        await Device.register(client, bob, "Bob's laptop"),
        await Device.register(client, bob, "Bob's phone"),
    )


async def encrypted_conversation(client: httpx.AsyncClient, creator: Persona, *others: Persona, type: str) -> str:
    body: dict[str, Any] = {"type": type, "is_encrypted": True, "participant_ids": [p.user_id for p in others]}
    if type == "group":
        body["name"] = "Allotment"
    made = await client.post("/v1/conversations", headers=creator.headers, json=body)
    assert made.status_code == 201, made.text
    conversation_id: str = made.json()["id"]
    return conversation_id


def texts(received: list[Received]) -> list[str]:
    return [r.text for r in received]


def assert_opaque(message: dict[str, Any]) -> None:
    assert message["content"] == "", message
    assert message["content_encrypted"] is True, message


# -- Conversations ------------------------------------------------------------------------


async def test_in_a_direct_conversation_every_device_reads_what_was_sent(
    client: httpx.AsyncClient, world: World
) -> None:
    room = await encrypted_conversation(client, world.alice, world.bob, type="direct")

    first = await world.alice_laptop.send(room, "The spare key is under the blue flowerpot")
    second = await world.alice_laptop.send(room, "Back by six", reply_to=first["id"])
    assert_opaque(first)
    assert second["reply_to_id"] == first["id"]

    for device in (world.alice_phone, world.bob_laptop, world.bob_phone):
        got = await device.receive()
        assert texts(got) == ["The spare key is under the blue flowerpot", "Back by six"], device.name
        assert [r.message_id for r in got] == [first["id"], second["id"]]
        assert {(r.sender_id, r.sender_device_id) for r in got} == {(world.alice.user_id, world.alice_laptop.id)}
        assert not device.undecryptable
    assert await world.alice_laptop.receive() == [], "a sender's device is not sent its own message"

    reply = await world.bob_phone.send(room, "Thanks, see you then")
    for device in (world.alice_laptop, world.alice_phone, world.bob_laptop):
        assert texts(await device.receive()) == ["Thanks, see you then"], device.name
    answer = await world.alice_phone.send(room, "Bring the ladder please")
    for device in (world.alice_laptop, world.bob_laptop, world.bob_phone):
        assert texts(await device.receive()) == ["Bring the ladder please"], device.name
    assert all(not device.undecryptable for device in world.devices)

    history = await client.get(f"/v1/conversations/{room}/messages", headers=world.bob.headers)
    assert history.status_code == 200, history.text
    listed = history.json()["items"]
    assert {m["id"] for m in listed} == {first["id"], second["id"], reply["id"], answer["id"]}
    for message in listed:
        assert_opaque(message)


async def test_the_first_message_of_a_session_is_a_prekey_message_and_later_ones_are_not(
    client: httpx.AsyncClient, world: World
) -> None:
    room = await encrypted_conversation(client, world.alice, world.bob, type="direct")
    await world.alice_laptop.send(room, "Are you awake")
    [first] = await world.bob_laptop.fetch_envelopes()
    assert first["type"] == "prekey"
    await world.bob_laptop.receive()
    await world.bob_laptop.send(room, "I am now")
    [answer] = await world.alice_laptop.fetch_envelopes()
    assert answer["type"] == "message", "bob's device answers in the session alice's started"
    await world.alice_laptop.receive()
    await world.alice_laptop.send(room, "Good")
    [later] = await world.bob_laptop.fetch_envelopes()
    assert later["type"] == "message", "once answered, alice's device stops sending prekey messages"


async def test_in_a_group_every_device_of_every_member_reads_what_was_sent(
    client: httpx.AsyncClient, world: World, carol: Persona
) -> None:
    await befriend(client, world.alice, carol)
    carol_phone = await Device.register(client, carol, "Carol's phone")
    room = await encrypted_conversation(client, world.alice, world.bob, carol, type="group")

    await world.bob_laptop.send(room, "Who waters the tomatoes on Sunday")
    await carol_phone.send(room, "I can, after the market")
    await world.alice_phone.send(room, "Perfect, the hose is by the shed")

    everyone = [*world.devices, carol_phone]
    said = {
        world.bob_laptop.id: "Who waters the tomatoes on Sunday",
        carol_phone.id: "I can, after the market",
        world.alice_phone.id: "Perfect, the hose is by the shed",
    }
    for device in everyone:
        got = await device.receive()
        expected = [text for sender, text in said.items() if sender != device.id]
        assert texts(got) == expected, device.name
        assert all(said[r.sender_device_id] == r.text for r in got)
        assert not device.undecryptable, device.undecryptable


async def test_a_device_added_later_reads_only_what_was_sent_after_it_existed(
    client: httpx.AsyncClient, world: World
) -> None:
    room = await encrypted_conversation(client, world.alice, world.bob, type="direct")
    before = [await world.alice_laptop.send(room, text) for text in ("Old news one", "Old news two")]
    for device in (world.alice_phone, world.bob_laptop):
        await device.receive()  # bob's phone leaves them queued

    bob_tablet = await Device.register(client, world.bob, "Bob's tablet")
    assert await bob_tablet.fetch_envelopes() == [], "nothing sent before it existed was addressed to it"
    assert {e["message_id"] for e in await world.bob_phone.fetch_envelopes()} == {m["id"] for m in before}
    after = await world.alice_laptop.send(room, "Fresh news for every device")
    own = await world.bob_phone.send(room, "Hello from my phone")

    got = await bob_tablet.receive()
    assert texts(got) == ["Fresh news for every device", "Hello from my phone"]
    assert {r.message_id for r in got} == {after["id"], own["id"]}
    assert not {r.message_id for r in got} & {m["id"] for m in before}
    assert not bob_tablet.undecryptable
    # The others fetched bob's key bundles again, saw the tablet and wrote to it; and it
    # writes to them.
    await bob_tablet.send(room, "Tablet here")
    for device in world.devices:
        assert "Tablet here" in texts(await device.receive()), device.name
        assert not device.undecryptable


async def test_edits_reach_every_device_and_deletes_empty_the_message(client: httpx.AsyncClient, world: World) -> None:
    room = await encrypted_conversation(client, world.alice, world.bob, type="direct")
    message = await world.alice_laptop.send(room, "Dinner at eight")
    for device in world.devices[1:]:
        await device.receive()

    edited = await world.alice_laptop.edit(room, message["id"], "Dinner at nine instead")
    assert edited["is_edited"] is True
    assert_opaque(edited)
    for device in world.devices[1:]:
        [edit] = await device.receive()
        assert (edit.message_id, edit.text, edit.edit) == (message["id"], "Dinner at nine instead", True), device.name

    reacted = await client.put(
        f"/v1/conversations/{room}/messages/{message['id']}/reactions/👍", headers=world.bob.headers
    )
    assert reacted.status_code == 204, reacted.text
    read = await client.post(
        f"/v1/conversations/{room}/read", headers=world.bob.headers, json={"message_id": message["id"]}
    )
    assert read.status_code < 300, read.text

    doomed = await world.bob_phone.send(room, "Wrong chat, ignore this")
    deleted = await client.delete(f"/v1/conversations/{room}/messages/{doomed['id']}", headers=world.bob.headers)
    assert deleted.status_code == 204, deleted.text
    shown = await client.get(f"/v1/conversations/{room}/messages/{doomed['id']}", headers=world.alice.headers)
    assert shown.status_code == 200, shown.text
    assert shown.json()["is_deleted"] is True
    assert shown.json()["content"] == ""

    # Someone else's message is not theirs to edit (as a plain edit: 403).
    refused = await client.put(
        f"/v1/conversations/{room}/encrypted-messages/{message['id']}",
        headers=world.bob.headers,
        json={
            "sender_device_id": world.bob_laptop.id,
            "envelopes": [{"device_id": world.alice_laptop.id, "type": "message", "ciphertext": b64(b"x" * 48)}],
        },
    )
    assert refused.status_code == 403, refused.text


# -- Keys ---------------------------------------------------------------------------------


async def test_each_one_time_prekey_is_handed_out_once_and_sessions_work_without_one(
    client: httpx.AsyncClient, world: World
) -> None:
    first = {
        d["device_id"]: d["one_time_prekey"]
        for d in await world.alice_laptop.fetch_bundles(world.bob.user_id, claim=True)
    }
    second = {
        d["device_id"]: d["one_time_prekey"]
        for d in await world.alice_laptop.fetch_bundles(world.bob.user_id, claim=True)
    }
    assert set(first) == set(second) == {world.bob_laptop.id, world.bob_phone.id}
    for device_id in first:
        assert first[device_id]["key_id"] != second[device_id]["key_id"]

    bob_tablet = await Device.register(client, world.bob, "Bob's tablet", one_time_prekeys=0)
    [bundle] = [
        d
        for d in await world.alice_laptop.fetch_bundles(world.bob.user_id, claim=True)
        if d["device_id"] == bob_tablet.id
    ]
    assert bundle["one_time_prekey"] is None
    room = await encrypted_conversation(client, world.alice, world.bob, type="direct")
    await world.alice_laptop.send(room, "Signed prekey only")
    assert texts(await bob_tablet.receive()) == ["Signed prekey only"]


async def test_a_revoked_device_is_no_longer_written_to(client: httpx.AsyncClient, world: World) -> None:
    room = await encrypted_conversation(client, world.alice, world.bob, type="direct")
    await world.alice_laptop.send(room, "Before the phone was lost")
    revoked = await client.delete(f"/v1/encryption/devices/{world.bob_phone.id}", headers=world.bob.headers)
    assert revoked.status_code == 204, revoked.text

    envelopes = await world.alice_laptop.envelopes_for(room, "After the phone was lost")
    assert {e["device_id"] for e in envelopes} == {world.alice_phone.id, world.bob_laptop.id}
    gone = await client.get(f"/v1/encryption/devices/{world.bob_phone.id}/envelopes", headers=world.bob.headers)
    assert (gone.status_code, problem_type(gone)) == (404, "encryption-device-not-found")


async def test_a_device_s_envelopes_come_oldest_first_page_by_page(client: httpx.AsyncClient, world: World) -> None:
    room = await encrypted_conversation(client, world.alice, world.bob, type="direct")
    sent = [await world.alice_laptop.send(room, f"Page test {n}") for n in range(3)]
    await world.alice_laptop.edit(room, sent[0]["id"], "Page test 0, edited")

    envelopes = await world.bob_laptop.fetch_envelopes(limit=1)
    assert [e["message_id"] for e in envelopes] == [m["id"] for m in sent] + [sent[0]["id"]]
    assert [e["edit"] for e in envelopes] == [False, False, False, True]
    assert [e["seq"] for e in envelopes[:3]] == [m["seq"] for m in sent]
    assert set(envelopes[0]) == {
        "id",
        "message_id",
        "conversation_id",
        "seq",
        "sender_id",
        "sender_device_id",
        "type",
        "ciphertext",
        "edit",
        "created_at",
    }
    first_page = await client.get(
        f"/v1/encryption/devices/{world.bob_laptop.id}/envelopes", headers=world.bob.headers, params={"limit": 2}
    )
    assert first_page.json()["next"] is not None
    assert [r.text for r in await world.bob_laptop.receive()] == [
        "Page test 0",
        "Page test 1",
        "Page test 2",
        "Page test 0, edited",
    ]


# -- Identity changes ----------------------------------------------------------------------


async def sync_until(
    client: httpx.AsyncClient, persona: Persona, found: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The first event of the persona's sync that `found` accepts (committed events may
    reach sync a moment after the request that made them)."""
    position = 0
    async with asyncio.timeout(10):
        while True:
            response = await client.get("/v1/sync", headers=persona.headers, params={"since": position})
            assert response.status_code == 200, response.text
            body = response.json()
            for event in body["events"]:
                if found(event):
                    return dict(event)
            position = body["position"]
            if not body["events"]:
                await asyncio.sleep(0.02)


async def test_a_changed_identity_key_is_announced_and_sessions_start_over(
    client: httpx.AsyncClient, world: World
) -> None:
    room = await encrypted_conversation(client, world.alice, world.bob, type="direct")
    await world.bob_laptop.send(room, "Before the reinstall")
    await world.alice_laptop.send(room, "Also before it")
    for device in world.devices:
        await device.receive()

    old_identity = world.alice_phone.keys.identity_key
    changed = await world.alice_phone.replace_identity()
    assert changed["identity_key"] == b64(world.alice_phone.keys.identity_key)

    event = await sync_until(client, world.bob, lambda e: e["type"] == "device.identity_changed")
    payload = event["payload"]
    assert (payload["user_id"], payload["device_id"]) == (world.alice.user_id, world.alice_phone.id)
    assert event["scope"] == {"kind": "conversation", "id": room}

    await world.bob_laptop.send(room, "After the reinstall")
    assert (
        world.alice_phone.id,
        old_identity,
        world.alice_phone.keys.identity_key,
    ) in world.bob_laptop.identity_changes
    assert texts(await world.alice_phone.receive()) == ["After the reinstall"]
    assert texts(await world.alice_laptop.receive()) == ["After the reinstall"]
    # Her own other device, too, sees the new key when it next writes, and starts over.
    await world.alice_laptop.send(room, "My phone was reinstalled")
    assert world.alice_phone.id in [device_id for device_id, _, _ in world.alice_laptop.identity_changes]
    assert texts(await world.alice_phone.receive()) == ["My phone was reinstalled"]
    assert texts(await world.bob_phone.receive()) == ["After the reinstall", "My phone was reinstalled"]
    assert all(not device.undecryptable for device in world.devices)


# -- What the server keeps -----------------------------------------------------------------

# Every column of every table of every schema Rapport owns, found in the catalogue (as
# tests/compliance/test_erase_proof.py finds them): each value is searched case-folded in
# its text form (jsonb, arrays and search vectors included), and a bytea one also for the
# bytes themselves.
_TABLES = """
SELECT format('%I.%I', n.nspname, c.relname) AS name,
       array_agg(format('%I', a.attname) ORDER BY a.attnum) AS columns,
       array_agg(a.atttypid = 'bytea'::regtype ORDER BY a.attnum) AS binary
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE n.nspowner = $1::text::regrole AND c.relkind IN ('r', 'p') AND NOT c.relispartition
 GROUP BY 1
 ORDER BY 1
"""


async def found_in_database(urls: DatabaseUrls, needles: list[str | bytes]) -> list[str]:
    """Every `table.column` holding one of the needles, and which: a text needle in any
    column's text, case folded, or as UTF-8 in a bytea column; a bytes needle in a bytea
    column. One pass over each table."""
    as_text = [needle.lower() if isinstance(needle, str) else None for needle in needles]
    as_bytes = [needle.encode() if isinstance(needle, str) else needle for needle in needles]
    conn = await asyncpg.connect(asyncpg_dsn(urls.admin.set(database=urls.app.database)))
    hits: list[str] = []
    try:
        for table in await conn.fetch(_TABLES, provisioning.OWNER_ROLE):
            values = ", ".join(
                f"('{column}', lower(t.{column}::text), {f't.{column}' if binary else 'NULL::bytea'})"
                for column, binary in zip(table["columns"], table["binary"], strict=True)
            )
            query = (
                f"SELECT DISTINCT n.i, v.name FROM {table['name']} t"
                f" CROSS JOIN generate_subscripts($1::text[], 1) AS n(i)"
                f" CROSS JOIN LATERAL (VALUES {values}) AS v(name, text, raw)"
                f" WHERE strpos(v.text, ($1::text[])[n.i]) > 0 OR position(($2::bytea[])[n.i] IN v.raw) > 0"
            )
            matches = await conn.fetch(query, as_text, as_bytes)
            hits += [f"{table['name']}.{m['name']}: {needles[m['i'] - 1]!r}" for m in matches]
    finally:
        await conn.close()
    return sorted(hits)


SAID = [
    "Quillfeather, the gate code is 4417",
    "Meet me under the marrowbine tree at dusk",
    "Snorkelwick says the parcel came Tuesday",
    "Glimmerfen soup recipe: two leeks, one turnip",
    "Zephyrine umbrella left at the station",
    "Brackenhollow is where we camp next weekend",
]
# A hostile draft for the encrypted conversation: for a plain one the co-parenting analysis
# would keep it with a suggested rewrite; for this one it must refuse and keep nothing.
DRAFT = "Send the Thornquillet papers by Monday or else I'm calling my lawyer!!"


async def test_no_table_holds_any_of_the_plaintext(
    client: httpx.AsyncClient,
    world: World,
    carol: Persona,
    database: DatabaseUrls,
    jobs_done: Callable[[], Awaitable[None]],
) -> None:
    await befriend(client, world.alice, carol)
    carol_phone = await Device.register(client, carol, "Carol's phone")
    direct = await encrypted_conversation(client, world.alice, world.bob, type="direct")
    group = await encrypted_conversation(client, world.alice, world.bob, carol, type="group")
    first = await world.alice_laptop.send(direct, SAID[0], client_message_id="retry-key-0001")
    await world.bob_phone.send(direct, SAID[1], reply_to=first["id"])
    doomed = await world.bob_laptop.send(group, SAID[2])
    await carol_phone.send(group, SAID[3])
    await world.alice_laptop.edit(direct, first["id"], SAID[4])
    deleted = await client.delete(f"/v1/conversations/{group}/messages/{doomed['id']}", headers=world.bob.headers)
    assert deleted.status_code == 204, deleted.text
    # Some envelopes read and acknowledged, others still queued: both are searched.
    for device in (world.alice_phone, world.bob_laptop):
        await device.receive()
    await world.alice_phone.send(group, SAID[5])
    consented = await client.post(
        "/v1/me/consents", headers=world.alice.headers, json={"consent_type": "ai_features", "granted": True}
    )
    assert consented.status_code == 201, consented.text
    analysed = await client.post(
        "/v1/coparenting/analysis", headers=world.alice.headers, json={"text": DRAFT, "conversation_id": direct}
    )
    assert (analysed.status_code, problem_type(analysed)) == (409, "analysis-conversation-encrypted")
    await jobs_done()

    # The search finds what is stored: names in text, and the devices' public keys.
    assert await found_in_database(database, ["Carol's phone"])
    identity = world.alice_laptop.keys.identity_key
    assert await found_in_database(database, [b64(identity), identity])

    needles: list[str | bytes] = [
        *SAID,
        DRAFT,
        *{word.strip(",:") for text in [*SAID, DRAFT] for word in text.split() if len(word) >= 8},
    ]
    found = await found_in_database(database, needles)
    assert found == [], "\n".join(found)
    for device in (world.alice_laptop, world.bob_phone, carol_phone):
        assert await device.receive(), "the queued envelopes were there to search"
