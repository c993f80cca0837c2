"""A person's feature vector (seed 001 user_features): 32 numbers saying what they are
like, compared across people by rapport.modules.matching._similarity.

Layout, version 2:
- 0-25: what the person is into: their dating profile's interests and their community
  tags (community.user_tags, read here by name: the two modules share no code), one set,
  each word hashed (SHA-256, stable across processes and releases) into one of 26
  buckets; the block scaled to unit length;
- 26-27: the current assessment's anxiety and avoidance, centred on the midpoint
  ((score - 4) / 3, so -1 to 1);
- 28-31: its style, one-hot (secure, anxious, avoidant, fearful).

Version 1 hashed the interests alone. The interests and tags weigh 0.8 and the assessment
0.6 (when both are there) and the whole is scaled to unit length, so the inner product of
two vectors is their cosine similarity; a person with none of them has no vector. A
vector is made again when its person changes their profile, takes the assessment, or
changes their tags (the `community.tags_changed` event, heard by
rapport.modules.matching._tag_changes). A new layout raises FEATURE_VERSION;
do_rebuild_features remakes the vectors an older one made, before each daily round
(rapport.modules.matching.tasks)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from decimal import Decimal
from uuid import UUID

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.db import SystemEngine, system_transaction
from rapport.modules.matching import models_people as m

DIMENSION = 32
FEATURE_VERSION = 2
INTEREST_BUCKETS = 26
STYLES = ("secure", "anxious", "avoidant", "fearful")
INTERESTS_WEIGHT = 0.8
ASSESSMENT_WEIGHT = 0.6


def _unit(values: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values] if norm > 0 else values


def interest_bucket(interest: str) -> int:
    """The bucket of one interest word (its lower-case form)."""
    digest = hashlib.sha256(interest.casefold().encode()).digest()
    return int.from_bytes(digest[:4], "big") % INTEREST_BUCKETS


def build_features(
    interests: Sequence[str],
    *,
    tags: Sequence[str] = (),
    anxiety: Decimal | float | None = None,
    avoidance: Decimal | float | None = None,
    style: str | None = None,
) -> list[float] | None:
    """The vector of a person's interests, tags and current assessment (None when they have
    none of them). A word both an interest and a tag counts once."""
    counts = [0.0] * INTEREST_BUCKETS
    for interest in dict.fromkeys(i.casefold() for i in (*interests, *tags)):
        counts[interest_bucket(interest)] += 1.0
    has_interests = any(counts)
    assessment = [0.0] * (DIMENSION - INTEREST_BUCKETS)
    has_assessment = anxiety is not None and avoidance is not None and style in STYLES
    if has_assessment:
        assert anxiety is not None and avoidance is not None and style is not None
        assessment[0] = (float(anxiety) - 4.0) / 3.0
        assessment[1] = (float(avoidance) - 4.0) / 3.0
        assessment[2 + STYLES.index(style)] = 1.0
    if not has_interests and not has_assessment:
        return None
    interest_part = [v * INTERESTS_WEIGHT for v in _unit(counts)]
    assessment_part = [v * ASSESSMENT_WEIGHT for v in _unit(assessment)]
    return _unit(interest_part + assessment_part)


# A person's community tags (community.user_tags' primary key): theirs to read, or system work's.
_TAGS = text("SELECT tag FROM community.user_tags WHERE user_id = :user_id ORDER BY tag")


async def do_refresh_features(db: AsyncConnection, *, user_id: UUID) -> list[float] | None:
    """Make a person's vector again from their profile's interests, their community tags
    and their current assessment (their own transaction, or system work), or remove it
    when they have none of them. Returns the vector."""
    interests = (
        await db.execute(select(m.profiles.c.interests).where(m.profiles.c.user_id == user_id))
    ).scalar_one_or_none()
    tags = list((await db.execute(_TAGS, {"user_id": user_id})).scalars())
    latest = (
        await db.execute(
            select(m.assessments.c.anxiety_score, m.assessments.c.avoidance_score, m.assessments.c.style)
            .where(m.assessments.c.user_id == user_id)
            .order_by(m.assessments.c.id.desc())
            .limit(1)
        )
    ).one_or_none()
    features = build_features(
        interests or [],
        tags=tags,
        anxiety=latest.anxiety_score if latest else None,
        avoidance=latest.avoidance_score if latest else None,
        style=latest.style if latest else None,
    )
    if features is None:
        await db.execute(delete(m.user_features).where(m.user_features.c.user_id == user_id))
        return None
    upsert = insert(m.user_features).values(user_id=user_id, version=FEATURE_VERSION, features=features)
    await db.execute(
        upsert.on_conflict_do_update(
            index_elements=[m.user_features.c.user_id],
            set_={"version": upsert.excluded.version, "features": upsert.excluded.features},
        )
    )
    return features


async def get_features(db: AsyncConnection, *, actor: Actor) -> tuple[int, list[float]] | None:
    """The actor's own vector and the layout version that made it, or None."""
    row = (
        await db.execute(
            select(m.user_features.c.version, m.user_features.c.features).where(
                m.user_features.c.user_id == actor.user_id
            )
        )
    ).one_or_none()
    return None if row is None else (row.version, list(row.features))


async def do_rebuild_features(db: AsyncConnection, *, batch: int = 1000) -> int:
    """System work: remake up to `batch` vectors made by an older layout; returns how many
    (call again until it returns 0)."""
    stale = (
        (
            await db.execute(
                select(m.user_features.c.user_id)
                .where(m.user_features.c.version < FEATURE_VERSION)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        )
        .scalars()
        .all()
    )
    for user_id in stale:
        await do_refresh_features(db, user_id=user_id)
    return len(stale)


async def rebuild_stale_features(engine: SystemEngine, *, batch: int = 1000) -> int:
    """System work: remake every vector an older layout made, a batch per transaction;
    returns how many."""
    total = 0
    while True:
        async with system_transaction(engine) as db:
            done = await do_rebuild_features(db, batch=batch)
        total += done
        if done < batch:
            return total
