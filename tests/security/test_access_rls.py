"""Permissions, attacked. Alice and carol hold roles; mallory holds none and tries to read
their grants, to grant herself a role, to widen a role she could be given, and to learn
through access.has_permission what anyone else holds: through the API, and through SQL as
`rapport_app` with her own context or none, where PostgreSQL itself must refuse.

Tables: access.domains, access.permissions, access.roles, access.role_permissions,
access.grants."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from rapport.access import models as m
from rapport.kernel.db import user_transaction
from rapport.kernel.provisioning import DatabaseUrls
from tests.access.support import admin_persona, grant  # noqa: F401 (the admin fixture)
from tests.messaging.support import make_conversation
from tests.module_scope import build_once
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

CATALOGUE = [m.domains, m.permissions, m.roles, m.role_permissions]


@dataclass
class World:
    alice: Persona
    carol: Persona
    mallory: Persona
    room: UUID
    alices_grant: UUID


@pytest.fixture(scope="module")
async def module_world(module_app: FastAPI, module_database: DatabaseUrls) -> World:
    """Alice develops bots; carol is a second-level agent and supervises alice and bob's
    room. Built once: each test's reset puts it back as it was (module_scope.build_once)."""
    async with build_once(module_app, module_database) as built:
        alice, bob, carol, mallory = await built.personas("alice", "bob", "carol", "mallory")
        room = await make_conversation(built.app_engine, alice, bob)
        alices_grant = await grant(built.runtime, alice, "bot-developer")
        await grant(built.runtime, carol, "support-t2")
        await grant(built.runtime, carol, "supervisor", room)
        return World(alice, carol, mallory, room, alices_grant)


@pytest.fixture
def world(module_world: World, database: DatabaseUrls) -> World:
    """The module's world, as built: the test's database was reset to it."""
    return module_world


def _is_refused(error: DBAPIError) -> bool:
    return isinstance(error.orig.__cause__, asyncpg.exceptions.InsufficientPrivilegeError)


async def _count(app_engine, viewer: Persona | None, table) -> int:
    if viewer is None:
        async with app_engine.begin() as db:
            return (await db.execute(select(func.count()).select_from(table))).scalar_one()
    async with user_transaction(app_engine, UUID(viewer.user_id)) as db:
        return (await db.execute(select(func.count()).select_from(table))).scalar_one()


# Reading, through SQL


async def test_a_person_reads_their_own_grants_and_nobody_elses(app_engine, world):
    assert await _count(app_engine, world.mallory, m.grants) == 0
    assert await _count(app_engine, world.alice, m.grants) == 1
    async with user_transaction(app_engine, UUID(world.mallory.user_id)) as db:
        found = await db.execute(select(m.grants).where(m.grants.c.user_id == UUID(world.alice.user_id)))
        assert found.all() == []


async def test_the_catalogue_is_read_by_anyone_signed_in_and_by_no_one_else(app_engine, world):
    for table in CATALOGUE:
        assert await _count(app_engine, world.mallory, table) > 0, table.fullname
        assert await _count(app_engine, None, table) == 0, table.fullname
    assert await _count(app_engine, None, m.grants) == 0


# The check answers for the caller alone


async def test_has_permission_takes_no_person(app_engine, world):
    async with app_engine.begin() as db:
        arguments = await db.execute(
            text("SELECT pg_get_function_identity_arguments('access.has_permission(text, uuid)'::regprocedure)")
        )
        assert arguments.scalar_one() == "permission text, conversation uuid"


async def test_has_permission_answers_for_nobody_else(app_engine, world):
    checks = {
        "SELECT access.has_permission('chat:robot:manage')": False,
        "SELECT access.has_permission('support:queue:t2')": False,
        "SELECT access.has_permission('supervisor:chat:observe', :room)": False,
    }
    async with user_transaction(app_engine, UUID(world.mallory.user_id)) as db:
        for statement, expected in checks.items():
            assert (await db.execute(text(statement), {"room": world.room})).scalar_one() is expected
    async with app_engine.begin() as db:
        for statement in checks:
            assert (await db.execute(text(statement), {"room": world.room})).scalar_one() is False


async def test_switching_on_system_work_from_the_server_role_gains_nothing(app_engine, world):
    async with user_transaction(app_engine, UUID(world.mallory.user_id)) as db:
        await db.execute(text("SELECT set_config('rapport.system', 'on', true)"))
        held = await db.execute(text("SELECT access.has_permission('access:admin:manage')"))
        assert held.scalar_one() is False
        holders = await db.execute(text("SELECT access.holders_of('chat:robot:manage')"))
        assert holders.all() == []


async def test_holders_of_shows_a_person_their_own_grants_only(app_engine, world):
    async with user_transaction(app_engine, UUID(world.carol.user_id)) as db:
        assert (await db.execute(text("SELECT access.holders_of('chat:robot:manage')"))).all() == []
        mine = await db.execute(text("SELECT access.holders_of('support:queue:t1')"))
        assert mine.scalars().all() == [UUID(world.carol.user_id)]


# Writing, through SQL


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO access.grants (id, user_id, role_id) SELECT gen_random_uuid(), :mallory, id"
        " FROM access.roles WHERE name = 'support-manager'",
        "INSERT INTO access.roles (id, name) VALUES (gen_random_uuid(), 'mine')",
        "INSERT INTO access.role_permissions (role_id, permission) SELECT id, 'access:admin:manage'"
        " FROM access.roles WHERE name = 'bot-developer'",
        "SELECT audit.record_admin_action('grant_created', 'mine', :mallory)",
    ],
)
async def test_she_cannot_grant_herself_nor_widen_a_role(app_engine, world, statement):
    with pytest.raises(DBAPIError) as refused:
        async with user_transaction(app_engine, UUID(world.mallory.user_id)) as db:
            await db.execute(text(statement), {"mallory": UUID(world.mallory.user_id)})

    assert _is_refused(refused.value)


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM access.grants WHERE user_id = :alice",
        "DELETE FROM access.role_permissions",
        "DELETE FROM access.roles WHERE NOT is_builtin",
        "UPDATE access.roles SET description = 'mine'",
    ],
)
async def test_she_changes_nothing_of_theirs(app_engine, world, statement):
    async with user_transaction(app_engine, UUID(world.mallory.user_id)) as db:
        changed = await db.execute(text(statement), {"alice": UUID(world.alice.user_id)})
        assert changed.rowcount == 0
    assert await _count(app_engine, world.alice, m.grants) == 1


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE access.grants SET user_id = :mallory",
        "UPDATE access.roles SET is_builtin = false",
        "INSERT INTO access.permissions (name, domain, action, description)"
        " VALUES ('chat:room:own', 'chat:room', 'own', 'x')",
        "DELETE FROM access.domains",
    ],
)
async def test_what_the_server_may_never_write_is_not_granted_to_it(app_engine, world, statement):
    with pytest.raises(DBAPIError) as refused:
        async with user_transaction(app_engine, UUID(world.mallory.user_id)) as db:
            await db.execute(text(statement), {"mallory": UUID(world.mallory.user_id)})

    assert _is_refused(refused.value)


# Through the API


async def test_she_cannot_list_revoke_or_grant_through_the_api(client, world):
    h = world.mallory.headers
    for response in (
        await client.get("/v1/admin/grants", headers=h, params={"user_id": world.alice.user_id}),
        await client.delete(f"/v1/admin/grants/{world.alices_grant}", headers=h),
        await client.post("/v1/admin/grants", headers=h, json={"user_id": world.mallory.user_id, "role": "supervisor"}),
    ):
        assert response.status_code == 403 and problem_type(response) == "permission-required"
    assert (await client.get("/v1/permissions/me", headers=h)).json() == {"is_admin": False, "permissions": []}
    alices = (await client.get("/v1/permissions/me", headers=world.alice.headers)).json()["permissions"]
    assert [item["permission"] for item in alices] == ["chat:robot:manage"]


async def test_not_even_an_administrator_renames_a_built_in_role_through_sql(app_engine, admin, world):
    with pytest.raises(DBAPIError) as refused:
        async with user_transaction(app_engine, UUID(admin.user_id)) as db:
            await db.execute(text("UPDATE access.roles SET name = 'tier-one' WHERE name = 'support-t1'"))

    assert isinstance(refused.value.orig.__cause__, asyncpg.exceptions.CheckViolationError)
