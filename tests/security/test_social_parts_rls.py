"""Alice's profile parts, devices, statuses and the record of access to her sensitive
parts, attacked by mallory (a stranger), carol (a contact alice has blocked) and bob (a
contact, who may see what her profile shows and nothing more): through the API, and
through SQL as `rapport_app`, where PostgreSQL itself must refuse them whatever bug a
query might have. A transaction that names no user sees nothing."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg
import pytest
from fastapi import FastAPI
from sqlalchemy import Table, delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.models import sensitive_data_access
from rapport.kernel.provisioning import DatabaseUrls
from rapport.social import models_parts as m
from tests.module_scope import build_once
from tests.social.parts_support import (
    block,
    make_contacts,
    post_expired_status,
    set_visibility,
)
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

SHARED_PARTS = [m.user_demographics, m.user_employment, m.user_background]
SENSITIVE_PARTS = [m.user_health_context, m.user_financials]
ALL_TABLES = [*SHARED_PARTS, *SENSITIVE_PARTS, m.devices, m.status_updates, sensitive_data_access]
BODIES = {
    "demographics": {"preferred_name": "Ali", "city": "Lyon"},
    "employment": {"occupation": "Nurse"},
    "background": {"religion": "Buddhist", "languages": ["fr"]},
    "health": {"mental_health_conditions": "Anxiety"},
    "financials": {"debt_notes": "Student loan"},
}


@dataclass
class World:
    alice: Persona
    bob: Persona
    carol: Persona
    mallory: Persona
    device_id: str
    status_id: str
    expired_status_id: UUID


@pytest.fixture(scope="module")
async def module_world(module_app: FastAPI, module_database: DatabaseUrls) -> World:
    """Alice with a row in every table, her profile seen by contacts only; bob and carol
    her contacts, carol blocked by her; mallory a stranger. Built once: each test's reset
    puts it back as it was (module_scope.build_once)."""
    async with build_once(module_app, module_database) as built:
        alice, bob, carol, mallory = await built.personas("alice", "bob", "carol", "mallory")
        return await _build(built.client, built.runtime, alice, bob, carol, mallory)


@pytest.fixture
def world(module_world: World, database: DatabaseUrls) -> World:
    """The module's world, as built: the test's database was reset to it."""
    return module_world


# The world's people, for the tests that name them.
@pytest.fixture
def alice(world: World) -> Persona:
    return world.alice


@pytest.fixture
def bob(world: World) -> Persona:
    return world.bob


@pytest.fixture
def mallory(world: World) -> Persona:
    return world.mallory


async def _build(client, runtime, alice, bob, carol, mallory) -> World:
    for part, body in BODIES.items():
        saved = await client.put(f"/v1/profile/parts/{part}", headers=alice.headers, json=body)
        assert saved.status_code == 200, saved.text
    await client.get("/v1/profile/parts/health", headers=alice.headers)
    device = await client.post(
        "/v1/devices", headers=alice.headers, json={"name": "phone", "device_type": "mobile", "platform": "android"}
    )
    status = await client.post("/v1/statuses", headers=alice.headers, json={"content": "Alice's status"})
    expired = await post_expired_status(runtime, alice)
    await make_contacts(runtime, alice, bob)
    await make_contacts(runtime, alice, carol)
    await block(runtime, alice, carol)
    await set_visibility(runtime, alice, "contacts")
    async with system_transaction(runtime.system_engine) as db:
        for table in ALL_TABLES:
            count = (
                await db.execute(select(func.count()).select_from(table).where(table.c.user_id == UUID(alice.user_id)))
            ).scalar_one()
            assert count > 0, f"alice has no row in {table.fullname}: the test would prove nothing"
    return World(alice, bob, carol, mallory, device.json()["id"], status.json()["id"], expired)


async def _alices_rows_seen_by(engine: AsyncEngine, viewer: Persona, alice: Persona) -> dict[str, int]:
    async with user_transaction(engine, UUID(viewer.user_id)) as db:
        return {
            table.fullname: (
                await db.execute(select(func.count()).select_from(table).where(table.c.user_id == UUID(alice.user_id)))
            ).scalar_one()
            for table in ALL_TABLES
        }


def _nothing() -> dict[str, int]:
    return {table.fullname: 0 for table in ALL_TABLES}


def _profile_only() -> dict[str, int]:
    """What someone who may see the profile sees: the shared parts and the live status."""
    return {**_nothing(), **{table.fullname: 1 for table in SHARED_PARTS}, "social.status_updates": 1}


def _is_refused(error: DBAPIError) -> bool:
    return isinstance(error.orig.__cause__, asyncpg.exceptions.InsufficientPrivilegeError)


# Reading, through SQL


@pytest.mark.parametrize(
    ("visibility", "viewer", "expected"),
    [
        ("contacts", "mallory", _nothing),
        ("contacts", "carol", _nothing),
        ("contacts", "bob", _profile_only),
        ("public", "mallory", _profile_only),
        ("public", "carol", _nothing),
        ("private", "bob", _nothing),
    ],
)
async def test_what_each_person_sees_of_alices_rows(app_engine, runtime, world, visibility, viewer, expected):
    await set_visibility(runtime, world.alice, visibility)

    seen = await _alices_rows_seen_by(app_engine, getattr(world, viewer), world.alice)

    assert seen == expected()


async def test_alice_sees_all_her_own_rows_expired_status_included(app_engine, world):
    seen = await _alices_rows_seen_by(app_engine, world.alice, world.alice)

    assert seen["social.status_updates"] == 2
    assert all(count > 0 for count in seen.values())


async def test_mallory_cannot_find_alices_rows_by_id(app_engine, world):
    async with user_transaction(app_engine, UUID(world.mallory.user_id)) as db:
        device = (await db.execute(select(m.devices).where(m.devices.c.id == UUID(world.device_id)))).all()
        expired = (
            await db.execute(select(m.status_updates).where(m.status_updates.c.id == world.expired_status_id))
        ).all()

    assert (device, expired) == ([], [])


async def test_a_contact_does_not_see_an_expired_status(app_engine, world):
    async with user_transaction(app_engine, UUID(world.bob.user_id)) as db:
        ids = (
            (
                await db.execute(
                    select(m.status_updates.c.id).where(m.status_updates.c.user_id == UUID(world.alice.user_id))
                )
            )
            .scalars()
            .all()
        )

    assert ids == [UUID(world.status_id)]


async def test_a_transaction_naming_no_user_sees_nothing(app_engine, world):
    async with app_engine.begin() as db:
        counts = {
            table.fullname: (await db.execute(select(func.count()).select_from(table))).scalar_one()
            for table in ALL_TABLES
        }

    assert counts == _nothing()


# Writing, through SQL


def _rows_naming(user_id: UUID) -> dict[Table, dict]:
    return {
        **{table: {"user_id": user_id} for table in (*SHARED_PARTS, *SENSITIVE_PARTS)},
        m.devices: {"id": uuid7(), "user_id": user_id, "name": "forged", "device_type": "web", "platform": "web"},
        m.status_updates: {"id": uuid7(), "user_id": user_id, "content": "forged"},
        sensitive_data_access: {"user_id": user_id, "table_name": "social.user_health_context", "action": "read"},
    }


@pytest.mark.parametrize("attacker", ["mallory", "bob"])
async def test_nobody_inserts_rows_naming_alice(app_engine, alice, bob, mallory, attacker):
    refused = {}
    persona = {"mallory": mallory, "bob": bob}[attacker]

    for table, values in _rows_naming(UUID(alice.user_id)).items():
        with pytest.raises(DBAPIError) as caught:
            async with user_transaction(app_engine, UUID(persona.user_id)) as db:
                await db.execute(insert(table).values(**values))
        refused[table.fullname] = _is_refused(caught.value)

    assert refused == {table.fullname: True for table in ALL_TABLES}


@pytest.mark.parametrize("attacker", ["mallory", "bob", "carol"])
async def test_nobody_updates_or_deletes_alices_rows(app_engine, runtime, world, attacker):
    alice_id = UUID(world.alice.user_id)
    await set_visibility(runtime, world.alice, "public")
    touched = {}

    async with user_transaction(app_engine, UUID(getattr(world, attacker).user_id)) as db:
        for table in (*SHARED_PARTS, *SENSITIVE_PARTS, m.devices):
            changed = await db.execute(update(table).where(table.c.user_id == alice_id).values(updated_at=func.now()))
            touched[f"update {table.fullname}"] = changed.rowcount
        for table in (*SHARED_PARTS, *SENSITIVE_PARTS, m.devices, m.status_updates):
            gone = await db.execute(delete(table).where(table.c.user_id == alice_id))
            touched[f"delete {table.fullname}"] = gone.rowcount

    assert touched == dict.fromkeys(touched, 0)
    assert await _alices_rows_seen_by(app_engine, world.alice, world.alice) == {
        **{table.fullname: 1 for table in (*SHARED_PARTS, *SENSITIVE_PARTS, m.devices)},
        "social.status_updates": 2,
        "audit.sensitive_data_access": 3,
    }


@pytest.mark.parametrize("table", [m.user_demographics, m.user_health_context, m.devices], ids=lambda t: t.name)
async def test_mallory_cannot_hand_her_rows_to_alice(app_engine, client, alice, mallory, table):
    await client.put("/v1/profile/parts/demographics", headers=mallory.headers, json={"city": "Paris"})
    await client.put("/v1/profile/parts/health", headers=mallory.headers, json={"treatment": "none"})
    await client.post(
        "/v1/devices", headers=mallory.headers, json={"name": "laptop", "device_type": "desktop", "platform": "linux"}
    )

    with pytest.raises(DBAPIError) as caught:
        async with user_transaction(app_engine, UUID(mallory.user_id)) as db:
            await db.execute(
                update(table).where(table.c.user_id == UUID(mallory.user_id)).values(user_id=UUID(alice.user_id))
            )

    assert _is_refused(caught.value)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE social.status_updates SET expires_at = now() + interval '1 year'",
        "UPDATE audit.sensitive_data_access SET fields = '{}'",
        "DELETE FROM audit.sensitive_data_access",
    ],
)
async def test_statuses_and_the_access_record_cannot_be_rewritten(app_engine, world, statement):
    with pytest.raises(DBAPIError) as caught:
        async with user_transaction(app_engine, UUID(world.alice.user_id)) as db:
            await db.execute(text(statement))

    assert _is_refused(caught.value)


async def test_mallory_cannot_forge_records_of_access_to_alices_data(app_engine, runtime, world):
    with pytest.raises(DBAPIError) as caught:
        async with user_transaction(app_engine, UUID(world.mallory.user_id)) as db:
            await db.execute(
                text("SELECT audit.record_sensitive_access(:alice, 'social.user_health_context', 'read')"),
                {"alice": UUID(world.alice.user_id)},
            )

    assert _is_refused(caught.value)


async def test_no_user_may_record_access(app_engine, world):
    with pytest.raises(DBAPIError) as caught:
        async with app_engine.begin() as db:
            await db.execute(
                text("SELECT audit.record_sensitive_access(:alice, 'social.user_health_context', 'read')"),
                {"alice": UUID(world.alice.user_id)},
            )

    assert _is_refused(caught.value)


# Through the API


# A stranger when alice shows her profile to contacts; carol, blocked, whatever alice shows.
UNWELCOME = [("contacts", "mallory"), ("contacts", "carol"), ("public", "carol")]


@pytest.mark.parametrize(("visibility", "attacker"), UNWELCOME)
@pytest.mark.parametrize("part", ["demographics", "employment", "background"])
async def test_a_stranger_or_a_blocked_contact_reads_none_of_alices_shared_parts(
    client, runtime, world, visibility, attacker, part
):
    await set_visibility(runtime, world.alice, visibility)

    response = await client.get(
        f"/v1/users/{world.alice.user_id}/parts/{part}", headers=getattr(world, attacker).headers
    )

    assert response.status_code in (200, 404)
    if response.status_code == 200:
        assert {field: response.json()[field] for field in BODIES[part]} == dict.fromkeys(BODIES[part]) | (
            {"languages": []} if part == "background" else {}
        )


async def test_a_contact_reads_alices_shared_parts(client, world):
    response = await client.get(f"/v1/users/{world.alice.user_id}/parts/demographics", headers=world.bob.headers)

    assert response.json()["preferred_name"] == "Ali"


@pytest.mark.parametrize("attacker", ["mallory", "carol", "bob"])
@pytest.mark.parametrize("part", ["health", "financials"])
async def test_nobody_but_alice_reads_her_sensitive_parts(client, runtime, world, attacker, part):
    response = await client.get(
        f"/v1/users/{world.alice.user_id}/parts/{part}", headers=getattr(world, attacker).headers
    )
    own = await client.get(f"/v1/profile/parts/{part}", headers=getattr(world, attacker).headers)

    assert response.status_code == 404
    assert own.json()["user_id"] == getattr(world, attacker).user_id
    assert "Anxiety" not in response.text + own.text and "Student loan" not in response.text + own.text


@pytest.mark.parametrize(("visibility", "attacker"), UNWELCOME)
async def test_a_stranger_or_a_blocked_contact_sees_none_of_alices_statuses(
    client, runtime, world, visibility, attacker
):
    await set_visibility(runtime, world.alice, visibility)

    response = await client.get(f"/v1/users/{world.alice.user_id}/statuses", headers=getattr(world, attacker).headers)

    assert response.status_code in (200, 404)
    if response.status_code == 200:
        assert response.json()["items"] == []


@pytest.mark.parametrize("attacker", ["mallory", "carol", "bob"])
async def test_nobody_deletes_alices_status_or_touches_her_device(client, world, attacker):
    headers = getattr(world, attacker).headers

    answers = {
        "delete status": await client.delete(f"/v1/statuses/{world.status_id}", headers=headers),
        "delete expired status": await client.delete(f"/v1/statuses/{world.expired_status_id}", headers=headers),
        "get device": await client.get(f"/v1/devices/{world.device_id}", headers=headers),
        "delete device": await client.delete(f"/v1/devices/{world.device_id}", headers=headers),
    }

    assert {name: problem_type(answer) for name, answer in answers.items()} == {
        "delete status": "status-not-found",
        "delete expired status": "status-not-found",
        "get device": "device-not-found",
        "delete device": "device-not-found",
    }
    assert (await client.get(f"/v1/devices/{world.device_id}", headers=world.alice.headers)).status_code == 200


@pytest.mark.parametrize("attacker", ["mallory", "carol", "bob"])
async def test_nobody_lists_alices_devices_statuses_or_access_record(client, world, attacker):
    headers = getattr(world, attacker).headers

    lists = {
        path: (await client.get(path, headers=headers)).json()["items"]
        for path in ("/v1/devices", "/v1/statuses/me?include_expired=true", "/v1/profile/sensitive-access")
    }

    assert lists == {path: [] for path in lists}
