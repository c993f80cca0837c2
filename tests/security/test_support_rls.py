"""The support desk as those who should not reach it: a guest sees only their own support
room; an agent below a room's level sees no escalated room of a higher level; Mallory, a
stranger, reaches no room, escalation, link or guest through the API, and through SQL as
`rapport_app` (her context, or none) reads no row of support.rooms, support.room_agents,
support.guest_links, support.guests, support.escalations or support.cursor, and writes
none, nor support.sla; support.observe_messages out of context reads nothing.

Alice is the customer with two rooms; Tess works T1 and joined the first, which she
escalated to T3 into a new room; Gus is a guest of the first room."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime
from tests.module_scope import build_once
from tests.security.messaging_sql import DENIED, attempt, changed
from tests.support import Persona, problem_type
from tests.support_desk.support import (
    ESCALATIONS,
    QUEUES,
    ROOMS,
    Desk,
    escalate,
    grant,
    guest_link,
    guest_persona,
    join,
    ok,
    open_room,
    redeem,
    send,
    watch,
)

pytestmark = pytest.mark.module_database

TABLES = ("support.rooms", "support.room_agents", "support.guest_links", "support.guests", "support.escalations")


@dataclass(frozen=True)
class World:
    people: Desk
    gus: Persona
    first: str
    second: str
    escalated: str
    escalation: dict[str, Any]
    link: dict[str, Any]


@pytest.fixture(scope="module")
async def module_world(module_app: FastAPI, module_database: DatabaseUrls) -> World:
    """The desk's people and their rooms, built once: each test's reset puts them back as
    they were (module_scope.build_once)."""
    async with build_once(module_app, module_database) as built:
        runtime = built.runtime
        alice, tess, theo, tara, max_, sam, mallory = await built.personas(
            "alice", "tess", "theo", "tara", "max", "sam", "mallory"
        )
        desk = Desk(
            alice=alice,
            tess=await grant(runtime, tess, "support-t1"),
            theo=await grant(runtime, theo, "support-t2"),
            tara=await grant(runtime, tara, "support-t3"),
            max=await grant(runtime, max_, "support-manager"),
            sam=await grant(runtime, sam, "supervisor"),
            mallory=mallory,
        )
        return await _build(built.client, runtime, desk)


@pytest.fixture
def world(module_world: World, database: DatabaseUrls) -> World:
    """The module's world, as built: the test's database was reset to it."""
    return module_world


async def _build(client: httpx.AsyncClient, runtime: Runtime, desk: Desk) -> World:
    first = (await open_room(client, desk.alice))["conversation_id"]
    second = (await open_room(client, desk.alice, issue_description="Second issue"))["conversation_id"]
    ok(await join(client, desk.tess, first))
    await send(client, desk.tess, first, "Looking into it")
    # Tess answered the first room: it leaves the T1 queue once the watcher has read that.
    await watch(runtime)
    escalation = ok(await escalate(client, desk.tess, first, to_level="T3", mode="new_room"), 201)
    link = await guest_link(client, desk.alice, first, max_uses=2)
    gus = guest_persona(ok(await redeem(client, link["token"], "Gus"), 201))
    return World(desk, gus, first, second, escalation["target_room_id"], escalation, link)


def refused(response: httpx.Response, status: int, slug: str) -> None:
    assert (response.status_code, problem_type(response)) == (status, slug), response.text


# --- a guest ---------------------------------------------------------------------------------


async def test_a_guest_sees_only_their_own_support_room(client: httpx.AsyncClient, world: World) -> None:
    ok(await client.get(f"{ROOMS}/{world.first}", headers=world.gus.headers))
    for room in (world.second, world.escalated):
        refused(await client.get(f"{ROOMS}/{room}", headers=world.gus.headers), 404, "support-room-not-found")
        assert (await client.get(f"/v1/conversations/{room}", headers=world.gus.headers)).status_code == 404
        refused(await client.post(f"{ROOMS}/{room}/join", headers=world.gus.headers), 404, "support-room-not-found")
    assert ok(await client.get(ROOMS, headers=world.gus.headers))["items"] == []
    refused(
        await client.get(f"{ESCALATIONS}/{world.escalation['id']}", headers=world.gus.headers),
        404,
        "support-escalation-not-found",
    )


async def test_a_guest_reads_one_room_through_sql(app_engine: AsyncEngine, world: World) -> None:
    rooms = await attempt(app_engine, world.gus, "SELECT array_agg(conversation_id::text) FROM support.rooms")
    assert rooms == [world.first]
    assert await attempt(app_engine, world.gus, "SELECT count(*) FROM support.escalations") == 0
    assert await attempt(app_engine, world.gus, "SELECT count(*) FROM support.guest_links") == 0


# --- an agent below the level ------------------------------------------------------------------


async def test_an_agent_below_the_level_sees_no_escalated_room(client: httpx.AsyncClient, world: World) -> None:
    tess, theo = world.people.tess, world.people.theo
    for agent in (tess, theo):
        refused(await client.get(f"{ROOMS}/{world.escalated}", headers=agent.headers), 404, "support-room-not-found")
        refused(
            await client.post(f"{ROOMS}/{world.escalated}/join", headers=agent.headers), 404, "support-room-not-found"
        )
        refused(
            await client.get(f"{ROOMS}/{world.escalated}/escalations", headers=agent.headers),
            404,
            "support-room-not-found",
        )
        assert (await client.get(f"/v1/conversations/{world.escalated}", headers=agent.headers)).status_code == 404
    refused(await client.get(f"{QUEUES}/T3", headers=theo.headers), 403, "support-level-required")
    ok(await client.get(f"{ROOMS}/{world.escalated}", headers=world.people.tara.headers))


async def test_an_agent_below_the_level_reads_no_escalated_row_through_sql(
    app_engine: AsyncEngine, world: World
) -> None:
    seen = "SELECT count(*) FROM support.rooms WHERE conversation_id = :id"
    assert await attempt(app_engine, world.people.theo, seen, id=UUID(world.escalated)) == 0
    assert await attempt(app_engine, world.people.tara, seen, id=UUID(world.escalated)) == 1
    theirs = "SELECT count(*) FROM support.escalations WHERE id = :id"
    assert await attempt(app_engine, world.people.theo, theirs, id=UUID(world.escalation["id"])) == 0
    # Tess made it: she sees her escalation, not the room it opened.
    assert await attempt(app_engine, world.people.tess, theirs, id=UUID(world.escalation["id"])) == 1


# --- a stranger ----------------------------------------------------------------------------------


async def test_mallory_reaches_nothing_through_the_api(client: httpx.AsyncClient, world: World) -> None:
    mallory = world.people.mallory
    for room in (world.first, world.second, world.escalated):
        for method, suffix in (
            ("GET", ""),
            ("POST", "/join"),
            ("POST", "/close"),
            ("GET", "/escalations"),
            ("GET", "/messages"),
            ("GET", "/guest-links"),
        ):
            response = await client.request(method, f"{ROOMS}/{room}{suffix}", headers=mallory.headers)
            refused(response, 404, "support-room-not-found")
        refused(
            await client.patch(f"{ROOMS}/{room}", headers=mallory.headers, json={"guests_allowed": False}),
            404,
            "support-room-not-found",
        )
        refused(
            await client.post(f"{ROOMS}/{room}/guest-links", headers=mallory.headers, json={}),
            404,
            "support-room-not-found",
        )
        refused(await escalate(client, mallory, room), 404, "support-room-not-found")
    for name in ("", "/assign", "/start", "/cancel"):
        method = "GET" if not name else "POST"
        response = await client.request(
            method, f"{ESCALATIONS}/{world.escalation['id']}{name}", headers=mallory.headers
        )
        refused(response, 404, "support-escalation-not-found")
    refused(
        await client.delete(f"/v1/support/guest-links/{world.link['id']}", headers=mallory.headers),
        404,
        "support-guest-link-not-found",
    )


@pytest.mark.parametrize("table", TABLES)
async def test_mallory_and_nobody_read_no_row(app_engine: AsyncEngine, world: World, table: str) -> None:
    assert await attempt(app_engine, world.people.mallory, f"SELECT count(*) FROM {table}") == 0
    assert await attempt(app_engine, None, f"SELECT count(*) FROM {table}") == 0


async def test_the_watchers_cursor_is_system_works_alone(app_engine: AsyncEngine, world: World) -> None:
    for who in (world.people.mallory, world.people.alice, None):
        assert await attempt(app_engine, who, "SELECT count(*) FROM support.cursor") == DENIED


async def test_the_customer_reads_her_own_rows(app_engine: AsyncEngine, world: World) -> None:
    alice = world.people.alice
    assert await attempt(app_engine, alice, "SELECT count(*) FROM support.rooms") == 3
    assert await attempt(app_engine, alice, "SELECT count(*) FROM support.guest_links") == 1
    assert await attempt(app_engine, alice, "SELECT count(*) FROM support.guests") == 1
    # The desk's workings are the agents': she sees no escalation.
    assert await attempt(app_engine, alice, "SELECT count(*) FROM support.escalations") == 0


async def test_no_one_writes_the_desk_through_sql(app_engine: AsyncEngine, world: World) -> None:
    alice, mallory, max_ = world.people.alice, world.people.mallory, world.people.max
    for who in (alice, mallory, max_):
        for statement in (
            "UPDATE support.rooms SET level = 'T1', status = 'closed'",
            "DELETE FROM support.rooms",
            "UPDATE support.escalations SET status = 'cancelled'",
            "DELETE FROM support.room_agents",
            "UPDATE support.guest_links SET uses = 0",
            "DELETE FROM support.guests",
            "UPDATE support.cursor SET position = 0",
        ):
            assert await attempt(app_engine, who, statement) == DENIED, (who.name, statement)
    forged = "INSERT INTO support.rooms (conversation_id, customer_id, issue_description) VALUES (:room, :me, 'forged')"
    assert await attempt(app_engine, mallory, forged, room=UUID(world.second), me=mallory.user_id) == DENIED
    agent = "INSERT INTO support.room_agents (conversation_id, agent_id) VALUES (:room, :me)"
    assert await attempt(app_engine, mallory, agent, room=UUID(world.second), me=mallory.user_id) == DENIED
    link = (
        "INSERT INTO support.guest_links (id, conversation_id, token_hash, created_by, expires_at)"
        " VALUES (:id, :room, sha256('x'::bytea), :me, now() + interval '1 day')"
    )
    assert await attempt(app_engine, mallory, link, id=uuid7(), room=UUID(world.second), me=mallory.user_id) == DENIED


async def test_only_an_administrator_changes_the_sla_through_sql(
    app_engine: AsyncEngine, runtime: Runtime, world: World
) -> None:
    from tests.compliance.admin_support import make_admin

    change = "UPDATE support.sla SET first_response_minutes = 1, updated_by = :me WHERE priority = 1 RETURNING 1"
    assert await changed(app_engine, world.people.mallory, change, me=world.people.mallory.user_id) == 0
    assert await changed(app_engine, world.people.max, change, me=world.people.max.user_id) == 0
    admin = await make_admin(runtime, world.people.sam)
    assert await changed(app_engine, admin, change, me=admin.user_id) == 1
    assert await attempt(app_engine, world.people.mallory, "SELECT count(*) FROM support.sla") == 5
    assert await attempt(app_engine, None, "SELECT count(*) FROM support.sla") == 0


async def test_observe_messages_out_of_context_reads_nothing(app_engine: AsyncEngine, world: World) -> None:
    observe = "SELECT count(*) FROM support.observe_messages(:room, NULL, 50)"
    room = UUID(world.first)
    assert await attempt(app_engine, world.people.sam, observe, room=room) == 1
    for who in (world.people.mallory, world.people.alice, world.people.max, world.gus, None):
        assert await attempt(app_engine, who, observe, room=room) == 0
    # Not a support room: nothing, even for a supervisor.
    assert await attempt(app_engine, world.people.sam, observe, room=uuid7()) == 0


async def test_queue_page_out_of_context_reads_nothing(app_engine: AsyncEngine, world: World) -> None:
    queue = "SELECT count(*) FROM support.queue_page(:level, false, NULL, NULL, NULL, 50)"
    people = world.people
    # The T1 queue holds Alice's second room; the T3 queue, Tess's escalation.
    for who in (people.tess, people.sam):
        assert await attempt(app_engine, who, queue, level="T1") == 1
    for who in (people.tara, people.sam):
        assert await attempt(app_engine, who, queue, level="T3") == 1
    for who in (people.tess, people.theo):
        assert await attempt(app_engine, who, queue, level="T3") == 0
    for who in (people.mallory, people.alice, world.gus, None):
        for level in ("T1", "T3"):
            assert await attempt(app_engine, who, queue, level=level) == 0
