"""A support room's limit on who takes part (`max_participants`): set when it opens,
changed by its customer or an agent in it, enforced on agents joining, guests redeeming a
link and bots brought in; and the history a deleted message of a room leaves."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from rapport.kernel.runtime import Runtime
from tests.support import problem_type
from tests.support_desk.support import (
    ROOMS,
    Desk,
    as_system,
    guest_link,
    join,
    ok,
    open_room,
    redeem,
    send,
)

pytestmark = pytest.mark.module_database


def refused(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert (response.status_code, problem_type(response)) == (status, slug), response.text
    body: dict[str, Any] = response.json()
    return body


async def patch(client: httpx.AsyncClient, persona: Any, room_id: str, **fields: Any) -> httpx.Response:
    return await client.patch(f"{ROOMS}/{room_id}", headers=persona.headers, json=fields)


async def test_a_room_opened_with_a_limit_admits_no_more(client: httpx.AsyncClient, desk: Desk) -> None:
    room = await open_room(client, desk.alice, max_participants=2)
    room_id = room["conversation_id"]
    assert room["max_participants"] == 2

    ok(await join(client, desk.tess, room_id))

    refused(await join(client, desk.theo, room_id), 409, "conversation-full")
    seen = ok(await client.get(f"/v1/conversations/{room_id}", headers=desk.alice.headers))
    assert (seen["max_participants"], seen["member_count"]) == (2, 2)


async def test_a_full_room_admits_no_guest(client: httpx.AsyncClient, runtime: Runtime, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice, max_participants=2))["conversation_id"]
    link = await guest_link(client, desk.alice, room_id, max_uses=2)
    ok(await redeem(client, link["token"], "Gus"), 201)

    refused(await redeem(client, link["token"], "Gwen"), 409, "conversation-full")
    assert (
        len(await as_system(runtime, "SELECT user_id FROM support.guests WHERE conversation_id = :c", c=room_id)) == 1
    )


async def test_the_customer_raises_and_lifts_the_limit(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice, max_participants=2))["conversation_id"]
    ok(await join(client, desk.tess, room_id))

    assert ok(await patch(client, desk.alice, room_id, max_participants=3))["max_participants"] == 3
    ok(await join(client, desk.theo, room_id))
    refused(await join(client, desk.tara, room_id), 409, "conversation-full")
    assert ok(await patch(client, desk.tess, room_id, max_participants=None))["max_participants"] is None
    ok(await join(client, desk.tara, room_id))


async def test_no_limit_below_who_takes_part(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    ok(await join(client, desk.tess, room_id))
    ok(await join(client, desk.theo, room_id))

    refused(await patch(client, desk.alice, room_id, max_participants=2), 422, "validation-error")
    room = ok(await client.get(f"{ROOMS}/{room_id}", headers=desk.alice.headers))
    assert room["max_participants"] is None


@pytest.mark.parametrize("limit", [1, 0, -1, 100_001, "3", 2.5])
async def test_a_limit_out_of_range_is_refused(client: httpx.AsyncClient, desk: Desk, limit: Any) -> None:
    made = await client.post(
        ROOMS, headers=desk.alice.headers, json={"issue_description": "Broken", "max_participants": limit}
    )
    refused(made, 422, "validation-error")
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    refused(await patch(client, desk.alice, room_id, max_participants=limit), 422, "validation-error")


async def test_only_the_customer_or_an_agent_in_it_sets_the_limit(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]

    refused(await patch(client, desk.tess, room_id, max_participants=5), 403, "support-room-participant-required")
    refused(await patch(client, desk.mallory, room_id, max_participants=5), 404, "support-room-not-found")


async def test_a_deleted_message_leaves_its_history_row(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk
) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    message = await send(client, desk.alice, room_id, "My card number is wrong")

    gone = await client.delete(f"/v1/conversations/{room_id}/messages/{message['id']}", headers=desk.alice.headers)

    assert gone.status_code == 204, gone.text
    [row] = await as_system(
        runtime,
        "SELECT operation, content, changed_by::text AS changed_by FROM messaging.message_history"
        " WHERE conversation_id = :c AND message_id = :m",
        c=room_id,
        m=message["id"],
    )
    assert (row.operation, row.content, row.changed_by) == ("delete", "My card number is wrong", desk.alice.user_id)
