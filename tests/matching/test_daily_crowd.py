"""The daily job over a random crowd (a fixed seed, so every run sees the same people):
whatever the mix of genders, ages, distances and blocks, every pair it proposes meets
both people's age, gender and distance preferences, and no pair where either blocks the
other is proposed. The crowd straddles the date line, where the nearest-first walk needs
its second walk, and also lives in one city."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from uuid import UUID

import pytest
from sqlalchemy import text

from rapport.kernel.db import system_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.runtime import Runtime
from rapport.modules.matching import service
from tests.matching.geometry import distance_km

pytestmark = pytest.mark.module_database

SEED = 15
PEOPLE = 90
BLOCKS = 40
GENDERS = ("woman", "man", "nonbinary")
# Places: astride longitude 180 (Fiji), and a city far from it (Lyon).
PLACES = ((-17.7, 180.0, 1.0), (45.76, 4.84, 0.8))


@dataclass(frozen=True)
class Person:
    user_id: UUID
    birth_date: date
    gender: str
    latitude: float
    longitude: float
    pref_genders: tuple[str, ...]
    pref_age: tuple[int, int]
    pref_distance_km: int


def age_on(birth_date: date, day: date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def wrap(longitude: float) -> float:
    return (longitude + 180.0) % 360.0 - 180.0


def crowd(rng: random.Random, today: date) -> list[Person]:
    people = []
    for _ in range(PEOPLE):
        lat, lon, spread = rng.choice(PLACES)
        youngest = rng.randint(18, 50)
        people.append(
            Person(
                user_id=uuid7(),
                birth_date=today - timedelta(days=rng.randint(18 * 366, 60 * 365)),
                gender=rng.choice(GENDERS),
                latitude=round(lat + rng.uniform(-spread, spread), 5),
                longitude=round(wrap(lon + rng.uniform(-spread, spread)), 5),
                pref_genders=tuple(g for g in GENDERS if rng.random() < 0.5),
                pref_age=(youngest, youngest + rng.randint(0, 25)),
                pref_distance_km=rng.choice((15, 40, 80, 150, 300)),
            )
        )
    return people


def acceptable(a: Person, b: Person, day: date) -> bool:
    """Whether b meets a's preferences."""
    km = distance_km(a.latitude, a.longitude, b.latitude, b.longitude)
    return (
        (not a.pref_genders or b.gender in a.pref_genders)
        and a.pref_age[0] <= age_on(b.birth_date, day) <= a.pref_age[1]
        and km <= a.pref_distance_km + 1e-6
    )


async def test_every_proposal_meets_both_peoples_preferences_and_no_block(runtime: Runtime) -> None:
    rng = random.Random(SEED)
    async with system_transaction(runtime.system_engine) as db:
        day = (await db.execute(text("SELECT (now() AT TIME ZONE 'UTC')::date"))).scalar_one()
    people = crowd(rng, day)
    blocks = {tuple(rng.sample(people, 2)) for _ in range(BLOCKS)}
    async with system_transaction(runtime.system_engine) as db:
        for p in people:
            await db.execute(
                text(
                    "INSERT INTO auth.users (id, email, status, email_verified_at)"
                    " VALUES (:id, :email, 'active', now())"
                ),
                {"id": p.user_id, "email": f"crowd-{p.user_id}@example.com"},
            )
            await db.execute(
                text(
                    "INSERT INTO matching.profiles (user_id, birth_date, gender, latitude, longitude, pref_genders,"
                    " pref_age_min, pref_age_max, pref_distance_km)"
                    " VALUES (:id, :born, :gender, :lat, :lon, :pref_genders, :age_min, :age_max, :distance)"
                ),
                {
                    "id": p.user_id,
                    "born": p.birth_date,
                    "gender": p.gender,
                    "lat": p.latitude,
                    "lon": p.longitude,
                    "pref_genders": list(p.pref_genders),
                    "age_min": p.pref_age[0],
                    "age_max": p.pref_age[1],
                    "distance": p.pref_distance_km,
                },
            )
        for blocker, blocked in blocks:
            await db.execute(
                text("INSERT INTO social.blocks (blocker_id, blocked_id) VALUES (:a, :b)"),
                {"a": blocker.user_id, "b": blocked.user_id},
            )

    report = await service.propose_daily(runtime.system_engine, for_date=day, batch_size=17)

    async with system_transaction(runtime.system_engine) as db:
        rows = (await db.execute(text("SELECT user_id, matched_user_id FROM matching.matches"))).all()
    by_id = {p.user_id: p for p in people}
    blocked_pairs = {frozenset((a.user_id, b.user_id)) for a, b in blocks}
    pairs = {frozenset((row.user_id, row.matched_user_id)) for row in rows}
    assert report.pairs == len(pairs) and len(rows) == 2 * len(pairs)
    # Not an empty success: the crowd gives the job plenty to propose, across the line too.
    assert len(pairs) >= 10
    assert any(
        (by_id[a].longitude > 0) != (by_id[b].longitude > 0) and abs(by_id[a].longitude) > 90
        for a, b in (tuple(pair) for pair in pairs)
    )
    for row in rows:
        me, other = by_id[row.user_id], by_id[row.matched_user_id]
        assert acceptable(me, other, day) and acceptable(other, me, day), (me, other)
        assert frozenset((me.user_id, other.user_id)) not in blocked_pairs
    assert max(sum(1 for row in rows if row.user_id == p.user_id) for p in people) <= service.DAILY_LIMIT
