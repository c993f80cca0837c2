"""Supervisors (supervisor:chat:observe) read any support room's messages without taking
part: they are nobody's participant, nobody sees them, and no one else reads that way.

Sam supervises everywhere; Sue only Alice's first room (a grant for that room)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

import httpx
import pytest

from rapport.kernel.runtime import Runtime
from tests.support import Persona, problem_type
from tests.support_desk.support import (
    ROOMS,
    Desk,
    escalate,
    grant,
    join,
    ok,
    open_room,
    send,
)

pytestmark = pytest.mark.module_database


def refused(response: httpx.Response, status: int, slug: str) -> None:
    assert (response.status_code, problem_type(response)) == (status, slug), response.text


async def observe(client: httpx.AsyncClient, who: Persona, room_id: str, **params: str | int) -> httpx.Response:
    return await client.get(f"{ROOMS}/{room_id}/messages", headers=who.headers, params=params)


async def test_a_supervisor_reads_a_room_without_taking_part(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    ok(await join(client, desk.tess, room_id))
    sent = [await send(client, who, room_id, text) for who, text in ((desk.alice, "one"), (desk.tess, "two"))]

    page = ok(await observe(client, desk.sam, room_id))

    assert [m["content"] for m in page["items"]] == ["two", "one"]
    assert [m["id"] for m in page["items"]] == [sent[1]["id"], sent[0]["id"]]
    assert page["next"] is None
    people = ok(await client.get(f"/v1/conversations/{room_id}/participants", headers=desk.alice.headers))
    assert desk.sam.user_id not in {p["user_id"] for p in people["items"]}
    # Sam takes no part: messaging's own routes refuse him as anyone else.
    assert (await client.get(f"/v1/conversations/{room_id}/messages", headers=desk.sam.headers)).status_code == 404


async def test_the_supervisor_pages_back(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    for n in range(5):
        await send(client, desk.alice, room_id, f"m{n}")

    seen: list[str] = []
    page = ok(await observe(client, desk.sam, room_id, limit=2))
    while True:
        seen += [m["content"] for m in page["items"]]
        if page["next"] is None:
            break
        page = ok(await observe(client, desk.sam, room_id, limit=2, cursor=page["next"]))

    assert seen == ["m4", "m3", "m2", "m1", "m0"]


async def test_a_supervisor_reads_escalated_rooms_too(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    ok(await join(client, desk.tess, room_id))
    target = ok(await escalate(client, desk.tess, room_id, to_level="manager", mode="new_room"), 201)["target_room_id"]
    await send(client, desk.alice, target, "still waiting")

    page = ok(await observe(client, desk.sam, target))

    assert [m["content"] for m in page["items"]] == ["still waiting"]


async def test_no_one_else_observes(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    await send(client, desk.alice, room_id, "private")

    refused(await observe(client, desk.mallory, room_id), 404, "support-room-not-found")
    refused(await observe(client, desk.alice, room_id), 403, "permission-required")
    refused(await observe(client, desk.max, room_id), 403, "permission-required")


async def test_a_supervisor_of_one_room_observes_that_room_alone(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk, make_persona: Callable[[str], Awaitable[Persona]]
) -> None:
    first = (await open_room(client, desk.alice))["conversation_id"]
    second = (await open_room(client, desk.alice))["conversation_id"]
    sue = await grant(runtime, await make_persona("sue"), "supervisor", UUID(first))

    ok(await observe(client, sue, first))
    refused(await observe(client, sue, second), 404, "support-room-not-found")
    refused(await client.get("/v1/support/queues/T1", headers=sue.headers), 403, "support-level-required")
