"""Pairing as mallory: alice and bob are paired, alice also has an invitation pending.
Mallory reads, cancels and logs none of it through the API; straight through SQL as
`rapport_app` she sees no row of coparenting.pairing_sessions, coparenting.pairing_audit_log
or the view coparenting.user_pairing_status, forges no invitation or step in another's
name, and changes nothing. Bob, a parent of the pairing, cannot reopen it, move its room
or rename its parents. coparenting.claim_pairing out of context accepts nothing."""

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
from tests.coparenting.pairing_support import PAIRINGS, STATUS, invite, pair
from tests.messaging.support import make_conversation
from tests.module_scope import build_once
from tests.security.messaging_sql import DENIED, POLICY, attempt, changed
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

CHECK = "CheckViolationError"


@dataclass(frozen=True)
class World:
    alice: Persona
    bob: Persona
    mallory: Persona
    pairing: dict[str, Any]
    pending: dict[str, Any]


@pytest.fixture(scope="module")
async def module_world(module_app: FastAPI, module_database: DatabaseUrls) -> World:
    """Alice paired with bob and a pending invitation of hers; mallory a stranger. Built
    once: each test's reset puts it back as it was (module_scope.build_once)."""
    async with build_once(module_app, module_database) as built:
        alice, bob, mallory = await built.personas("alice", "bob", "mallory")
        pairing = await pair(built.client, alice, bob)
        pending = await invite(built.client, alice, "code")
        return World(alice=alice, bob=bob, mallory=mallory, pairing=pairing, pending=pending)


@pytest.fixture
def world(module_world: World, database: DatabaseUrls) -> World:
    """The module's world, as built: the test's database was reset to it."""
    return module_world


# --- through the API ---------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("GET", "/log"), ("POST", "/cancel"), ("DELETE", "")])
async def test_mallory_reaches_no_pairing_of_theirs(
    client: httpx.AsyncClient, world: World, method: str, suffix: str
) -> None:
    for pairing in (world.pairing, world.pending):
        response = await client.request(method, f"{PAIRINGS}/{pairing['id']}{suffix}", headers=world.mallory.headers)
        assert (response.status_code, problem_type(response)) == (404, "pairing-not-found")
    mine = await client.get(f"{PAIRINGS}/{world.pairing['id']}", headers=world.alice.headers)
    assert mine.json()["status"] == "active"


async def test_mallorys_status_is_her_own(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get(STATUS, headers=world.mallory.headers)
    assert (response.status_code, problem_type(response)) == (404, "pairing-not-found")


async def test_the_acceptor_never_sees_the_initiators_code_or_other_invitations(
    client: httpx.AsyncClient, world: World
) -> None:
    seen = await client.get(f"{PAIRINGS}/{world.pending['id']}", headers=world.bob.headers)
    assert seen.status_code == 404
    mine = (await client.get(f"{PAIRINGS}/{world.pairing['id']}", headers=world.bob.headers)).json()
    assert (mine["pairing_code"], mine["invited_email"]) == (None, None)


# --- straight through SQL as rapport_app -----------------------------------------------------------


@pytest.mark.parametrize(
    "relation",
    ["coparenting.pairing_sessions", "coparenting.pairing_audit_log", "coparenting.user_pairing_status"],
)
async def test_mallory_and_nobody_read_no_row(app_engine: AsyncEngine, world: World, relation: str) -> None:
    assert await attempt(app_engine, world.mallory, f"SELECT count(*) FROM {relation}") == 0
    assert await attempt(app_engine, None, f"SELECT count(*) FROM {relation}") == 0
    assert await attempt(app_engine, world.alice, f"SELECT count(*) FROM {relation}") > 0


async def test_mallory_invites_in_no_one_elses_name(app_engine: AsyncEngine, world: World) -> None:
    forged = (
        "INSERT INTO coparenting.pairing_sessions (id, parent_a_id, invite_type, invite_token_hash, expires_at)"
        " VALUES (:id, :parent, 'link', sha256(convert_to(CAST(:id AS uuid)::text, 'UTF8')), now() + interval '1 day')"
    )
    assert await attempt(app_engine, world.mallory, forged, id=uuid7(), parent=world.alice.user_id) == POLICY
    made_active = (
        "INSERT INTO coparenting.pairing_sessions (id, parent_a_id, parent_b_id, status, invite_type, pairing_code,"
        " expires_at) VALUES (:id, :me, :bob, 'active', 'code', 'LZ-999999', now() + interval '1 day')"
    )
    outcome = await attempt(
        app_engine, world.mallory, made_active, id=uuid7(), me=world.mallory.user_id, bob=world.bob.user_id
    )
    assert outcome == DENIED


async def test_mallory_changes_and_deletes_nothing(app_engine: AsyncEngine, world: World) -> None:
    ids = {"a": UUID(world.pairing["id"]), "b": UUID(world.pending["id"])}
    cancel = "UPDATE coparenting.pairing_sessions SET status = 'canceled' WHERE id IN (:a, :b) RETURNING 1"
    assert await changed(app_engine, world.mallory, cancel, **ids) == 0
    assert await attempt(app_engine, world.mallory, "DELETE FROM coparenting.pairing_sessions") == DENIED
    assert await attempt(app_engine, world.mallory, "DELETE FROM coparenting.pairing_audit_log") == DENIED
    assert (
        await attempt(app_engine, world.alice, "UPDATE coparenting.pairing_audit_log SET action = 'created'") == DENIED
    )


async def test_mallory_forges_no_step_in_a_pairing_log(app_engine: AsyncEngine, world: World) -> None:
    step = (
        "INSERT INTO coparenting.pairing_audit_log (id, pairing_id, actor_id, action)"
        " VALUES (:id, :pairing, :actor, 'canceled')"
    )
    pairing = UUID(world.pairing["id"])
    as_alice = await attempt(app_engine, world.mallory, step, id=uuid7(), pairing=pairing, actor=world.alice.user_id)
    as_herself = await attempt(
        app_engine, world.mallory, step, id=uuid7(), pairing=pairing, actor=world.mallory.user_id
    )
    assert (as_alice, as_herself) == (POLICY, POLICY)


async def test_a_parent_cannot_reopen_move_or_rename_the_pairing(
    app_engine: AsyncEngine, client: httpx.AsyncClient, world: World
) -> None:
    pairing = UUID(world.pairing["id"])
    other_room = await make_conversation(app_engine, world.bob, world.mallory)
    move = "UPDATE coparenting.pairing_sessions SET shared_room_id = :room WHERE id = :id RETURNING 1"
    assert await changed(app_engine, world.bob, move, id=pairing, room=other_room) == CHECK
    rename = "UPDATE coparenting.pairing_sessions SET parent_a_id = :me WHERE id = :id RETURNING 1"
    assert await changed(app_engine, world.bob, rename, id=pairing, me=world.bob.user_id) == DENIED
    ended = await client.post(f"{PAIRINGS}/{pairing}/cancel", headers=world.bob.headers)
    assert ended.status_code == 200
    reopen = "UPDATE coparenting.pairing_sessions SET status = 'active' WHERE id = :id RETURNING 1"
    assert await changed(app_engine, world.bob, reopen, id=pairing) == CHECK


async def test_claim_pairing_out_of_context_accepts_nothing(
    app_engine: AsyncEngine, client: httpx.AsyncClient, world: World
) -> None:
    code = world.pending["pairing_code"]
    claim = "SELECT outcome FROM coparenting.claim_pairing(NULL, :code)"
    assert await attempt(app_engine, None, claim, code=code) == "not_found"
    both = "SELECT outcome FROM coparenting.claim_pairing(sha256('x'::bytea), :code)"
    assert await attempt(app_engine, world.mallory, both, code=code) == "not_found"
    assert (await client.get(f"{PAIRINGS}/{world.pending['id']}", headers=world.alice.headers)).json()[
        "status"
    ] == "pending"


async def test_is_paired_with_answers_for_the_caller_alone(app_engine: AsyncEngine, world: World) -> None:
    asked = "SELECT coparenting.is_paired_with(:bob)"
    by_alice = await attempt(app_engine, world.alice, asked, bob=world.bob.user_id)
    by_mallory = await attempt(app_engine, world.mallory, asked, bob=world.bob.user_id)
    by_nobody = await attempt(app_engine, None, asked, bob=world.bob.user_id)
    assert (by_alice, by_mallory, by_nobody) == (True, False, False)
