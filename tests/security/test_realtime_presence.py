"""Presence as mallory: `realtime.presence` and its definer functions, called straight
through SQL as `rapport_app` (the server's role), tell nobody anything their privacy
settings or a block hide, and write nothing. Alice's status is for her contacts (bob);
alice blocks dave; mallory is a stranger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime
from tests.module_scope import build_once
from tests.support import Persona, befriend

pytestmark = pytest.mark.module_database

DENIED = "permission denied"
REFUSED = "refused"


@dataclass(frozen=True)
class World:
    alice: Persona
    bob: Persona
    dave: Persona
    mallory: Persona


@pytest.fixture(scope="module")
async def module_world(module_app: FastAPI, module_database: DatabaseUrls) -> World:
    """Alice's status for her contacts (bob), dave blocked by her, mallory a stranger.
    Built once: each test's reset puts it back as it was (module_scope.build_once)."""
    async with build_once(module_app, module_database) as built:
        alice, bob, dave, mallory = await built.personas("alice", "bob", "dave", "mallory")
        return await _build(built.runtime, built.client, alice, bob, dave, mallory)


@pytest.fixture
def world(module_world: World, database: DatabaseUrls) -> World:
    """The module's world, as built: the test's database was reset to it."""
    return module_world


async def _build(
    runtime: Runtime, client: httpx.AsyncClient, alice: Persona, bob: Persona, dave: Persona, mallory: Persona
) -> World:
    await befriend(client, alice, bob)
    for persona in (alice, dave):
        changed = await client.patch(
            "/v1/settings", headers=persona.headers, json={"online_status_visibility": "everyone"}
        )
        assert changed.status_code == 200, changed.text
    blocked = await client.put(f"/v1/blocks/{dave.user_id}", headers=alice.headers)
    assert blocked.status_code == 200, blocked.text
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text("SELECT realtime.record_last_seen(ARRAY[:alice, :dave]::uuid[], ARRAY[now(), now()])"),
            {"alice": alice.user_id, "dave": dave.user_id},
        )
    return World(alice=alice, bob=bob, dave=dave, mallory=mallory)


def _outcome(error: DBAPIError) -> str:
    cause = error.orig.__cause__ if error.orig is not None else None
    if isinstance(cause, asyncpg.exceptions.InsufficientPrivilegeError):
        return DENIED if "permission denied" in str(cause) else REFUSED
    return type(cause).__name__


async def rows(engine: AsyncEngine, user: Persona | None, statement: str, **params: Any) -> Any:
    """Every row the statement returns, as `user` or with no user set; or why PostgreSQL refused."""
    try:
        if user is None:
            async with engine.begin() as db:
                return [tuple(r) for r in await db.execute(text(statement), params)]
        async with user_transaction(engine, UUID(user.user_id)) as db:
            return [tuple(r) for r in await db.execute(text(statement), params)]
    except DBAPIError as error:
        return _outcome(error)


async def test_mallory_reads_no_ones_last_seen_from_the_table(app_engine: AsyncEngine, world: World) -> None:
    everyone = "SELECT user_id FROM realtime.presence"
    assert await rows(app_engine, world.mallory, everyone) == []
    assert await rows(app_engine, None, everyone) == []
    assert await rows(app_engine, world.alice, everyone) == [(UUID(world.alice.user_id),)]


async def test_mallory_writes_no_last_seen(app_engine: AsyncEngine, world: World) -> None:
    ids = {"alice": world.alice.user_id, "mallory": world.mallory.user_id}
    tries = [
        "INSERT INTO realtime.presence (user_id, last_seen_at) VALUES (:mallory, now()) RETURNING 1",
        "UPDATE realtime.presence SET last_seen_at = now() WHERE user_id = :alice RETURNING 1",
        "DELETE FROM realtime.presence WHERE user_id = :alice RETURNING 1",
        "SELECT realtime.record_last_seen(ARRAY[:alice]::uuid[], ARRAY[now()])",
    ]
    for statement in tries:
        assert await rows(app_engine, world.mallory, statement, **ids) == DENIED, statement


async def test_the_worker_records_last_seen_only_in_system_work(runtime: Runtime, world: World) -> None:
    outside = await rows(
        runtime.system_engine.engine,
        None,
        "SELECT realtime.record_last_seen(ARRAY[:alice]::uuid[], ARRAY[now()])",
        alice=world.alice.user_id,
    )
    assert outside == REFUSED


async def test_presence_visibility_tells_mallory_nothing_alice_hides(app_engine: AsyncEngine, world: World) -> None:
    """Alice's status is for everyone, her last seen for contacts: mallory sees the status
    alone, bob both; dave, whom she blocks, nothing; with no user set, nothing at all."""
    asked = (
        "SELECT user_id, sees_status, sees_last_seen, last_seen_at IS NOT NULL"
        " FROM realtime.presence_visibility(ARRAY[:alice]::uuid[])"
    )
    alice = UUID(world.alice.user_id)
    assert await rows(app_engine, world.mallory, asked, alice=str(alice)) == [(alice, True, False, False)]
    assert await rows(app_engine, world.bob, asked, alice=str(alice)) == [(alice, True, True, True)]
    assert await rows(app_engine, world.dave, asked, alice=str(alice)) == [(alice, False, False, False)]
    assert await rows(app_engine, None, asked, alice=str(alice)) == []


async def test_a_blocker_sees_nothing_of_the_person_blocked_either(app_engine: AsyncEngine, world: World) -> None:
    asked = "SELECT sees_status, last_seen_at FROM realtime.presence_visibility(ARRAY[:dave]::uuid[])"
    assert await rows(app_engine, world.alice, asked, dave=world.dave.user_id) == [(False, None)]


async def test_presence_audience_is_system_work_alone(runtime: Runtime, app_engine: AsyncEngine, world: World) -> None:
    asked = "SELECT user_id FROM realtime.presence_audience(:alice)"
    assert await rows(app_engine, world.mallory, asked, alice=world.alice.user_id) == DENIED
    assert await rows(runtime.system_engine.engine, None, asked, alice=world.alice.user_id) == REFUSED
    async with system_transaction(runtime.system_engine) as db:
        heard = {row.user_id for row in await db.execute(text(asked), {"alice": world.alice.user_id})}
    # Her contact hears her; the person she blocks and the stranger do not.
    assert heard == {UUID(world.bob.user_id)}


async def test_presence_allows_is_nobodys_to_call(app_engine: AsyncEngine, world: World) -> None:
    asked = "SELECT realtime.presence_allows('everyone', :alice, :dave)"
    ids = {"alice": world.alice.user_id, "dave": world.dave.user_id}
    assert await rows(app_engine, world.mallory, asked, **ids) == DENIED
