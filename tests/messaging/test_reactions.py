"""Reactions (PUT/DELETE /v1/conversations/{id}/messages/{id}/reactions/{emoji}): one per
emoji per person, counted with the message; observers and strangers cannot react.

Alice owns a group with bob; carol is an observer where the test says so; mallory is a
stranger."""

from __future__ import annotations

from urllib.parse import quote
from uuid import UUID

import pytest

from rapport.kernel.ids import uuid7
from tests.messaging.messages_support import events_of, message_path, types_of
from tests.messaging.support import make_conversation, send
from tests.support import problem_type

pytestmark = pytest.mark.module_database


def reaction_path(conversation_id: UUID, message_id: str, emoji: str) -> str:
    return f"{message_path(conversation_id, message_id)}/reactions/{quote(emoji, safe='')}"


async def reactions_seen_by(client, persona, conversation_id: UUID, message_id: str) -> list[dict]:
    response = await client.get(message_path(conversation_id, message_id), headers=persona.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["reactions"])


async def test_reactions_are_counted_once_per_person_and_emoji(client, app_engine, runtime, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, conversation, "good news")

    first = await client.put(reaction_path(conversation, sent["id"], "👍"), headers=bob.headers)
    again = await client.put(reaction_path(conversation, sent["id"], "👍"), headers=bob.headers)
    await client.put(reaction_path(conversation, sent["id"], "👍"), headers=alice.headers)
    await client.put(reaction_path(conversation, sent["id"], "🎉"), headers=alice.headers)

    assert (first.status_code, again.status_code) == (204, 204)
    assert await reactions_seen_by(client, bob, conversation, sent["id"]) == [
        {"emoji": "👍", "count": 2, "reacted": True},
        {"emoji": "🎉", "count": 1, "reacted": False},
    ]
    assert await reactions_seen_by(client, alice, conversation, sent["id"]) == [
        {"emoji": "👍", "count": 2, "reacted": True},
        {"emoji": "🎉", "count": 1, "reacted": True},
    ]
    added = [e for e in await events_of(runtime, conversation) if e["type"] == "reaction.added"]
    assert [(e["payload"]["emoji"], e["payload"]["user_id"]) for e in added] == [
        ("👍", bob.user_id),
        ("👍", alice.user_id),
        ("🎉", alice.user_id),
    ]
    assert added[0]["payload"] == {"message_id": sent["id"], "seq": 1, "user_id": bob.user_id, "emoji": "👍"}


async def test_a_reaction_is_taken_back(client, app_engine, runtime, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, conversation, "hmm")
    await client.put(reaction_path(conversation, sent["id"], "👍"), headers=bob.headers)

    removed = await client.delete(reaction_path(conversation, sent["id"], "👍"), headers=bob.headers)
    again = await client.delete(reaction_path(conversation, sent["id"], "👍"), headers=bob.headers)

    assert (removed.status_code, again.status_code) == (204, 204)
    assert await reactions_seen_by(client, alice, conversation, sent["id"]) == []
    assert (await types_of(runtime, conversation)).count("reaction.removed") == 1


async def test_a_person_takes_back_only_their_own_reaction(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, conversation, "hmm")
    await client.put(reaction_path(conversation, sent["id"], "👍"), headers=bob.headers)

    response = await client.delete(reaction_path(conversation, sent["id"], "👍"), headers=alice.headers)

    assert response.status_code == 204
    assert await reactions_seen_by(client, alice, conversation, sent["id"]) == [
        {"emoji": "👍", "count": 1, "reacted": False}
    ]


@pytest.mark.parametrize("emoji", ["👨‍👩‍👧", "❤️", "+1", ":party_parrot:", "x" * 32])
async def test_emoji_sequences_and_short_codes_are_reactions(client, app_engine, alice, bob, emoji):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, conversation, "hi")

    response = await client.put(reaction_path(conversation, sent["id"], emoji), headers=bob.headers)

    assert response.status_code == 204, response.text
    [reaction] = await reactions_seen_by(client, bob, conversation, sent["id"])
    assert reaction["emoji"] == emoji


@pytest.mark.parametrize("emoji", ["a b", " ", "x" * 33, "\x07", "tab\there", "\u202eevil", "\u2028", "no\u00a0break"])
async def test_bad_emoji_are_refused(client, app_engine, alice, bob, emoji):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, conversation, "hi")

    added = await client.put(reaction_path(conversation, sent["id"], emoji), headers=bob.headers)
    removed = await client.delete(reaction_path(conversation, sent["id"], emoji), headers=bob.headers)

    assert (added.status_code, problem_type(added)) == (422, "invalid-emoji")
    assert (removed.status_code, problem_type(removed)) == (422, "invalid-emoji")
    assert await reactions_seen_by(client, bob, conversation, sent["id"]) == []


async def test_observers_and_strangers_cannot_react(client, app_engine, runtime, alice, carol, mallory):
    conversation = await make_conversation(app_engine, alice, carol, roles={"carol": "observer"})
    sent = await send(client, alice, conversation, "watch this")

    observer = await client.put(reaction_path(conversation, sent["id"], "👀"), headers=carol.headers)
    stranger = await client.put(reaction_path(conversation, sent["id"], "👀"), headers=mallory.headers)
    stranger_removes = await client.delete(reaction_path(conversation, sent["id"], "👀"), headers=mallory.headers)

    assert (observer.status_code, problem_type(observer)) == (403, "not-allowed-in-conversation")
    assert (stranger.status_code, problem_type(stranger)) == (404, "conversation-not-found")
    assert (stranger_removes.status_code, problem_type(stranger_removes)) == (404, "conversation-not-found")
    assert await reactions_seen_by(client, alice, conversation, sent["id"]) == []
    assert "reaction.added" not in await types_of(runtime, conversation)


async def test_deleted_and_unknown_messages_take_no_reactions(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, conversation, "soon gone")
    await client.put(reaction_path(conversation, sent["id"], "👍"), headers=bob.headers)

    await client.delete(message_path(conversation, sent["id"]), headers=alice.headers)
    deleted = await client.put(reaction_path(conversation, sent["id"], "😮"), headers=bob.headers)
    unknown = await client.put(reaction_path(conversation, str(uuid7()), "😮"), headers=bob.headers)

    assert (deleted.status_code, problem_type(deleted)) == (404, "message-not-found")
    assert (unknown.status_code, problem_type(unknown)) == (404, "message-not-found")
    # Deleting the message took its reactions with it.
    assert await reactions_seen_by(client, bob, conversation, sent["id"]) == []
