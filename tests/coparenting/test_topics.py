"""The topic organiser of a shared room (/v1/coparenting/rooms/{id}/topics and
.../topic-suggestions): a new message is placed in the topic thread it matches, or a new
topic is proposed, which either parent accepts (the thread is made) or dismisses. It runs
after the send, from the outbox."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
import pytest

from rapport.modules.coparenting import _topics, service
from tests.messaging.streams_support import synced
from tests.messaging.support import make_conversation, send
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database


@pytest.fixture
async def room(client, app_engine, alice, bob) -> UUID:
    """Alice and bob's shared room, its topics organised."""
    conversation_id = await make_conversation(app_engine, alice, bob, type="direct")
    enabled = await client.put(f"/v1/coparenting/rooms/{conversation_id}/topics", headers=alice.headers)
    assert enabled.status_code == 201, enabled.text
    return conversation_id


async def suggestions(client: httpx.AsyncClient, persona: Persona, room: UUID, **params: str) -> list[dict[str, Any]]:
    listed = await client.get(f"/v1/coparenting/rooms/{room}/topic-suggestions", headers=persona.headers, params=params)
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


async def topic_thread(client: httpx.AsyncClient, persona: Persona, room: UUID, title: str, **fields: Any) -> str:
    made = await client.post(
        f"/v1/conversations/{room}/threads", headers=persona.headers, json={"title": title, **fields}
    )
    assert made.status_code == 201, made.text
    thread_id: str = made.json()["id"]
    return thread_id


def test_words_are_folded_and_common_ones_left_out():
    assert _topics.terms_of("Can you do the pickups on Saturdays?") == {"pickup", "saturday"}


async def test_organising_is_switched_on_once_and_off(client, app_engine, alice, bob):
    conversation_id = await make_conversation(app_engine, alice, bob, type="direct")
    url = f"/v1/coparenting/rooms/{conversation_id}/topics"

    assert (await client.get(url, headers=bob.headers)).status_code == 404
    assert (await client.put(url, headers=alice.headers)).status_code == 201
    assert (await client.put(url, headers=bob.headers)).status_code == 200
    assert (await client.get(url, headers=bob.headers)).json()["enabled_by"] == alice.user_id
    assert (await client.delete(url, headers=bob.headers)).status_code == 204
    gone = await client.get(url, headers=alice.headers)
    assert problem_type(gone).endswith("topic-room-not-found")


async def test_a_message_on_a_known_topic_proposes_a_new_thread(client, runtime, alice, bob, room):
    message = await send(client, alice, room, "The teacher says the homework is late again")

    # The server's own organiser may have got there first: the suggestion counts, not who made it.
    await service.organise_all(runtime.system_engine)

    [proposal] = await suggestions(client, bob, room)
    assert proposal["message_id"] == message["id"] and proposal["sender_id"] == alice.user_id
    assert (proposal["kind"], proposal["state"], proposal["title"], proposal["category"]) == (
        "new",
        "pending",
        "School",
        "school",
    )
    assert proposal["terms"] == ["homework", "teacher"] and proposal["thread_id"] is None


async def test_accepting_a_proposal_makes_the_topic_thread(client, runtime, alice, bob, room):
    await send(client, alice, room, "Dentist appointment for Emma on Friday")
    await service.organise_all(runtime.system_engine)
    [proposal] = await suggestions(client, bob, room)

    accepted = await client.post(
        f"/v1/coparenting/rooms/{room}/topic-suggestions/{proposal['id']}/accept",
        headers=bob.headers,
        json={"title": "Emma's health"},
    )

    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["state"] == "accepted" and accepted.json()["decided_by"] == bob.user_id
    threads = (await client.get(f"/v1/conversations/{room}/threads", headers=alice.headers)).json()["items"]
    assert [(t["id"], t["title"], t["category"]) for t in threads] == [
        (accepted.json()["thread_id"], "Emma's health", "health")
    ]


async def test_a_message_is_placed_in_the_thread_it_matches(client, runtime, alice, bob, room):
    soccer = await topic_thread(client, alice, room, "Soccer practice")
    await topic_thread(client, alice, room, "Summer holidays", category="holidays")
    message = await send(client, bob, room, "Practice moved to Tuesday, bring the boots")

    await service.organise_all(runtime.system_engine)

    [placed] = await suggestions(client, alice, room)
    assert (placed["kind"], placed["state"], placed["thread_id"]) == ("place", "placed", soccer)
    assert placed["message_id"] == message["id"] and placed["terms"] == ["practice"]
    # The message is in the thread for real: its count, its page and the stream say so.
    thread = (await client.get(f"/v1/conversations/{room}/threads/{soccer}", headers=alice.headers)).json()
    assert (thread["message_count"], thread["last_message_id"]) == (1, message["id"])
    page = await client.get(f"/v1/conversations/{room}/threads/{soccer}/messages", headers=bob.headers)
    assert [m["id"] for m in page.json()["items"]] == [message["id"]]
    seen = await client.get(f"/v1/conversations/{room}/messages/{message['id']}", headers=alice.headers)
    assert seen.json()["thread_id"] == soccer
    events = await synced(client, runtime, alice)
    [threaded] = [e["payload"] for e in events if e["type"] == "message.threaded"]
    assert (threaded["message_id"], threaded["thread_id"], threaded["previous_thread_id"]) == (
        message["id"],
        soccer,
        None,
    )


async def test_dismissing_a_placement_takes_the_message_out_of_the_thread(client, runtime, alice, bob, room):
    soccer = await topic_thread(client, alice, room, "Soccer practice")
    message = await send(client, bob, room, "Practice moved to Tuesday, bring the boots")
    await service.organise_all(runtime.system_engine)
    [placed] = await suggestions(client, alice, room)

    dismissed = await client.post(
        f"/v1/coparenting/rooms/{room}/topic-suggestions/{placed['id']}/dismiss", headers=alice.headers
    )

    assert dismissed.json()["state"] == "dismissed"
    thread = (await client.get(f"/v1/conversations/{room}/threads/{soccer}", headers=bob.headers)).json()
    assert (thread["message_count"], thread["last_message_id"]) == (0, None)
    seen = await client.get(f"/v1/conversations/{room}/messages/{message['id']}", headers=bob.headers)
    assert seen.json()["thread_id"] is None


async def test_a_threads_category_brings_its_topics_words(client, runtime, alice, bob, room):
    emma = await topic_thread(client, alice, room, "Emma", category="school")

    await send(client, bob, room, "Her homework folder is in my car")
    await service.organise_all(runtime.system_engine)

    [placed] = await suggestions(client, bob, room)
    assert (placed["kind"], placed["thread_id"], placed["terms"]) == ("place", emma, ["homework"])


def test_a_thread_that_matches_as_well_as_a_new_topic_is_preferred():
    soccer = _topics.Thread(UUID(int=1), _topics.vocabulary("Soccer practice", None))
    terms = _topics.terms_of("Practice moved to Tuesday, bring the boots")

    found = _topics.match(terms, [soccer])

    assert found is not None and (found.kind, found.thread_id) == ("place", soccer.id)
    # Without the thread, the first topic of the lexicon among those that match as well.
    assert _topics.match(terms, []) == _topics.Match("new", ["tuesday"], 0.25, title="Schedule", category="schedule")


async def test_nothing_is_suggested_for_small_talk_threads_or_earlier_messages(
    client, runtime, app_engine, alice, bob, room
):
    quiet = await make_conversation(app_engine, alice, bob, type="group")
    await send(client, alice, quiet, "Homework is due tomorrow")
    await client.put(f"/v1/coparenting/rooms/{quiet}/topics", headers=alice.headers)
    thread = await topic_thread(client, alice, room, "Anything")
    await send(client, alice, room, "Hello, how are you?")
    await send(client, alice, room, "The teacher called about homework", thread_id=thread)

    await service.organise_all(runtime.system_engine)
    assert await suggestions(client, alice, room) == []
    assert await suggestions(client, alice, quiet) == []


async def test_a_topic_waiting_for_an_answer_is_proposed_once(client, runtime, alice, bob, room):
    await send(client, alice, room, "The school report came")
    await send(client, bob, room, "The teacher wants a meeting")

    await service.organise_all(runtime.system_engine)
    await service.organise_all(runtime.system_engine)

    assert [s["category"] for s in await suggestions(client, alice, room)] == ["school"]


async def test_a_dismissed_suggestion_is_decided_for_good(client, runtime, alice, bob, room):
    await send(client, alice, room, "Can you pay half of the camp fee?")
    await service.organise_all(runtime.system_engine)
    [proposal] = await suggestions(client, alice, room)
    base = f"/v1/coparenting/rooms/{room}/topic-suggestions/{proposal['id']}"

    dismissed = await client.post(f"{base}/dismiss", headers=bob.headers)
    accepted = await client.post(f"{base}/accept", headers=alice.headers)

    assert dismissed.json()["state"] == "dismissed"
    assert accepted.status_code == 409 and problem_type(accepted).endswith("topic-suggestion-decided")
    assert await suggestions(client, alice, room, state="pending") == []


async def test_a_stranger_cannot_see_or_decide_a_rooms_suggestions(client, runtime, alice, mallory, room):
    await send(client, alice, room, "Passport renewal before the trip")
    await service.organise_all(runtime.system_engine)
    [proposal] = await suggestions(client, alice, room)
    base = f"/v1/coparenting/rooms/{room}"

    for response in (
        await client.get(f"{base}/topic-suggestions", headers=mallory.headers),
        await client.post(f"{base}/topic-suggestions/{proposal['id']}/accept", headers=mallory.headers),
        await client.put(f"{base}/topics", headers=mallory.headers),
        await client.get(f"{base}/topics", headers=mallory.headers),
    ):
        assert response.status_code == 404, response.text
    assert (await suggestions(client, alice, room))[0]["state"] == "pending"


async def test_an_unknown_suggestion_is_not_found(client, alice, room):
    missing = await client.post(f"/v1/coparenting/rooms/{room}/topic-suggestions/{room}/dismiss", headers=alice.headers)

    assert problem_type(missing).endswith("topic-suggestion-not-found")
