"""Conversations: POST /v1/conversations (direct ones at most once per pair, refused across
a block), GET/PATCH/DELETE /v1/conversations/{id}, the public channels (GET /v1/channels,
join, leave), and the events each publishes.

Alice creates most conversations (she is their owner); bob and carol take part; mallory is
a stranger who tries."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import text

from rapport.kernel.ids import uuid7
from rapport.kernel.runtime import Runtime
from tests.messaging.support import make_conversation, send
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

CONVERSATIONS = "/v1/conversations"


# Steps the conversation, participant and invite tests share


async def create(client: httpx.AsyncClient, creator: Persona, expect: int = 201, **body: Any) -> dict[str, Any]:
    """POST /v1/conversations (a group by default) and its answer, which must be `expect`."""
    body.setdefault("type", "group")
    response = await client.post(CONVERSATIONS, headers=creator.headers, json=body)
    assert response.status_code == expect, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def refused(response: httpx.Response, status: int, slug: str) -> None:
    assert (response.status_code, problem_type(response)) == (status, slug), response.text


async def events(
    runtime: Runtime, scope_id: UUID | str, *, kind: str = "conversation"
) -> list[tuple[str, dict[str, Any]]]:
    """The committed events of one scope, oldest first, as the worker role reads them."""
    async with runtime.system_engine.engine.connect() as db:
        rows = await db.execute(
            text(
                "SELECT type, payload, actor_id FROM kernel.events"
                " WHERE scope_kind = :kind AND scope_id = :scope ORDER BY position"
            ),
            {"kind": kind, "scope": UUID(str(scope_id))},
        )
        return [(row.type, row.payload) for row in rows]


async def participant_ids(client: httpx.AsyncClient, persona: Persona, conversation_id: str, **params: Any) -> set[str]:
    response = await client.get(
        f"{CONVERSATIONS}/{conversation_id}/participants", headers=persona.headers, params=params
    )
    assert response.status_code == 200, response.text
    return {p["user_id"] for p in response.json()["items"]}


async def block(client: httpx.AsyncClient, blocker: Persona, blocked: Persona) -> None:
    response = await client.put(f"/v1/blocks/{blocked.user_id}", headers=blocker.headers)
    assert response.status_code == 200, response.text


# Creating


async def test_a_group_has_its_creator_as_owner_and_the_others_as_members(client, alice, bob, carol):
    made = await create(client, alice, name="Garden club", participant_ids=[bob.user_id, carol.user_id])
    assert (made["type"], made["name"], made["member_count"], made["is_public"]) == ("group", "Garden club", 3, False)
    assert made["membership"]["role"] == "owner" and made["creator_id"] == alice.user_id
    listed = (await client.get(f"{CONVERSATIONS}/{made['id']}/participants", headers=bob.headers)).json()["items"]
    assert {(p["user_id"], p["role"]) for p in listed} == {
        (alice.user_id, "owner"),
        (bob.user_id, "member"),
        (carol.user_id, "member"),
    }


async def test_creating_publishes_created_then_one_joined_per_person(client, runtime, alice, bob):
    made = await create(client, alice, participant_ids=[bob.user_id])
    published = await events(runtime, made["id"])
    assert [(kind, payload.get("user_id")) for kind, payload in published] == [
        ("conversation.created", None),
        ("participant.joined", alice.user_id),
        ("participant.joined", bob.user_id),
    ]
    assert published[1][1]["role"] == "owner" and published[2][1]["invited_by"] == alice.user_id


async def test_all_fields_are_kept(client, alice):
    parent = await create(client, alice, name="Parent")
    made = await create(
        client,
        alice,
        type="support",
        name="  Help desk ",
        description="Ask us\nanything",
        avatar_url="https://example.com/a.png",
        settings={"colour": "green", "slow_mode": 30},
        max_participants=10,
        parent_id=parent["id"],
    )
    assert (made["name"], made["description"], made["avatar_url"]) == (
        "Help desk",
        "Ask us\nanything",
        "https://example.com/a.png",
    )
    assert (made["settings"], made["max_participants"], made["parent_id"]) == (
        {"colour": "green", "slow_mode": 30},
        10,
        parent["id"],
    )


async def test_a_channel_is_public(client, alice):
    made = await create(client, alice, type="channel", name="Announcements")
    assert made["is_public"] is True


async def test_the_creator_in_participant_ids_counts_once(client, alice, bob):
    made = await create(client, alice, participant_ids=[alice.user_id, bob.user_id, bob.user_id])
    assert made["member_count"] == 2


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"type": "room"},
        {"type": "group", "name": ""},
        {"type": "group", "name": "\u200b"},
        {"type": "group", "name": "x" * 201},
        {"type": "group", "description": "x" * 4001},
        {"type": "group", "avatar_url": "not a url"},
        {"type": "group", "settings": []},
        {"type": "group", "settings": {"big": "x" * 8000}},
        {"type": "group", "max_participants": 1},
        {"type": "group", "max_participants": "5"},
        {"type": "group", "participant_ids": ["not-a-uuid"]},
        {"type": "group", "parent_id": 5},
        {"type": "group", "colour": "red"},
        {"type": "channel"},
        {"type": "direct", "participant_ids": []},
        {"type": "direct", "name": "Us", "participant_ids": [str(uuid7())]},
        {"type": "direct", "participant_ids": [str(uuid7()), str(uuid7())]},
    ],
)
async def test_bad_bodies_are_refused(client, alice, body):
    await refused(await client.post(CONVERSATIONS, headers=alice.headers, json=body), 422, "validation-error")


async def test_settings_postgresql_would_write_out_too_long_are_refused(client, alice):
    # 1e300 is short as JSON and 301 digits as PostgreSQL writes out a numeric.
    settings = {f"k{n}": 1e300 for n in range(30)}
    response = await client.post(CONVERSATIONS, headers=alice.headers, json={"type": "group", "settings": settings})
    await refused(response, 422, "validation-error")


async def test_an_unknown_participant_is_not_found(client, alice):
    response = await client.post(
        CONVERSATIONS, headers=alice.headers, json={"type": "group", "participant_ids": [str(uuid7())]}
    )
    await refused(response, 404, "user-not-found")


async def test_someone_with_a_private_profile_is_not_found(client, alice, bob):
    hidden = await client.patch("/v1/profile", headers=bob.headers, json={"profile_visibility": "private"})
    assert hidden.status_code == 200, hidden.text
    response = await client.post(
        CONVERSATIONS, headers=alice.headers, json={"type": "group", "participant_ids": [bob.user_id]}
    )
    await refused(response, 404, "user-not-found")


async def test_someone_blocking_the_creator_is_not_found(client, alice, bob):
    await block(client, bob, alice)
    response = await client.post(
        CONVERSATIONS, headers=alice.headers, json={"type": "group", "participant_ids": [bob.user_id]}
    )
    await refused(response, 404, "user-not-found")


async def test_someone_the_creator_blocks_cannot_be_added_to_a_group(client, alice, bob):
    await block(client, alice, bob)
    response = await client.post(
        CONVERSATIONS, headers=alice.headers, json={"type": "group", "participant_ids": [bob.user_id]}
    )
    await refused(response, 404, "user-not-found")


async def test_more_people_than_the_limit_are_refused_and_nothing_is_made(client, alice, bob, carol):
    response = await client.post(
        CONVERSATIONS,
        headers=alice.headers,
        json={"type": "group", "max_participants": 2, "participant_ids": [bob.user_id, carol.user_id]},
    )
    await refused(response, 409, "conversation-full")
    assert (await client.get(CONVERSATIONS, headers=alice.headers)).json()["items"] == []


async def test_a_parent_the_creator_cannot_see_is_not_found(client, app_engine, alice, mallory):
    theirs = await make_conversation(app_engine, mallory)
    response = await client.post(CONVERSATIONS, headers=alice.headers, json={"type": "group", "parent_id": str(theirs)})
    await refused(response, 404, "conversation-not-found")


async def test_a_public_channel_can_be_a_parent(client, alice, mallory):
    channel = await create(client, mallory, type="channel", name="Town square")
    made = await create(client, alice, parent_id=channel["id"])
    assert made["parent_id"] == channel["id"]


async def test_creating_needs_a_signed_in_caller(client):
    response = await client.post(CONVERSATIONS, json={"type": "group"})
    await refused(response, 401, "unauthenticated")


# Direct conversations


async def test_a_direct_conversation_is_made_once_per_pair(client, runtime, alice, bob):
    first = await create(client, alice, type="direct", participant_ids=[bob.user_id])
    again = await create(client, alice, expect=200, type="direct", participant_ids=[bob.user_id])
    theirs = await create(client, bob, expect=200, type="direct", participant_ids=[alice.user_id])
    assert first["id"] == again["id"] == theirs["id"]
    assert (first["direct_with"], theirs["direct_with"]) == (bob.user_id, alice.user_id)
    assert (first["member_count"], first["name"]) == (2, None)
    assert [kind for kind, _ in await events(runtime, first["id"])] == [
        "conversation.created",
        "participant.joined",
        "participant.joined",
    ]


async def test_racing_opens_of_one_pair_make_one_conversation(client, alice, bob):
    body = {"type": "direct"}
    answers = await asyncio.gather(
        *(
            client.post(CONVERSATIONS, headers=opener.headers, json={**body, "participant_ids": [other.user_id]})
            for opener, other in [(alice, bob), (bob, alice), (alice, bob), (bob, alice)]
        )
    )
    assert sorted(answer.status_code for answer in answers) == [200, 200, 200, 201], [a.text for a in answers]
    assert len({answer.json()["id"] for answer in answers}) == 1
    assert answers[0].json()["member_count"] == 2


async def test_a_direct_conversation_with_oneself_is_refused(client, alice):
    response = await client.post(
        CONVERSATIONS, headers=alice.headers, json={"type": "direct", "participant_ids": [alice.user_id]}
    )
    await refused(response, 422, "validation-error")


async def test_a_direct_conversation_with_someone_one_blocks_is_refused(client, alice, bob):
    await block(client, alice, bob)
    response = await client.post(
        CONVERSATIONS, headers=alice.headers, json={"type": "direct", "participant_ids": [bob.user_id]}
    )
    await refused(response, 409, "you-block-this-user")


async def test_a_direct_conversation_with_someone_who_blocks_one_is_as_with_nobody(client, alice, bob):
    await block(client, bob, alice)
    blocked = await client.post(
        CONVERSATIONS, headers=alice.headers, json={"type": "direct", "participant_ids": [bob.user_id]}
    )
    nobody = await client.post(
        CONVERSATIONS, headers=alice.headers, json={"type": "direct", "participant_ids": [str(uuid7())]}
    )
    await refused(blocked, 404, "user-not-found")
    assert blocked.json()["title"] == nobody.json()["title"] and blocked.json()["detail"] == nobody.json()["detail"]


async def test_an_existing_direct_conversation_is_refused_across_a_later_block(client, alice, bob):
    await create(client, alice, type="direct", participant_ids=[bob.user_id])
    await block(client, bob, alice)
    response = await client.post(
        CONVERSATIONS, headers=alice.headers, json={"type": "direct", "participant_ids": [bob.user_id]}
    )
    await refused(response, 404, "user-not-found")


async def test_either_person_may_leave_a_direct_conversation_and_reopen_it(client, alice, bob):
    first = await create(client, alice, type="direct", participant_ids=[bob.user_id])
    await send(client, bob, first["id"], "before")
    left = await client.post(f"{CONVERSATIONS}/{first['id']}/leave", headers=alice.headers)
    assert left.status_code == 204, left.text
    assert (await client.get(f"{CONVERSATIONS}/{first['id']}", headers=alice.headers)).status_code == 404
    reopened = await create(client, alice, type="direct", participant_ids=[bob.user_id])
    assert (reopened["id"], reopened["membership"]["role"], reopened["member_count"]) == (first["id"], "owner", 2)
    history = await client.get(f"{CONVERSATIONS}/{first['id']}/messages", headers=alice.headers)
    assert [m["content"] for m in history.json()["items"]] == ["before"]


async def test_reopening_a_direct_conversation_brings_the_other_back(client, runtime, alice, bob):
    first = await create(client, alice, type="direct", participant_ids=[bob.user_id])
    assert (await client.post(f"{CONVERSATIONS}/{first['id']}/leave", headers=bob.headers)).status_code == 204
    again = await create(client, alice, expect=200, type="direct", participant_ids=[bob.user_id])
    assert again["member_count"] == 2
    assert (await client.get(f"{CONVERSATIONS}/{first['id']}", headers=bob.headers)).status_code == 200
    assert [kind for kind, _ in await events(runtime, first["id"])][-2:] == ["participant.left", "participant.joined"]


async def test_a_direct_conversation_takes_no_third_person(client, alice, bob, carol):
    made = await create(client, alice, type="direct", participant_ids=[bob.user_id])
    response = await client.post(
        f"{CONVERSATIONS}/{made['id']}/participants", headers=alice.headers, json={"user_id": carol.user_id}
    )
    await refused(response, 409, "direct-conversation-is-two")


async def test_a_deleted_direct_conversation_makes_room_for_a_new_one(client, alice, bob):
    first = await create(client, alice, type="direct", participant_ids=[bob.user_id])
    assert (await client.delete(f"{CONVERSATIONS}/{first['id']}", headers=alice.headers)).status_code == 204
    second = await create(client, bob, type="direct", participant_ids=[alice.user_id])
    assert second["id"] != first["id"] and second["membership"]["role"] == "owner"


# Reading


async def test_a_participant_reads_the_conversation_and_their_part(client, alice, bob):
    made = await create(client, alice, name="Book club", participant_ids=[bob.user_id])
    response = await client.get(f"{CONVERSATIONS}/{made['id']}", headers=bob.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["membership"]["role"], body["membership"]["status"]) == ("Book club", "member", "active")


async def test_a_stranger_cannot_read_a_conversation(client, alice, mallory):
    made = await create(client, alice)
    await refused(
        await client.get(f"{CONVERSATIONS}/{made['id']}", headers=mallory.headers), 404, "conversation-not-found"
    )


async def test_anyone_reads_a_public_channel_without_taking_part(client, alice, mallory):
    made = await create(client, alice, type="channel", name="News")
    response = await client.get(f"{CONVERSATIONS}/{made['id']}", headers=mallory.headers)
    assert (response.status_code, response.json()["membership"]) == (200, None)


async def test_an_unknown_or_malformed_id_is_refused(client, alice):
    await refused(await client.get(f"{CONVERSATIONS}/{uuid7()}", headers=alice.headers), 404, "conversation-not-found")
    assert (await client.get(f"{CONVERSATIONS}/nope", headers=alice.headers)).status_code == 422


# Changing


async def test_the_owner_changes_the_conversation(client, runtime, alice, bob):
    made = await create(client, alice, name="Old", participant_ids=[bob.user_id])
    response = await client.patch(
        f"{CONVERSATIONS}/{made['id']}",
        headers=alice.headers,
        json={"name": "New", "description": "About", "settings": {"a": 1}, "max_participants": 5, "avatar_url": None},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["description"], body["settings"], body["max_participants"]) == (
        "New",
        "About",
        {"a": 1},
        5,
    )
    kind, payload = (await events(runtime, made["id"]))[-1]
    assert (kind, payload["fields"]) == (
        "conversation.changed",
        ["avatar_url", "description", "max_participants", "name", "settings"],
    )


async def test_an_admin_changes_the_conversation(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob, roles={"bob": "admin"})
    response = await client.patch(f"{CONVERSATIONS}/{conversation}", headers=bob.headers, json={"name": "By bob"})
    assert (response.status_code, response.json()["name"]) == (200, "By bob")


@pytest.mark.parametrize("role", ["moderator", "member", "guest", "observer"])
async def test_others_may_not_change_it(client, app_engine, alice, bob, role):
    conversation = await make_conversation(app_engine, alice, bob, roles={"bob": role})
    response = await client.patch(f"{CONVERSATIONS}/{conversation}", headers=bob.headers, json={"name": "Mine"})
    await refused(response, 403, "not-allowed-in-conversation")


async def test_a_stranger_cannot_change_it(client, alice, mallory):
    made = await create(client, alice, type="channel", name="Open")
    response = await client.patch(f"{CONVERSATIONS}/{made['id']}", headers=mallory.headers, json={"name": "Mine"})
    await refused(response, 404, "conversation-not-found")


async def test_an_archived_conversation_takes_no_messages_until_reopened(client, alice, bob):
    made = await create(client, alice, participant_ids=[bob.user_id])
    archived = await client.patch(f"{CONVERSATIONS}/{made['id']}", headers=alice.headers, json={"status": "archived"})
    assert archived.json()["status"] == "archived"
    blocked = await client.post(f"{CONVERSATIONS}/{made['id']}/messages", headers=bob.headers, json={"content": "hi"})
    await refused(blocked, 409, "conversation-not-active")
    await client.patch(f"{CONVERSATIONS}/{made['id']}", headers=alice.headers, json={"status": "active"})
    await send(client, bob, made["id"], "hi again")


async def test_an_empty_change_changes_nothing(client, runtime, alice):
    made = await create(client, alice, name="Same")
    response = await client.patch(f"{CONVERSATIONS}/{made['id']}", headers=alice.headers, json={})
    assert (response.status_code, response.json()["name"]) == (200, "Same")
    assert [kind for kind, _ in await events(runtime, made["id"])][-1] == "participant.joined"


@pytest.mark.parametrize(
    "body",
    [
        {"status": None},
        {"status": "deleted"},
        {"settings": None},
        {"name": ""},
        {"max_participants": 0},
        {"type": "channel"},
        {"is_public": True},
        {"member_count": 9},
    ],
)
async def test_bad_changes_are_refused(client, alice, body):
    made = await create(client, alice)
    await refused(
        await client.patch(f"{CONVERSATIONS}/{made['id']}", headers=alice.headers, json=body), 422, "validation-error"
    )


async def test_a_channel_keeps_its_name(client, alice):
    made = await create(client, alice, type="channel", name="Keep")
    response = await client.patch(f"{CONVERSATIONS}/{made['id']}", headers=alice.headers, json={"name": None})
    await refused(response, 422, "validation-error")


async def test_the_limit_cannot_go_below_who_takes_part(client, alice, bob, carol):
    made = await create(client, alice, participant_ids=[bob.user_id, carol.user_id])
    response = await client.patch(f"{CONVERSATIONS}/{made['id']}", headers=alice.headers, json={"max_participants": 2})
    await refused(response, 422, "validation-error")


async def test_a_direct_conversation_has_no_name_to_change(client, alice, bob):
    made = await create(client, alice, type="direct", participant_ids=[bob.user_id])
    response = await client.patch(f"{CONVERSATIONS}/{made['id']}", headers=alice.headers, json={"name": "Us"})
    await refused(response, 422, "validation-error")


async def test_parents_cannot_loop(client, alice):
    top = await create(client, alice, name="Top")
    child = await create(client, alice, name="Child", parent_id=top["id"])
    itself = await client.patch(f"{CONVERSATIONS}/{top['id']}", headers=alice.headers, json={"parent_id": top["id"]})
    loop = await client.patch(f"{CONVERSATIONS}/{top['id']}", headers=alice.headers, json={"parent_id": child["id"]})
    await refused(itself, 422, "validation-error")
    await refused(loop, 422, "validation-error")
    cleared = await client.patch(f"{CONVERSATIONS}/{child['id']}", headers=alice.headers, json={"parent_id": None})
    assert cleared.json()["parent_id"] is None


async def test_a_parent_one_cannot_see_is_refused_on_change(client, app_engine, alice, mallory):
    made = await create(client, alice)
    theirs = await make_conversation(app_engine, mallory)
    response = await client.patch(
        f"{CONVERSATIONS}/{made['id']}", headers=alice.headers, json={"parent_id": str(theirs)}
    )
    await refused(response, 404, "conversation-not-found")


# Deleting


async def test_the_owner_deletes_and_everyone_loses_it(client, runtime, alice, bob):
    made = await create(client, alice, participant_ids=[bob.user_id])
    await send(client, bob, made["id"], "soon gone")
    deleted = await client.delete(f"{CONVERSATIONS}/{made['id']}", headers=alice.headers)
    assert deleted.status_code == 204, deleted.text
    for persona in (alice, bob):
        await refused(
            await client.get(f"{CONVERSATIONS}/{made['id']}", headers=persona.headers), 404, "conversation-not-found"
        )
        assert (await client.get(CONVERSATIONS, headers=persona.headers)).json()["items"] == []
        sending = await client.post(
            f"{CONVERSATIONS}/{made['id']}/messages", headers=persona.headers, json={"content": "x"}
        )
        await refused(sending, 404, "conversation-not-found")
    # Everyone's window is closed and empty: no reader of messages finds any.
    history = await client.get(f"{CONVERSATIONS}/{made['id']}/messages", headers=bob.headers)
    assert history.json()["items"] == [], history.text
    assert (await events(runtime, made["id"]))[-1][0] == "conversation.deleted"


@pytest.mark.parametrize("role", ["admin", "member"])
async def test_only_owners_delete(client, app_engine, alice, bob, role):
    conversation = await make_conversation(app_engine, alice, bob, roles={"bob": role})
    await refused(
        await client.delete(f"{CONVERSATIONS}/{conversation}", headers=bob.headers), 403, "not-allowed-in-conversation"
    )


async def test_a_stranger_cannot_delete(client, alice, mallory):
    made = await create(client, alice, type="channel", name="Mine")
    await refused(
        await client.delete(f"{CONVERSATIONS}/{made['id']}", headers=mallory.headers), 404, "conversation-not-found"
    )


async def test_deleting_twice_finds_nothing_the_second_time(client, alice):
    made = await create(client, alice)
    assert (await client.delete(f"{CONVERSATIONS}/{made['id']}", headers=alice.headers)).status_code == 204
    await refused(
        await client.delete(f"{CONVERSATIONS}/{made['id']}", headers=alice.headers), 404, "conversation-not-found"
    )


# Public channels


async def test_channels_are_listed_newest_first_and_found_by_name(client, alice, bob, mallory):
    gardening = await create(client, alice, type="channel", name="Gardening")
    await create(client, alice, name="Not public")
    cooking = await create(client, bob, type="channel", name="Cooking 100%")
    listed = await client.get("/v1/channels", headers=mallory.headers)
    assert [c["id"] for c in listed.json()["items"]] == [cooking["id"], gardening["id"]]
    found = await client.get("/v1/channels", headers=mallory.headers, params={"q": "GARDEN"})
    assert [c["id"] for c in found.json()["items"]] == [gardening["id"]]
    literal = await client.get("/v1/channels", headers=mallory.headers, params={"q": "0%"})
    assert [c["id"] for c in literal.json()["items"]] == [cooking["id"]]
    nothing = await client.get("/v1/channels", headers=mallory.headers, params={"q": "_"})
    assert nothing.json()["items"] == []


async def test_channels_come_in_pages(client, alice, mallory):
    made = [await create(client, alice, type="channel", name=f"Channel {n}") for n in range(3)]
    first = (await client.get("/v1/channels", headers=mallory.headers, params={"limit": 2})).json()
    second = (
        await client.get("/v1/channels", headers=mallory.headers, params={"limit": 2, "cursor": first["next"]})
    ).json()
    assert [c["id"] for c in first["items"] + second["items"]] == [c["id"] for c in reversed(made)]
    assert second["next"] is None


async def test_a_bad_channel_cursor_or_query_is_refused(client, alice):
    await refused(
        await client.get("/v1/channels", headers=alice.headers, params={"cursor": "!!"}), 400, "invalid-cursor"
    )
    assert (await client.get("/v1/channels", headers=alice.headers, params={"q": "x" * 201})).status_code == 422
    assert (await client.get("/v1/channels", headers=alice.headers, params={"limit": 0})).status_code == 422


async def test_a_deleted_channel_is_no_longer_listed(client, alice, mallory):
    made = await create(client, alice, type="channel", name="Short-lived")
    await client.delete(f"{CONVERSATIONS}/{made['id']}", headers=alice.headers)
    assert (await client.get("/v1/channels", headers=mallory.headers)).json()["items"] == []


async def test_anyone_joins_a_public_channel(client, runtime, alice, mallory):
    made = await create(client, alice, type="channel", name="Open to all")
    joined = await client.post(f"{CONVERSATIONS}/{made['id']}/join", headers=mallory.headers)
    assert joined.status_code == 200, joined.text
    assert (joined.json()["membership"]["role"], joined.json()["member_count"]) == ("member", 2)
    again = await client.post(f"{CONVERSATIONS}/{made['id']}/join", headers=mallory.headers)
    assert again.status_code == 200
    joins = [p["user_id"] for kind, p in await events(runtime, made["id"]) if kind == "participant.joined"]
    assert joins == [alice.user_id, mallory.user_id]
    await send(client, mallory, made["id"], "hello all")


async def test_a_conversation_that_is_not_public_cannot_be_joined(client, alice, mallory):
    made = await create(client, alice)
    await refused(
        await client.post(f"{CONVERSATIONS}/{made['id']}/join", headers=mallory.headers), 404, "conversation-not-found"
    )


async def test_a_full_channel_cannot_be_joined(client, alice, bob, mallory):
    made = await create(client, alice, type="channel", name="Small", max_participants=2, participant_ids=[bob.user_id])
    await refused(
        await client.post(f"{CONVERSATIONS}/{made['id']}/join", headers=mallory.headers), 409, "conversation-full"
    )


async def test_someone_removed_cannot_rejoin_a_channel_by_themself(client, alice, mallory):
    made = await create(client, alice, type="channel", name="Moderated")
    await client.post(f"{CONVERSATIONS}/{made['id']}/join", headers=mallory.headers)
    removed = await client.delete(f"{CONVERSATIONS}/{made['id']}/participants/{mallory.user_id}", headers=alice.headers)
    assert removed.status_code == 204, removed.text
    await refused(
        await client.post(f"{CONVERSATIONS}/{made['id']}/join", headers=mallory.headers), 404, "conversation-not-found"
    )


async def test_someone_who_left_a_channel_may_come_back(client, alice, bob):
    made = await create(client, alice, type="channel", name="Revolving door")
    await client.post(f"{CONVERSATIONS}/{made['id']}/join", headers=bob.headers)
    assert (await client.post(f"{CONVERSATIONS}/{made['id']}/leave", headers=bob.headers)).status_code == 204
    back = await client.post(f"{CONVERSATIONS}/{made['id']}/join", headers=bob.headers)
    assert (back.status_code, back.json()["membership"]["status"]) == (200, "active")


# Leaving


async def test_a_member_leaves_and_sees_it_no_more(client, runtime, alice, bob):
    made = await create(client, alice, participant_ids=[bob.user_id])
    assert (await client.post(f"{CONVERSATIONS}/{made['id']}/leave", headers=bob.headers)).status_code == 204
    await refused(await client.get(f"{CONVERSATIONS}/{made['id']}", headers=bob.headers), 404, "conversation-not-found")
    assert await participant_ids(client, alice, made["id"]) == {alice.user_id}
    kind, payload = (await events(runtime, made["id"]))[-1]
    assert (kind, payload["user_id"], payload["status"]) == ("participant.left", bob.user_id, "left")


async def test_the_last_owner_must_hand_over_before_leaving(client, alice, bob):
    made = await create(client, alice, participant_ids=[bob.user_id])
    await refused(
        await client.post(f"{CONVERSATIONS}/{made['id']}/leave", headers=alice.headers), 409, "owner-must-hand-over"
    )


async def test_the_owner_alone_may_leave(client, alice):
    made = await create(client, alice)
    assert (await client.post(f"{CONVERSATIONS}/{made['id']}/leave", headers=alice.headers)).status_code == 204


async def test_leaving_what_one_takes_no_part_in_is_not_found(client, alice, mallory):
    made = await create(client, alice, type="channel", name="Watch only")
    await refused(
        await client.post(f"{CONVERSATIONS}/{made['id']}/leave", headers=mallory.headers), 404, "conversation-not-found"
    )
