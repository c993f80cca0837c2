"""Alice's dating profile, photos, assessments, feature vector and similar-people cache,
attacked: through the API by mallory (a stranger with a profile of her own), and through
SQL as `rapport_app`, where PostgreSQL itself must refuse whatever a query might try. A
transaction that names no user sees nothing. Others learn a profile only as
matching.profile_card shows it: an age and a distance, never the birth date, the
coordinates, the city or the country.

Tables: matching.profiles, matching.assessments,
matching.user_features, matching.match_results."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.provisioning import DatabaseUrls
from rapport.modules.matching import models_people as m
from rapport.modules.matching import service
from tests.media.collections_support import block, image
from tests.module_scope import build_once
from tests.support import Persona

pytestmark = pytest.mark.module_database

TABLES = [m.profiles, m.assessments, m.user_features, m.match_results]
ALICE_PROFILE = {
    "birth_date": "1991-03-14",
    "gender": "woman",
    "bio": "Secret garden",
    "interests": ["jazz", "hiking"],
    "latitude": 48.8566,
    "longitude": 2.3522,
    "city": "Paris",
    "country": "France",
}


@dataclass
class World:
    alice: Persona
    bob: Persona
    mallory: Persona
    photo: str
    assessment: str


@pytest.fixture(scope="module")
async def module_world(module_app: FastAPI, module_database: DatabaseUrls) -> World:
    """Alice with a row in every table (profile with a photo, an assessment, her vector, and
    her similar people, bob among them); mallory and bob with profiles of their own. Built
    once: each test's reset puts it back as it was (module_scope.build_once)."""
    async with build_once(module_app, module_database) as built:
        alice, bob, mallory = await built.personas("alice", "bob", "mallory")
        return await _build(built.client, alice, bob, mallory)


@pytest.fixture
def world(module_world: World, database: DatabaseUrls) -> World:
    """The module's world, as built: the test's database was reset to it."""
    return module_world


async def _build(client, alice, bob, mallory) -> World:
    assert (await client.put("/v1/matching/profile", headers=alice.headers, json=ALICE_PROFILE)).status_code == 200
    photo = (await image(client, alice))["id"]
    assert (
        await client.put("/v1/media/profile-photos/1", headers=alice.headers, json={"file_id": photo})
    ).status_code == 200
    taken = await client.post("/v1/matching/assessments", headers=alice.headers, json={"responses": [5] * 36})
    assert taken.status_code == 201
    for persona, city in ((bob, "Lyon"), (mallory, "Berlin")):
        body = {**ALICE_PROFILE, "gender": "man", "city": city, "latitude": 52.52, "longitude": 13.405}
        assert (await client.put("/v1/matching/profile", headers=persona.headers, json=body)).status_code == 200
    refreshed = await client.post("/v1/matching/similar/refresh", headers=alice.headers)
    assert refreshed.status_code == 200 and refreshed.json()
    return World(alice=alice, bob=bob, mallory=mallory, photo=photo, assessment=taken.json()["id"])


async def test_the_card_shows_no_birth_date_or_place(client, world: World) -> None:
    card = await client.get(f"/v1/matching/profiles/{world.alice.user_id}", headers=world.mallory.headers)
    assert card.status_code == 200
    assert set(card.json()) == {"user_id", "age", "gender", "bio", "interests", "distance_km", "photos"}
    for secret in ("1991-03-14", "48.8566", "2.3522", "Paris", "France"):
        assert secret not in card.text


async def test_mallory_reads_only_her_own_profile_and_assessments(client, world: World) -> None:
    own = await client.get("/v1/matching/profile", headers=world.mallory.headers)
    assert own.json()["user_id"] == world.mallory.user_id and own.json()["city"] == "Berlin"
    assert (await client.get("/v1/matching/assessments", headers=world.mallory.headers)).json()["items"] == []
    assert (await client.get("/v1/matching/profile", headers=world.mallory.headers)).json()["photos"] == []
    assert (await client.get("/v1/matching/similar", headers=world.mallory.headers)).json() == []


async def test_a_block_hides_alice_from_mallory_as_if_absent(client, world: World) -> None:
    await block(client, world.alice, world.mallory)
    hidden = await client.get(f"/v1/matching/profiles/{world.alice.user_id}", headers=world.mallory.headers)
    missing = await client.get(
        "/v1/matching/profiles/0190f000-0000-7000-8000-000000000000", headers=world.mallory.headers
    )
    assert (hidden.status_code, hidden.json()["type"]) == (missing.status_code, missing.json()["type"])


async def test_sql_as_mallory_sees_and_changes_none_of_alices_rows(runtime, world: World) -> None:
    async with user_transaction(runtime.engine, world.mallory.user_id) as db:
        for table in TABLES:
            rows = (await db.execute(select(table).where(table.c.user_id == world.alice.user_id))).all()
            assert rows == [], table.fullname
        for statement in (
            "UPDATE matching.profiles SET bio = 'mine' WHERE user_id = :alice",
            "DELETE FROM matching.profiles WHERE user_id = :alice",
            "UPDATE matching.user_features SET version = 9 WHERE user_id = :alice",
            "DELETE FROM matching.user_features WHERE user_id = :alice",
        ):
            result = await db.execute(text(statement), {"alice": world.alice.user_id})
            assert result.rowcount == 0, statement
    async with system_transaction(runtime.system_engine) as db:
        assert (
            await db.execute(select(m.profiles.c.bio).where(m.profiles.c.user_id == world.alice.user_id))
        ).scalar_one() == "Secret garden"
        for table in TABLES:
            count = (
                await db.execute(select(func.count()).select_from(table).where(table.c.user_id == world.alice.user_id))
            ).scalar_one()
            assert count >= 1, table.fullname


@pytest.mark.parametrize(
    "statement",
    [
        # Writing rows in alice's name.
        "INSERT INTO matching.profiles (user_id, birth_date, gender) VALUES (:alice, '1990-01-01', 'woman')",
        "INSERT INTO matching.assessments (id, user_id, responses, anxiety_score, avoidance_score, style)"
        " VALUES (gen_random_uuid(), :alice, array_fill(4::smallint, ARRAY[36]), 4, 4, 'secure')",
        "INSERT INTO matching.user_features (user_id, version, features)"
        " VALUES (:alice, 1, array_fill(0::real, ARRAY[32]))",
        # Planting herself in anyone's similar people, or her own list.
        "INSERT INTO matching.match_results (user_id, target_user_id, score) VALUES (:alice, :mallory, 1)",
        "INSERT INTO matching.match_results (user_id, target_user_id, score) VALUES (:mallory, :alice, 1)",
        # Rewriting assessment history.
        "UPDATE matching.assessments SET style = 'secure' WHERE user_id = :mallory",
        "DELETE FROM matching.assessments WHERE user_id = :mallory",
        "UPDATE matching.profiles SET created_at = now() WHERE user_id = :mallory",
    ],
)
async def test_sql_as_mallory_cannot_write_for_alice_or_around_the_rules(runtime, world: World, statement) -> None:
    with pytest.raises(DBAPIError, match=r"row-level security|permission denied"):
        async with user_transaction(runtime.engine, world.mallory.user_id) as db:
            await db.execute(
                text(statement), {"alice": world.alice.user_id, "mallory": world.mallory.user_id, "photo": world.photo}
            )


async def test_a_transaction_naming_no_user_sees_nothing(app_engine, world: World) -> None:
    async with app_engine.connect() as db:
        for table in TABLES:
            assert (await db.execute(select(func.count()).select_from(table))).scalar_one() == 0, table.fullname
        assert (
            await db.execute(text("SELECT * FROM matching.profile_card(:a)"), {"a": world.alice.user_id})
        ).all() == []


async def test_profile_card_out_of_context_tells_nothing(runtime, client, world: World, carol) -> None:
    """matching.profile_card, the one definer function: called straight through SQL as
    rapport_app by someone without a profile, across a block, or for an inactive profile,
    it returns no row, as for a profile that does not exist."""
    card = "SELECT * FROM matching.profile_card(:target)"
    async with user_transaction(runtime.engine, carol.user_id) as db:  # no profile of her own
        assert (await db.execute(text(card), {"target": world.alice.user_id})).all() == []
    async with user_transaction(runtime.engine, world.mallory.user_id) as db:
        (row,) = (await db.execute(text(card), {"target": world.alice.user_id})).mappings().all()
        assert set(row) == {"user_id", "age", "gender", "bio", "interests", "distance_km", "photos", "is_active"}
    await block(client, world.mallory, world.alice)
    async with user_transaction(runtime.engine, world.mallory.user_id) as db:
        assert (await db.execute(text(card), {"target": world.alice.user_id})).all() == []
    await client.put("/v1/matching/profile", headers=world.alice.headers, json={**ALICE_PROFILE, "is_active": False})
    async with user_transaction(runtime.engine, world.bob.user_id) as db:
        assert (await db.execute(text(card), {"target": world.alice.user_id})).all() == []
    async with user_transaction(runtime.engine, world.alice.user_id) as db:  # her own, inactive or not
        assert len((await db.execute(text(card), {"target": world.alice.user_id})).all()) == 1


async def test_similarity_search_is_system_work(runtime, world: World) -> None:
    """As a user, the search sees only their own vector: nobody is found."""
    async with user_transaction(runtime.engine, world.mallory.user_id) as db:
        assert await service.top_similar(db, user_id=world.mallory.user_id, use_pgvector=False) == []
        with pytest.raises(DBAPIError, match=r"row-level security|permission denied"):
            await service.do_refresh_match_results(db, user_id=world.mallory.user_id, use_pgvector=False)
