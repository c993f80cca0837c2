"""Read state and the conversation list: markers, exact unread and mention counts, mark
unread, pins and order by activity (GET /v1/conversations, POST .../read and .../unread)."""

from __future__ import annotations

from uuid import UUID

import pytest
from sqlalchemy import text

from rapport.kernel.db import user_transaction
from rapport.kernel.ids import uuid7
from tests.messaging.support import make_conversation, send
from tests.support import problem_type

pytestmark = pytest.mark.module_database


async def listing(client, persona, **params) -> dict:
    response = await client.get("/v1/conversations", headers=persona.headers, params=params)
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


async def item(client, persona, conversation_id) -> dict:
    items = (await listing(client, persona))["items"]
    (found,) = [i for i in items if i["id"] == str(conversation_id)]
    return found


async def test_unread_counts_follow_the_marker_and_own_messages_count_as_read(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = [await send(client, alice, conversation, f"m{n}") for n in range(3)]
    assert (await item(client, bob, conversation))["unread_count"] == 3
    assert (await item(client, alice, conversation))["unread_count"] == 0
    read = await client.post(
        f"/v1/conversations/{conversation}/read", json={"message_id": sent[1]["id"]}, headers=bob.headers
    )
    assert read.status_code == 200 and read.json()["unread_count"] == 1 and read.json()["read_seq"] == 2
    # Reading an older message never moves the marker back.
    again = await client.post(
        f"/v1/conversations/{conversation}/read", json={"message_id": sent[0]["id"]}, headers=bob.headers
    )
    assert again.json()["read_seq"] == 2
    await send(client, bob, conversation, "reply")
    assert (await item(client, bob, conversation))["unread_count"] == 0


async def test_mark_unread_puts_the_marker_before_a_message(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = [await send(client, alice, conversation, f"m{n}") for n in range(4)]
    await client.post(f"/v1/conversations/{conversation}/read", json={"message_id": sent[3]["id"]}, headers=bob.headers)
    unread = await client.post(
        f"/v1/conversations/{conversation}/unread", json={"message_id": sent[2]["id"]}, headers=bob.headers
    )
    assert unread.status_code == 200 and unread.json()["unread_count"] == 2


async def test_mentions_are_counted_until_read(client, app_engine, alice, bob, carol):
    conversation = await make_conversation(app_engine, alice, bob, carol)
    await send(client, alice, conversation, "hey @bob", mentions=[bob.user_id])
    last = await send(client, carol, conversation, "and @bob again", mentions=[bob.user_id])
    bobs = await item(client, bob, conversation)
    assert (bobs["unread_count"], bobs["unread_mentions"]) == (2, 2)
    assert (await item(client, alice, conversation))["unread_mentions"] == 0
    await client.post(f"/v1/conversations/{conversation}/read", json={"message_id": last["id"]}, headers=bob.headers)
    assert (await item(client, bob, conversation))["unread_mentions"] == 0


async def test_the_list_shows_the_newest_activity_first_with_the_last_message(client, app_engine, alice, bob, carol):
    quiet = await make_conversation(app_engine, alice, bob, name="quiet")
    busy = await make_conversation(app_engine, alice, carol, name="busy")
    await send(client, bob, quiet, "old news")
    await send(client, carol, busy, "fresh")
    items = (await listing(client, alice))["items"]
    assert [i["name"] for i in items] == ["busy", "quiet"]
    assert items[0]["last_message"]["content"] == "fresh" and items[0]["role"] == "owner"


async def test_pinned_conversations_come_first_and_pages_follow_on(client, app_engine, alice, bob):
    made = [await make_conversation(app_engine, alice, bob, name=f"c{n}") for n in range(5)]
    for conversation in made:
        await send(client, bob, conversation, "x")
    async with user_transaction(app_engine, UUID(alice.user_id)) as db:
        await db.execute(
            text("UPDATE messaging.participants SET is_pinned = true WHERE conversation_id = :c AND user_id = :u"),
            {"c": made[0], "u": alice.user_id},
        )
    first = await listing(client, alice, limit=2)
    second = await listing(client, alice, limit=2, cursor=first["next"])
    third = await listing(client, alice, limit=2, cursor=second["next"])
    names = [i["name"] for page in (first, second, third) for i in page["items"]]
    assert names == ["c0", "c4", "c3", "c2", "c1"] and third["next"] is None


async def test_a_left_conversation_leaves_the_list(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    async with user_transaction(app_engine, UUID(bob.user_id)) as db:
        await db.execute(
            text("SELECT messaging.change_participant(:c, :u, NULL, 'left', NULL, NULL, NULL)"),
            {"c": conversation, "u": bob.user_id},
        )
    assert (await listing(client, bob))["items"] == []


@pytest.mark.parametrize("cursor", ["not-a-cursor", "e30", "W3RydWUsICJ4IiwgInkiXQ"])
async def test_a_cursor_not_issued_here_is_refused(client, alice, cursor):
    response = await client.get("/v1/conversations", headers=alice.headers, params={"cursor": cursor})
    assert response.status_code == 400 and problem_type(response) == "invalid-cursor"


async def test_marking_read_elsewhere_is_not_found(client, app_engine, alice, bob, mallory):
    conversation = await make_conversation(app_engine, alice, bob)
    message = await send(client, alice, conversation, "m")
    stranger = await client.post(
        f"/v1/conversations/{conversation}/read", json={"message_id": message["id"]}, headers=mallory.headers
    )
    assert stranger.status_code == 404
    unknown = await client.post(
        f"/v1/conversations/{conversation}/read", json={"message_id": str(uuid7())}, headers=bob.headers
    )
    assert unknown.status_code == 404 and problem_type(unknown) == "message-not-found"
    bad = await client.post(f"/v1/conversations/{conversation}/read", json={"message_id": 3}, headers=bob.headers)
    assert bad.status_code == 422
