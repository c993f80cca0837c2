"""Alice's stories, tags, habits, garden and profile extras, attacked: through the API by
mallory (a stranger) and bob (her contact, who reads her friends-only stories and nothing
more private), and through SQL as `rapport_app`, where PostgreSQL itself must refuse them
whatever bug a query might have. A transaction that names no user sees nothing.

Tables: community.tags, community.user_tags, community.stories, community.story_tags,
community.habits, community.habit_checkins, community.gardens, community.profile_extras."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from rapport.kernel.db import user_transaction
from rapport.kernel.provisioning import DatabaseUrls
from rapport.modules.community import models as m
from tests.module_scope import build_once
from tests.support import Persona, befriend, problem_type

pytestmark = pytest.mark.module_database

TABLES = [m.tags, m.user_tags, m.stories, m.story_tags, m.habits, m.habit_checkins, m.gardens, m.profile_extras]


@dataclass
class World:
    alice: Persona
    bob: Persona
    mallory: Persona
    private: str
    friends: str
    habit: str


@pytest.fixture(scope="module")
async def module_world(module_app: FastAPI, module_database: DatabaseUrls) -> World:
    """Alice with a row in every table: a private story tagged "diagnosis", a friends-only
    one tagged "family" (bob is her contact), her own tag "secret-hobby", a habit checked
    in, a garden and her journaling frequency. Built once: each test's reset puts it back
    as it was (module_scope.build_once)."""
    async with build_once(module_app, module_database) as built:
        alice, bob, mallory = await built.personas("alice", "bob", "mallory")
        return await _build(built.client, alice, bob, mallory)


@pytest.fixture
def world(module_world: World, database: DatabaseUrls) -> World:
    """The module's world, as built: the test's database was reset to it."""
    return module_world


async def _build(client, alice, bob, mallory) -> World:
    await befriend(client, alice, bob)
    h = alice.headers
    private = await client.post(
        "/v1/stories", headers=h, json={"title": "Hidden", "content": "Only mine", "tags": ["diagnosis"]}
    )
    friends = await client.post(
        "/v1/stories",
        headers=h,
        json={"title": "Close", "content": "For friends", "visibility": "friends", "tags": ["family"]},
    )
    habit = await client.post("/v1/habits", headers=h, json={"name": "Therapy exercises"})
    for response in (
        private,
        friends,
        habit,
        await client.put("/v1/me/tags", headers=h, json={"tags": ["secret-hobby"]}),
        await client.post(f"/v1/habits/{habit.json()['id']}/checkins", headers=h, json={"day": "2024-01-01"}),
        await client.put("/v1/garden", headers=h, json={"name": "Quiet garden"}),
        await client.put("/v1/me/profile-extras", headers=h, json={"journaling_frequency": 6}),
    ):
        assert response.is_success, response.text
    return World(alice, bob, mallory, private.json()["id"], friends.json()["id"], habit.json()["id"])


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


async def test_her_contact_sees_her_friends_only_story_and_its_tag_and_nothing_else(app_engine, world):
    assert await _counts(app_engine, world.bob) == {
        "community.tags": 1,
        "community.user_tags": 0,
        "community.stories": 1,
        "community.story_tags": 1,
        "community.habits": 0,
        "community.habit_checkins": 0,
        "community.gardens": 0,
        "community.profile_extras": 0,
    }


async def test_a_transaction_naming_no_user_sees_nothing(app_engine, world):
    async with app_engine.begin() as db:
        counts = [(await db.execute(select(func.count()).select_from(table))).scalar_one() for table in TABLES]

    assert counts == [0] * len(TABLES)


# Reading, through the API


async def test_private_and_friends_only_stories_are_not_found_by_others(client, world):
    for story, outsiders in ((world.private, (world.bob, world.mallory)), (world.friends, (world.mallory,))):
        for persona in outsiders:
            got = await client.get(f"/v1/stories/{story}", headers=persona.headers)
            changed = await client.patch(f"/v1/stories/{story}", headers=persona.headers, json={"title": "x"})
            removed = await client.delete(f"/v1/stories/{story}", headers=persona.headers)
            for response in (got, changed, removed):
                assert response.status_code == 404 and problem_type(response).endswith("story-not-found")


async def test_the_feed_and_the_vocabulary_tell_others_nothing_of_her_private_tags(client, world):
    for persona, visible in ((world.mallory, []), (world.bob, ["family"])):
        assert (await client.get("/v1/tags", headers=persona.headers)).json()["items"] == visible
        for tag in ("diagnosis", "family", "secret-hobby"):
            found = await client.get("/v1/stories/feed", headers=persona.headers, params={"tag": tag})
            assert [item["tags"] for item in found.json()["items"]] == ([["family"]] if tag in visible else [])
        searched = await client.get("/v1/stories/feed", headers=persona.headers, params={"q": "hidden"})
        assert searched.json()["items"] == []
        assert (await client.get("/v1/me/tags", headers=persona.headers)).json() == {"tags": []}


async def test_using_the_same_tag_reveals_nothing_of_hers(client, world):
    made = await client.post(
        "/v1/stories", headers=world.mallory.headers, json={"title": "Mine", "content": "x", "tags": ["Diagnosis"]}
    )

    assert made.json()["tags"] == ["diagnosis"]
    assert (await client.get("/v1/tags", headers=world.mallory.headers)).json()["items"] == ["diagnosis"]
    found = await client.get("/v1/stories/feed", headers=world.mallory.headers, params={"tag": "diagnosis"})
    assert [item["id"] for item in found.json()["items"]] == [made.json()["id"]]


async def test_a_block_hides_even_public_stories(client, world):
    public = await client.post(
        "/v1/stories", headers=world.alice.headers, json={"title": "Open", "content": "x", "visibility": "public"}
    )
    assert (await client.get(f"/v1/stories/{public.json()['id']}", headers=world.mallory.headers)).status_code == 200

    assert (await client.put(f"/v1/blocks/{world.mallory.user_id}", headers=world.alice.headers)).is_success

    assert (await client.get(f"/v1/stories/{public.json()['id']}", headers=world.mallory.headers)).status_code == 404


async def test_her_habits_and_garden_are_hers_alone(client, world):
    url = f"/v1/habits/{world.habit}"
    for response in (
        await client.get(url, headers=world.bob.headers),
        await client.patch(url, headers=world.mallory.headers, json={"name": "Mine"}),
        await client.delete(url, headers=world.mallory.headers),
        await client.post(f"{url}/checkins", headers=world.mallory.headers, json={}),
        await client.get(f"{url}/checkins", headers=world.mallory.headers),
        await client.delete(f"{url}/checkins/2024-01-01", headers=world.mallory.headers),
    ):
        assert response.status_code == 404 and problem_type(response).endswith("habit-not-found")
    assert (await client.get("/v1/habits", headers=world.mallory.headers)).json()["items"] == []
    assert (await client.get("/v1/garden", headers=world.mallory.headers)).status_code == 404
    extras = await client.get("/v1/me/profile-extras", headers=world.mallory.headers)
    assert extras.json()["journaling_frequency"] is None


# Writing, through SQL


@pytest.mark.parametrize(
    ("statement", "key"),
    [
        (
            "INSERT INTO community.stories (id, user_id, title, content) VALUES (gen_random_uuid(), :alice, 'x', 'x')",
            "stories",
        ),
        ("INSERT INTO community.story_tags (story_id, tag) VALUES (:friends, 'family')", "story_tags"),
        ("INSERT INTO community.user_tags (user_id, tag) VALUES (:alice, 'family')", "user_tags"),
        ("INSERT INTO community.tags (name, created_by) VALUES ('forged', :alice)", "tags"),
        (
            "INSERT INTO community.habit_checkins (habit_id, day, user_id) VALUES (:habit, '2024-02-02', :mallory)",
            "habit_checkins",
        ),
        (
            "INSERT INTO community.habits (id, user_id, name) VALUES (gen_random_uuid(), :alice, 'Forged')",
            "habits",
        ),
        ("INSERT INTO community.gardens (id, user_id, name) VALUES (gen_random_uuid(), :alice, 'x')", "gardens"),
        (
            "INSERT INTO community.profile_extras (user_id, journaling_frequency) VALUES (:alice, 1)",
            "profile_extras",
        ),
    ],
)
async def test_the_stranger_cannot_write_in_her_name(app_engine, world, statement, key):
    params = {"alice": UUID(world.alice.user_id), "mallory": UUID(world.mallory.user_id)}
    params |= {"friends": UUID(world.friends), "habit": UUID(world.habit)}
    with pytest.raises(DBAPIError) as refused:
        async with user_transaction(app_engine, UUID(world.mallory.user_id)) as db:
            await db.execute(text(statement), {k: v for k, v in params.items() if f":{k}" in statement})

    assert _is_refused(refused.value), key


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE community.stories SET title = 'x', visibility = 'public'",
        "DELETE FROM community.stories",
        "DELETE FROM community.story_tags",
        "DELETE FROM community.tags",
        "DELETE FROM community.user_tags",
        "UPDATE community.habits SET name = 'x'",
        "DELETE FROM community.habit_checkins",
        "UPDATE community.gardens SET name = 'x'",
        "UPDATE community.profile_extras SET journaling_frequency = 0",
    ],
)
async def test_her_contact_changes_and_removes_nothing_of_hers(app_engine, world, statement):
    async with user_transaction(app_engine, UUID(world.bob.user_id)) as db:
        changed = await db.execute(text(statement))

    assert changed.rowcount == 0
    assert await _counts(app_engine, world.alice) == {
        "community.tags": 3,
        "community.user_tags": 1,
        "community.stories": 2,
        "community.story_tags": 2,
        "community.habits": 1,
        "community.habit_checkins": 1,
        "community.gardens": 1,
        "community.profile_extras": 1,
    }


async def test_a_story_written_over_sql_cannot_forge_its_cached_tags(app_engine, world):
    async with user_transaction(app_engine, UUID(world.alice.user_id)) as db:
        await db.execute(
            text("UPDATE community.stories SET tags_cached = '{forged}' WHERE id = :id"), {"id": UUID(world.friends)}
        )
        cached = (
            await db.execute(
                text("SELECT tags_cached FROM community.stories WHERE id = :id"), {"id": UUID(world.friends)}
            )
        ).scalar_one()

    assert cached == ["family"]
