"""Pins (PUT/DELETE /v1/conversations/{id}/pins/{message_id}, GET /v1/conversations/{id}/pins):
members and above pin; everyone taking part reads them, each with its message rendered.

Alice owns a group with bob (a member); carol is an observer or a guest where the test
says so; mallory is a stranger."""

from __future__ import annotations

from uuid import UUID

import pytest
from sqlalchemy import text

from rapport.kernel.db import user_transaction
from rapport.kernel.ids import uuid7
from tests.messaging.messages_support import events_of, history, message_path, types_of
from tests.messaging.support import make_conversation, send
from tests.support import problem_type

pytestmark = pytest.mark.module_database


def pin_path(conversation_id: UUID, message_id: str) -> str:
    return f"/v1/conversations/{conversation_id}/pins/{message_id}"


async def pins(client, persona, conversation_id: UUID, **params) -> dict:
    response = await client.get(f"/v1/conversations/{conversation_id}/pins", headers=persona.headers, params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_member_pins_and_everyone_reads_the_pinned_message(client, app_engine, runtime, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, conversation, "the address is 12 Elm St")

    pinned = await client.put(pin_path(conversation, sent["id"]), headers=bob.headers)
    again = await client.put(pin_path(conversation, sent["id"]), headers=alice.headers)

    assert (pinned.status_code, again.status_code) == (204, 204)
    page = await pins(client, alice, conversation)
    [pin] = page["items"]
    [in_history] = await history(client, alice, conversation)
    assert pin["message"] == in_history
    assert pin["pinned_by"] == bob.user_id and pin["pinned_at"] is not None
    assert page["next"] is None
    added = [e for e in await events_of(runtime, conversation) if e["type"] == "pin.added"]
    assert [e["payload"] for e in added] == [{"message_id": sent["id"], "seq": 1}]
    assert str(added[0]["actor_id"]) == bob.user_id


async def test_an_unpinned_message_leaves_the_list(client, app_engine, runtime, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, conversation, "for a while")
    await client.put(pin_path(conversation, sent["id"]), headers=alice.headers)

    unpinned = await client.delete(pin_path(conversation, sent["id"]), headers=bob.headers)
    again = await client.delete(pin_path(conversation, sent["id"]), headers=bob.headers)

    assert (unpinned.status_code, again.status_code) == (204, 204)
    assert (await pins(client, alice, conversation))["items"] == []
    assert (await types_of(runtime, conversation)).count("pin.removed") == 1


async def test_pins_come_newest_message_first_a_page_at_a_time(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = [await send(client, alice, conversation, f"m{n}") for n in range(3)]
    for message in sent:
        await client.put(pin_path(conversation, message["id"]), headers=alice.headers)

    first = await pins(client, bob, conversation, limit=2)
    second = await pins(client, bob, conversation, limit=2, cursor=first["next"])

    assert [p["message"]["content"] for p in first["items"]] == ["m2", "m1"]
    assert [p["message"]["content"] for p in second["items"]] == ["m0"]
    assert second["next"] is None


@pytest.mark.parametrize("role", ["observer", "guest"])
async def test_observers_and_guests_cannot_pin(client, app_engine, runtime, alice, carol, role):
    conversation = await make_conversation(app_engine, alice, carol, roles={"carol": role})
    sent = await send(client, alice, conversation, "important")
    await client.put(pin_path(conversation, sent["id"]), headers=alice.headers)

    pin = await client.put(pin_path(conversation, sent["id"]), headers=carol.headers)
    unpin = await client.delete(pin_path(conversation, sent["id"]), headers=carol.headers)

    assert (pin.status_code, problem_type(pin)) == (403, "not-allowed-in-conversation")
    assert (unpin.status_code, problem_type(unpin)) == (403, "not-allowed-in-conversation")
    # They read the pins all the same.
    assert [p["message"]["id"] for p in (await pins(client, carol, conversation))["items"]] == [sent["id"]]
    assert "pin.removed" not in await types_of(runtime, conversation)


async def test_strangers_neither_pin_nor_read_pins(client, app_engine, alice, bob, mallory):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, conversation, "ours")
    await client.put(pin_path(conversation, sent["id"]), headers=alice.headers)

    pin = await client.put(pin_path(conversation, sent["id"]), headers=mallory.headers)
    unpin = await client.delete(pin_path(conversation, sent["id"]), headers=mallory.headers)
    listing = await client.get(f"/v1/conversations/{conversation}/pins", headers=mallory.headers)

    for response in (pin, unpin, listing):
        assert (response.status_code, problem_type(response)) == (404, "conversation-not-found")
    assert len((await pins(client, alice, conversation))["items"]) == 1


async def test_deleting_a_message_unpins_it_and_a_deleted_one_cannot_be_pinned(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, conversation, "soon gone")
    await client.put(pin_path(conversation, sent["id"]), headers=alice.headers)

    await client.delete(message_path(conversation, sent["id"]), headers=alice.headers)
    again = await client.put(pin_path(conversation, sent["id"]), headers=bob.headers)
    unknown = await client.put(pin_path(conversation, str(uuid7())), headers=bob.headers)

    assert (await pins(client, bob, conversation))["items"] == []
    assert (again.status_code, problem_type(again)) == (404, "message-not-found")
    assert (unknown.status_code, problem_type(unknown)) == (404, "message-not-found")


async def test_pins_of_messages_before_one_s_window_stay_out_of_sight(client, app_engine, alice, bob, carol):
    conversation = await make_conversation(app_engine, alice, bob)
    before = await send(client, alice, conversation, "before carol")
    await client.put(pin_path(conversation, before["id"]), headers=alice.headers)
    async with user_transaction(app_engine, UUID(alice.user_id)) as db:
        await db.execute(
            text("SELECT messaging.add_participant(:c, :u, 'member', false)"), {"c": conversation, "u": carol.user_id}
        )
    after = await send(client, alice, conversation, "after carol")
    await client.put(pin_path(conversation, after["id"]), headers=alice.headers)

    assert [p["message"]["id"] for p in (await pins(client, carol, conversation))["items"]] == [after["id"]]
    refused = await client.put(pin_path(conversation, before["id"]), headers=carol.headers)
    assert (refused.status_code, problem_type(refused)) == (404, "message-not-found")


@pytest.mark.parametrize(
    ("params", "kind"),
    [({"limit": 0}, "validation-error"), ({"limit": 201}, "validation-error"), ({"cursor": "!!"}, "invalid-cursor")],
)
async def test_bad_pin_pages_are_refused(client, app_engine, alice, bob, params, kind):
    conversation = await make_conversation(app_engine, alice, bob)

    response = await client.get(f"/v1/conversations/{conversation}/pins", headers=alice.headers, params=params)

    assert response.status_code in (400, 422) and problem_type(response) == kind
