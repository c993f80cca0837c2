"""Support rooms: a customer opens one (its support conversation, with them in it); agents
of its level or higher join it and the first agent message is its first response; its
customer or an agent in it changes it; it closes; bad inputs are refused."""

from __future__ import annotations

from uuid import UUID

import httpx
import pytest

from rapport.kernel.runtime import Runtime
from tests.support import Persona, problem_type
from tests.support_desk.support import (
    ROOMS,
    Desk,
    as_system,
    events,
    join,
    ok,
    open_room,
    send,
    watch,
)

pytestmark = pytest.mark.module_database


def refused(response: httpx.Response, status: int, slug: str) -> None:
    assert (response.status_code, problem_type(response)) == (status, slug), response.text


async def test_a_customer_opens_a_room_in_a_support_conversation(client: httpx.AsyncClient, desk: Desk) -> None:
    made = ok(
        await client.post(
            ROOMS,
            headers=desk.alice.headers,
            json={"issue_description": "  The app crashes at start  ", "issue_id": "INC-42", "priority": 2},
        ),
        201,
    )

    room, conversation = made["room"], made["conversation"]
    assert (room["customer_id"], room["issue_id"], room["issue_description"]) == (
        desk.alice.user_id,
        "INC-42",
        "The app crashes at start",
    )
    assert (room["level"], room["priority"], room["status"], room["guests_allowed"]) == ("T1", 2, "open", True)
    assert room["first_response_at"] is None and room["first_response_due_at"] > room["opened_at"]
    assert (conversation["id"], conversation["type"], conversation["member_count"]) == (
        room["conversation_id"],
        "support",
        1,
    )
    seen = ok(await client.get(f"/v1/conversations/{room['conversation_id']}", headers=desk.alice.headers))
    assert (seen["type"], seen["membership"]["role"]) == ("support", "member")


async def test_the_customer_lists_and_reads_their_rooms(client: httpx.AsyncClient, desk: Desk) -> None:
    first = await open_room(client, desk.alice)
    second = await open_room(client, desk.alice, issue_description="Another one")

    listed = ok(await client.get(ROOMS, headers=desk.alice.headers))
    assert [room["conversation_id"] for room in listed["items"]] == [
        second["conversation_id"],
        first["conversation_id"],
    ]
    one = ok(await client.get(f"{ROOMS}/{first['conversation_id']}", headers=desk.alice.headers))
    assert one["issue_description"] == "My order never arrived"
    assert ok(await client.get(ROOMS, headers=desk.mallory.headers))["items"] == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"issue_description": ""},
        {"issue_description": "x" * 4001},
        {"issue_description": "ok", "priority": 0},
        {"issue_description": "ok", "priority": 6},
        {"issue_description": "ok", "priority": "1"},
        {"issue_description": "ok", "issue_id": "a\nb"},
        {"issue_description": "ok", "level": "T3"},
    ],
)
async def test_a_bad_room_is_refused(client: httpx.AsyncClient, alice: Persona, body: dict[str, object]) -> None:
    refused(await client.post(ROOMS, headers=alice.headers, json=body), 422, "validation-error")


async def test_an_agent_of_the_level_or_above_joins(client: httpx.AsyncClient, runtime: Runtime, desk: Desk) -> None:
    room = await open_room(client, desk.alice)
    room_id = room["conversation_id"]

    joined = ok(await join(client, desk.tess, room_id))
    again = ok(await join(client, desk.tess, room_id))
    ok(await join(client, desk.theo, room_id))

    assert joined["conversation_id"] == again["conversation_id"] == room_id
    people = ok(await client.get(f"/v1/conversations/{room_id}/participants", headers=desk.alice.headers))
    roles = {p["user_id"]: p["role"] for p in people["items"]}
    assert roles == {desk.alice.user_id: "member", desk.tess.user_id: "member", desk.theo.user_id: "member"}
    joins = [payload["agent_id"] for kind, _, payload in await events(runtime) if kind == "support.room.joined"]
    assert joins == [desk.tess.user_id, desk.theo.user_id]


async def test_an_agent_below_the_level_or_a_stranger_does_not_join(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk
) -> None:
    room = await open_room(client, desk.alice)
    room_id = room["conversation_id"]
    await as_system(runtime, "UPDATE support.rooms SET level = 'T3' WHERE conversation_id = :id", id=UUID(room_id))

    refused(await join(client, desk.tess, room_id), 404, "support-room-not-found")
    refused(await join(client, desk.mallory, room_id), 404, "support-room-not-found")
    refused(await join(client, desk.alice, room_id), 403, "support-level-required")
    ok(await join(client, desk.tara, room_id))


async def test_the_first_agent_message_is_the_first_response(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk
) -> None:
    room = await open_room(client, desk.alice)
    room_id = room["conversation_id"]
    await send(client, desk.alice, room_id, "hello?")
    ok(await join(client, desk.tess, room_id))
    await watch(runtime)
    assert ok(await client.get(f"{ROOMS}/{room_id}", headers=desk.alice.headers))["first_response_at"] is None

    answer = await send(client, desk.tess, room_id, "Hi, I am looking into it")
    await send(client, desk.tess, room_id, "Found it")
    await watch(runtime)

    seen = ok(await client.get(f"{ROOMS}/{room_id}", headers=desk.alice.headers))
    assert seen["first_response_at"] is not None
    assert seen["first_response_at"][:19] == answer["created_at"][:19]
    answered = [payload for kind, _, payload in await events(runtime) if kind == "support.room.answered"]
    assert [(p["conversation_id"], p["first_responder_id"]) for p in answered] == [(room_id, desk.tess.user_id)]


async def test_the_customer_and_an_agent_in_it_change_the_room(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    ok(await join(client, desk.tess, room_id))

    shut = ok(await client.patch(f"{ROOMS}/{room_id}", headers=desk.alice.headers, json={"guests_allowed": False}))
    urgent = ok(await client.patch(f"{ROOMS}/{room_id}", headers=desk.tess.headers, json={"priority": 1}))

    assert (shut["guests_allowed"], urgent["priority"]) == (False, 1)
    refused(
        await client.patch(f"{ROOMS}/{room_id}", headers=desk.alice.headers, json={"priority": 1}),
        403,
        "support-room-participant-required",
    )
    refused(
        await client.patch(f"{ROOMS}/{room_id}", headers=desk.theo.headers, json={"guests_allowed": True}),
        403,
        "support-room-participant-required",
    )
    refused(
        await client.patch(f"{ROOMS}/{room_id}", headers=desk.alice.headers, json={"guests_allowed": None}),
        422,
        "validation-error",
    )


async def test_a_closed_room_leaves_the_queue_and_takes_no_agent(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk
) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    ok(await join(client, desk.tess, room_id))

    closed = ok(await client.post(f"{ROOMS}/{room_id}/close", headers=desk.tess.headers))
    again = ok(await client.post(f"{ROOMS}/{room_id}/close", headers=desk.alice.headers))

    assert (closed["status"], again["closed_at"]) == ("closed", closed["closed_at"])
    refused(await join(client, desk.theo, room_id), 409, "support-room-closed")
    queue = ok(await client.get("/v1/support/queues/T1", headers=desk.tess.headers))
    assert queue["items"] == []
    assert [kind for kind, _, _ in await events(runtime) if kind == "support.room.closed"] == ["support.room.closed"]


async def test_only_the_customer_or_an_agent_in_it_closes(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]

    refused(
        await client.post(f"{ROOMS}/{room_id}/close", headers=desk.tess.headers),
        403,
        "support-room-participant-required",
    )
    refused(await client.post(f"{ROOMS}/{room_id}/close", headers=desk.mallory.headers), 404, "support-room-not-found")


async def test_an_unknown_room_is_not_found(client: httpx.AsyncClient, desk: Desk) -> None:
    missing = "01890000-0000-7000-8000-000000000000"
    for method, suffix in (("GET", ""), ("POST", "/join"), ("POST", "/close"), ("GET", "/escalations")):
        refused(
            await client.request(method, f"{ROOMS}/{missing}{suffix}", headers=desk.max.headers),
            404,
            "support-room-not-found",
        )
    refused(await client.get(f"{ROOMS}/not-a-uuid", headers=desk.max.headers), 422, "validation-error")
