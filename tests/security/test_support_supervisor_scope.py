"""Supervisors granted `supervisor:chat:observe` platform-wide observe the support desk's
rooms, and nothing else: no other conversation's history (messaging.conversation_history,
messaging.participant_history, messaging.observes) or messages (support.observe_messages),
through the API or through SQL as `rapport_app`; and no row of support.rooms can make
another kind of conversation a support room, even as system work.

Sam supervises everywhere. Alice has a support room (Tess, T1, answered it; it is closed,
a change its history keeps), a group with Bob (renamed, a change its history keeps) and a
direct conversation with Bob."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime
from tests.messaging.support import make_conversation
from tests.messaging.support import send as send_to
from tests.module_scope import build_once
from tests.security.messaging_sql import attempt
from tests.support import Persona, problem_type
from tests.support_desk.support import ROOMS, Desk, as_system, grant, join, ok, open_room, send

pytestmark = pytest.mark.module_database

_HISTORY = (
    "SELECT count(*) FROM (SELECT id FROM messaging.conversation_history WHERE conversation_id = :c"
    " UNION ALL SELECT id FROM messaging.participant_history WHERE conversation_id = :c) h"
)


@dataclass(frozen=True)
class World:
    people: Desk
    bob: Persona
    support: UUID
    group: UUID
    direct: UUID

    @property
    def others(self) -> tuple[UUID, UUID]:
        return self.group, self.direct


@pytest.fixture(scope="module")
async def module_world(module_app: FastAPI, module_database: DatabaseUrls) -> World:
    """The desk's people, bob and alice's conversations, built once: each test's reset puts
    them back as they were (module_scope.build_once)."""
    async with build_once(module_app, module_database) as built:
        runtime = built.runtime
        alice, tess, theo, tara, max_, sam, mallory, bob = await built.personas(
            "alice", "tess", "theo", "tara", "max", "sam", "mallory", "bob"
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
        return await _build(built.client, built.app_engine, desk, bob)


@pytest.fixture
def world(module_world: World, database: DatabaseUrls) -> World:
    """The module's world, as built: the test's database was reset to it."""
    return module_world


async def _build(client: httpx.AsyncClient, app_engine: AsyncEngine, desk: Desk, bob: Persona) -> World:
    support = (await open_room(client, desk.alice))["conversation_id"]
    ok(await join(client, desk.tess, support))
    await send(client, desk.alice, support, "My order never arrived")
    await send(client, desk.tess, support, "Let me look")
    ok(await client.post(f"{ROOMS}/{support}/close", headers=desk.alice.headers))
    group = await make_conversation(app_engine, desk.alice, bob, name="Weekend plans")
    renamed = await client.patch(f"/v1/conversations/{group}", json={"name": "Trail run"}, headers=desk.alice.headers)
    assert renamed.status_code == 200, renamed.text
    await send_to(client, bob, group, "Saturday at seven")
    direct = await make_conversation(app_engine, desk.alice, bob, type="direct")
    await send_to(client, desk.alice, direct, "Just between us")
    return World(desk, bob, UUID(support), group, direct)


def refused(response: httpx.Response, status: int, slug: str) -> None:
    assert (response.status_code, problem_type(response)) == (status, slug), response.text


async def test_a_platform_wide_supervisor_observes_support_rooms(client: httpx.AsyncClient, world: World) -> None:
    sam = world.people.sam
    history = ok(await client.get(f"/v1/conversations/{world.support}/history", headers=sam.headers))
    assert [(c["subject"], c["previous"]["status"]) for c in history["items"] if c["subject"] == "conversation"] == [
        ("conversation", "active")
    ]
    observed = ok(await client.get(f"{ROOMS}/{world.support}/messages", headers=sam.headers))
    assert [m["content"] for m in observed["items"]] == ["Let me look", "My order never arrived"]


async def test_a_platform_wide_supervisor_reaches_no_other_conversation_through_the_api(
    client: httpx.AsyncClient, world: World
) -> None:
    sam = world.people.sam
    for conversation in world.others:
        refused(
            await client.get(f"/v1/conversations/{conversation}/history", headers=sam.headers),
            404,
            "conversation-not-found",
        )
        refused(
            await client.get(f"{ROOMS}/{conversation}/messages", headers=sam.headers), 404, "support-room-not-found"
        )
        refused(await client.get(f"{ROOMS}/{conversation}", headers=sam.headers), 404, "support-room-not-found")
        assert (await client.get(f"/v1/conversations/{conversation}/messages", headers=sam.headers)).status_code == 404


async def test_a_platform_wide_supervisor_reads_no_other_conversation_through_sql(
    app_engine: AsyncEngine, world: World
) -> None:
    sam = world.people.sam
    assert await attempt(app_engine, sam, _HISTORY, c=world.support) >= 1
    assert await attempt(app_engine, sam, "SELECT messaging.observes(:c)", c=world.support) is True
    for conversation in world.others:
        assert await attempt(app_engine, sam, _HISTORY, c=conversation) == 0
        assert await attempt(app_engine, sam, "SELECT messaging.observes(:c)", c=conversation) is False
        observed = "SELECT count(*) FROM support.observe_messages(:c, NULL, 50)"
        assert await attempt(app_engine, sam, observed, c=conversation) == 0
        messages = "SELECT count(*) FROM messaging.messages WHERE conversation_id = :c"
        assert await attempt(app_engine, sam, messages, c=conversation) == 0
    # Everything the desk shows him is a support room's.
    rooms = "SELECT count(*) FROM support.rooms WHERE conversation_id <> :c"
    assert await attempt(app_engine, sam, rooms, c=world.support) == 0


async def test_a_grant_for_one_conversation_reaches_that_one(
    client: httpx.AsyncClient,
    app_engine: AsyncEngine,
    runtime: Runtime,
    world: World,
    make_persona: Callable[[str], Awaitable[Persona]],
) -> None:
    sue = await grant(runtime, await make_persona("sue"), "supervisor", world.group)

    changes = ok(await client.get(f"/v1/conversations/{world.group}/history", headers=sue.headers))

    assert [c["previous"]["name"] for c in changes["items"] if c["subject"] == "conversation"] == ["Weekend plans"]
    refused(
        await client.get(f"/v1/conversations/{world.direct}/history", headers=sue.headers),
        404,
        "conversation-not-found",
    )
    # Not a support room: the desk shows her nothing of it all the same.
    assert (
        await attempt(app_engine, sue, "SELECT count(*) FROM support.observe_messages(:c, NULL, 50)", c=world.group)
        == 0
    )


async def test_no_other_conversation_becomes_a_support_room(runtime: Runtime, world: World) -> None:
    planted = (
        "INSERT INTO support.rooms (conversation_id, customer_id, issue_description) VALUES (:c, :customer, 'planted')"
    )
    moved = "UPDATE support.rooms SET conversation_id = :c WHERE conversation_id = :room"
    customer = UUID(world.people.alice.user_id)
    for conversation in world.others:
        with pytest.raises(DBAPIError) as refusal:
            await as_system(runtime, planted, c=conversation, customer=customer)
        assert "support or escalated" in str(refusal.value)
        with pytest.raises(DBAPIError) as refusal:
            await as_system(runtime, moved, c=conversation, room=world.support)
        assert "support or escalated" in str(refusal.value)
