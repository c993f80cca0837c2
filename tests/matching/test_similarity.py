"""Feature vectors and the people most like a person: the pgvector search (HNSW index on
matching.user_features.embedding) and the exact SQL scan give the same answers, both the
right ones; only others with an active profile and no block either way are candidates;
POST /v1/matching/similar/refresh fills matching.match_results, GET /v1/matching/similar
reads it with each person's card.

pgvector is installed into the test database here (as the server's administrator would)
when the template lacks it, and the migration's own SQL adds the column and the index."""

from __future__ import annotations

import importlib.util
import math
import random
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from sqlalchemy import select, text, update

import rapport
from rapport.kernel.actor import Actor
from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.provisioning import asyncpg_dsn
from rapport.modules.matching import models_people as m
from rapport.modules.matching import schemas_people as s
from rapport.modules.matching import service
from tests.media.collections_support import block
from tests.support import create_verified_user, problem_type

pytestmark = pytest.mark.module_database

MIGRATION = Path(rapport.__file__).resolve().parent / "migrations" / "versions" / "2026_11_30_0031_matching_people.py"
WORDS = [f"topic{n}" for n in range(40)]
STYLES = ["secure", "anxious", "avoidant", "fearful"]


def _migration_vector_sql() -> str:
    spec = importlib.util.spec_from_file_location("matching_people_migration", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sql: str = module.VECTOR
    return sql


@pytest.fixture
async def pgvector(database) -> bool:
    """Whether this server has pgvector (the embedded one does; a PostgreSQL without it is
    served by the exact scan alone), installed and the migration's vector SQL applied."""
    conn = await asyncpg.connect(asyncpg_dsn(database.admin.set(database=database.app.database)))
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"):
            return False
        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public")
        has_column = await conn.fetchval(
            "SELECT 1 FROM pg_attribute WHERE attrelid = 'matching.user_features'::regclass"
            " AND attname = 'embedding' AND NOT attisdropped"
        )
        if not has_column:
            await conn.execute(_migration_vector_sql())
    finally:
        await conn.close()
    return True


def profile_in(interests: list[str], *, active: bool = True) -> s.DatingProfileIn:
    return s.DatingProfileIn.model_validate(
        {"birth_date": "1990-05-01", "gender": "woman", "interests": interests, "is_active": active}
    )


async def person(runtime, name: str, interests: list[str], answers: list[int] | None, *, active: bool = True) -> UUID:
    user_id = UUID(await create_verified_user(runtime, f"{name}@example.com"))
    actor = Actor(user_id=user_id)
    async with user_transaction(runtime.engine, user_id) as db:
        await service.do_put_profile(db, actor=actor, profile=profile_in(interests, active=active))
        if answers is not None:
            await service.do_take_assessment(db, actor=actor, responses=answers)
    return user_id


async def crowd(runtime, size: int, seed: int = 7) -> list[UUID]:
    chance = random.Random(seed)
    people = []
    for n in range(size):
        interests = chance.sample(WORDS, chance.randint(2, 8))
        answers = [chance.randint(1, 7) for _ in range(36)] if chance.random() < 0.8 else None
        people.append(await person(runtime, f"p{n}", interests, answers))
    return people


async def top(runtime, user_id: UUID, *, limit: int, use_pgvector: bool | None) -> list[service.Similar]:
    async with system_transaction(runtime.system_engine) as db:
        return await service.top_similar(db, user_id=user_id, limit=limit, use_pgvector=use_pgvector)


async def test_pgvector_and_the_exact_scan_give_the_same_answers(runtime, pgvector: bool) -> None:
    people = await crowd(runtime, 30)
    async with system_transaction(runtime.system_engine) as db:
        # Where the server has no pgvector, there is no vector column, and the search the
        # service chooses by itself (None) is the exact scan's.
        assert (await service.vector_schema(db) is not None) == pgvector
    for user_id in people:
        for limit in (1, 5, 12):
            by_index = await top(runtime, user_id, limit=limit, use_pgvector=True if pgvector else None)
            exact = await top(runtime, user_id, limit=limit, use_pgvector=False)
            assert [item.user_id for item in by_index] == [item.user_id for item in exact]
            assert [item.score for item in by_index] == pytest.approx([item.score for item in exact], abs=2e-6)


async def test_the_index_is_what_the_pgvector_search_walks(runtime, pgvector: bool) -> None:
    people = await crowd(runtime, 5)
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(text("SET LOCAL enable_seqscan = off"))
        schema = await service.vector_schema(db)
        if not pgvector:
            # No pgvector: no vector column and no index to walk; the exact scan serves.
            assert schema is None
            return
        features = (
            await db.execute(select(m.user_features.c.features).where(m.user_features.c.user_id == people[0]))
        ).scalar_one()
        vector = "[" + ",".join(str(v) for v in features) + "]"
        plan = "\n".join(
            row[0]
            for row in await db.execute(
                text(
                    f"EXPLAIN SELECT user_id FROM matching.user_features "
                    f"ORDER BY embedding OPERATOR({schema}.<#>) CAST(:q AS {schema}.vector) LIMIT 5"
                ),
                {"q": vector},
            )
        )
    assert "ix_user_features_embedding" in plan


async def test_the_exact_scan_ranks_by_cosine_similarity(runtime) -> None:
    people = await crowd(runtime, 20, seed=11)
    async with system_transaction(runtime.system_engine) as db:
        rows = (await db.execute(select(m.user_features.c.user_id, m.user_features.c.features))).all()
    vectors = {row.user_id: list(row.features) for row in rows}
    for user_id in people:
        if user_id not in vectors:
            continue
        mine = vectors[user_id]
        expected = sorted(
            (
                (-round((1 + sum(a * b for a, b in zip(mine, theirs, strict=True))) / 2, 6), other)
                for other, theirs in vectors.items()
                if other != user_id
            ),
        )[:8]
        found = await top(runtime, user_id, limit=8, use_pgvector=False)
        assert [item.user_id for item in found] == [other for _, other in expected]
        assert [item.score for item in found] == pytest.approx([-score for score, _ in expected], abs=2e-6)


async def test_a_person_without_a_vector_has_no_similar_people(runtime) -> None:
    await crowd(runtime, 3)
    nobody = await person(runtime, "blank", [], None)
    assert await top(runtime, nobody, limit=5, use_pgvector=False) == []


async def test_only_active_unblocked_others_with_vectors_are_candidates(
    client, runtime, alice, bob, carol, mallory
) -> None:
    answers = [4] * 36
    for persona, active in ((alice, True), (bob, True), (carol, False)):
        async with user_transaction(runtime.engine, persona.user_id) as db:
            actor = Actor(user_id=UUID(persona.user_id))
            await service.do_put_profile(db, actor=actor, profile=profile_in(["jazz", "hiking"], active=active))
            await service.do_take_assessment(db, actor=actor, responses=answers)
    async with user_transaction(runtime.engine, mallory.user_id) as db:
        await service.do_put_profile(db, actor=Actor(user_id=UUID(mallory.user_id)), profile=profile_in([]))
    dave = await person(runtime, "dave", ["jazz"], answers)
    await block(client, alice, bob)
    for use_pgvector in (None, False):
        found = await top(runtime, UUID(alice.user_id), limit=10, use_pgvector=use_pgvector)
        assert [item.user_id for item in found] == [dave]
        found = await top(runtime, UUID(bob.user_id), limit=10, use_pgvector=use_pgvector)
        assert [item.user_id for item in found] == [dave]


async def test_refresh_fills_the_cache_and_similar_reads_it_with_cards(client, runtime, alice, bob, carol) -> None:
    bodies: dict[str, dict[str, Any]] = {
        alice.user_id: {"interests": ["jazz", "hiking", "chess"], "gender": "woman"},
        bob.user_id: {"interests": ["jazz", "hiking", "chess"], "gender": "man"},
        carol.user_id: {"interests": ["football"], "gender": "woman"},
    }
    for persona in (alice, bob, carol):
        body = {"birth_date": "1990-01-01", "latitude": 48.85, "longitude": 2.35, **bodies[persona.user_id]}
        assert (await client.put("/v1/matching/profile", headers=persona.headers, json=body)).status_code == 200
    assert (await client.get("/v1/matching/similar", headers=alice.headers)).json() == []
    refreshed = await client.post("/v1/matching/similar/refresh", headers=alice.headers, params={"limit": 5})
    assert refreshed.status_code == 200, refreshed.text
    found = refreshed.json()
    assert [item["profile"]["user_id"] for item in found] == [bob.user_id, carol.user_id]
    assert found[0]["score"] == pytest.approx(1.0) and found[1]["score"] == pytest.approx(0.5)
    assert found[0]["profile"]["distance_km"] == 0 and "latitude" not in found[0]["profile"]
    assert (await client.get("/v1/matching/similar", headers=alice.headers)).json() == found
    async with system_transaction(runtime.system_engine) as db:
        cached = (await db.execute(select(m.match_results.c.target_user_id, m.match_results.c.score))).all()
    assert sorted((str(row.target_user_id), row.score) for row in cached) == sorted(
        (item["profile"]["user_id"], item["score"]) for item in found
    )
    # Someone who blocks her drops out of what she reads, cache or not.
    await block(client, bob, alice)
    after = (await client.get("/v1/matching/similar", headers=alice.headers)).json()
    assert [item["profile"]["user_id"] for item in after] == [carol.user_id]


async def test_a_refresh_replaces_the_previous_results(client, runtime, alice, bob) -> None:
    for persona in (alice, bob):
        body = {"birth_date": "1990-01-01", "gender": "woman", "interests": ["jazz"]}
        await client.put("/v1/matching/profile", headers=persona.headers, json=body)
    assert len((await client.post("/v1/matching/similar/refresh", headers=alice.headers)).json()) == 1
    await client.put(
        "/v1/matching/profile",
        headers=bob.headers,
        json={"birth_date": "1990-01-01", "gender": "woman", "interests": ["jazz"], "is_active": False},
    )
    assert (await client.post("/v1/matching/similar/refresh", headers=alice.headers)).json() == []
    async with system_transaction(runtime.system_engine) as db:
        assert (await db.execute(select(m.match_results))).all() == []


async def test_refresh_needs_a_profile_and_a_sane_limit(client, alice) -> None:
    missing = await client.post("/v1/matching/similar/refresh", headers=alice.headers)
    assert (missing.status_code, problem_type(missing)) == (404, "matching-profile-not-found")
    for limit in (0, service.MAX_TOP_N + 1, "many"):
        refused = await client.post("/v1/matching/similar/refresh", headers=alice.headers, params={"limit": limit})
        assert refused.status_code == 422
    assert (await client.post("/v1/matching/similar/refresh")).status_code == 401
    assert (await client.get("/v1/matching/similar")).status_code == 401


async def test_vectors_are_unit_length_and_follow_the_profile(client, runtime, alice) -> None:
    body = {"birth_date": "1990-01-01", "gender": "woman", "interests": ["Jazz", "hiking"]}
    await client.put("/v1/matching/profile", headers=alice.headers, json=body)
    actor = Actor(user_id=UUID(alice.user_id))
    async with user_transaction(runtime.engine, alice.user_id) as db:
        version, features = await service.get_features(db, actor=actor) or (0, [])
    assert version == service.FEATURE_VERSION and len(features) == service.DIMENSION
    assert math.sqrt(sum(v * v for v in features)) == pytest.approx(1.0, abs=1e-6)
    assert features == pytest.approx(service.build_features(["jazz", "hiking"]) or [], abs=1e-6)
    await client.delete("/v1/matching/profile", headers=alice.headers)
    async with user_transaction(runtime.engine, alice.user_id) as db:
        assert await service.get_features(db, actor=actor) is None


def test_features_of_nothing_are_none_and_interests_hash_stably() -> None:
    assert service.build_features([]) is None
    assert service.build_features(["Jazz"]) == service.build_features(["jazz", "JAZZ"])
    both = service.build_features(["jazz"], anxiety=5, avoidance=2, style="anxious") or []
    assert math.sqrt(sum(v * v for v in both)) == pytest.approx(1.0)
    assert both[28 + STYLES.index("anxious")] > 0


async def test_vectors_of_an_older_layout_are_rebuilt(runtime, monkeypatch) -> None:
    people = await crowd(runtime, 3)
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(update(m.user_features).values(features=[0.0] * service.DIMENSION))
    # A new layout: every vector made by the current one is older.
    monkeypatch.setattr("rapport.modules.matching._features.FEATURE_VERSION", service.FEATURE_VERSION + 1)
    async with system_transaction(runtime.system_engine) as db:
        assert await service.do_rebuild_features(db, batch=2) == 2
        assert await service.do_rebuild_features(db, batch=2) == 1
        assert await service.do_rebuild_features(db, batch=2) == 0
        rows = (await db.execute(select(m.user_features))).all()
    assert len(rows) == len(people)
    assert {row.version for row in rows} == {service.FEATURE_VERSION + 1}
    assert all(any(row.features) for row in rows)


def _unit(values: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


async def test_the_walk_widens_when_the_nearest_are_not_candidates(database, runtime, pgvector: bool) -> None:
    """The index path ranks the nearest 200 vectors; when fewer than N of them are
    candidates (here the 220 nearest have inactive profiles), it walks again, wider."""
    chance = random.Random(3)
    near = [_unit([1.0] + [chance.uniform(-0.02, 0.02) for _ in range(31)]) for _ in range(220)]
    far = [_unit([0.3] + [chance.uniform(-1, 1) for _ in range(31)]) for _ in range(30)]
    rows = [(UUID(int=(0x7 << 76) | (0b10 << 62) | n), vector, n < 220) for n, vector in enumerate(near + far)]
    me = UUID(int=(0x7 << 76) | (0b10 << 62) | 999)
    conn = await asyncpg.connect(asyncpg_dsn(database.admin.set(database=database.app.database)))
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")  # no triggers: the rows as given
            await conn.executemany(
                "INSERT INTO auth.users (id, email, status, email_verified_at) VALUES ($1, $2, 'active', now())",
                [(user_id, f"w{user_id.int & 0xFFFF}@example.com") for user_id, _, _ in rows]
                + [(me, "me@example.com")],
            )
            await conn.executemany(
                "INSERT INTO matching.profiles (user_id, birth_date, gender, is_active)"
                " VALUES ($1, '1990-01-01', 'woman', $2)",
                [(user_id, not inactive) for user_id, _, inactive in rows] + [(me, True)],
            )
            await conn.executemany(
                "INSERT INTO matching.user_features (user_id, version, features) VALUES ($1, 1, $2)",
                [(user_id, vector) for user_id, vector, _ in rows] + [(me, _unit([1.0] + [0.0] * 31))],
            )
    finally:
        await conn.close()
    by_index = await top(runtime, me, limit=5, use_pgvector=True if pgvector else None)
    exact = await top(runtime, me, limit=5, use_pgvector=False)
    assert len(exact) == 5 and all(
        item.user_id in {user_id for user_id, _, inactive in rows if not inactive} for item in exact
    )
    assert [item.user_id for item in by_index] == [item.user_id for item in exact]
