"""The daily matches: the job proposes each compatible pair to both people, honouring
both people's gender, age and distance preferences and blocks, never twice, at most the
day's limit each; the score and its breakdown; the round that queues the job; and the
great-circle arithmetic and its bounding box.

Alice (a woman) and bob (a man) are in Paris and want each other; carol and mallory are
placed per test. Profiles are planted as system work: the profile routes have their own
tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.db import system_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.runtime import Runtime
from rapport.modules.matching import service
from rapport.modules.matching._daily import AGE_SPAN, WEIGHTS
from tests.matching.geometry import distance_km
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

DAILY = "/v1/matching/daily"
PARIS = (48.8566, 2.3522)
# Degrees of latitude per km: places due north of Paris at a known distance.
_DEG_PER_KM = 1 / 111.19508


def north_of_paris(km: float) -> tuple[float, float]:
    return PARIS[0] + km * _DEG_PER_KM, PARIS[1]


def born(age: int) -> date:
    """A birth date making its person `age` today."""
    today = datetime.now(UTC).date()
    return date(today.year - age, 1, 1)


async def plant_profile(
    runtime: Runtime,
    who: Persona,
    *,
    gender: str,
    age: int = 30,
    at: tuple[float, float] | None = PARIS,
    pref_genders: list[str] | None = None,
    pref_age: tuple[int, int] = (18, 99),
    pref_distance_km: int = 50,
    interests: list[str] | None = None,
    is_active: bool = True,
) -> None:
    """A dating profile, as its person would make it (as system work)."""
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text(
                """
                INSERT INTO matching.profiles (user_id, birth_date, gender, interests, latitude, longitude,
                                               pref_genders, pref_age_min, pref_age_max, pref_distance_km, is_active)
                VALUES (:user_id, :birth_date, :gender, :interests, :lat, :lon, :pref_genders, :age_min, :age_max,
                        :distance, :is_active)
                """
            ),
            {
                "user_id": UUID(who.user_id),
                "birth_date": born(age),
                "gender": gender,
                "interests": interests or [],
                "lat": at[0] if at else None,
                "lon": at[1] if at else None,
                "pref_genders": pref_genders or [],
                "age_min": pref_age[0],
                "age_max": pref_age[1],
                "distance": pref_distance_km,
                "is_active": is_active,
            },
        )


async def plant_assessment(runtime: Runtime, who: Persona, *, anxiety: float, avoidance: float) -> None:
    style = {(False, False): "secure", (True, False): "anxious", (False, True): "avoidant", (True, True): "fearful"}
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text(
                "INSERT INTO matching.assessments (id, user_id, responses, anxiety_score, avoidance_score, style)"
                " VALUES (gen_random_uuid(), :user_id, :responses, :anxiety, :avoidance, :style)"
            ),
            {
                "user_id": UUID(who.user_id),
                "responses": [4] * 36,
                "anxiety": anxiety,
                "avoidance": avoidance,
                "style": style[(anxiety > 4, avoidance > 4)],
            },
        )


async def propose(runtime: Runtime, **options: Any) -> service.DailyReport:
    report: service.DailyReport = await service.propose_daily(runtime.system_engine, **options)
    return report


async def daily(client: httpx.AsyncClient, who: Persona, **query: str) -> list[dict[str, Any]]:
    response = await client.get(DAILY, headers=who.headers, params=query)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["matches"]
    return found


def partners(matches: list[dict[str, Any]]) -> set[str]:
    return {match["matched_user_id"] for match in matches}


async def user_events(runtime: Runtime, who: Persona, prefix: str = "match.") -> list[tuple[str, dict[str, Any]]]:
    """The committed events of one person's scope whose type starts with `prefix`, oldest first."""
    async with runtime.system_engine.engine.connect() as db:
        rows = await db.execute(
            text(
                "SELECT type, payload FROM kernel.events"
                " WHERE scope_kind = 'user' AND scope_id = :scope AND starts_with(type, :prefix) ORDER BY position"
            ),
            {"scope": UUID(who.user_id), "prefix": prefix},
        )
        return [(row.type, row.payload) for row in rows]


@pytest.fixture
async def couple(runtime: Runtime, alice: Persona, bob: Persona) -> tuple[Persona, Persona]:
    """Alice and bob, who want each other, in Paris."""
    await plant_profile(runtime, alice, gender="woman", pref_genders=["man"], interests=["jazz", "hiking"])
    await plant_profile(runtime, bob, gender="man", age=33, pref_genders=["woman"], interests=["jazz", "chess"])
    return alice, bob


# --- proposals --------------------------------------------------------------------------------


async def test_a_compatible_pair_is_proposed_to_both(
    client: httpx.AsyncClient, runtime: Runtime, couple: tuple[Persona, Persona]
) -> None:
    alice, bob = couple
    report = await propose(runtime)

    assert (report.people, report.pairs) == (2, 1)
    [hers], [his] = await daily(client, alice), await daily(client, bob)
    assert (hers["matched_user_id"], his["matched_user_id"]) == (bob.user_id, alice.user_id)
    assert (hers["status"], his["status"]) == ("proposed", "proposed")
    assert hers["score"] == his["score"] and hers["breakdown"] == his["breakdown"]
    assert hers["for_date"] == report.for_date.isoformat()
    assert hers["profile"]["age"] == 33 and hers["profile"]["distance_km"] == 0
    assert not {"latitude", "longitude", "birth_date", "city"} & hers["profile"].keys()


async def test_the_score_is_the_weighted_sum_of_its_breakdown(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, bob: Persona
) -> None:
    # 20 km apart, ages 30 and 35, one interest in common of three, both assessed.
    await plant_profile(runtime, alice, gender="woman", interests=["jazz", "hiking"], pref_distance_km=40)
    await plant_profile(
        runtime, bob, gender="man", age=35, at=north_of_paris(20), interests=["jazz", "chess"], pref_distance_km=100
    )
    await plant_assessment(runtime, alice, anxiety=2.0, avoidance=3.0)
    await plant_assessment(runtime, bob, anxiety=3.0, avoidance=4.0)
    await propose(runtime)

    [match] = await daily(client, alice)
    # By hand: attachment 1 - ((2 + 3 + 3 + 4) / 4 - 1) / 6 = 1 - 2/6; interests 1/3;
    # demographics 0.5 * (1 - 20/40) + 0.5 * (1 - 5/20) = 0.25 + 0.375.
    expected = {"attachment": 0.667, "interests": 0.333, "demographics": 0.625}
    breakdown = match["breakdown"]
    assert {key: breakdown[key] for key in expected} == pytest.approx(expected, abs=0.001)
    assert 0 <= breakdown["values"] <= 1
    assert AGE_SPAN == 20
    total = sum(WEIGHTS[key] * breakdown[key] for key in WEIGHTS)
    assert match["score"] == pytest.approx(total, abs=0.002)


async def test_gender_preferences_are_honoured_both_ways(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, bob: Persona, carol: Persona
) -> None:
    await plant_profile(runtime, alice, gender="woman", pref_genders=["woman"])
    await plant_profile(runtime, bob, gender="man")  # anyone will do for bob
    await plant_profile(runtime, carol, gender="woman", pref_genders=["woman", "nonbinary"])
    await propose(runtime)

    assert partners(await daily(client, alice)) == {carol.user_id}
    assert partners(await daily(client, bob)) == set()


async def test_age_ranges_are_honoured_both_ways(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, bob: Persona, carol: Persona
) -> None:
    await plant_profile(runtime, alice, gender="woman", age=30, pref_age=(25, 40))
    await plant_profile(runtime, bob, gender="man", age=45)  # too old for alice
    await plant_profile(runtime, carol, gender="man", age=28, pref_age=(40, 50))  # alice too young for carol
    await propose(runtime)

    assert partners(await daily(client, alice)) == set()
    assert partners(await daily(client, bob)) == {carol.user_id}


async def test_distance_within_both_preferences(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, bob: Persona, carol: Persona, mallory: Persona
) -> None:
    await plant_profile(runtime, alice, gender="woman", pref_distance_km=100)
    await plant_profile(runtime, bob, gender="man", at=north_of_paris(80), pref_distance_km=50)
    await plant_profile(runtime, carol, gender="man", at=north_of_paris(95), pref_distance_km=200)
    await plant_profile(runtime, mallory, gender="man", at=north_of_paris(120), pref_distance_km=500)
    await propose(runtime)

    # Bob is within alice's 100 km but alice is beyond his 50; mallory beyond hers.
    assert partners(await daily(client, alice)) == {carol.user_id}
    assert {m["profile"]["distance_km"] for m in await daily(client, alice)} == {95}


async def test_the_distance_is_measured_across_the_date_line(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, bob: Persona
) -> None:
    # Fiji: 179.9 E and 179.9 W are about 22 km apart.
    await plant_profile(runtime, alice, gender="woman", at=(-17.7, 179.9))
    await plant_profile(runtime, bob, gender="man", at=(-17.7, -179.9))
    await propose(runtime)

    [match] = await daily(client, alice)
    assert match["profile"]["distance_km"] == round(distance_km(-17.7, 179.9, -17.7, -179.9))


async def test_blocks_either_way_keep_people_apart(
    client: httpx.AsyncClient, runtime: Runtime, couple: tuple[Persona, Persona]
) -> None:
    alice, bob = couple
    blocked = await client.put(f"/v1/blocks/{alice.user_id}", headers=bob.headers, json={})
    assert blocked.status_code in (200, 201), blocked.text
    await propose(runtime)

    assert await daily(client, alice) == [] and await daily(client, bob) == []


async def test_a_block_after_the_proposal_hides_it(
    client: httpx.AsyncClient, runtime: Runtime, couple: tuple[Persona, Persona]
) -> None:
    alice, bob = couple
    await propose(runtime)
    blocked = await client.put(f"/v1/blocks/{bob.user_id}", headers=alice.headers, json={})
    assert blocked.status_code in (200, 201), blocked.text

    assert await daily(client, alice) == [] and await daily(client, bob) == []


async def test_inactive_and_unlocated_people_are_proposed_to_no_one(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, bob: Persona, carol: Persona
) -> None:
    await plant_profile(runtime, alice, gender="woman")
    await plant_profile(runtime, bob, gender="man", is_active=False)
    await plant_profile(runtime, carol, gender="man", at=None)
    report = await propose(runtime)

    assert (report.people, report.pairs) == (1, 0)
    assert await daily(client, alice) == []


async def test_nobody_is_proposed_twice_whatever_became_of_it(
    client: httpx.AsyncClient, runtime: Runtime, couple: tuple[Persona, Persona]
) -> None:
    alice, bob = couple
    first = await propose(runtime)
    [match] = await daily(client, alice)
    passed = await client.post(f"/v1/matching/matches/{match['id']}/pass", headers=alice.headers)
    assert passed.status_code == 200, passed.text

    again = await propose(runtime)
    tomorrow = await propose(runtime, for_date=first.for_date + timedelta(days=1))

    assert (again.pairs, tomorrow.pairs) == (0, 0)
    tomorrows = {"date": (first.for_date + timedelta(days=1)).isoformat()}
    assert await daily(client, alice, **tomorrows) == [] and await daily(client, bob, **tomorrows) == []


async def test_each_person_receives_at_most_the_days_limit(
    client: httpx.AsyncClient, runtime: Runtime, make_persona: Callable[[str], Awaitable[Persona]]
) -> None:
    alice = await make_persona("alice")
    await plant_profile(runtime, alice, gender="woman")
    men = [await make_persona(f"man{n}") for n in range(3)]
    for man in men:
        await plant_profile(runtime, man, gender="man", pref_genders=["woman"])

    report = await propose(runtime, limit=2)
    again = await propose(runtime, limit=2)

    assert (report.pairs, again.pairs) == (2, 0)
    assert len(await daily(client, alice)) == 2
    assert sorted([len(await daily(client, man)) for man in men]) == [0, 1, 1]


async def test_small_batches_find_the_same_pairs(
    client: httpx.AsyncClient, runtime: Runtime, couple: tuple[Persona, Persona], carol: Persona
) -> None:
    alice, bob = couple
    await plant_profile(runtime, carol, gender="man", pref_genders=["woman"])
    report = await propose(runtime, batch_size=1)

    assert (report.people, report.pairs) == (3, 2)
    assert partners(await daily(client, alice)) == {bob.user_id, carol.user_id}


async def test_each_person_hears_of_their_new_matches(
    runtime: Runtime, couple: tuple[Persona, Persona], jobs_done: Callable[[], Awaitable[None]]
) -> None:
    alice, bob = couple
    report = await propose(runtime)

    for who in (alice, bob):
        assert await user_events(runtime, who) == [
            ("match.proposed", {"for_date": report.for_date.isoformat(), "count": 1})
        ]


# --- the round and the job ---------------------------------------------------------------------


async def test_the_round_queues_the_day_once_and_the_worker_proposes(
    client: httpx.AsyncClient,
    runtime: Runtime,
    couple: tuple[Persona, Persona],
    jobs_done: Callable[[], Awaitable[None]],
) -> None:
    alice, _ = couple
    async with system_transaction(runtime.system_engine) as db:
        queued = await service.enqueue_if_due(db)
    async with system_transaction(runtime.system_engine) as db:
        assert await service.enqueue_if_due(db) is None  # already on its way
    await jobs_done()

    assert queued is not None
    assert len(await daily(client, alice)) == 1
    async with system_transaction(runtime.system_engine) as db:
        assert await service.enqueue_if_due(db) is None  # done for today


async def test_the_round_starts_and_stops(runtime: Runtime) -> None:
    round_ = service.daily_round(runtime, first_check_seconds=3600)
    round_.start()
    await round_.stop()


# --- reading ----------------------------------------------------------------------------------


async def test_without_proposals_the_day_is_empty(client: httpx.AsyncClient, alice: Persona) -> None:
    response = await client.get(DAILY, headers=alice.headers)
    assert response.status_code == 200
    assert response.json()["matches"] == []


async def test_a_day_must_be_a_date(client: httpx.AsyncClient, alice: Persona) -> None:
    response = await client.get(DAILY, headers=alice.headers, params={"date": "tomorrow"})
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_the_day_needs_a_caller(client: httpx.AsyncClient) -> None:
    response = await client.get(DAILY)
    assert response.status_code == 401


# --- distances --------------------------------------------------------------------------------


async def plant_crowd(runtime: Runtime, *, count: int, at: tuple[float, float], gender: str) -> None:
    """`count` people at one place, wanting only their own gender (accounts without sign-in)."""
    async with system_transaction(runtime.system_engine) as db:
        for n in range(count):
            user_id = uuid7()
            await db.execute(
                text(
                    "INSERT INTO auth.users (id, email, status, email_verified_at)"
                    " VALUES (:id, :email, 'active', now())"
                ),
                {"id": user_id, "email": f"crowd-{user_id}@example.com"},
            )
            await db.execute(
                text(
                    "INSERT INTO matching.profiles (user_id, birth_date, gender, latitude, longitude, pref_genders,"
                    " pref_distance_km) VALUES (:id, :born, :gender, :lat, :lon, ARRAY[:gender], 500)"
                ),
                {"id": user_id, "born": born(30 + n % 10), "gender": gender, "lat": at[0], "lon": at[1]},
            )


@pytest.mark.parametrize("alice_at", [(-17.7, 179.95), (-17.7, -179.95)])
async def test_a_crowd_does_not_hide_someone_across_the_date_line(
    client: httpx.AsyncClient,
    runtime: Runtime,
    alice: Persona,
    bob: Persona,
    monkeypatch: pytest.MonkeyPatch,
    alice_at: tuple[float, float],
) -> None:
    """Alice and bob are 11 km apart, on either side of longitude 180; each has a crowd
    nearer on the flat index than the other is (360 degrees away on it), more than the walk
    looks at."""
    bob_at = (alice_at[0], -alice_at[1])
    monkeypatch.setattr("rapport.modules.matching._daily.WALK", 8)
    await plant_profile(runtime, alice, gender="woman", at=alice_at, pref_genders=["man"])
    await plant_profile(runtime, bob, gender="man", at=bob_at, pref_genders=["woman"])
    for place in (alice_at, bob_at):
        await plant_crowd(runtime, count=12, at=(place[0] + 0.5, place[1]), gender="nonbinary")

    await propose(runtime)

    assert partners(await daily(client, alice)) == {bob.user_id}
    assert partners(await daily(client, bob)) == {alice.user_id}
    assert distance_km(*alice_at, *bob_at) < 12


async def test_far_from_the_date_line_the_walk_stays_on_its_side(
    client: httpx.AsyncClient, runtime: Runtime, couple: tuple[Persona, Persona], carol: Persona
) -> None:
    """Carol, across the world from Paris and wanting anyone anywhere, is proposed to no one
    in Paris: their 50 km does not reach her."""
    alice, _ = couple
    await plant_profile(runtime, carol, gender="man", at=(48.8566, -177.6478), pref_distance_km=20000)
    await propose(runtime)
    assert carol.user_id not in partners(await daily(client, alice))
    assert await daily(client, carol) == []


@pytest.mark.parametrize(
    ("a", "b"),
    [((48.8566, 2.3522), (51.5074, -0.1278)), ((-17.7, 179.9), (-17.7, -179.9)), ((89.5, 0.0), (89.5, 180.0))],
)
async def test_sql_and_python_measure_alike(
    app_engine: AsyncEngine, a: tuple[float, float], b: tuple[float, float]
) -> None:
    async with app_engine.connect() as db:
        measured = (
            await db.execute(
                text("SELECT matching.distance_km(:a0, :a1, :b0, :b1)"),
                {"a0": a[0], "a1": a[1], "b0": b[0], "b1": b[1]},
            )
        ).scalar_one()
    assert measured == pytest.approx(distance_km(*a, *b), rel=1e-9)
