"""Calls: POST /v1/conversations/{id}/calls (start), .../calls/{call_id}/join, /leave,
/decline, /end, PUT .../rating, GET .../calls (history) and GET .../calls/{call_id}; the
call's life (ringing, ongoing once a second person joins, ended with its duration, missed
when nobody answered, declined when everyone rung declined) and the events it publishes.

Alice owns a group with bob and carol (members unless the test says otherwise) and starts
most calls; mallory is a stranger who tries."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from rapport.kernel.db import user_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import asyncpg_dsn
from rapport.kernel.runtime import Runtime
from tests.messaging import group_world
from tests.messaging.support import make_conversation
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

# The shared world's fixtures (tests.messaging.group_world), taken by this module.
World = group_world.World
module_world, world, group = group_world.module_world, group_world.world, group_world.group
alice, bob, carol, mallory = group_world.alice, group_world.bob, group_world.carol, group_world.mallory


def calls_of(conversation_id: UUID | str) -> str:
    return f"/v1/conversations/{conversation_id}/calls"


def call_path(conversation_id: UUID | str, call_id: UUID | str, action: str = "") -> str:
    return f"{calls_of(conversation_id)}/{call_id}" + (f"/{action}" if action else "")


async def start(
    client: httpx.AsyncClient, persona: Persona, conversation_id: UUID, call_type: str = "audio"
) -> dict[str, Any]:
    response = await client.post(calls_of(conversation_id), headers=persona.headers, json={"type": call_type})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def act(
    client: httpx.AsyncClient, persona: Persona, conversation_id: UUID, call_id: str, action: str
) -> dict[str, Any]:
    response = await client.post(call_path(conversation_id, call_id, action), headers=persona.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refused(response: httpx.Response, status: int, slug: str) -> None:
    assert (response.status_code, problem_type(response)) == (status, slug), response.text


def statuses(call: dict[str, Any], *people: Persona) -> list[str]:
    """Each person's status in the call, in the order given (None when not in it)."""
    by_user = {p["user_id"]: p["status"] for p in call["participants"]}
    return [by_user.get(person.user_id) for person in people]  # type: ignore[misc]


async def events(runtime: Runtime, conversation_id: UUID) -> list[tuple[str, dict[str, Any]]]:
    """The conversation's committed events, oldest first, as the worker role reads them."""
    async with runtime.system_engine.engine.connect() as db:
        rows = await db.execute(
            text(
                "SELECT type, payload FROM kernel.events"
                " WHERE scope_kind = 'conversation' AND scope_id = :scope ORDER BY position"
            ),
            {"scope": conversation_id},
        )
        return [(row.type, row.payload) for row in rows if row.type.startswith("call.")]


async def mute(engine, persona: Persona, conversation_id: UUID) -> None:
    """The person mutes the conversation for themself (no notifications, no ringing)."""
    async with user_transaction(engine, UUID(persona.user_id)) as db:
        await db.execute(
            text("UPDATE messaging.participants SET is_muted = true WHERE conversation_id = :c AND user_id = :me"),
            {"c": conversation_id, "me": persona.user_id},
        )


# Starting


async def test_starting_a_call_joins_the_caller_and_rings_the_others(client, group, alice, bob, carol):
    call = await start(client, alice, group, "video")
    assert (call["type"], call["status"], call["started_by"]) == ("video", "ringing", alice.user_id)
    assert statuses(call, alice, bob, carol) == ["joined", "ringing", "ringing"]
    assert call["answered_at"] is None and call["ended_at"] is None and call["duration_seconds"] is None


async def test_someone_who_muted_the_conversation_is_invited_without_ringing(client, app_engine, group, alice, carol):
    await mute(app_engine, carol, group)
    call = await start(client, alice, group)
    assert statuses(call, carol) == ["invited"]


async def test_an_observer_is_not_rung_and_cannot_call(client, app_engine, alice, bob, carol):
    conversation = await make_conversation(app_engine, alice, bob, carol, roles={"carol": "observer"})
    call = await start(client, alice, conversation)
    assert statuses(call, bob, carol) == ["ringing", None]
    refused(await client.post(call_path(conversation, call["id"], "join"), headers=carol.headers), 403, "cannot-call")
    await act(client, alice, conversation, call["id"], "end")
    refused(
        await client.post(calls_of(conversation), headers=carol.headers, json={"type": "audio"}), 403, "cannot-call"
    )


async def test_a_second_call_while_one_is_live_is_refused_with_its_id(client, group, alice, bob):
    call = await start(client, alice, group)
    response = await client.post(calls_of(group), headers=bob.headers, json={"type": "video"})
    refused(response, 409, "call-in-progress")
    assert response.json()["call_id"] == call["id"]


async def test_a_new_call_may_start_once_the_last_one_ended(client, group, alice, bob):
    first = await start(client, alice, group)
    await act(client, alice, group, first["id"], "end")
    second = await start(client, bob, group)
    assert second["id"] != first["id"] and second["status"] == "ringing"


async def test_calls_follow_the_rules_of_sending_in_a_direct_conversation_with_a_block(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob, type="direct")
    blocked = await client.put(f"/v1/blocks/{bob.user_id}", headers=alice.headers)
    assert blocked.status_code == 200, blocked.text
    refused(await client.post(calls_of(conversation), headers=bob.headers, json={"type": "audio"}), 403, "cannot-call")


async def test_no_call_starts_in_an_archived_conversation(client, app_engine, group, alice):
    async with user_transaction(app_engine, UUID(alice.user_id)) as db:
        await db.execute(text("UPDATE messaging.conversations SET status = 'archived' WHERE id = :c"), {"c": group})
    refused(
        await client.post(calls_of(group), headers=alice.headers, json={"type": "audio"}),
        409,
        "conversation-not-active",
    )


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-type"),
        pytest.param({"type": "hologram"}, id="unknown-type"),
        pytest.param({"type": "audio", "status": "ongoing"}, id="extra-field"),
        pytest.param({"type": 1}, id="not-a-string"),
    ],
)
async def test_a_bad_start_is_refused(client, group, alice, body):
    refused(await client.post(calls_of(group), headers=alice.headers, json=body), 422, "validation-error")


async def test_a_stranger_cannot_call_or_see_calls(client, group, alice, mallory):
    call = await start(client, alice, group)
    refused(
        await client.post(calls_of(group), headers=mallory.headers, json={"type": "audio"}),
        404,
        "conversation-not-found",
    )
    refused(await client.get(calls_of(group), headers=mallory.headers), 404, "conversation-not-found")
    refused(await client.get(call_path(group, call["id"]), headers=mallory.headers), 404, "conversation-not-found")
    for action in ("join", "leave", "decline", "end"):
        refused(
            await client.post(call_path(group, call["id"], action), headers=mallory.headers),
            404,
            "conversation-not-found",
        )
    refused(
        await client.put(call_path(group, call["id"], "rating"), headers=mallory.headers, json={"quality_rating": 1}),
        404,
        "conversation-not-found",
    )


async def test_an_unknown_call_is_not_found(client, group, alice):
    refused(await client.get(call_path(group, uuid7()), headers=alice.headers), 404, "call-not-found")
    refused(await client.post(call_path(group, uuid7(), "join"), headers=alice.headers), 404, "call-not-found")


async def test_a_call_of_another_conversation_is_not_found_here(client, app_engine, group, alice, bob):
    other = await make_conversation(app_engine, alice, bob)
    call = await start(client, alice, other)
    refused(await client.get(call_path(group, call["id"]), headers=alice.headers), 404, "call-not-found")


# Joining, leaving, declining


async def test_a_second_person_joining_answers_the_call(client, group, alice, bob, carol):
    call = await start(client, alice, group)
    joined = await act(client, bob, group, call["id"], "join")
    assert joined["status"] == "ongoing" and joined["answered_at"] is not None
    assert statuses(joined, alice, bob, carol) == ["joined", "joined", "ringing"]


async def test_joining_twice_changes_nothing(client, group, alice, bob):
    call = await start(client, alice, group)
    first = await act(client, bob, group, call["id"], "join")
    again = await act(client, bob, group, call["id"], "join")
    assert again == first


async def test_someone_who_joined_the_conversation_later_joins_a_call_they_were_not_rung_for(
    client, app_engine, group, alice, bob, make_persona
):
    call = await start(client, alice, group)
    dave = await make_persona("dave")
    async with user_transaction(app_engine, UUID(alice.user_id)) as db:
        await db.execute(text("SELECT messaging.add_participant(:c, :u)"), {"c": group, "u": dave.user_id})
    joined = await act(client, dave, group, call["id"], "join")
    assert joined["status"] == "ongoing" and statuses(joined, dave) == ["joined"]


async def test_leaving_keeps_an_answered_call_going_while_someone_is_in_it(client, group, alice, bob):
    call = await start(client, alice, group)
    await act(client, bob, group, call["id"], "join")
    left = await act(client, bob, group, call["id"], "leave")
    assert left["status"] == "ongoing" and statuses(left, alice, bob) == ["joined", "left"]


async def test_rejoining_keeps_the_first_joining_time(client, group, alice, bob):
    call = await start(client, alice, group)
    first = await act(client, bob, group, call["id"], "join")
    await act(client, bob, group, call["id"], "leave")
    again = await act(client, bob, group, call["id"], "join")
    joined_at = {p["user_id"]: p["joined_at"] for p in again["participants"]}
    assert statuses(again, bob) == ["joined"]
    assert joined_at[bob.user_id] == {p["user_id"]: p["joined_at"] for p in first["participants"]}[bob.user_id]


async def test_the_last_one_leaving_ends_an_answered_call_with_its_duration(client, group, alice, bob, carol):
    call = await start(client, alice, group)
    await act(client, bob, group, call["id"], "join")
    await act(client, alice, group, call["id"], "leave")
    ended = await act(client, bob, group, call["id"], "leave")
    assert ended["status"] == "ended" and ended["ended_at"] is not None
    answered, over = datetime.fromisoformat(ended["answered_at"]), datetime.fromisoformat(ended["ended_at"])
    assert ended["duration_seconds"] == int((over - answered).total_seconds())
    assert statuses(ended, alice, bob, carol) == ["left", "left", "missed"]


async def test_the_duration_counts_from_answering_to_the_end(client, database, group, alice, bob):
    call = await start(client, alice, group)
    await act(client, bob, group, call["id"], "join")
    # Ninety seconds of conversation without waiting for them, by the hand of the schema's
    # owner: nobody else may move a call's times.
    owner = await asyncpg.connect(asyncpg_dsn(database.owner))
    try:
        await owner.execute(
            "UPDATE messaging.calls SET answered_at = answered_at - interval '90 seconds' WHERE id = $1",
            UUID(call["id"]),
        )
    finally:
        await owner.close()
    ended = await act(client, alice, group, call["id"], "end")
    answered, over = datetime.fromisoformat(ended["answered_at"]), datetime.fromisoformat(ended["ended_at"])
    assert ended["duration_seconds"] == int((over - answered).total_seconds())
    assert 90 <= ended["duration_seconds"] < 100


async def test_the_caller_hanging_up_before_anyone_answers_makes_a_missed_call(client, group, alice, bob, carol):
    call = await start(client, alice, group)
    missed = await act(client, alice, group, call["id"], "leave")
    assert (missed["status"], missed["duration_seconds"], missed["answered_at"]) == ("missed", 0, None)
    assert statuses(missed, alice, bob, carol) == ["left", "missed", "missed"]


async def test_declining_a_direct_call_declines_it(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob, type="direct")
    call = await start(client, alice, conversation)
    declined = await act(client, bob, conversation, call["id"], "decline")
    assert (declined["status"], declined["duration_seconds"]) == ("declined", 0)
    assert statuses(declined, alice, bob) == ["left", "declined"]


async def test_a_group_call_rings_on_until_everyone_rung_declined(client, group, alice, bob, carol):
    call = await start(client, alice, group)
    one = await act(client, bob, group, call["id"], "decline")
    assert one["status"] == "ringing" and statuses(one, bob, carol) == ["declined", "ringing"]
    both = await act(client, carol, group, call["id"], "decline")
    assert both["status"] == "declined"


async def test_someone_who_declined_may_still_join(client, group, alice, bob):
    call = await start(client, alice, group)
    await act(client, bob, group, call["id"], "decline")
    joined = await act(client, bob, group, call["id"], "join")
    assert joined["status"] == "ongoing" and statuses(joined, bob) == ["joined"]


async def test_leave_and_decline_need_the_right_state(client, group, alice, bob, carol):
    call = await start(client, alice, group)
    refused(await client.post(call_path(group, call["id"], "leave"), headers=bob.headers), 409, "not-in-call")
    refused(await client.post(call_path(group, call["id"], "decline"), headers=alice.headers), 409, "call-not-ringing")
    await act(client, bob, group, call["id"], "join")
    refused(await client.post(call_path(group, call["id"], "decline"), headers=bob.headers), 409, "call-not-ringing")


async def test_nothing_happens_to_a_call_that_is_over(client, group, alice, bob):
    call = await start(client, alice, group)
    await act(client, alice, group, call["id"], "end")
    for persona, action in ((bob, "join"), (alice, "leave"), (bob, "decline"), (alice, "end")):
        refused(await client.post(call_path(group, call["id"], action), headers=persona.headers), 409, "call-not-live")


# Ending


async def test_the_starter_ends_the_call_for_everyone(client, group, alice, bob, carol):
    call = await start(client, alice, group)
    await act(client, bob, group, call["id"], "join")
    ended = await act(client, alice, group, call["id"], "end")
    assert ended["status"] == "ended" and ended["duration_seconds"] >= 0
    assert statuses(ended, alice, bob, carol) == ["left", "left", "missed"]
    assert all(p["left_at"] == ended["ended_at"] for p in ended["participants"] if p["status"] == "left")


async def test_a_member_who_did_not_start_it_may_not_end_it(client, group, alice, bob):
    call = await start(client, alice, group)
    await act(client, bob, group, call["id"], "join")
    refused(
        await client.post(call_path(group, call["id"], "end"), headers=bob.headers), 403, "not-allowed-in-conversation"
    )


async def test_a_moderator_ends_someone_elses_call(client, app_engine, alice, bob, carol):
    conversation = await make_conversation(app_engine, alice, bob, carol, roles={"carol": "moderator"})
    call = await start(client, bob, conversation)
    ended = await act(client, carol, conversation, call["id"], "end")
    assert ended["status"] == "missed"


# Rating


async def test_each_person_rates_the_call_for_themself(client, group, alice, bob):
    call = await start(client, alice, group)
    await act(client, bob, group, call["id"], "join")
    await act(client, alice, group, call["id"], "end")
    rated = await client.put(call_path(group, call["id"], "rating"), headers=bob.headers, json={"quality_rating": 4})
    assert rated.status_code == 200, rated.text
    assert rated.json()["quality_rating"] == 4
    again = await client.put(call_path(group, call["id"], "rating"), headers=bob.headers, json={"quality_rating": 2})
    assert again.json()["quality_rating"] == 2
    seen_by_alice = (await client.get(call_path(group, call["id"]), headers=alice.headers)).json()
    assert seen_by_alice["quality_rating"] is None


async def test_only_those_who_joined_rate_a_call(client, group, alice, carol):
    call = await start(client, alice, group)
    refused(
        await client.put(call_path(group, call["id"], "rating"), headers=carol.headers, json={"quality_rating": 5}),
        409,
        "not-in-call",
    )


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"quality_rating": 0}, id="too-low"),
        pytest.param({"quality_rating": 6}, id="too-high"),
        pytest.param({"quality_rating": "3"}, id="a-string"),
        pytest.param({"quality_rating": 3.5}, id="not-whole"),
        pytest.param({}, id="missing"),
    ],
)
async def test_a_bad_rating_is_refused(client, group, alice, body):
    call = await start(client, alice, group)
    refused(
        await client.put(call_path(group, call["id"], "rating"), headers=alice.headers, json=body),
        422,
        "validation-error",
    )


# History


async def test_the_history_lists_calls_newest_first_with_their_duration(client, group, alice, bob):
    first = await start(client, alice, group)
    await act(client, bob, group, first["id"], "join")
    await act(client, alice, group, first["id"], "end")
    second = await start(client, bob, group)
    page = await client.get(calls_of(group), headers=alice.headers)
    assert page.status_code == 200, page.text
    items = page.json()["items"]
    assert [c["id"] for c in items] == [second["id"], first["id"]]
    assert items[1]["status"] == "ended" and items[1]["duration_seconds"] is not None
    assert items[0]["duration_seconds"] is None and page.json()["next"] is None


async def test_the_history_is_paginated(client, group, alice):
    made = []
    for _ in range(3):
        call = await start(client, alice, group)
        await act(client, alice, group, call["id"], "end")
        made.append(call["id"])
    first = (await client.get(calls_of(group), headers=alice.headers, params={"limit": 2})).json()
    rest = (
        await client.get(calls_of(group), headers=alice.headers, params={"limit": 2, "cursor": first["next"]})
    ).json()
    assert [c["id"] for c in first["items"] + rest["items"]] == made[::-1]
    assert rest["next"] is None


async def test_a_bad_cursor_or_limit_is_refused(client, group, alice):
    refused(await client.get(calls_of(group), headers=alice.headers, params={"cursor": "!!"}), 400, "invalid-cursor")
    refused(await client.get(calls_of(group), headers=alice.headers, params={"limit": 0}), 422, "validation-error")


async def test_a_call_id_must_be_a_uuid(client, group, alice):
    refused(await client.get(call_path(group, "not-a-uuid"), headers=alice.headers), 422, "validation-error")


# Events


async def test_a_call_tells_the_conversation_as_it_goes(client, runtime, group, alice, bob):
    call = await start(client, alice, group, "screen_share")
    await act(client, bob, group, call["id"], "join")
    await act(client, bob, group, call["id"], "leave")
    ended = await act(client, alice, group, call["id"], "leave")
    assert await events(runtime, group) == [
        ("call.started", {"call_id": call["id"], "type": "screen_share", "started_by": alice.user_id}),
        (
            "call.changed",
            {"call_id": call["id"], "status": "ongoing", "user_id": bob.user_id, "participant_status": "joined"},
        ),
        (
            "call.changed",
            {"call_id": call["id"], "status": "ongoing", "user_id": bob.user_id, "participant_status": "left"},
        ),
        ("call.ended", {"call_id": call["id"], "status": "ended", "duration_seconds": ended["duration_seconds"]}),
    ]


async def test_declining_and_ending_are_told_too(client, runtime, group, alice, bob):
    call = await start(client, alice, group)
    await act(client, bob, group, call["id"], "decline")
    await act(client, alice, group, call["id"], "end")
    assert [(kind, payload.get("status")) for kind, payload in await events(runtime, group)] == [
        ("call.started", None),
        ("call.changed", "ringing"),
        ("call.ended", "missed"),
    ]


async def test_a_refused_change_tells_nobody(client, runtime, group, alice, bob):
    call = await start(client, alice, group)
    await client.post(call_path(group, call["id"], "end"), headers=bob.headers)
    await client.post(calls_of(group), headers=bob.headers, json={"type": "audio"})
    assert [kind for kind, _ in await events(runtime, group)] == ["call.started"]


# Races


async def test_of_two_racing_starts_one_call_is_made(client, group, alice, bob):
    answers = await asyncio.gather(
        *(client.post(calls_of(group), headers=p.headers, json={"type": "audio"}) for p in (alice, bob, alice, bob))
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [201, 409, 409, 409], [a.text for a in answers]
    made = next(a.json()["id"] for a in answers if a.status_code == 201)
    assert {a.json()["call_id"] for a in answers if a.status_code == 409} == {made}


async def test_racing_leaves_and_ends_end_the_call_once(client, runtime, group, alice, bob, carol):
    call = await start(client, alice, group)
    await act(client, bob, group, call["id"], "join")
    await act(client, carol, group, call["id"], "join")
    answers = await asyncio.gather(
        client.post(call_path(group, call["id"], "leave"), headers=bob.headers),
        client.post(call_path(group, call["id"], "end"), headers=alice.headers),
        client.post(call_path(group, call["id"], "leave"), headers=carol.headers),
        client.post(call_path(group, call["id"], "leave"), headers=alice.headers),
    )
    assert all(a.status_code == 200 or problem_type(a) == "call-not-live" for a in answers), [a.text for a in answers]
    final = (await client.get(call_path(group, call["id"]), headers=alice.headers)).json()
    assert final["status"] == "ended" and statuses(final, alice, bob, carol) == ["left", "left", "left"]
    assert [kind for kind, _ in await events(runtime, group)].count("call.ended") == 1
