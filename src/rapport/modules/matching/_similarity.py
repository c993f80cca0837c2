"""The people most like a person: the top N by the cosine similarity of their feature
vectors (unit length, so the inner product), among others with an active dating profile
and no block either way; cached in matching.match_results (seed 001).

Two paths, one answer. Where the server has pgvector, migration 2026_11_30_0031 keeps
`user_features.embedding` and an HNSW index; elsewhere (PostgreSQL without the extension)
an exact scan computes the inner products in SQL.

The index path walks the index alone for the nearest `_candidates(N)` vectors (ten times
N, at least 200), and only then applies the rules and ranks those candidates by the exact
float8 inner product the scan uses. Filtering inside the walk would be wrong twice: an
HNSW walk returns at most `hnsw.ef_search` rows, so rules that drop many of them leave
fewer than N; and under row-level security the planner, blind to how many profiles the
policy lets through, starts from the profiles and sorts them all instead of walking the
index. Where the rules leave fewer than N candidates and the index had more, the walk is
taken again as wide as pgvector allows (1,000); past that the answer is shorter than N
rather than an exact scan of everyone (22 s at a million vectors). On small sets the walk
returns everyone, so both paths give the same list; on large ones the index is
approximate: at a million random vectors its top 20 holds 96.5% of the exact top 20
(bench/matching_similarity.py, docs/PERFORMANCE.md). Scores are rounded to
6 decimals and ties go to the smaller user id on both paths.

Comparing vectors across people reads everyone's features: it is system work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Row, RowMapping, delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.modules.matching import models_people as m
from rapport.modules.matching import schemas_people as s

DEFAULT_TOP_N = 20
MAX_TOP_N = 100
# pgvector's ceiling for hnsw.ef_search.
_MAX_EF_SEARCH = 1000

_VECTOR_SCHEMA = text(
    """
    SELECT quote_ident(n.nspname)
      FROM pg_attribute a
      JOIN pg_type t ON t.oid = a.atttypid
      JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE a.attrelid = 'matching.user_features'::regclass AND a.attname = 'embedding' AND NOT a.attisdropped
    """
)

# Both paths keep the same candidates: someone else, with an active profile, unblocked.
_CANDIDATE = """
    f.user_id <> :user_id
    AND EXISTS (SELECT 1 FROM matching.profiles p WHERE p.user_id = f.user_id AND p.is_active)
    AND NOT coalesce(social.is_blocked(:user_id, f.user_id), false)
"""

_EXACT = text(
    f"""
    SELECT f.user_id,
           (SELECT sum(a::float8 * b::float8) FROM unnest(f.features, q.features) AS t(a, b)) AS similarity
      FROM matching.user_features f,
           (SELECT features FROM matching.user_features WHERE user_id = :user_id) q
     WHERE {_CANDIDATE}
     ORDER BY similarity DESC, f.user_id
     LIMIT :limit
    """
)


def _by_index(schema: str) -> str:
    # The inner ORDER BY must be the bare distance, and nothing else filter the inner
    # query, for PostgreSQL to walk the HNSW index and stop after :candidates rows. One
    # row always comes back, with how many the walk found, even when no candidate passes.
    return f"""
    WITH near AS MATERIALIZED (
        SELECT f.user_id, f.features
          FROM matching.user_features f
         ORDER BY f.embedding OPERATOR({schema}.<#>) CAST(:query AS {schema}.vector)
         LIMIT :candidates
    )
    SELECT w.walked, r.user_id, r.similarity
      FROM (SELECT count(*) AS walked FROM near) w
      LEFT JOIN LATERAL (
          SELECT f.user_id,
                 (SELECT sum(a::float8 * b::float8)
                    FROM unnest(f.features, CAST(:features AS real[])) AS t(a, b)) AS similarity
            FROM near f
           WHERE {_CANDIDATE}
           ORDER BY similarity DESC, f.user_id
           LIMIT :limit
      ) r ON true
    """


def _candidates(limit: int) -> int:
    """How many of the index's nearest vectors are ranked exactly for a top `limit`."""
    return min(_MAX_EF_SEARCH, max(200, 10 * limit))


async def _walk(db: AsyncConnection, schema: str, params: dict[str, object], candidates: int) -> list[Row[Any]]:
    """The index path: the nearest `candidates`, ranked exactly; once more with the widest
    walk pgvector allows when the rules left fewer than asked and the index had more."""
    # The walk returns at most ef_search rows; sequential scans off because a top-200
    # sort of a million rows looks cheaper to the planner than it is.
    await db.execute(
        text("SELECT set_config('hnsw.ef_search', :ef, true), set_config('enable_seqscan', 'off', true)"),
        {"ef": str(candidates)},
    )
    vector = "[" + ",".join(repr(float(v)) for v in cast(list[float], params["features"])) + "]"
    rows = list((await db.execute(text(_by_index(schema)), params | {"query": vector, "candidates": candidates})).all())
    await db.execute(text("SELECT set_config('enable_seqscan', 'on', true)"))
    found = sum(1 for row in rows if row.user_id is not None)
    if found < cast(int, params["limit"]) and rows[0].walked == candidates < _MAX_EF_SEARCH:
        return await _walk(db, schema, params, _MAX_EF_SEARCH)
    return rows


@dataclass(frozen=True)
class Similar:
    user_id: UUID
    score: float


def to_score(similarity: float) -> float:
    """A cosine similarity (-1 to 1) as a 0-1 score, to 6 decimals."""
    return round(min(1.0, max(0.0, (1.0 + similarity) / 2.0)), 6)


async def vector_schema(db: AsyncConnection) -> str | None:
    """The (quoted) schema of pgvector when user_features has its embedding column, else None."""
    schema: str | None = (await db.execute(_VECTOR_SCHEMA)).scalar_one_or_none()
    return schema


async def top_similar(
    db: AsyncConnection, *, user_id: UUID, limit: int = DEFAULT_TOP_N, use_pgvector: bool | None = None
) -> list[Similar]:
    """System work: the `limit` people most like `user_id`, best first; empty when they
    have no vector. `use_pgvector` False forces the exact scan (None: pgvector when the
    server has it).

    Raises:
        ValueError: `limit` outside 1..MAX_TOP_N, or pgvector asked for where there is none.
    """
    if not 1 <= limit <= MAX_TOP_N:
        raise ValueError(f"limit must be from 1 to {MAX_TOP_N}")
    schema = await vector_schema(db) if use_pgvector is not False else None
    if use_pgvector and schema is None:
        raise ValueError("this server has no pgvector embedding column")
    params: dict[str, object] = {"user_id": user_id, "limit": limit}
    if schema is not None:
        query = (
            await db.execute(select(m.user_features.c.features).where(m.user_features.c.user_id == user_id))
        ).scalar_one_or_none()
        if query is None:
            return []
        rows = await _walk(db, schema, params | {"features": list(query)}, _candidates(limit))
    else:
        rows = list((await db.execute(_EXACT, params)).all())
    found = [Similar(user_id=row.user_id, score=to_score(row.similarity)) for row in rows if row.user_id is not None]
    return sorted(found, key=lambda item: (-item.score, item.user_id))


async def do_refresh_match_results(
    db: AsyncConnection, *, user_id: UUID, limit: int = DEFAULT_TOP_N, use_pgvector: bool | None = None
) -> list[Similar]:
    """System work: replace a person's cached top N (matching.match_results) with a fresh
    search; returns it.

    Raises:
        ValueError: `limit` outside 1..MAX_TOP_N.
    """
    found = await top_similar(db, user_id=user_id, limit=limit, use_pgvector=use_pgvector)
    await db.execute(delete(m.match_results).where(m.match_results.c.user_id == user_id))
    if found:
        await db.execute(
            insert(m.match_results),
            [{"user_id": user_id, "target_user_id": item.user_id, "score": item.score} for item in found],
        )
    return found


_CARDS = text(
    """
    SELECT r.score, r.created_at, c.user_id, c.age, c.gender, c.bio, c.interests, c.distance_km, c.photos
      FROM matching.match_results r
     CROSS JOIN LATERAL matching.profile_card(r.target_user_id) c
     WHERE r.user_id = :user_id
     ORDER BY r.score DESC, r.target_user_id
    """
)


def _similar_out(row: RowMapping) -> s.SimilarOut:
    card = s.ProfileCard(
        user_id=row["user_id"],
        age=row["age"],
        gender=row["gender"],
        bio=row["bio"],
        interests=list(row["interests"]),
        distance_km=row["distance_km"],
        photos=list(row["photos"]),
    )
    computed_at: datetime = row["created_at"]
    return s.SimilarOut(score=row["score"], profile=card, computed_at=computed_at)


async def list_similar(db: AsyncConnection, *, actor: Actor) -> list[s.SimilarOut]:
    """The actor's cached top N, best first, each with the card they may see now (someone
    who since went inactive or blocked either way drops out)."""
    rows = (await db.execute(_CARDS, {"user_id": actor.user_id})).mappings().all()
    return [_similar_out(row) for row in rows]
