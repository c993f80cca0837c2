"""Alice's family details, shared tasks and her shared room's topics, attacked: through the
API by mallory (a stranger) and bob (the other parent, who shares the room but never her
contacts' details), and through SQL as `rapport_app`, where PostgreSQL itself must refuse
them whatever bug a query might have. A transaction that names no user sees nothing.

Tables: coparenting.child_details, coparenting.coparent_details, coparenting.tasks,
coparenting.task_people, coparenting.topic_rooms, coparenting.topic_suggestions,
coparenting.topic_cursor.

No test here changes the world: every attack is refused or changes no row (the one API key
made, alice's, is read by no other test). The world is built once for the module, in its
database emptied once, and the database is not emptied between the tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from rapport.kernel.db import create_engine, system_transaction, user_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime
from rapport.modules.coparenting import models_family as m
from rapport.modules.coparenting import service
from tests.messaging.support import make_conversation, send
from tests.module_scope import empty_database, module_personas
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

TABLES = [
    m.child_details,
    m.coparent_details,
    m.tasks,
    m.task_people,
    m.topic_rooms,
    m.topic_suggestions,
]


@dataclass
class World:
    alice: Persona
    bob: Persona
    mallory: Persona
    room: UUID
    child: str
    coparent: str
    own_task: str
    shared_task: str
    suggestion: str


@pytest.fixture
def database(module_database: DatabaseUrls) -> DatabaseUrls:
    """The module's database as the world left it: not emptied before each test."""
    return module_database


@pytest.fixture(scope="module")
async def world(module_app: FastAPI, module_database: DatabaseUrls) -> AsyncIterator[World]:
    """The world, built once through the module's app."""
    await empty_database(module_database)
    runtime: Runtime = module_app.state.runtime
    transport = httpx.ASGITransport(app=module_app, raise_app_exceptions=False, client=("203.0.113.7", 50000))
    app_engine = create_engine(module_database.app, pool_size=2)
    try:
        personas = await module_personas(module_app, "alice", "bob", "mallory")
        async with httpx.AsyncClient(transport=transport, base_url="http://rapport.test") as client:
            built = await build_world(client, runtime, app_engine, *personas)
            # What the world set off (notifications, jobs) is done before any test looks.
            async with asyncio.timeout(10):
                await module_app.state.notifications.catch_up()
                await module_app.state.worker.wait_idle()
    finally:
        await app_engine.dispose()
    yield built


async def build_world(client, runtime, app_engine, alice, bob, mallory) -> World:
    """Alice with a row in every table: a child and a co-parent among her contacts with
    their details, a task of her own and one in her room with bob (about her child), the
    room's topics organised with one suggestion."""
    room = await make_conversation(app_engine, alice, bob, type="direct")
    child = (
        await client.post(
            "/v1/contacts", headers=alice.headers, json={"first_name": "Emma", "relationship": "My Child"}
        )
    ).json()["id"]
    coparent = (
        await client.post(
            "/v1/contacts", headers=alice.headers, json={"first_name": "Bob", "relationship": "My Co-Parent"}
        )
    ).json()["id"]
    saved = await client.put(
        f"/v1/coparenting/contacts/{child}/child-details", headers=alice.headers, json={"allergies": "Peanuts"}
    )
    assert saved.status_code == 200, saved.text
    saved = await client.put(
        f"/v1/coparenting/contacts/{coparent}/coparent-details",
        headers=alice.headers,
        json={"legal_notes": "Court date"},
    )
    assert saved.status_code == 200, saved.text
    own = await client.post("/v1/coparenting/tasks", headers=alice.headers, json={"title": "Therapy notes"})
    shared = await client.post(
        "/v1/coparenting/tasks",
        headers=alice.headers,
        json={"title": "School shoes", "conversation_id": str(room), "related_contact_ids": [child]},
    )
    assert (await client.put(f"/v1/coparenting/rooms/{room}/topics", headers=alice.headers)).status_code == 201
    await send(client, alice, room, "The teacher wants to see us about homework")
    # The server's own organiser may make the suggestion first; either way there is one.
    await service.organise_all(runtime.system_engine)
    async with system_transaction(runtime.system_engine) as db:
        suggestion = (await db.execute(select(m.topic_suggestions.c.id))).scalar_one()
        for table in TABLES:
            assert (await db.execute(select(func.count()).select_from(table))).scalar_one() > 0, table.fullname
    return World(alice, bob, mallory, room, child, coparent, own.json()["id"], shared.json()["id"], str(suggestion))


async def _counts(app_engine, viewer: Persona) -> dict[str, int]:
    async with user_transaction(app_engine, UUID(viewer.user_id)) as db:
        return {
            table.fullname: (await db.execute(select(func.count()).select_from(table))).scalar_one() for table in TABLES
        }


def _is_refused(error: DBAPIError) -> bool:
    return isinstance(error.orig.__cause__, asyncpg.exceptions.InsufficientPrivilegeError)


# Reading, through SQL


async def test_a_stranger_sees_none_of_alices_rows(app_engine, world):
    assert await _counts(app_engine, world.mallory) == {table.fullname: 0 for table in TABLES}


async def test_the_other_parent_sees_the_room_but_never_her_contacts_details(app_engine, world):
    seen = await _counts(app_engine, world.bob)

    assert seen == {
        "coparenting.child_details": 0,
        "coparenting.coparent_details": 0,
        "coparenting.tasks": 1,
        "coparenting.task_people": 1,
        "coparenting.topic_rooms": 1,
        "coparenting.topic_suggestions": 1,
    }


async def test_a_transaction_naming_no_user_sees_nothing(app_engine, world):
    async with app_engine.begin() as db:
        counts = {
            table.fullname: (await db.execute(select(func.count()).select_from(table))).scalar_one() for table in TABLES
        }

    assert counts == {table.fullname: 0 for table in TABLES}


# Writing, through SQL


@pytest.mark.parametrize(
    ("statement", "key"),
    [
        ("UPDATE coparenting.child_details SET allergies = 'none' WHERE contact_id = :id", "child"),
        ("DELETE FROM coparenting.child_details WHERE contact_id = :id", "child"),
        ("UPDATE coparenting.coparent_details SET legal_notes = 'x' WHERE contact_id = :id", "coparent"),
        ("DELETE FROM coparenting.coparent_details WHERE contact_id = :id", "coparent"),
        ("UPDATE coparenting.tasks SET title = 'Mine' WHERE id = :id", "own_task"),
        ("DELETE FROM coparenting.tasks WHERE id = :id", "shared_task"),
        ("DELETE FROM coparenting.task_people WHERE task_id = :id", "shared_task"),
        ("DELETE FROM coparenting.topic_rooms WHERE conversation_id = :id", "room"),
        ("UPDATE coparenting.topic_suggestions SET state = 'dismissed' WHERE id = :id", "suggestion"),
    ],
)
async def test_mallory_changes_nothing_of_alices(app_engine, world, statement, key):
    async with user_transaction(app_engine, UUID(world.mallory.user_id)) as db:
        changed = await db.execute(text(statement), {"id": UUID(str(getattr(world, key)))})

    assert changed.rowcount == 0


async def test_the_other_parent_cannot_touch_her_own_task_or_her_details(app_engine, world):
    async with user_transaction(app_engine, UUID(world.bob.user_id)) as db:
        task = await db.execute(text("DELETE FROM coparenting.tasks WHERE id = :id"), {"id": UUID(world.own_task)})
        details = await db.execute(
            text("UPDATE coparenting.child_details SET allergies = NULL WHERE contact_id = :id"),
            {"id": UUID(world.child)},
        )

    assert (task.rowcount, details.rowcount) == (0, 0)


@pytest.mark.parametrize(
    "statement",
    [
        # Details about her contact, in mallory's name or in hers.
        "INSERT INTO coparenting.child_details (contact_id, user_id) VALUES (:child, :mallory)",
        "INSERT INTO coparenting.coparent_details (contact_id, user_id) VALUES (:coparent, :alice)",
        # A task in a room mallory takes no part in, or in alice's name.
        "INSERT INTO coparenting.tasks (id, user_id, conversation_id, title) VALUES (:new, :mallory, :room, 'x')",
        "INSERT INTO coparenting.tasks (id, user_id, title) VALUES (:new, :alice, 'x')",
        # Her contact on alice's shared task, or a person on a task mallory cannot see.
        "INSERT INTO coparenting.task_people (task_id, contact_id, user_id, name) VALUES (:task, :child, :alice, 'x')",
        # Organising alice's room, or forging a suggestion in it.
        "INSERT INTO coparenting.topic_rooms (conversation_id, enabled_by) VALUES (:room, :mallory)",
        "INSERT INTO coparenting.topic_suggestions (id, conversation_id, message_id, sender_id, kind, title,"
        " score, state) VALUES (:new, :room, :new, :mallory, 'new', 'x', 1, 'pending')",
        # The organiser's cursor is system work's alone.
        "UPDATE coparenting.topic_cursor SET position = 0",
        "SELECT * FROM coparenting.topic_cursor",
    ],
)
async def test_mallory_writes_nothing_in_alices_name_or_room(app_engine, world, statement):
    params = {
        "child": UUID(world.child),
        "coparent": UUID(world.coparent),
        "room": world.room,
        "task": UUID(world.shared_task),
        "alice": UUID(world.alice.user_id),
        "mallory": UUID(world.mallory.user_id),
        "new": uuid7(),
    }
    with pytest.raises(DBAPIError) as refused:
        async with user_transaction(app_engine, UUID(world.mallory.user_id)) as db:
            await db.execute(text(statement), {key: value for key, value in params.items() if f":{key}" in statement})

    assert _is_refused(refused.value)


async def test_even_the_other_parent_cannot_forge_a_suggestion(app_engine, world):
    with pytest.raises(DBAPIError) as refused:
        async with user_transaction(app_engine, UUID(world.bob.user_id)) as db:
            await db.execute(
                text(
                    "INSERT INTO coparenting.topic_suggestions (id, conversation_id, message_id, sender_id, kind,"
                    " title, score, state) VALUES (:id, :room, :id, :bob, 'new', 'x', 1, 'pending')"
                ),
                {"id": uuid7(), "room": world.room, "bob": UUID(world.bob.user_id)},
            )

    assert _is_refused(refused.value)


# Through the API


@pytest.mark.parametrize("persona", ["bob", "mallory"])
async def test_nobody_else_reads_or_writes_her_contacts_details(client, world, persona):
    other = getattr(world, persona)
    for path in (f"{world.child}/child-details", f"{world.coparent}/coparent-details"):
        url = f"/v1/coparenting/contacts/{path}"
        for response in (
            await client.get(url, headers=other.headers),
            await client.put(url, headers=other.headers, json={}),
            await client.delete(url, headers=other.headers),
        ):
            assert response.status_code == 404
            assert problem_type(response).endswith("contact-not-found")


async def test_details_need_a_signed_in_session(client, world):
    key = await client.post("/v1/auth/api-keys", headers=world.alice.headers, json={"name": "script"})
    assert key.status_code == 201, key.text
    headers = {"Authorization": f"Bearer {key.json()['key']}"}

    refused = await client.get(f"/v1/coparenting/contacts/{world.child}/child-details", headers=headers)

    assert refused.status_code == 403


async def test_a_stranger_reaches_no_task_or_suggestion(client, world):
    mallory = world.mallory.headers
    base = f"/v1/coparenting/rooms/{world.room}/topic-suggestions"
    for response in (
        await client.get(f"/v1/coparenting/tasks/{world.own_task}", headers=mallory),
        await client.patch(f"/v1/coparenting/tasks/{world.shared_task}", headers=mallory, json={"title": "x"}),
        await client.put(f"/v1/coparenting/tasks/{world.shared_task}/people/{world.child}", headers=mallory),
        await client.get(base, headers=mallory),
        await client.post(f"{base}/{world.suggestion}/accept", headers=mallory),
        await client.post(f"{base}/{world.suggestion}/dismiss", headers=mallory),
        await client.delete(f"/v1/coparenting/rooms/{world.room}/topics", headers=mallory),
    ):
        assert response.status_code == 404, response.text
    assert (await client.get("/v1/coparenting/tasks", headers=mallory)).json()["items"] == []
