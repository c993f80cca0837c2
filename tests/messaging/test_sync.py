"""Sync (GET /v1/sync?since=<position>): every event a person may receive after a
position, in order, decided by membership at each event's position, resumable without
missing or repeating one, even an event whose transaction committed after a later one.

Alice and bob talk in a conversation; carol takes no part unless a test brings her in;
mallory is a stranger to everyone."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rapport.kernel.actor import Actor
from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.outbox import ORDINAL_BITS, Scope, publish
from rapport.kernel.runtime import Runtime
from rapport.messaging import _sync
from tests.messaging.support import make_conversation, send
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

SYNC = "/v1/sync"


async def sync(client, persona: Persona, since: int = 0, **params: Any) -> dict[str, Any]:
    response = await client.get(SYNC, headers=persona.headers, params={"since": since, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def newest_position(runtime: Runtime) -> int:
    """The position of the newest committed event, whoever may receive it."""
    async with system_transaction(runtime.system_engine) as db:
        return int((await db.execute(text("SELECT coalesce(max(position), 0) FROM kernel.events"))).scalar_one())


async def sync_past(client, persona: Persona, target: int, since: int = 0, **params: Any) -> tuple[list[dict], int]:
    """Sync and resume until the answered position passes `target`: any transaction in
    the cluster may hold the barrier back for a moment, and absence means something only
    once the reader has passed the events it must not see."""
    events: list[dict] = []
    position = since
    async with asyncio.timeout(10):
        while True:
            body = await sync(client, persona, position, **params)
            events += body["events"]
            assert body["position"] >= position
            position = body["position"]
            if position >= target and not body["more"]:
                return events, position
            if not body["events"]:
                await asyncio.sleep(0.02)


async def caught_up(client, runtime: Runtime, persona: Persona, since: int = 0) -> tuple[list[dict], int]:
    """Everything the persona receives after `since`, up to the newest event committed now."""
    return await sync_past(client, persona, await newest_position(runtime), since)


def messages(events: list[dict]) -> list[str]:
    return [e["payload"]["message_id"] for e in events if e["type"] == "message.created"]


async def act(db: AsyncConnection, persona: Persona) -> None:
    await db.execute(text("SELECT set_config('rapport.user_id', :u, true)"), {"u": persona.user_id})


async def add(app_engine: AsyncEngine, adder: Persona, conversation_id: UUID, member: Persona) -> None:
    """`adder` adds `member`, announcing it in the same transaction, as the service does."""
    async with user_transaction(app_engine, UUID(adder.user_id)) as db:
        await db.execute(text("SELECT messaging.add_participant(:c, :u)"), {"c": conversation_id, "u": member.user_id})
        await publish(
            db,
            scope=Scope.conversation(conversation_id),
            type="participant.joined",
            payload={"user_id": member.user_id},
            actor_id=UUID(adder.user_id),
        )


async def end(app_engine: AsyncEngine, actor: Persona, conversation_id: UUID, member: Persona, status: str) -> None:
    """`actor` removes `member`, or `member` leaves (status `left`), announced in the
    same transaction as the service does."""
    async with user_transaction(app_engine, UUID(actor.user_id)) as db:
        await db.execute(
            text("SELECT messaging.change_participant(:c, :u, NULL, :s, NULL, NULL, NULL)"),
            {"c": conversation_id, "u": member.user_id, "s": status},
        )
        await publish(
            db,
            scope=Scope.conversation(conversation_id),
            type="participant.left",
            payload={"user_id": member.user_id, "status": status},
            actor_id=UUID(actor.user_id),
        )


@pytest.fixture
async def conversation(app_engine, alice, bob) -> UUID:
    return await make_conversation(app_engine, alice, bob)


# What a participant receives


async def test_a_participant_receives_the_messages_in_order(client, runtime, alice, bob, conversation):
    sent = [(await send(client, bob, conversation, f"message {n}"))["id"] for n in range(3)]

    events, _ = await caught_up(client, runtime, alice)

    assert messages(events) == sent
    positions = [e["position"] for e in events]
    assert positions == sorted(set(positions))


async def test_an_event_says_what_where_and_who(client, runtime, alice, bob, conversation):
    message = await send(client, bob, conversation)

    [event] = (await caught_up(client, runtime, alice))[0]

    assert event["type"] == "message.created"
    assert event["scope"] == {"kind": "conversation", "id": str(conversation)}
    assert (event["payload"]["message_id"], event["payload"]["seq"]) == (message["id"], 1)
    assert event["actor_id"] == bob.user_id
    assert event["created_at"]


async def test_the_sender_s_own_devices_receive_their_message(client, runtime, bob, conversation):
    message = await send(client, bob, conversation)
    assert messages((await caught_up(client, runtime, bob))[0]) == [message["id"]]


async def test_resuming_from_the_position_returns_nothing_new_until_something_happens(
    client, runtime, alice, bob, conversation
):
    await send(client, bob, conversation, "first")
    _, position = await caught_up(client, runtime, alice)

    assert (await sync(client, alice, position))["events"] == []
    later = await send(client, bob, conversation, "second")
    events, _ = await caught_up(client, runtime, alice, since=position)
    assert messages(events) == [later["id"]]


async def test_a_full_page_says_more_and_the_next_one_continues_after_it(client, runtime, alice, bob, conversation):
    sent = [(await send(client, bob, conversation, f"message {n}"))["id"] for n in range(3)]
    await caught_up(client, runtime, alice)  # the barrier has passed them all

    first = await sync(client, alice, 0, limit=2)
    second = await sync(client, alice, first["position"], limit=2)

    assert (messages(first["events"]), first["more"]) == (sent[:2], True)
    assert first["position"] == first["events"][-1]["position"]
    assert messages(second["events"]) == sent[2:]


async def test_nothing_needs_a_resync_while_every_event_is_kept(client, runtime, alice, bob, conversation):
    await send(client, bob, conversation)
    assert (await sync(client, alice))["resync"] is False


# Who does not


async def test_someone_outside_the_conversation_never_receives_its_events(
    client, runtime, alice, bob, carol, conversation
):
    await send(client, bob, conversation)
    await send(client, alice, conversation)

    events, _ = await caught_up(client, runtime, carol)

    assert events == []


async def test_a_late_joiner_receives_nothing_from_before_their_join(
    client, runtime, app_engine, alice, bob, carol, conversation
):
    await send(client, bob, conversation, "before carol")
    await add(app_engine, alice, conversation, carol)
    after = await send(client, bob, conversation, "after carol")

    events, _ = await caught_up(client, runtime, carol)

    assert [e["type"] for e in events] == ["participant.joined", "message.created"]
    assert messages(events) == [after["id"]]


async def test_a_late_joiner_s_first_event_comes_even_behind_a_full_page_of_others(
    client, runtime, app_engine, alice, bob, carol, conversation
):
    for n in range(3):
        await send(client, bob, conversation, f"before carol {n}")
    await add(app_engine, alice, conversation, carol)
    await caught_up(client, runtime, carol)  # the barrier has passed them all

    body = await sync(client, carol, 0, limit=1)

    assert [e["type"] for e in body["events"]] == ["participant.joined"]


async def test_past_its_read_budget_a_sync_moves_on_and_says_more(
    client, runtime, app_engine, alice, bob, carol, conversation, monkeypatch
):
    for n in range(2):
        await send(client, bob, conversation, f"before carol {n}")
    await add(app_engine, alice, conversation, carol)
    await caught_up(client, runtime, carol)
    monkeypatch.setattr(_sync, "MAX_READS", 1)

    first = await sync(client, carol, 0, limit=1)
    second = await sync(client, carol, first["position"], limit=1)
    third = await sync(client, carol, second["position"], limit=1)

    assert [(page["events"], page["more"]) for page in (first, second)] == [([], True), ([], True)]
    assert 0 < first["position"] < second["position"]
    assert [e["type"] for e in third["events"]] == ["participant.joined"]


async def test_a_removed_participant_hears_of_the_removal_and_nothing_after(
    client, runtime, app_engine, alice, bob, conversation
):
    before = await send(client, alice, conversation, "before")
    await end(app_engine, alice, conversation, bob, "removed")
    await send(client, alice, conversation, "after")

    events, _ = await caught_up(client, runtime, bob)

    assert [e["type"] for e in events] == ["message.created", "participant.left"]
    assert messages(events) == [before["id"]]
    assert events[-1]["payload"] == {"user_id": bob.user_id, "status": "removed"}


async def test_one_who_left_hears_of_their_leaving_and_nothing_after(
    client, runtime, app_engine, alice, bob, conversation
):
    await end(app_engine, bob, conversation, bob, "left")
    await send(client, alice, conversation, "after")

    events, _ = await caught_up(client, runtime, bob)

    assert [e["type"] for e in events] == ["participant.left"]


async def test_one_who_rejoins_receives_from_the_rejoin_on(client, runtime, app_engine, alice, bob, conversation):
    await end(app_engine, bob, conversation, bob, "left")
    await send(client, alice, conversation, "while bob was away")
    await add(app_engine, alice, conversation, bob)
    back = await send(client, alice, conversation, "welcome back")

    events, _ = await caught_up(client, runtime, bob)

    assert [e["type"] for e in events] == ["participant.joined", "message.created"]
    assert messages(events) == [back["id"]]


def test_a_window_holds_every_event_of_the_joining_and_the_leaving_transactions():
    joined, left = 7 << ORDINAL_BITS, 9 << ORDINAL_BITS
    window = _sync.Window(joined=joined, left=left)
    holds = [window.holds(p) for p in (joined - 1, joined, joined + 3, left, left + 3, (10 << ORDINAL_BITS) - 1)]
    assert holds == [False, True, True, True, True, True]
    assert not window.holds(10 << ORDINAL_BITS)


async def test_a_join_committing_between_the_two_reads_is_not_passed(
    client, runtime, app_engine, alice, bob, carol, conversation
):
    actor = Actor(user_id=UUID(carol.user_id))
    async with user_transaction(runtime.engine, actor.user_id) as db:
        memberships = await _sync.get_memberships(db, actor=actor)
    await add(app_engine, alice, conversation, carol)
    message = await send(client, bob, conversation)
    await caught_up(client, runtime, alice)  # the outbox's barrier has passed them

    async with system_transaction(runtime.system_engine) as db:
        stale = await _sync.list_sync_events(db, memberships=memberships, since=0, limit=100)
    events, _ = await caught_up(client, runtime, carol, since=stale.position)

    assert stale.events == []
    assert [e["type"] for e in events] == ["participant.joined", "message.created"]
    assert messages(events) == [message["id"]]


# Contact requests and blocks


async def test_a_contact_request_reaches_the_addressee_and_the_requester_s_devices(client, runtime, alice, bob):
    asked = await client.post("/v1/contact-requests", headers=alice.headers, json={"user_id": bob.user_id})
    request_id = asked.json()["id"]

    received, _ = await caught_up(client, runtime, bob)
    sent, _ = await caught_up(client, runtime, alice)

    assert [(e["type"], e["payload"]["request_id"]) for e in received] == [("contact_request.received", request_id)]
    assert [(e["type"], e["payload"]["request_id"]) for e in sent] == [("contact_request.sent", request_id)]
    assert received[0]["scope"] == {"kind": "user", "id": bob.user_id}


async def test_a_contact_request_reaches_nobody_else(client, runtime, alice, bob, mallory):
    await client.post("/v1/contact-requests", headers=alice.headers, json={"user_id": bob.user_id})
    assert (await caught_up(client, runtime, mallory))[0] == []


@pytest.mark.parametrize("verb", ["accept", "reject"])
async def test_an_answer_reaches_both_people(client, runtime, alice, bob, verb):
    asked = await client.post("/v1/contact-requests", headers=alice.headers, json={"user_id": bob.user_id})
    _, alice_at = await caught_up(client, runtime, alice)
    _, bob_at = await caught_up(client, runtime, bob)
    await client.post(f"/v1/contact-requests/{asked.json()['id']}/{verb}", headers=bob.headers)

    expected = f"contact_request.{verb}ed"
    assert [e["type"] for e in (await caught_up(client, runtime, alice, alice_at))[0]] == [expected]
    assert [e["type"] for e in (await caught_up(client, runtime, bob, bob_at))[0]] == [expected]


async def test_asking_someone_who_asked_you_accepts_for_both(client, runtime, alice, bob):
    await client.post("/v1/contact-requests", headers=alice.headers, json={"user_id": bob.user_id})
    _, alice_at = await caught_up(client, runtime, alice)
    await client.post("/v1/contact-requests", headers=bob.headers, json={"user_id": alice.user_id})

    events, _ = await caught_up(client, runtime, alice, alice_at)

    assert [e["type"] for e in events] == ["contact_request.accepted"]


async def test_a_block_reaches_the_blocker_s_devices(client, runtime, alice, bob):
    await client.put(f"/v1/blocks/{bob.user_id}", headers=alice.headers)
    await client.delete(f"/v1/blocks/{bob.user_id}", headers=alice.headers)

    events, _ = await caught_up(client, runtime, alice)

    assert [(e["type"], e["payload"]) for e in events] == [
        ("block.created", {"blocked_id": bob.user_id}),
        ("block.removed", {"blocked_id": bob.user_id}),
    ]


async def test_blocking_again_announces_nothing_new(client, runtime, alice, bob):
    await client.put(f"/v1/blocks/{bob.user_id}", headers=alice.headers)
    _, position = await caught_up(client, runtime, alice)
    await client.put(f"/v1/blocks/{bob.user_id}", headers=alice.headers)

    assert (await caught_up(client, runtime, alice, position))[0] == []


async def test_a_block_never_reaches_the_blocked_person(client, runtime, alice, bob):
    await client.put(f"/v1/blocks/{bob.user_id}", headers=alice.headers)
    await client.delete(f"/v1/blocks/{bob.user_id}", headers=alice.headers)

    assert (await caught_up(client, runtime, bob))[0] == []


async def test_a_block_cancels_the_blocker_s_request_exactly_as_cancelling_does(client, runtime, alice, bob, carol):
    """The person blocked learns that the blocker's request was cancelled, as their list
    shows, told in the very words of a plain cancellation: nothing of the block."""
    for requester in (alice, carol):
        await client.post("/v1/contact-requests", headers=requester.headers, json={"user_id": bob.user_id})
    _, position = await caught_up(client, runtime, bob)
    cancelling = await client.get("/v1/contact-requests", headers=carol.headers, params={"direction": "outgoing"})
    await client.post(f"/v1/contact-requests/{cancelling.json()['items'][0]['id']}/cancel", headers=carol.headers)
    await client.put(f"/v1/blocks/{bob.user_id}", headers=alice.headers)

    plain, by_block = (await caught_up(client, runtime, bob, position))[0]

    def told(event: dict) -> tuple:
        return event["type"], event["scope"], sorted(event["payload"]), event["payload"]["status"]

    assert told(by_block) == told(plain)
    assert by_block["payload"]["requester_id"] == alice.user_id


# The ordering guarantee, through the API


async def test_a_sync_between_two_commits_never_skips_the_earlier_numbered_event(
    client, runtime, app_engine, alice, bob, conversation
):
    """A takes its position first and commits last: a reader that syncs while only B has
    committed must not resume past A's position, and the next sync returns A, then B."""
    scope = Scope.conversation(conversation)
    _, start = await caught_up(client, runtime, alice)
    async with app_engine.connect() as a, app_engine.connect() as b:
        await a.begin()
        await act(a, alice)
        await publish(a, scope=scope, type="conversation.changed", payload={"n": "a"}, actor_id=UUID(alice.user_id))
        async with b.begin():
            await act(b, bob)
            await publish(b, scope=scope, type="conversation.changed", payload={"n": "b"}, actor_id=UUID(bob.user_id))
        position_b = await newest_position(runtime)
        between = await sync(client, alice, start)
        await a.commit()

    events, _ = await sync_past(client, alice, position_b, since=between["position"])

    assert between["events"] == []
    assert [e["payload"]["n"] for e in events] == ["a", "b"]
    assert between["position"] < events[0]["position"] < events[1]["position"] == position_b


# Asking


async def test_a_position_ahead_of_the_stream_comes_back_as_it_was(client, alice):
    ahead = 2**62
    body = await sync(client, alice, ahead)
    assert (body["events"], body["position"], body["more"]) == ([], ahead, False)


@pytest.mark.parametrize(
    "params", [{"since": -1}, {"since": 2**63}, {"since": "latest"}, {"limit": 0}, {"limit": 1001}]
)
async def test_a_bad_position_or_limit_is_refused(client, alice, params):
    response = await client.get(SYNC, headers=alice.headers, params=params)
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_sync_needs_a_signed_in_caller(client):
    response = await client.get(SYNC)
    assert response.status_code == 401
