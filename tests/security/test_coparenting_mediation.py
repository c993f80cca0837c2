"""Alice's mediation data (her triggers, the rewrites suggested to her, her statistics and
her communication profile) attacked by bob, the other parent, with whom she shares a
conversation, and by mallory, a stranger: through the API, and through SQL as `rapport_app`,
where PostgreSQL itself must refuse them. A transaction naming no user sees nothing, and
alice herself cannot forge her statistics or her learned profile."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import DatabaseUrls
from rapport.modules.coparenting import models_mediation as m
from tests.messaging.support import make_conversation
from tests.module_scope import build_once
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

TABLES = [m.communication_triggers, m.intervention_rewrites, m.intervention_statistics, m.communication_profiles]
HOSTILE = "You never listen, you idiot!!"
STATS_VIEW = "coparenting.intervention_stats_with_rate"


@dataclass
class World:
    alice: Persona
    bob: Persona
    mallory: Persona
    room: UUID
    trigger_id: str
    pending_id: str
    answered_id: str


@pytest.fixture(scope="module")
async def module_world(module_app: FastAPI, module_database: DatabaseUrls) -> World:
    """Alice with a row in every table: a trigger, two suggestions for her room with bob
    (one answered), her statistics and her learned profile. Built once: each test's reset
    puts it back as it was (module_scope.build_once)."""

    async def jobs_done() -> None:
        async with asyncio.timeout(10):
            await module_app.state.notifications.catch_up()
            await module_app.state.worker.wait_idle()

    async with build_once(module_app, module_database) as built:
        alice, bob, mallory = await built.personas("alice", "bob", "mallory")
        return await _build(built.client, built.app_engine, built.runtime, jobs_done, alice, bob, mallory)


@pytest.fixture
def world(module_world: World, database: DatabaseUrls) -> World:
    """The module's world, as built: the test's database was reset to it."""
    return module_world


async def _build(client, app_engine, runtime, jobs_done, alice, bob, mallory) -> World:
    room = await make_conversation(app_engine, alice, bob, type="direct")
    made = await client.post(
        "/v1/coparenting/triggers", headers=alice.headers, json={"trigger_type": "phrase", "trigger_value": "you never"}
    )
    ids = []
    for _ in range(2):
        analysed = await client.post(
            "/v1/coparenting/analysis", headers=alice.headers, json={"text": HOSTILE, "conversation_id": str(room)}
        )
        ids.append(analysed.json()["suggestion"]["id"])
    answered = await client.post(
        f"/v1/coparenting/rewrites/{ids[1]}/outcome", headers=alice.headers, json={"outcome": "accepted"}
    )
    assert answered.status_code == 200, answered.text
    await client.post("/v1/coparenting/communication-profile/learn", headers=alice.headers)
    await jobs_done()
    async with system_transaction(runtime.system_engine) as db:
        for table in TABLES:
            count = (
                await db.execute(select(func.count()).select_from(table).where(table.c.user_id == UUID(alice.user_id)))
            ).scalar_one()
            assert count > 0, f"alice has no row in {table.fullname}: the test would prove nothing"
    return World(alice, bob, mallory, room, made.json()["id"], ids[0], ids[1])


def _is_refused(error: DBAPIError) -> bool:
    cause = error.orig.__cause__
    return isinstance(cause, asyncpg.exceptions.InsufficientPrivilegeError)


async def _alices_rows_seen_by(engine: AsyncEngine, viewer: Persona, alice: Persona) -> dict[str, int]:
    async with user_transaction(engine, UUID(viewer.user_id)) as db:
        counts = {
            table.fullname: (
                await db.execute(select(func.count()).select_from(table).where(table.c.user_id == UUID(alice.user_id)))
            ).scalar_one()
            for table in TABLES
        }
        counts[STATS_VIEW] = (
            await db.execute(text(f"SELECT count(*) FROM {STATS_VIEW} WHERE user_id = :u"), {"u": UUID(alice.user_id)})
        ).scalar_one()
    return counts


# Through the API


@pytest.mark.parametrize("attacker", ["bob", "mallory"])
async def test_nobody_else_reads_or_changes_alices_mediation_through_the_api(client, world, attacker):
    persona: Persona = getattr(world, attacker)

    triggers = await client.get("/v1/coparenting/triggers", headers=persona.headers)
    rewrites = await client.get("/v1/coparenting/rewrites", headers=persona.headers)
    stats = await client.get("/v1/coparenting/mediation/statistics", headers=persona.headers)
    profile = await client.get("/v1/coparenting/communication-profile", headers=persona.headers)
    patched = await client.patch(
        f"/v1/coparenting/triggers/{world.trigger_id}", headers=persona.headers, json={"intensity": 0.1}
    )
    deleted = await client.delete(f"/v1/coparenting/triggers/{world.trigger_id}", headers=persona.headers)
    answered = await client.post(
        f"/v1/coparenting/rewrites/{world.pending_id}/outcome", headers=persona.headers, json={"outcome": "rejected"}
    )
    recorded_again = await client.post(
        f"/v1/coparenting/rewrites/{world.answered_id}/outcome", headers=persona.headers, json={"outcome": "rejected"}
    )

    assert (triggers.json()["items"], rewrites.json()["items"]) == ([], [])
    assert stats.json()["total_interventions"] == 0
    assert problem_type(profile) == "communication-profile-not-found"
    assert problem_type(patched) == problem_type(deleted) == "trigger-not-found"
    # An answered suggestion of alice's looks the same as one that does not exist.
    assert problem_type(answered) == problem_type(recorded_again) == "rewrite-not-found"
    mine = await client.get("/v1/coparenting/triggers", headers=world.alice.headers)
    assert [(t["id"], t["intensity"]) for t in mine.json()["items"]] == [(world.trigger_id, "0.50")]


async def test_the_other_parent_sees_no_trace_in_the_shared_room(client, world):
    history = await client.get(f"/v1/conversations/{world.room}/messages", headers=world.bob.headers)

    assert history.status_code == 200 and history.json()["items"] == []


# Through SQL


@pytest.mark.parametrize("viewer", ["bob", "mallory"])
async def test_nobody_else_sees_alices_rows_in_sql(app_engine, world, viewer):
    seen = await _alices_rows_seen_by(app_engine, getattr(world, viewer), world.alice)

    assert seen == dict.fromkeys([*(t.fullname for t in TABLES), STATS_VIEW], 0)


async def test_alice_sees_her_own_rows(app_engine, world):
    seen = await _alices_rows_seen_by(app_engine, world.alice, world.alice)

    assert all(count > 0 for count in seen.values()), seen


async def test_a_transaction_naming_no_user_sees_nothing(app_engine, world):
    async with app_engine.begin() as db:
        counts = [(await db.execute(select(func.count()).select_from(table))).scalar_one() for table in TABLES]
        counts.append((await db.execute(text(f"SELECT count(*) FROM {STATS_VIEW}"))).scalar_one())

    assert counts == [0] * 5


@pytest.mark.parametrize("attacker", ["bob", "mallory"])
async def test_nobody_else_changes_or_removes_alices_rows_in_sql(app_engine, world, attacker):
    alice_id = UUID(world.alice.user_id)
    touched = {}
    async with user_transaction(app_engine, UUID(getattr(world, attacker).user_id)) as db:
        touched["triggers updated"] = (
            await db.execute(
                update(m.communication_triggers)
                .where(m.communication_triggers.c.user_id == alice_id)
                .values(intensity=0)
            )
        ).rowcount
        touched["triggers deleted"] = (
            await db.execute(delete(m.communication_triggers).where(m.communication_triggers.c.user_id == alice_id))
        ).rowcount
        touched["rewrites answered"] = (
            await db.execute(
                update(m.intervention_rewrites)
                .where(m.intervention_rewrites.c.user_id == alice_id)
                .values(outcome="ignored", outcome_at=func.now())
            )
        ).rowcount

    assert touched == {"triggers updated": 0, "triggers deleted": 0, "rewrites answered": 0}


@pytest.mark.parametrize("attacker", ["bob", "mallory"])
async def test_nobody_inserts_rows_naming_alice(app_engine, world, attacker):
    alice_id = UUID(world.alice.user_id)
    forged = {
        m.communication_triggers: {
            "id": uuid7(),
            "user_id": alice_id,
            "trigger_type": "phrase",
            "trigger_value": "forged",
        },
        m.intervention_rewrites: {
            "id": uuid7(),
            "user_id": alice_id,
            "original_text": "forged",
            "rewrite_text": "forged",
            "engine": "local",
        },
        m.intervention_statistics: {"user_id": alice_id},
        m.communication_profiles: {"user_id": alice_id, "vocabulary_complexity": "simple", "emoji_usage": "none"},
    }
    refused = {}
    for table, values in forged.items():
        with pytest.raises(DBAPIError) as caught:
            async with user_transaction(app_engine, UUID(getattr(world, attacker).user_id)) as db:
                await db.execute(insert(table).values(**values))
        refused[table.fullname] = _is_refused(caught.value)

    assert refused == {table.fullname: True for table in TABLES}


async def test_alice_cannot_forge_her_statistics_or_her_profile(app_engine, world):
    alice_id = UUID(world.alice.user_id)
    attempts = [
        update(m.intervention_statistics)
        .where(m.intervention_statistics.c.user_id == alice_id)
        .values(accepted_count=99),
        update(m.communication_profiles)
        .where(m.communication_profiles.c.user_id == alice_id)
        .values(profile_version=99),
        delete(m.intervention_statistics).where(m.intervention_statistics.c.user_id == alice_id),
    ]
    refused = []
    for statement in attempts:
        with pytest.raises(DBAPIError) as caught:
            async with user_transaction(app_engine, alice_id) as db:
                await db.execute(statement)
        refused.append(_is_refused(caught.value))

    assert refused == [True, True, True]


async def test_alice_cannot_change_an_answered_outcome_in_sql(app_engine, world):
    async with user_transaction(app_engine, UUID(world.alice.user_id)) as db:
        changed = (
            await db.execute(
                update(m.intervention_rewrites)
                .where(m.intervention_rewrites.c.id == UUID(world.answered_id))
                .values(outcome="rejected")
            )
        ).rowcount

    assert changed == 0


async def test_a_suggestion_cannot_name_a_conversation_its_person_is_not_in(app_engine, world):
    with pytest.raises(DBAPIError) as caught:
        async with user_transaction(app_engine, UUID(world.mallory.user_id)) as db:
            await db.execute(
                insert(m.intervention_rewrites).values(
                    id=uuid7(),
                    user_id=UUID(world.mallory.user_id),
                    conversation_id=world.room,
                    original_text="x",
                    rewrite_text="y",
                    engine="local",
                )
            )

    assert _is_refused(caught.value)
