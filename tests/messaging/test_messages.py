"""A message after it was sent: reading one, editing (the earlier versions kept), deleting
for everyone, hiding for oneself, forwarding; unread counts stay exact through all of it.

Alice owns a group with bob (a member); carol is a member, a moderator or an observer where
the test says so; mallory is a stranger."""

from __future__ import annotations

from uuid import UUID

import pytest
from sqlalchemy import text

from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.ids import uuid7
from tests.messaging.messages_support import (
    as_superuser,
    events_of,
    history,
    listing,
    message_path,
    types_of,
)
from tests.messaging.support import make_conversation, send
from tests.support import problem_type

pytestmark = pytest.mark.module_database


# Reading one


async def test_one_message_reads_as_history_gives_it(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, conversation, "hello bob", content_metadata={"lang": "en"})
    await send(client, bob, conversation, "hello alice")

    one = await client.get(message_path(conversation, sent["id"]), headers=bob.headers)
    assert one.status_code == 200, one.text
    [_, in_history] = await history(client, bob, conversation)
    assert one.json() == in_history
    assert one.json()["content"] == "hello bob" and one.json()["client_message_id"] is None


async def test_a_message_is_found_only_in_its_own_conversation(client, app_engine, alice, bob, mallory):
    conversation = await make_conversation(app_engine, alice, bob)
    elsewhere = await make_conversation(app_engine, alice)
    sent = await send(client, alice, conversation, "hello bob")

    stranger = await client.get(message_path(conversation, sent["id"]), headers=mallory.headers)
    wrong_conversation = await client.get(message_path(elsewhere, sent["id"]), headers=alice.headers)
    unknown = await client.get(message_path(conversation, str(uuid7())), headers=alice.headers)
    malformed = await client.get(message_path(conversation, "not-a-uuid"), headers=alice.headers)

    assert (stranger.status_code, problem_type(stranger)) == (404, "conversation-not-found")
    assert (wrong_conversation.status_code, problem_type(wrong_conversation)) == (404, "message-not-found")
    assert (unknown.status_code, problem_type(unknown)) == (404, "message-not-found")
    assert (malformed.status_code, problem_type(malformed)) == (422, "validation-error")


async def test_messages_from_before_joining_stay_out_of_sight_where_history_is_withheld(
    client, app_engine, alice, bob, carol
):
    conversation = await make_conversation(app_engine, alice, bob)
    before = await send(client, alice, conversation, "before carol")
    async with user_transaction(app_engine, UUID(alice.user_id)) as db:
        await db.execute(
            text("SELECT messaging.add_participant(:c, :u, 'member', false)"), {"c": conversation, "u": carol.user_id}
        )
    after = await send(client, alice, conversation, "after carol")

    hidden = await client.get(message_path(conversation, before["id"]), headers=carol.headers)
    seen = await client.get(message_path(conversation, after["id"]), headers=carol.headers)
    assert (hidden.status_code, problem_type(hidden)) == (404, "message-not-found")
    assert seen.status_code == 200


# Editing


async def test_the_sender_edits_and_every_earlier_version_is_kept(client, app_engine, runtime, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, conversation, "first", content_metadata={"v": 1})

    edited = await client.patch(
        message_path(conversation, sent["id"]), json={"content": "second"}, headers=alice.headers
    )
    again = await client.patch(
        message_path(conversation, sent["id"]),
        json={"content": "third", "content_metadata": {"v": 3}},
        headers=alice.headers,
    )
    assert edited.status_code == 200, edited.text
    assert again.status_code == 200, again.text
    message = again.json()
    assert message["content"] == "third" and message["content_metadata"] == {"v": 3}
    assert message["is_edited"] and message["edited_at"] is not None
    assert (message["id"], message["seq"]) == (sent["id"], sent["seq"])

    versions = await client.get(f"{message_path(conversation, sent['id'])}/edits", headers=bob.headers)
    assert versions.status_code == 200, versions.text
    items = versions.json()["items"]
    assert [(v["operation"], v["content"], v["content_metadata"]) for v in items] == [
        ("edit", "first", {"v": 1}),
        ("edit", "second", {"v": 1}),
    ]
    assert {v["changed_by"] for v in items} == {alice.user_id}
    [in_history] = await history(client, bob, conversation)
    assert in_history["content"] == "third" and in_history["is_edited"]

    edits = [e for e in await events_of(runtime, conversation) if e["type"] == "message.edited"]
    assert [e["payload"] for e in edits] == [{"message_id": sent["id"], "seq": 1}] * 2
    assert {str(e["actor_id"]) for e in edits} == {alice.user_id}


async def test_an_edit_that_changes_nothing_is_no_edit(client, app_engine, runtime, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, conversation, "same")

    empty = await client.patch(message_path(conversation, sent["id"]), json={}, headers=alice.headers)
    same = await client.patch(message_path(conversation, sent["id"]), json={"content": "same"}, headers=alice.headers)

    assert empty.status_code == 200 and same.status_code == 200
    assert not same.json()["is_edited"]
    versions = await client.get(f"{message_path(conversation, sent['id'])}/edits", headers=alice.headers)
    assert versions.json()["items"] == []
    assert "message.edited" not in await types_of(runtime, conversation)


async def test_edited_mentions_move_the_unread_mention_counts(client, app_engine, runtime, alice, bob, carol, mallory):
    conversation = await make_conversation(app_engine, alice, bob, carol)
    sent = await send(client, alice, conversation, "hey", mentions=[bob.user_id])

    edited = await client.patch(
        message_path(conversation, sent["id"]), json={"mentions": [carol.user_id]}, headers=alice.headers
    )
    # Naming someone who is not here changes nothing: they are left out.
    outsider = await client.patch(
        message_path(conversation, sent["id"]),
        json={"mentions": [carol.user_id, mallory.user_id]},
        headers=alice.headers,
    )

    assert edited.status_code == 200, edited.text
    assert edited.json()["mentions"] == [carol.user_id] == outsider.json()["mentions"]
    assert (await listing(client, bob, conversation))["unread_mentions"] == 0
    assert (await listing(client, carol, conversation))["unread_mentions"] == 1
    # Whom a message mentions is no new version of what it says.
    assert not edited.json()["is_edited"]
    versions = await client.get(f"{message_path(conversation, sent['id'])}/edits", headers=alice.headers)
    assert versions.json()["items"] == []
    assert (await types_of(runtime, conversation)).count("message.edited") == 1


async def test_an_edit_cannot_slip_a_blocked_term_past_moderation(client, app_engine, runtime, alice, bob):
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(text("INSERT INTO messaging.blocked_terms (id, term) VALUES (:id, 'scam')"), {"id": uuid7()})
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, conversation, "a fine offer")
    assert not sent["moderation_flagged"]

    edited = await client.patch(
        message_path(conversation, sent["id"]), json={"content": "a fine SCAM offer"}, headers=alice.headers
    )
    cleaned = await client.patch(
        message_path(conversation, sent["id"]), json={"content": "a fine offer again"}, headers=alice.headers
    )

    assert edited.json()["moderation_flagged"]
    # Editing the term away does not lift a flag: that is a moderator's call.
    assert cleaned.json()["moderation_flagged"]


async def test_only_the_sender_edits(client, app_engine, alice, bob, carol, mallory):
    conversation = await make_conversation(app_engine, alice, bob, carol, roles={"carol": "moderator"})
    sent = await send(client, alice, conversation, "mine")
    body = {"content": "not yours"}

    member = await client.patch(message_path(conversation, sent["id"]), json=body, headers=bob.headers)
    moderator = await client.patch(message_path(conversation, sent["id"]), json=body, headers=carol.headers)
    stranger = await client.patch(message_path(conversation, sent["id"]), json=body, headers=mallory.headers)

    assert (member.status_code, problem_type(member)) == (403, "not-allowed-in-conversation")
    assert (moderator.status_code, problem_type(moderator)) == (403, "not-allowed-in-conversation")
    assert (stranger.status_code, problem_type(stranger)) == (404, "conversation-not-found")
    [message] = await history(client, alice, conversation)
    assert message["content"] == "mine" and not message["is_edited"]


@pytest.mark.parametrize(
    "body",
    [
        {"content": ""},
        {"content": "   "},
        {"content": None},
        {"content": "x" * 10_001},
        {"content": 5},
        {"content_metadata": None},
        {"content_metadata": "text"},
        {"content_metadata": {"blob": "x" * 16_001}},
        {"mentions": ["not-a-uuid"]},
        {"mentions": [str(uuid7()) for _ in range(51)]},
        {"sender_id": str(uuid7())},
    ],
)
async def test_bad_edits_are_refused(client, app_engine, alice, bob, body):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, conversation, "keep me")

    response = await client.patch(message_path(conversation, sent["id"]), json=body, headers=alice.headers)

    assert (response.status_code, problem_type(response)) == (422, "validation-error")
    [message] = await history(client, alice, conversation)
    assert message["content"] == "keep me"


async def test_an_observer_cannot_rewrite_what_they_said_before(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, bob, conversation, "said as a member")
    async with user_transaction(app_engine, UUID(alice.user_id)) as db:
        await db.execute(
            text("SELECT messaging.change_participant(:c, :u, 'observer', NULL, NULL, NULL, NULL)"),
            {"c": conversation, "u": bob.user_id},
        )

    response = await client.patch(message_path(conversation, sent["id"]), json={"content": "x"}, headers=bob.headers)

    assert (response.status_code, problem_type(response)) == (403, "cannot-send")


# Deleting for everyone


async def test_a_deleted_message_keeps_its_place_without_its_content(client, app_engine, runtime, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, conversation, "oops", content_metadata={"k": "v"}, mentions=[bob.user_id])
    await client.patch(message_path(conversation, sent["id"]), json={"content": "oops!"}, headers=alice.headers)

    deleted = await client.delete(message_path(conversation, sent["id"]), headers=alice.headers)

    assert deleted.status_code == 204, deleted.text
    one = (await client.get(message_path(conversation, sent["id"]), headers=bob.headers)).json()
    assert one["is_deleted"] and one["deleted_at"] is not None
    assert (one["content"], one["content_metadata"], one["mentions"]) == ("", {}, [])
    assert (one["id"], one["seq"]) == (sent["id"], 1)
    [in_history] = await history(client, bob, conversation)
    assert in_history == one
    # The versions are kept for the audit rules, out of readers' sight.
    versions = await client.get(f"{message_path(conversation, sent['id'])}/edits", headers=alice.headers)
    assert versions.status_code == 200 and versions.json()["items"] == []
    item = await listing(client, bob, conversation)
    assert (item["unread_count"], item["unread_mentions"]) == (0, 0)
    deletes = [e for e in await events_of(runtime, conversation) if e["type"] == "message.deleted"]
    assert [e["payload"] for e in deletes] == [{"message_id": sent["id"], "seq": 1}]


async def test_a_deleted_message_can_be_neither_edited_nor_deleted_again(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, conversation, "gone")
    await client.delete(message_path(conversation, sent["id"]), headers=alice.headers)

    edit = await client.patch(message_path(conversation, sent["id"]), json={"content": "back"}, headers=alice.headers)
    again = await client.delete(message_path(conversation, sent["id"]), headers=alice.headers)

    assert (edit.status_code, problem_type(edit)) == (404, "message-not-found")
    assert (again.status_code, problem_type(again)) == (404, "message-not-found")


@pytest.mark.parametrize("role", ["moderator", "admin"])
async def test_moderators_and_above_delete_anyone_s_message(client, app_engine, runtime, alice, bob, carol, role):
    conversation = await make_conversation(app_engine, alice, bob, carol, roles={"carol": role})
    by_bob = await send(client, bob, conversation, "spam")

    response = await client.delete(message_path(conversation, by_bob["id"]), headers=carol.headers)

    assert response.status_code == 204, response.text
    [message] = await history(client, alice, conversation)
    assert message["is_deleted"]
    [event] = [e for e in await events_of(runtime, conversation) if e["type"] == "message.deleted"]
    assert str(event["actor_id"]) == carol.user_id


async def test_the_owner_deletes_anyone_s_message(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    by_bob = await send(client, bob, conversation, "spam")

    response = await client.delete(message_path(conversation, by_bob["id"]), headers=alice.headers)

    assert response.status_code == 204, response.text


async def test_a_member_cannot_delete_someone_else_s_message(client, app_engine, runtime, alice, bob, mallory):
    conversation = await make_conversation(app_engine, alice, bob)
    by_alice = await send(client, alice, conversation, "mine")

    member = await client.delete(message_path(conversation, by_alice["id"]), headers=bob.headers)
    stranger = await client.delete(message_path(conversation, by_alice["id"]), headers=mallory.headers)

    assert (member.status_code, problem_type(member)) == (403, "not-allowed-in-conversation")
    assert (stranger.status_code, problem_type(stranger)) == (404, "conversation-not-found")
    [message] = await history(client, alice, conversation)
    assert not message["is_deleted"]
    assert "message.deleted" not in await types_of(runtime, conversation)


# Hiding for oneself


async def test_a_hidden_message_leaves_the_hider_s_history_only(client, app_engine, runtime, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    first = await send(client, alice, conversation, "first")
    second = await send(client, alice, conversation, "second")

    hidden = await client.post(f"{message_path(conversation, first['id'])}/hide", headers=bob.headers)
    twice = await client.post(f"{message_path(conversation, first['id'])}/hide", headers=bob.headers)

    assert (hidden.status_code, twice.status_code) == (204, 204)
    assert [m["id"] for m in await history(client, bob, conversation)] == [second["id"]]
    assert [m["id"] for m in await history(client, alice, conversation)] == [second["id"], first["id"]]
    shown = await client.delete(f"{message_path(conversation, first['id'])}/hide", headers=bob.headers)
    assert shown.status_code == 204
    assert [m["id"] for m in await history(client, bob, conversation)] == [second["id"], first["id"]]
    # Personal: the hider's devices hear of it, the conversation does not.
    mine = await events_of(runtime, bob.user_id, kind="user")
    assert [e["type"] for e in mine] == ["message.hidden", "message.unhidden"]
    assert mine[0]["payload"] == {"conversation_id": str(conversation), "message_id": first["id"], "seq": 1}
    assert not {"message.hidden", "message.unhidden"} & set(await types_of(runtime, conversation))


async def test_strangers_cannot_hide(client, app_engine, alice, bob, mallory):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, conversation, "hi")

    response = await client.post(f"{message_path(conversation, sent['id'])}/hide", headers=mallory.headers)
    unknown = await client.post(f"{message_path(conversation, str(uuid7()))}/hide", headers=bob.headers)

    assert (response.status_code, problem_type(response)) == (404, "conversation-not-found")
    assert (unknown.status_code, problem_type(unknown)) == (404, "message-not-found")


async def test_unread_counts_stay_exact_through_deletes_and_hides(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = [await send(client, alice, conversation, f"m{n}") for n in range(5)]
    assert (await listing(client, bob, conversation))["unread_count"] == 5

    await client.delete(message_path(conversation, sent[1]["id"]), headers=alice.headers)
    assert (await listing(client, bob, conversation))["unread_count"] == 4
    await client.post(f"{message_path(conversation, sent[2]['id'])}/hide", headers=bob.headers)
    assert (await listing(client, bob, conversation))["unread_count"] == 3
    # Hiding a deleted message does not take it off twice.
    await client.post(f"{message_path(conversation, sent[1]['id'])}/hide", headers=bob.headers)
    assert (await listing(client, bob, conversation))["unread_count"] == 3
    # Deleting a hidden one neither.
    await client.delete(message_path(conversation, sent[2]["id"]), headers=alice.headers)
    assert (await listing(client, bob, conversation))["unread_count"] == 3

    read = await client.post(
        f"/v1/conversations/{conversation}/read", json={"message_id": sent[3]["id"]}, headers=bob.headers
    )
    assert read.json()["unread_count"] == 1
    assert (await listing(client, bob, conversation))["unread_count"] == 1
    await client.delete(f"{message_path(conversation, sent[2]['id'])}/hide", headers=bob.headers)
    assert (await listing(client, bob, conversation))["unread_count"] == 1
    assert (await listing(client, alice, conversation))["unread_count"] == 0


# A sender whose account is gone


async def test_a_deleted_sender_s_messages_still_read(client, app_engine, database, alice, bob, carol):
    conversation = await make_conversation(app_engine, alice, bob, carol)
    sent = await send(client, carol, conversation, "from carol", mentions=[bob.user_id])
    await client.patch(
        message_path(conversation, sent["id"]), json={"content": "from carol, edited"}, headers=carol.headers
    )

    assert await as_superuser(database, "DELETE FROM auth.users WHERE id = $1", UUID(carol.user_id)) == "DELETE 1"

    one = await client.get(message_path(conversation, sent["id"]), headers=alice.headers)
    assert one.status_code == 200, one.text
    assert one.json()["sender_id"] is None and one.json()["content"] == "from carol, edited"
    assert (await history(client, bob, conversation))[0]["id"] == sent["id"]
    item = await listing(client, bob, conversation)
    assert (item["unread_count"], item["unread_mentions"]) == (1, 1)
    versions = await client.get(f"{message_path(conversation, sent['id'])}/edits", headers=bob.headers)
    assert [v["content"] for v in versions.json()["items"]] == ["from carol"]
    # Nobody is its sender any more: only moderators and above may delete it.
    member = await client.delete(message_path(conversation, sent["id"]), headers=bob.headers)
    owner = await client.delete(message_path(conversation, sent["id"]), headers=alice.headers)
    assert (member.status_code, problem_type(member)) == (403, "not-allowed-in-conversation")
    assert owner.status_code == 204, owner.text
    assert (await listing(client, bob, conversation))["unread_count"] == 0


# Forwarding


def forward_path(conversation_id: UUID, message_id: str) -> str:
    return f"{message_path(conversation_id, message_id)}/forward"


async def test_a_forward_sends_a_copy_to_each_conversation(client, app_engine, runtime, alice, bob, carol, mallory):
    source = await make_conversation(app_engine, alice, bob)
    mine = await make_conversation(app_engine, alice, carol)
    watching = await make_conversation(app_engine, carol, alice, roles={"alice": "observer"})
    theirs = await make_conversation(app_engine, mallory)
    sent = await send(client, bob, source, "look at this", type="location", content_metadata={"lat": 1.5})

    response = await client.post(
        forward_path(source, sent["id"]),
        json={"conversation_ids": [str(mine), str(watching), str(theirs)]},
        headers=alice.headers,
    )

    assert response.status_code == 200, response.text
    copied, refused_observer, refused_stranger = response.json()["results"]
    assert (copied["conversation_id"], copied["status"], copied["problem"]) == (str(mine), 201, None)
    copy = copied["message"]
    assert copy["forwarded_from_id"] == sent["id"] and copy["sender_id"] == alice.user_id
    assert (copy["type"], copy["content"], copy["content_metadata"]) == ("location", "look at this", {"lat": 1.5})
    assert copy["conversation_id"] == str(mine) and copy["seq"] == 1
    assert (refused_observer["status"], refused_observer["message"]) == (403, None)
    assert refused_observer["problem"]["type"].endswith(":cannot-send")
    assert (refused_stranger["status"], refused_stranger["problem"]["type"].rsplit(":", 1)[-1]) == (
        404,
        "conversation-not-found",
    )
    [in_carols_history] = await history(client, carol, mine)
    assert in_carols_history == {**copy, "client_message_id": None}
    assert await types_of(runtime, mine) == ["message.created"]
    assert await types_of(runtime, theirs) == []


async def test_a_retried_forward_sends_no_second_copy(client, app_engine, alice, bob, carol):
    source = await make_conversation(app_engine, alice, bob)
    target = await make_conversation(app_engine, alice, carol)
    sent = await send(client, bob, source, "once")
    body = {"conversation_ids": [str(target)], "client_message_id": "fwd-1"}

    first = await client.post(forward_path(source, sent["id"]), json=body, headers=alice.headers)
    retry = await client.post(forward_path(source, sent["id"]), json=body, headers=alice.headers)

    [made] = first.json()["results"]
    [found] = retry.json()["results"]
    assert (made["status"], found["status"]) == (201, 200)
    assert found["message"]["id"] == made["message"]["id"]
    assert len(await history(client, carol, target)) == 1


async def test_only_a_visible_live_message_is_forwarded(client, app_engine, alice, bob, carol, mallory):
    source = await make_conversation(app_engine, alice, bob)
    target = await make_conversation(app_engine, mallory)
    sent = await send(client, alice, source, "private")
    gone = await send(client, alice, source, "deleted")
    await client.delete(message_path(source, gone["id"]), headers=alice.headers)
    body = {"conversation_ids": [str(target)]}

    stranger = await client.post(forward_path(source, sent["id"]), json=body, headers=mallory.headers)
    deleted = await client.post(forward_path(source, gone["id"]), json=body, headers=alice.headers)

    assert (stranger.status_code, problem_type(stranger)) == (404, "conversation-not-found")
    assert (deleted.status_code, problem_type(deleted)) == (404, "message-not-found")
    assert await history(client, mallory, target) == []


@pytest.mark.parametrize(
    "body",
    [
        {"conversation_ids": []},
        {"conversation_ids": "x"},
        {"conversation_ids": ["not-a-uuid"]},
        {"conversation_ids": [str(uuid7()) for _ in range(21)]},
        {"conversation_ids": ["0190b7a2-0000-7000-8000-000000000001"] * 2},
        {"conversation_ids": [str(uuid7())], "client_message_id": ""},
        {"conversation_ids": [str(uuid7())], "content": "changed"},
        {},
    ],
)
async def test_bad_forwards_are_refused(client, app_engine, alice, bob, body):
    source = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, source, "hi")

    response = await client.post(forward_path(source, sent["id"]), json=body, headers=alice.headers)

    assert (response.status_code, problem_type(response)) == (422, "validation-error")
