"""Sending (POST /v1/conversations/{id}/messages): the one-statement hot path.

Alice owns a group with bob; carol is an observer where the test says so; mallory is a
stranger."""

from __future__ import annotations

from uuid import UUID

import pytest
from sqlalchemy import text

from rapport.kernel.db import system_transaction
from rapport.kernel.ids import uuid7
from tests.messaging.support import make_conversation, send
from tests.support import problem_type

pytestmark = pytest.mark.module_database


def messages_of(conversation_id: UUID) -> str:
    return f"/v1/conversations/{conversation_id}/messages"


async def test_a_message_takes_the_next_sequence_and_comes_back_whole(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    first = await send(client, alice, conversation, "hello bob", content_metadata={"lang": "en"})
    second = await send(client, bob, conversation, "hello alice")
    assert (first["seq"], second["seq"]) == (1, 2)
    assert first["sender_id"] == alice.user_id and first["type"] == "text"
    assert first["content"] == "hello bob" and first["content_metadata"] == {"lang": "en"}
    assert first["reactions"] == [] and first["thread"] is None and not first["is_deleted"]


async def test_a_retry_with_the_same_client_message_id_returns_the_first_message(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    body = {"content": "only once", "client_message_id": "phone-1"}
    first = await client.post(messages_of(conversation), json=body, headers=alice.headers)
    retry = await client.post(messages_of(conversation), json=body, headers=alice.headers)
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json()["id"] == first.json()["id"]
    # The same client id from another sender is another message.
    other = await client.post(messages_of(conversation), json=body, headers=bob.headers)
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


async def test_the_client_message_id_is_shown_to_its_sender_only(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    await send(client, alice, conversation, "mine", client_message_id="a-1")
    mine = (await client.get(messages_of(conversation), headers=alice.headers)).json()["items"][0]
    theirs = (await client.get(messages_of(conversation), headers=bob.headers)).json()["items"][0]
    assert (mine["client_message_id"], theirs["client_message_id"]) == ("a-1", None)


async def test_mentions_keep_participants_only(client, app_engine, alice, bob, mallory):
    conversation = await make_conversation(app_engine, alice, bob)
    message = await send(client, alice, conversation, "hi @bob", mentions=[bob.user_id, mallory.user_id, alice.user_id])
    assert message["mentions"] == [bob.user_id]


async def test_a_reply_names_a_message_of_the_same_conversation(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    elsewhere = await make_conversation(app_engine, alice, bob)
    original = await send(client, alice, conversation, "question?")
    reply = await send(client, bob, conversation, "answer", reply_to=original["id"])
    assert reply["reply_to_id"] == original["id"]
    stray = await client.post(
        messages_of(elsewhere), json={"content": "x", "reply_to": original["id"]}, headers=bob.headers
    )
    assert stray.status_code == 422 and problem_type(stray) == "reply-not-found"


async def test_a_stranger_cannot_send_nor_learn_the_conversation_exists(client, app_engine, alice, bob, mallory):
    conversation = await make_conversation(app_engine, alice, bob)
    for target in (conversation, uuid7()):
        response = await client.post(messages_of(target), json={"content": "hi"}, headers=mallory.headers)
        assert response.status_code == 404 and problem_type(response) == "conversation-not-found"


@pytest.mark.parametrize(
    ("kind", "role"),
    [("group", "observer"), ("broadcast", "member"), ("broadcast", "moderator")],
)
async def test_observers_and_broadcast_listeners_cannot_send(client, app_engine, alice, bob, kind, role):
    conversation = await make_conversation(app_engine, alice, bob, type=kind, roles={"bob": role})
    response = await client.post(messages_of(conversation), json={"content": "hi"}, headers=bob.headers)
    assert response.status_code == 403 and problem_type(response) == "cannot-send"
    assert (
        await client.post(messages_of(conversation), json={"content": "hi"}, headers=alice.headers)
    ).status_code == 201


async def test_neither_side_of_a_direct_conversation_sends_across_a_block(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob, type="direct")
    await send(client, bob, conversation, "before")
    assert (await client.put(f"/v1/blocks/{bob.user_id}", headers=alice.headers)).status_code in (200, 201, 204)
    for sender in (alice, bob):
        response = await client.post(messages_of(conversation), json={"content": "hi"}, headers=sender.headers)
        assert response.status_code == 403 and problem_type(response) == "cannot-send"


async def test_an_archived_conversation_takes_no_messages(client, app_engine, runtime, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text("UPDATE messaging.conversations SET status = 'archived' WHERE id = :c"), {"c": conversation}
        )
    response = await client.post(messages_of(conversation), json={"content": "hi"}, headers=bob.headers)
    assert response.status_code == 409 and problem_type(response) == "conversation-not-active"


async def test_a_revoked_session_cannot_send(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    assert (await client.post("/v1/auth/logout", headers=alice.headers)).status_code in (200, 204)
    response = await client.post(messages_of(conversation), json={"content": "hi"}, headers=alice.headers)
    assert response.status_code == 401 and problem_type(response) == "invalid-token"


async def test_an_api_key_can_send(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    created = await client.post("/v1/auth/api-keys", json={"name": "bot"}, headers=alice.headers)
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    response = await client.post(
        messages_of(conversation), json={"content": "beep"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 201 and response.json()["sender_id"] == alice.user_id


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"content": ""},
        {"content": "   "},
        {"content": "x" * 10_001},
        {"content": 5},
        {"content": "hi", "type": "nonsense"},
        {"content": "hi", "type": "system"},
        {"content": "hi", "client_message_id": ""},
        {"content": "hi", "client_message_id": "x" * 101},
        {"content": "hi", "reply_to": "not-a-uuid"},
        {"content": "hi", "mentions": ["not-a-uuid"]},
        {"content": "hi", "mentions": [str(uuid7()) for _ in range(51)]},
        {"content": "hi", "content_metadata": []},
        {"content": "hi\u0000"},
        {"content": "hi", "unknown": 1},
    ],
)
async def test_bad_messages_are_refused_with_a_422(client, app_engine, alice, bob, body):
    conversation = await make_conversation(app_engine, alice, bob)
    response = await client.post(messages_of(conversation), json=body, headers=alice.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_message_that_is_not_text_may_have_no_caption(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    message = await send(client, alice, conversation, "", type="location", content_metadata={"lat": 1.5, "lon": 2.5})
    assert message["type"] == "location" and message["content"] == ""


async def test_sending_publishes_one_event_whatever_the_conversation_size(
    client, app_engine, runtime, alice, bob, carol
):
    conversation = await make_conversation(app_engine, alice, bob, carol)
    message = await send(client, alice, conversation, "to all")
    async with system_transaction(runtime.system_engine) as db:
        rows = (
            await db.execute(
                text("SELECT type, payload FROM kernel.events WHERE scope_kind = 'conversation' AND scope_id = :c"),
                {"c": conversation},
            )
        ).all()
    assert [(row.type, row.payload["message_id"]) for row in rows] == [("message.created", message["id"])]
