"""Encrypted conversations and messages: made encrypted at creation, a send of ciphertexts
to each device, an edit, each device's envelopes and their acknowledgement, and the
refusals of a plain send where ciphertexts go (and the other way round)."""

from __future__ import annotations

from uuid import UUID

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime
from tests.encryption.support import ciphertext, open_encrypted, register, send_encrypted
from tests.messaging.messages_support import events_of
from tests.messaging.support import make_conversation, send
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database


def envelopes_of(device: str) -> str:
    return f"/v1/encryption/devices/{device}/envelopes"


async def test_encrypted_is_for_direct_and_group_only(client: httpx.AsyncClient, alice: Persona) -> None:
    for kind in ("channel", "broadcast"):
        response = await client.post(
            "/v1/conversations", json={"type": kind, "name": "Open", "is_encrypted": True}, headers=alice.headers
        )
        assert (response.status_code, problem_type(response)) == (422, "validation-error"), response.text


async def test_a_pair_has_one_plain_and_one_encrypted_direct_conversation(
    client: httpx.AsyncClient, alice: Persona, bob: Persona
) -> None:
    plain = await client.post(
        "/v1/conversations", json={"type": "direct", "participant_ids": [bob.user_id]}, headers=alice.headers
    )
    secret = await open_encrypted(client, alice, bob, type="direct")
    again = await open_encrypted(client, bob, alice, type="direct")
    assert plain.json()["is_encrypted"] is False
    assert secret != plain.json()["id"]
    assert again == secret
    shown = await client.get(f"/v1/conversations/{secret}", headers=bob.headers)
    assert (shown.json()["is_encrypted"], shown.json()["direct_with"]) == (True, alice.user_id)


async def test_a_plain_send_to_an_encrypted_conversation_is_refused(
    client: httpx.AsyncClient, alice: Persona, bob: Persona
) -> None:
    room = await open_encrypted(client, alice, bob)
    response = await client.post(
        f"/v1/conversations/{room}/messages", json={"content": "in the clear"}, headers=alice.headers
    )
    assert (response.status_code, problem_type(response)) == (409, "conversation-encrypted")


async def test_an_encrypted_send_to_a_plain_conversation_is_refused(
    client: httpx.AsyncClient, app_engine: AsyncEngine, alice: Persona, bob: Persona
) -> None:
    device = await register(client, alice)
    room = await make_conversation(app_engine, alice, bob)
    response = await send_encrypted(client, alice, room, device, [device])
    assert (response.status_code, problem_type(response)) == (409, "conversation-not-encrypted")


async def test_a_message_reaches_each_device_and_is_acknowledged(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, bob: Persona
) -> None:
    alice_phone, alice_laptop = await register(client, alice, "phone"), await register(client, alice, "laptop")
    bob_phone = await register(client, bob)
    room = await open_encrypted(client, alice, bob)
    sealed = {bob_phone: ciphertext(), alice_laptop: ciphertext()}
    response = await client.post(
        f"/v1/conversations/{room}/encrypted-messages",
        json={
            "sender_device_id": alice_phone,
            "envelopes": [{"device_id": d, "type": "prekey", "ciphertext": c} for d, c in sealed.items()],
        },
        headers=alice.headers,
    )
    assert response.status_code == 201, response.text
    message = response.json()
    assert (message["content"], message["content_encrypted"], message["seq"]) == ("", True, 1)
    created = [e for e in await events_of(runtime, room) if e["type"] == "message.created"]
    assert [e["payload"]["message_id"] for e in created] == [message["id"]]

    for persona, device in ((bob, bob_phone), (alice, alice_laptop)):
        page = await client.get(envelopes_of(device), headers=persona.headers)
        assert page.status_code == 200, page.text
        [envelope] = page.json()["items"]
        assert envelope["ciphertext"] == sealed[device]
        assert (envelope["message_id"], envelope["conversation_id"], envelope["seq"]) == (message["id"], room, 1)
        assert (envelope["sender_id"], envelope["sender_device_id"]) == (alice.user_id, alice_phone)
        assert (envelope["type"], envelope["edit"]) == ("prekey", False)
    assert (await client.get(envelopes_of(alice_phone), headers=alice.headers)).json()["items"] == []

    [envelope] = (await client.get(envelopes_of(bob_phone), headers=bob.headers)).json()["items"]
    acked = await client.post(f"{envelopes_of(bob_phone)}/ack", json={"up_to": envelope["id"]}, headers=bob.headers)
    assert acked.status_code == 204
    assert (await client.get(envelopes_of(bob_phone), headers=bob.headers)).json() == {"items": [], "next": None}
    history = await client.get(f"/v1/conversations/{room}/messages", headers=bob.headers)
    assert [(m["content"], m["content_encrypted"]) for m in history.json()["items"]] == [("", True)]


async def test_envelopes_come_in_pages(client: httpx.AsyncClient, alice: Persona, bob: Persona) -> None:
    sender, receiver = await register(client, alice), await register(client, bob)
    room = await open_encrypted(client, alice, bob)
    for _ in range(3):
        assert (await send_encrypted(client, alice, room, sender, [receiver])).status_code == 201
    first = (await client.get(envelopes_of(receiver), params={"limit": 2}, headers=bob.headers)).json()
    assert len(first["items"]) == 2 and first["next"] == first["items"][-1]["id"]
    rest = await client.get(envelopes_of(receiver), params={"after": first["next"]}, headers=bob.headers)
    assert [e["seq"] for e in rest.json()["items"]] == [3]
    assert rest.json()["next"] is None
    for params in ({"limit": 0}, {"limit": 501}, {"after": "nope"}):
        bad = await client.get(envelopes_of(receiver), params=params, headers=bob.headers)
        assert bad.status_code == 422, bad.text


async def test_a_device_added_later_reads_only_what_follows(
    client: httpx.AsyncClient, alice: Persona, bob: Persona
) -> None:
    sender, first = await register(client, alice), await register(client, bob, "phone")
    room = await open_encrypted(client, alice, bob)
    await send_encrypted(client, alice, room, sender, [first])
    later = await register(client, bob, "tablet")
    assert (await client.get(envelopes_of(later), headers=bob.headers)).json()["items"] == []
    await send_encrypted(client, alice, room, sender, [first, later])
    [envelope] = (await client.get(envelopes_of(later), headers=bob.headers)).json()["items"]
    assert envelope["seq"] == 2


async def test_an_envelope_goes_only_to_a_participants_device(
    client: httpx.AsyncClient, alice: Persona, bob: Persona, mallory: Persona
) -> None:
    mine, bobs, hers = await register(client, alice), await register(client, bob), await register(client, mallory)
    room = await open_encrypted(client, alice, bob)
    stranger = await send_encrypted(client, alice, room, mine, [bobs, hers])
    assert (stranger.status_code, problem_type(stranger)) == (422, "unknown-device")
    assert stranger.json()["device_id"] == hers
    unknown = await send_encrypted(client, alice, room, mine, ["0192f0c0-0000-7000-8000-000000000000"])
    assert problem_type(unknown) == "unknown-device"
    not_mine = await send_encrypted(client, alice, room, bobs, [bobs])
    assert (not_mine.status_code, not_mine.json()["device_id"]) == (422, bobs)
    history = await client.get(f"/v1/conversations/{room}/messages", headers=alice.headers)
    assert history.json()["items"] == [], "a refused send leaves nothing"


@pytest.mark.parametrize(
    "envelopes",
    [
        [],
        [{"device_id": "{d}", "type": "prekey", "ciphertext": ""}],
        [{"device_id": "{d}", "type": "whisper", "ciphertext": "AAAA"}],
        [{"device_id": "{d}", "type": "message", "ciphertext": "not base64"}],
        [{"device_id": "{d}", "type": "message", "ciphertext": "AAAA"}] * 2,
        [{"device_id": "{d}", "type": "message", "ciphertext": "A" * (65_536 * 4 // 3 + 8)}],
    ],
)
async def test_bad_envelopes_are_refused(
    client: httpx.AsyncClient, alice: Persona, bob: Persona, envelopes: list[dict[str, str]]
) -> None:
    device = await register(client, alice)
    room = await open_encrypted(client, alice, bob)
    body = {
        "sender_device_id": device,
        "envelopes": [{**e, "device_id": e["device_id"].format(d=device)} for e in envelopes],
    }
    response = await client.post(f"/v1/conversations/{room}/encrypted-messages", json=body, headers=alice.headers)
    assert response.status_code in (413, 422), response.text


async def test_a_retried_send_makes_one_message(client: httpx.AsyncClient, alice: Persona, bob: Persona) -> None:
    sender, receiver = await register(client, alice), await register(client, bob)
    room = await open_encrypted(client, alice, bob)
    first = await send_encrypted(client, alice, room, sender, [receiver], client_message_id="m-1")
    again = await send_encrypted(client, alice, room, sender, [receiver], client_message_id="m-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert len((await client.get(envelopes_of(receiver), headers=bob.headers)).json()["items"]) == 1


async def test_a_reply_must_be_to_a_message_here(client: httpx.AsyncClient, alice: Persona, bob: Persona) -> None:
    sender, receiver = await register(client, alice), await register(client, bob)
    room = await open_encrypted(client, alice, bob)
    first = (await send_encrypted(client, alice, room, sender, [receiver])).json()
    reply = await send_encrypted(client, alice, room, sender, [receiver], reply_to=first["id"])
    assert (reply.status_code, reply.json()["reply_to_id"]) == (201, first["id"])
    astray = await send_encrypted(client, alice, room, sender, [receiver], reply_to=receiver)
    assert (astray.status_code, problem_type(astray)) == (422, "reply-not-found")


async def test_an_edit_shows_and_reaches_the_devices(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, bob: Persona
) -> None:
    sender, receiver = await register(client, alice), await register(client, bob)
    room = await open_encrypted(client, alice, bob)
    message = (await send_encrypted(client, alice, room, sender, [receiver])).json()
    path = f"/v1/conversations/{room}/encrypted-messages/{message['id']}"
    body = {"sender_device_id": sender, "envelopes": [{"device_id": receiver, "type": "message", "ciphertext": "AQID"}]}
    edited = await client.put(path, json=body, headers=alice.headers)
    assert edited.status_code == 200, edited.text
    assert (edited.json()["is_edited"], edited.json()["content"]) == (True, "")
    items = (await client.get(envelopes_of(receiver), headers=bob.headers)).json()["items"]
    assert [(e["edit"], e["message_id"]) for e in items] == [(False, message["id"]), (True, message["id"])]
    versions = await client.get(f"/v1/conversations/{room}/messages/{message['id']}/edits", headers=bob.headers)
    assert [v["content"] for v in versions.json()["items"]] == [""]
    assert "message.edited" in [e["type"] for e in await events_of(runtime, room)]

    bobs = await client.put(path, json={**body, "sender_device_id": receiver}, headers=bob.headers)
    assert (bobs.status_code, problem_type(bobs)) == (403, "not-allowed-in-conversation")
    clear = await client.patch(
        f"/v1/conversations/{room}/messages/{message['id']}", json={"content": "clear"}, headers=alice.headers
    )
    assert (clear.status_code, problem_type(clear)) == (409, "conversation-encrypted")


async def test_an_encrypted_edit_of_a_plain_message_is_refused(
    client: httpx.AsyncClient, app_engine: AsyncEngine, alice: Persona, bob: Persona
) -> None:
    device = await register(client, alice)
    room = await make_conversation(app_engine, alice, bob)
    plain = await send(client, alice, room, "hello")
    response = await client.put(
        f"/v1/conversations/{room}/encrypted-messages/{plain['id']}",
        json={
            "sender_device_id": device,
            "envelopes": [{"device_id": device, "type": "message", "ciphertext": "AQ=="}],
        },
        headers=alice.headers,
    )
    assert (response.status_code, problem_type(response)) == (409, "conversation-not-encrypted")


async def test_delete_reactions_and_read_markers_work_as_anywhere(
    client: httpx.AsyncClient, alice: Persona, bob: Persona
) -> None:
    sender, receiver = await register(client, alice), await register(client, bob)
    room = await open_encrypted(client, alice, bob)
    message = (await send_encrypted(client, alice, room, sender, [receiver])).json()
    path = f"/v1/conversations/{room}/messages/{message['id']}"
    reacted = await client.put(f"{path}/reactions/👍", headers=bob.headers)
    assert reacted.status_code in (200, 201, 204), reacted.text
    read = await client.post(f"/v1/conversations/{room}/read", json={"message_id": message["id"]}, headers=bob.headers)
    assert read.status_code in (200, 204), read.text
    assert (await client.delete(path, headers=alice.headers)).status_code == 204
    shown = await client.get(path, headers=bob.headers)
    assert (shown.json()["is_deleted"], shown.json()["content_encrypted"]) == (True, True)


async def test_nothing_reads_or_flags_an_encrypted_message(
    client: httpx.AsyncClient, app_engine: AsyncEngine, alice: Persona, bob: Persona
) -> None:
    """Search and the blocked terms work on `content`, which is empty: an encrypted
    message is indexed by nothing and flagged by nothing."""
    sender, receiver = await register(client, alice), await register(client, bob)
    room = await open_encrypted(client, alice, bob)
    message = (await send_encrypted(client, alice, room, sender, [receiver])).json()
    async with app_engine.connect() as db:
        await db.execute(text("SELECT set_config('rapport.user_id', :u, false)"), {"u": alice.user_id})
        row = (
            await db.execute(
                text(
                    "SELECT content, search::text AS search, moderation_flagged FROM messaging.messages"
                    " WHERE conversation_id = :c AND id = :m"
                ),
                {"c": UUID(room), "m": UUID(message["id"])},
            )
        ).one()
    assert (row.content, row.search, row.moderation_flagged) == ("", "", False)


async def test_an_encrypted_message_is_not_forwarded_by_the_server(
    client: httpx.AsyncClient, app_engine: AsyncEngine, alice: Persona, bob: Persona
) -> None:
    sender, receiver = await register(client, alice), await register(client, bob)
    room = await open_encrypted(client, alice, bob)
    message = (await send_encrypted(client, alice, room, sender, [receiver])).json()
    elsewhere = await make_conversation(app_engine, bob, alice)
    response = await client.post(
        f"/v1/conversations/{room}/messages/{message['id']}/forward",
        json={"conversation_ids": [str(elsewhere)]},
        headers=bob.headers,
    )
    assert (response.status_code, problem_type(response)) == (409, "conversation-encrypted")


async def test_a_blocked_term_flags_no_encrypted_message(
    client: httpx.AsyncClient, runtime: Runtime, app_engine: AsyncEngine, alice: Persona, bob: Persona, carol: Persona
) -> None:
    """The blocked terms match `content`, which an encrypted message leaves empty: not its
    ciphertext's text either, though a term here is a piece of it, at the send or an edit."""
    sender, receiver = await register(client, alice), await register(client, bob)
    room = await open_encrypted(client, alice, bob)
    sealed = ciphertext(96)
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(text("UPDATE auth.users SET is_admin = true WHERE id = :id"), {"id": carol.user_id})
    for term in ("scam", sealed[8:40].lower()):
        added = await client.post("/v1/admin/moderation/blocked-terms", json={"term": term}, headers=carol.headers)
        assert added.status_code == 201, added.text
    plain_room = await make_conversation(app_engine, alice, bob)
    plain = await send(client, alice, plain_room, "what a scam")

    envelopes = [{"device_id": receiver, "type": "prekey", "ciphertext": sealed}]
    sent = await client.post(
        f"/v1/conversations/{room}/encrypted-messages",
        json={"sender_device_id": sender, "envelopes": envelopes},
        headers=alice.headers,
    )
    assert sent.status_code == 201, sent.text
    message = sent.json()
    edited = await client.put(
        f"/v1/conversations/{room}/encrypted-messages/{message['id']}",
        json={"sender_device_id": sender, "envelopes": [{**envelopes[0], "type": "message"}]},
        headers=alice.headers,
    )
    assert edited.status_code == 200, edited.text

    assert plain["moderation_flagged"] is True, "the terms are in force"
    assert (message["moderation_flagged"], edited.json()["moderation_flagged"]) == (False, False)
    queue = await client.get(f"/v1/conversations/{room}/moderation/flagged", headers=alice.headers)
    assert queue.status_code == 200, queue.text
    assert queue.json()["items"] == []
    async with app_engine.connect() as db:
        await db.execute(text("SELECT set_config('rapport.user_id', :u, false)"), {"u": alice.user_id})
        flagged = (
            await db.execute(
                text("SELECT moderation_flagged FROM messaging.messages WHERE conversation_id = :c AND id = :m"),
                {"c": UUID(room), "m": UUID(message["id"])},
            )
        ).scalar_one()
    assert flagged is False
