"""Threads (/v1/conversations/{id}/threads): the reply thread of a message, one per
message; topic threads with a title, category and parent; listing by latest activity,
archiving, and a thread's messages.

Alice owns a group with bob (a member); carol is a moderator or an observer where the test
says so; mallory is a stranger."""

from __future__ import annotations

from uuid import UUID

import pytest

from rapport.kernel.ids import uuid7
from tests.messaging.messages_support import events_of, message_path, types_of
from tests.messaging.support import make_conversation, send
from tests.support import problem_type

pytestmark = pytest.mark.module_database


def threads_path(conversation_id: UUID) -> str:
    return f"/v1/conversations/{conversation_id}/threads"


async def open_thread(client, persona, conversation_id: UUID, **body) -> dict:
    response = await client.post(threads_path(conversation_id), json=body, headers=persona.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def list_threads(client, persona, conversation_id: UUID, **params) -> dict:
    response = await client.get(threads_path(conversation_id), headers=persona.headers, params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def thread_messages(client, persona, conversation_id: UUID, thread_id: str, **params) -> dict:
    response = await client.get(
        f"{threads_path(conversation_id)}/{thread_id}/messages", headers=persona.headers, params=params
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


# Reply threads


async def test_a_message_has_one_reply_thread_counted_under_it(client, app_engine, runtime, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    root = await send(client, alice, conversation, "who is coming?")

    thread = await open_thread(client, bob, conversation, root_message_id=root["id"])
    again = await client.post(threads_path(conversation), json={"root_message_id": root["id"]}, headers=alice.headers)

    assert again.status_code == 200 and again.json() == thread
    assert (thread["root_message_id"], thread["title"], thread["creator_id"]) == (root["id"], None, bob.user_id)
    assert (thread["message_count"], thread["is_archived"]) == (0, False)
    first = await send(client, bob, conversation, "me", thread_id=thread["id"])
    second = await send(client, alice, conversation, "great", thread_id=thread["id"])

    under_root = (await client.get(message_path(conversation, root["id"]), headers=bob.headers)).json()
    assert under_root["thread"]["id"] == thread["id"] and under_root["thread"]["message_count"] == 2
    page = await thread_messages(client, alice, conversation, thread["id"])
    assert [m["id"] for m in page["items"]] == [second["id"], first["id"]]
    assert page["items"][0] == second
    assert page["next"] is None
    created = [e for e in await events_of(runtime, conversation) if e["type"] == "thread.created"]
    assert [e["payload"] for e in created] == [{"thread_id": thread["id"], "root_message_id": root["id"]}]


async def test_a_reply_thread_needs_a_live_message_the_caller_can_see(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    other = await make_conversation(app_engine, alice)
    elsewhere = await send(client, alice, other, "elsewhere")
    deleted = await send(client, alice, conversation, "gone")
    await client.delete(message_path(conversation, deleted["id"]), headers=alice.headers)

    for root in (elsewhere["id"], deleted["id"], str(uuid7())):
        response = await client.post(threads_path(conversation), json={"root_message_id": root}, headers=bob.headers)
        assert (response.status_code, problem_type(response)) == (404, "message-not-found")


# Topic threads


async def test_topic_threads_nest_under_each_other(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)

    school = await open_thread(client, alice, conversation, title="School", category="kids")
    trips = await open_thread(client, bob, conversation, title="Trips", parent_thread_id=school["id"])

    assert (school["title"], school["category"], school["parent_thread_id"]) == ("School", "kids", None)
    assert (trips["parent_thread_id"], trips["root_message_id"]) == (school["id"], None)
    got = await client.get(f"{threads_path(conversation)}/{trips['id']}", headers=alice.headers)
    assert got.status_code == 200 and got.json() == trips


async def test_a_parent_thread_is_an_open_thread_of_the_same_conversation(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    other = await make_conversation(app_engine, alice)
    foreign = await open_thread(client, alice, other, title="Elsewhere")
    closed = await open_thread(client, alice, conversation, title="Closed")
    await client.patch(f"{threads_path(conversation)}/{closed['id']}", json={"archived": True}, headers=alice.headers)

    for parent in (foreign["id"], closed["id"], str(uuid7())):
        response = await client.post(
            threads_path(conversation), json={"title": "Child", "parent_thread_id": parent}, headers=alice.headers
        )
        assert (response.status_code, problem_type(response)) == (422, "thread-not-open")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": "Both", "root_message_id": "0190b7a2-0000-7000-8000-000000000001"},
        {"root_message_id": "0190b7a2-0000-7000-8000-000000000001", "category": "x"},
        {"root_message_id": "0190b7a2-0000-7000-8000-000000000001", "parent_thread_id": str(uuid7())},
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 201},
        {"title": "two\nlines"},
        {"title": "ok", "category": "x" * 101},
        {"title": "ok", "parent_thread_id": "nope"},
        {"title": "ok", "archived": True},
    ],
)
async def test_bad_threads_are_refused(client, app_engine, alice, bob, body):
    conversation = await make_conversation(app_engine, alice, bob)

    response = await client.post(threads_path(conversation), json=body, headers=alice.headers)

    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_observers_and_strangers_open_no_threads(client, app_engine, alice, carol, mallory):
    conversation = await make_conversation(app_engine, alice, carol, roles={"carol": "observer"})
    root = await send(client, alice, conversation, "hi")

    observer = await client.post(threads_path(conversation), json={"title": "Mine"}, headers=carol.headers)
    observer_replies = await client.post(
        threads_path(conversation), json={"root_message_id": root["id"]}, headers=carol.headers
    )
    stranger = await client.post(threads_path(conversation), json={"title": "Mine"}, headers=mallory.headers)
    stranger_lists = await client.get(threads_path(conversation), headers=mallory.headers)

    assert (observer.status_code, problem_type(observer)) == (403, "not-allowed-in-conversation")
    assert (observer_replies.status_code, problem_type(observer_replies)) == (403, "not-allowed-in-conversation")
    assert (stranger.status_code, problem_type(stranger)) == (404, "conversation-not-found")
    assert (stranger_lists.status_code, problem_type(stranger_lists)) == (404, "conversation-not-found")
    # Observers read them all the same.
    assert (await list_threads(client, carol, conversation))["items"] == []


# Listing


async def test_threads_are_listed_by_latest_activity_a_page_at_a_time(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    quiet = await open_thread(client, alice, conversation, title="Quiet")
    older = await open_thread(client, alice, conversation, title="Older")
    newer = await open_thread(client, alice, conversation, title="Newer")
    also_quiet = await open_thread(client, alice, conversation, title="Also quiet")
    await send(client, bob, conversation, "a", thread_id=older["id"])
    await send(client, bob, conversation, "b", thread_id=newer["id"])

    everything = await list_threads(client, bob, conversation)
    expected = [newer["id"], older["id"], *sorted([quiet["id"], also_quiet["id"]])]
    assert [t["id"] for t in everything["items"]] == expected
    assert everything["next"] is None

    seen, cursor = [], None
    while True:
        page = await list_threads(client, bob, conversation, limit=1, **({"cursor": cursor} if cursor else {}))
        seen += [t["id"] for t in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == expected


async def test_archived_threads_are_listed_only_when_asked(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    kept = await open_thread(client, alice, conversation, title="Kept")
    archived = await open_thread(client, alice, conversation, title="Archived")
    await client.patch(f"{threads_path(conversation)}/{archived['id']}", json={"archived": True}, headers=alice.headers)

    assert [t["id"] for t in (await list_threads(client, bob, conversation))["items"]] == [kept["id"]]
    every = await list_threads(client, bob, conversation, include_archived="true")
    assert sorted(t["id"] for t in every["items"]) == sorted([kept["id"], archived["id"]])


@pytest.mark.parametrize(
    ("params", "status", "kind"),
    [
        ({"cursor": "!!"}, 400, "invalid-cursor"),
        ({"cursor": "W10"}, 400, "invalid-cursor"),
        ({"limit": 0}, 422, "validation-error"),
        ({"include_archived": "maybe"}, 422, "validation-error"),
    ],
)
async def test_bad_thread_pages_are_refused(client, app_engine, alice, bob, params, status, kind):
    conversation = await make_conversation(app_engine, alice, bob)

    response = await client.get(threads_path(conversation), headers=alice.headers, params=params)

    assert (response.status_code, problem_type(response)) == (status, kind)


# Changing


async def test_the_creator_renames_moves_and_archives_a_thread(client, app_engine, runtime, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    parent = await open_thread(client, alice, conversation, title="Parent")
    thread = await open_thread(client, bob, conversation, title="Draft name", category="misc")
    path = f"{threads_path(conversation)}/{thread['id']}"

    renamed = await client.patch(
        path, json={"title": "Holidays", "category": None, "parent_thread_id": parent["id"]}, headers=bob.headers
    )
    archived = await client.patch(path, json={"archived": True}, headers=bob.headers)
    refused = await client.post(
        f"/v1/conversations/{conversation}/messages",
        json={"content": "x", "thread_id": thread["id"]},
        headers=bob.headers,
    )
    unarchived = await client.patch(path, json={"archived": False}, headers=bob.headers)

    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["title"], renamed.json()["category"], renamed.json()["parent_thread_id"]) == (
        "Holidays",
        None,
        parent["id"],
    )
    assert archived.json()["is_archived"] and archived.json()["archived_at"] is not None
    assert (refused.status_code, problem_type(refused)) == (422, "thread-not-open")
    assert not unarchived.json()["is_archived"] and unarchived.json()["archived_at"] is None
    await send(client, bob, conversation, "open again", thread_id=thread["id"])
    changed = [e for e in await events_of(runtime, conversation) if e["type"] == "thread.changed"]
    assert [e["payload"]["changed"] for e in changed] == [
        ["category", "parent_thread_id", "title"],
        ["archived"],
        ["archived"],
    ]


async def test_moderators_change_anyone_s_thread_members_only_their_own(client, app_engine, runtime, alice, bob, carol):
    conversation = await make_conversation(app_engine, alice, bob, carol, roles={"carol": "moderator"})
    thread = await open_thread(client, alice, conversation, title="Rules")
    path = f"{threads_path(conversation)}/{thread['id']}"

    member = await client.patch(path, json={"title": "Mine now"}, headers=bob.headers)
    moderator = await client.patch(path, json={"archived": True}, headers=carol.headers)

    assert (member.status_code, problem_type(member)) == (403, "not-allowed-in-conversation")
    assert moderator.status_code == 200 and moderator.json()["title"] == "Rules"
    assert (await types_of(runtime, conversation)).count("thread.changed") == 1


async def test_a_thread_cannot_sit_under_itself(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    top = await open_thread(client, alice, conversation, title="Top")
    middle = await open_thread(client, alice, conversation, title="Middle", parent_thread_id=top["id"])
    bottom = await open_thread(client, alice, conversation, title="Bottom", parent_thread_id=middle["id"])

    itself = await client.patch(
        f"{threads_path(conversation)}/{top['id']}", json={"parent_thread_id": top["id"]}, headers=alice.headers
    )
    loop = await client.patch(
        f"{threads_path(conversation)}/{top['id']}", json={"parent_thread_id": bottom["id"]}, headers=alice.headers
    )
    to_top = await client.patch(
        f"{threads_path(conversation)}/{bottom['id']}", json={"parent_thread_id": None}, headers=alice.headers
    )

    assert (itself.status_code, problem_type(itself)) == (422, "thread-cycle")
    assert (loop.status_code, problem_type(loop)) == (422, "thread-cycle")
    assert to_top.status_code == 200 and to_top.json()["parent_thread_id"] is None


@pytest.mark.parametrize(
    "body",
    [{"title": None}, {"archived": None}, {"archived": "yes"}, {"title": ""}, {"root_message_id": str(uuid7())}],
)
async def test_bad_thread_changes_are_refused(client, app_engine, alice, bob, body):
    conversation = await make_conversation(app_engine, alice, bob)
    thread = await open_thread(client, alice, conversation, title="Stays")

    response = await client.patch(f"{threads_path(conversation)}/{thread['id']}", json=body, headers=alice.headers)

    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_unknown_threads_are_not_found(client, app_engine, alice, bob, mallory):
    conversation = await make_conversation(app_engine, alice, bob)
    other = await make_conversation(app_engine, alice)
    foreign = await open_thread(client, alice, other, title="Elsewhere")
    mine = await open_thread(client, alice, conversation, title="Here")

    for thread_id in (foreign["id"], str(uuid7())):
        for response in (
            await client.get(f"{threads_path(conversation)}/{thread_id}", headers=alice.headers),
            await client.patch(f"{threads_path(conversation)}/{thread_id}", json={"title": "x"}, headers=alice.headers),
            await client.get(f"{threads_path(conversation)}/{thread_id}/messages", headers=alice.headers),
        ):
            assert (response.status_code, problem_type(response)) == (404, "thread-not-found")
    stranger = await client.get(f"{threads_path(conversation)}/{mine['id']}/messages", headers=mallory.headers)
    assert (stranger.status_code, problem_type(stranger)) == (404, "conversation-not-found")


# A thread's messages


async def test_a_thread_s_messages_come_newest_first_a_page_at_a_time(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    thread = await open_thread(client, alice, conversation, title="Long one")
    await send(client, alice, conversation, "outside")
    inside = [await send(client, bob, conversation, f"t{n}", thread_id=thread["id"]) for n in range(5)]
    await client.post(f"{message_path(conversation, inside[3]['id'])}/hide", headers=alice.headers)

    first = await thread_messages(client, alice, conversation, thread["id"], limit=2)
    second = await thread_messages(client, alice, conversation, thread["id"], limit=2, before=first["next"])
    bobs = await thread_messages(client, bob, conversation, thread["id"])

    assert [m["content"] for m in first["items"]] == ["t4", "t2"]
    assert [m["content"] for m in second["items"]] == ["t1", "t0"]
    assert second["next"] is None
    assert [m["content"] for m in bobs["items"]] == ["t4", "t3", "t2", "t1", "t0"]
    unknown = await client.get(
        f"{threads_path(conversation)}/{thread['id']}/messages", params={"before": str(uuid7())}, headers=alice.headers
    )
    assert (unknown.status_code, problem_type(unknown)) == (404, "message-not-found")
    listed = (await list_threads(client, alice, conversation))["items"][0]
    assert (listed["message_count"], listed["last_message_id"]) == (5, inside[4]["id"])


# Moving messages between topic threads


def move_path(conversation_id: UUID, message_id: str) -> str:
    return f"{message_path(conversation_id, message_id)}/thread"


async def a_thread(client, persona, conversation_id: UUID, thread_id: str) -> dict:
    response = await client.get(f"{threads_path(conversation_id)}/{thread_id}", headers=persona.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_message_moves_into_a_topic_thread_to_another_and_out(client, app_engine, runtime, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    school = await open_thread(client, alice, conversation, title="School")
    health = await open_thread(client, alice, conversation, title="Health")
    earlier = await send(client, alice, conversation, "the report came", thread_id=school["id"])
    message = await send(client, alice, conversation, "the dentist is on Monday")

    # Bob, a member, moves Alice's message: whoever takes part may, as in Zulip.
    moved = await client.put(
        move_path(conversation, message["id"]), json={"thread_id": school["id"]}, headers=bob.headers
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["thread_id"] == school["id"] and moved.json()["content"] == message["content"]
    in_school = await a_thread(client, bob, conversation, school["id"])
    assert (in_school["message_count"], in_school["last_message_id"]) == (2, message["id"])
    page = await thread_messages(client, bob, conversation, school["id"])
    assert [m["id"] for m in page["items"]] == [message["id"], earlier["id"]]

    again = await client.put(
        move_path(conversation, message["id"]), json={"thread_id": school["id"]}, headers=alice.headers
    )
    assert again.status_code == 200 and again.json()["thread_id"] == school["id"]
    to_health = await client.put(
        move_path(conversation, message["id"]), json={"thread_id": health["id"]}, headers=alice.headers
    )
    assert to_health.json()["thread_id"] == health["id"]
    left = await a_thread(client, alice, conversation, school["id"])
    assert (left["message_count"], left["last_message_id"]) == (1, earlier["id"])
    assert (await a_thread(client, alice, conversation, health["id"]))["message_count"] == 1

    out = await client.put(move_path(conversation, message["id"]), json={"thread_id": None}, headers=alice.headers)
    assert out.json()["thread_id"] is None
    emptied = await a_thread(client, alice, conversation, health["id"])
    assert (emptied["message_count"], emptied["last_message_id"], emptied["last_message_at"]) == (0, None, None)
    moves = [e for e in await events_of(runtime, conversation) if e["type"] == "message.threaded"]
    assert [(e["payload"]["previous_thread_id"], e["payload"]["thread_id"], str(e["actor_id"])) for e in moves] == [
        (None, school["id"], bob.user_id),
        (school["id"], health["id"], alice.user_id),
        (health["id"], None, alice.user_id),
    ]
    assert {e["payload"]["message_id"] for e in moves} == {message["id"]}


async def test_a_reply_stays_under_its_message_and_only_open_topic_threads_take_messages(
    client, app_engine, alice, bob
):
    conversation = await make_conversation(app_engine, alice, bob)
    elsewhere = await make_conversation(app_engine, alice, bob)
    root = await send(client, alice, conversation, "who is coming?")
    replies = await open_thread(client, bob, conversation, root_message_id=root["id"])
    reply = await send(client, bob, conversation, "me", thread_id=replies["id"])
    topic = await open_thread(client, alice, conversation, title="Plans")
    archived = await open_thread(client, alice, conversation, title="Old")
    await client.patch(f"{threads_path(conversation)}/{archived['id']}", json={"archived": True}, headers=alice.headers)
    foreign = await open_thread(client, alice, elsewhere, title="Not here")
    message = await send(client, alice, conversation, "saturday?")

    out_of_replies = await client.put(
        move_path(conversation, reply["id"]), json={"thread_id": topic["id"]}, headers=bob.headers
    )
    assert (out_of_replies.status_code, problem_type(out_of_replies)) == (409, "message-in-reply-thread")
    for target in (replies["id"], archived["id"], foreign["id"], str(uuid7())):
        refused = await client.put(
            move_path(conversation, message["id"]), json={"thread_id": target}, headers=bob.headers
        )
        assert (refused.status_code, problem_type(refused)) == (422, "thread-not-open"), target
    for body in ({}, {"thread_id": "soon"}, {"thread_id": topic["id"], "extra": 1}):
        bad = await client.put(move_path(conversation, message["id"]), json=body, headers=bob.headers)
        assert bad.status_code == 422, body
    assert (await a_thread(client, bob, conversation, replies["id"]))["message_count"] == 1
    assert (await a_thread(client, bob, conversation, topic["id"]))["message_count"] == 0


async def test_observers_and_strangers_move_no_message(client, app_engine, alice, carol, mallory):
    conversation = await make_conversation(app_engine, alice, carol, roles={"carol": "observer"})
    topic = await open_thread(client, alice, conversation, title="Plans")
    message = await send(client, alice, conversation, "saturday?")
    body = {"thread_id": topic["id"]}

    observer = await client.put(move_path(conversation, message["id"]), json=body, headers=carol.headers)
    stranger = await client.put(move_path(conversation, message["id"]), json=body, headers=mallory.headers)

    assert (observer.status_code, problem_type(observer)) == (403, "not-allowed-in-conversation")
    assert (stranger.status_code, problem_type(stranger)) == (404, "conversation-not-found")
    assert (await a_thread(client, alice, conversation, topic["id"]))["message_count"] == 0
