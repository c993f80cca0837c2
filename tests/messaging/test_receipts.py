"""Receipts: GET /v1/conversations/{id}/messages/{id}/receipts (read by, delivered to,
derived from each participant's markers) and POST /v1/conversations/{id}/delivered (the
delivered marker, never backwards). A reader who does not share read receipts shows as
delivered only.

Alice owns a group with bob and carol; mallory is a stranger."""

from __future__ import annotations

from uuid import UUID

import pytest

from rapport.kernel.ids import uuid7
from tests.messaging.messages_support import events_of, message_path, types_of
from tests.messaging.support import make_conversation, send
from tests.support import problem_type

pytestmark = pytest.mark.module_database


async def receipts(client, persona, conversation_id: UUID, message_id: str, **params) -> dict:
    response = await client.get(
        f"{message_path(conversation_id, message_id)}/receipts", headers=persona.headers, params=params
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def delivered(client, persona, conversation_id: UUID, message_id: str):
    return await client.post(
        f"/v1/conversations/{conversation_id}/delivered", json={"message_id": message_id}, headers=persona.headers
    )


async def read(client, persona, conversation_id: UUID, message_id: str) -> None:
    response = await client.post(
        f"/v1/conversations/{conversation_id}/read", json={"message_id": message_id}, headers=persona.headers
    )
    assert response.status_code == 200, response.text


async def test_receipts_follow_the_markers(client, app_engine, alice, bob, carol):
    conversation = await make_conversation(app_engine, alice, bob, carol)
    sent = await send(client, alice, conversation, "are you there?")
    assert await receipts(client, alice, conversation, sent["id"]) == {
        "message_id": sent["id"],
        "read_by": [],
        "delivered_to": [],
        "next": None,
    }

    reached = await delivered(client, bob, conversation, sent["id"])
    assert reached.status_code == 200, reached.text
    state = reached.json()
    assert (state["delivered_seq"], state["read_seq"], state["unread_count"]) == (1, 0, 1)
    assert (await receipts(client, alice, conversation, sent["id"]))["delivered_to"] == [{"user_id": bob.user_id}]

    await read(client, carol, conversation, sent["id"])
    now = await receipts(client, bob, conversation, sent["id"])
    [by_carol] = now["read_by"]
    assert by_carol["user_id"] == carol.user_id and by_carol["read_at"] is not None
    assert now["delivered_to"] == [{"user_id": bob.user_id}]


async def test_a_reader_who_hides_read_receipts_shows_as_delivered(client, app_engine, runtime, alice, bob, carol):
    conversation = await make_conversation(app_engine, alice, bob, carol)
    sent = await send(client, alice, conversation, "did you read this?")
    setting = await client.patch("/v1/settings", json={"read_receipts_enabled": False}, headers=carol.headers)
    assert setting.status_code == 200, setting.text

    await read(client, bob, conversation, sent["id"])
    await read(client, carol, conversation, sent["id"])

    seen = await receipts(client, alice, conversation, sent["id"])
    assert [r["user_id"] for r in seen["read_by"]] == [bob.user_id]
    assert seen["delivered_to"] == [{"user_id": carol.user_id}]
    # Carol's read marker is hers alone: the conversation hears only bob's.
    reads = [e for e in await events_of(runtime, conversation) if e["type"] == "receipt.read"]
    assert {e["payload"]["user_id"] for e in reads} == {bob.user_id}


async def test_the_delivered_marker_never_moves_back(client, app_engine, runtime, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    first = await send(client, alice, conversation, "one")
    second = await send(client, alice, conversation, "two")

    ahead = await delivered(client, bob, conversation, second["id"])
    behind = await delivered(client, bob, conversation, first["id"])
    again = await delivered(client, bob, conversation, second["id"])

    assert [r.json()["delivered_seq"] for r in (ahead, behind, again)] == [2, 2, 2]
    assert [r.json()["unread_count"] for r in (ahead, behind, again)] == [2, 2, 2]
    # Delivering the first message after the second reached bob covers it too.
    assert (await receipts(client, alice, conversation, first["id"]))["delivered_to"] == [{"user_id": bob.user_id}]
    events = [e for e in await events_of(runtime, conversation) if e["type"] == "receipt.delivered"]
    assert [e["payload"] for e in events] == [
        {"conversation_id": str(conversation), "user_id": bob.user_id, "delivered_seq": 2}
    ]
    assert str(events[0]["actor_id"]) == bob.user_id


async def test_a_sender_is_not_their_own_receipt(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, conversation, "mine")

    await delivered(client, alice, conversation, sent["id"])

    assert await receipts(client, alice, conversation, sent["id"]) == {
        "message_id": sent["id"],
        "read_by": [],
        "delivered_to": [],
        "next": None,
    }


async def test_receipts_come_a_page_at_a_time(client, app_engine, alice, bob, carol, mallory):
    conversation = await make_conversation(app_engine, alice, bob, carol, mallory)
    sent = await send(client, alice, conversation, "everyone?")
    for persona in (bob, carol, mallory):
        await read(client, persona, conversation, sent["id"])

    seen, cursor = [], None
    while True:
        page = await receipts(
            client, alice, conversation, sent["id"], limit=2, **({"cursor": cursor} if cursor else {})
        )
        seen += [r["user_id"] for r in page["read_by"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == sorted([bob.user_id, carol.user_id, mallory.user_id])


async def test_strangers_see_no_receipts_and_mark_nothing(client, app_engine, runtime, alice, bob, mallory):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, conversation, "ours")

    listing = await client.get(f"{message_path(conversation, sent['id'])}/receipts", headers=mallory.headers)
    marking = await delivered(client, mallory, conversation, sent["id"])
    unknown = await client.get(f"{message_path(conversation, str(uuid7()))}/receipts", headers=alice.headers)
    unknown_marked = await delivered(client, bob, conversation, str(uuid7()))

    assert (listing.status_code, problem_type(listing)) == (404, "conversation-not-found")
    assert (marking.status_code, problem_type(marking)) == (404, "conversation-not-found")
    assert (unknown.status_code, problem_type(unknown)) == (404, "message-not-found")
    assert (unknown_marked.status_code, problem_type(unknown_marked)) == (404, "message-not-found")
    assert "receipt.delivered" not in await types_of(runtime, conversation)


@pytest.mark.parametrize(
    "body", [{}, {"message_id": "nope"}, {"message_id": 5}, {"message_id": None}, {"message_id": str(uuid7()), "x": 1}]
)
async def test_bad_delivered_markers_are_refused(client, app_engine, alice, bob, body):
    conversation = await make_conversation(app_engine, alice, bob)

    response = await client.post(f"/v1/conversations/{conversation}/delivered", json=body, headers=bob.headers)

    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_a_bad_receipts_cursor_is_refused(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, conversation, "hi")

    response = await client.get(
        f"{message_path(conversation, sent['id'])}/receipts", params={"cursor": "!!"}, headers=alice.headers
    )

    assert (response.status_code, problem_type(response)) == (400, "invalid-cursor")
