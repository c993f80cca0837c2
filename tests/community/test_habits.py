"""Habits (/v1/habits) with check-ins and streaks counted per frequency, the garden that
grows with them and with stories (/v1/garden), and how often one journals
(/v1/me/profile-extras)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest

from rapport.kernel.actor import Actor
from rapport.kernel.db import user_transaction
from rapport.modules.community import service
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database


def today() -> date:
    """The day in UTC when the test runs (not when it was collected: a run may cross midnight)."""
    return datetime.now(UTC).date()


async def habit(client: httpx.AsyncClient, persona: Persona, **fields: Any) -> dict[str, Any]:
    made = await client.post("/v1/habits", headers=persona.headers, json={"name": "Meditate", **fields})
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def check_in(client: httpx.AsyncClient, persona: Persona, habit_id: str, *days: date) -> None:
    for day in days:
        done = await client.post(
            f"/v1/habits/{habit_id}/checkins", headers=persona.headers, json={"day": day.isoformat()}
        )
        assert done.status_code == 201, done.text


async def streaks_on(app_engine, persona: Persona, habit_id: str, today: date) -> tuple[int, int]:
    async with user_transaction(app_engine, UUID(persona.user_id)) as db:
        found = await service.access_habit(
            db, actor=Actor(user_id=UUID(persona.user_id)), habit_id=UUID(habit_id), today=today
        )
    return found.current_streak, found.longest_streak


async def test_a_habit_has_the_seeds_defaults(client, alice):
    made = await habit(client, alice, meta={"minutes": 10})

    assert made["frequency"] == "daily" and made["custom_days"] is None and made["meta"] == {"minutes": 10}
    assert (made["checkins"], made["last_day"], made["current_streak"], made["longest_streak"]) == (0, None, 0, 0)


async def test_names_are_unique_per_person_regardless_of_case(client, alice, bob):
    await habit(client, alice)

    again = await client.post("/v1/habits", headers=alice.headers, json={"name": "MEDITATE"})

    assert again.status_code == 409 and problem_type(again).endswith("habit-exists")
    await habit(client, bob)
    other = await habit(client, alice, name="Read")
    renamed = await client.patch(f"/v1/habits/{other['id']}", headers=alice.headers, json={"name": "meditate"})
    assert renamed.status_code == 409


async def test_a_daily_streak_counts_consecutive_days(client, app_engine, alice):
    made = await habit(client, alice)
    d = date(2024, 3, 10)
    await check_in(client, alice, made["id"], d - timedelta(days=6), d - timedelta(days=5), d - timedelta(days=4))
    await check_in(client, alice, made["id"], d - timedelta(days=1), d)

    assert await streaks_on(app_engine, alice, made["id"], d) == (2, 3)
    # Not yet done today: yesterday's streak still runs; two days without breaks it.
    assert await streaks_on(app_engine, alice, made["id"], d + timedelta(days=1)) == (2, 3)
    assert await streaks_on(app_engine, alice, made["id"], d + timedelta(days=2)) == (0, 3)


async def test_a_weekly_streak_counts_iso_weeks(client, app_engine, alice):
    made = await habit(client, alice, frequency="weekly")
    # Mondays and Sundays of consecutive ISO weeks 2024-W10 to W12, then a gap at W13.
    days = [date(2024, 3, 4), date(2024, 3, 10), date(2024, 3, 17), date(2024, 3, 18)]
    await check_in(client, alice, made["id"], *days)
    assert await streaks_on(app_engine, alice, made["id"], date(2024, 3, 24)) == (3, 3)

    await check_in(client, alice, made["id"], date(2024, 4, 1))
    assert await streaks_on(app_engine, alice, made["id"], date(2024, 4, 3)) == (1, 3)
    assert await streaks_on(app_engine, alice, made["id"], date(2024, 4, 15)) == (0, 3)


async def test_a_monthly_streak_counts_calendar_months_across_a_year(client, app_engine, alice):
    made = await habit(client, alice, frequency="monthly")
    await check_in(client, alice, made["id"], date(2023, 11, 30), date(2023, 12, 1), date(2024, 1, 31))

    assert await streaks_on(app_engine, alice, made["id"], date(2024, 2, 29)) == (3, 3)
    assert await streaks_on(app_engine, alice, made["id"], date(2024, 3, 1)) == (0, 3)


async def test_a_custom_streak_allows_its_days_between_check_ins(client, app_engine, alice):
    made = await habit(client, alice, frequency="custom", custom_days=3)
    d = date(2024, 5, 1)
    await check_in(client, alice, made["id"], d, d + timedelta(days=3), d + timedelta(days=6), d + timedelta(days=11))

    assert await streaks_on(app_engine, alice, made["id"], d + timedelta(days=11)) == (1, 3)
    assert await streaks_on(app_engine, alice, made["id"], d + timedelta(days=8)) == (1, 3)
    assert await streaks_on(app_engine, alice, made["id"], d + timedelta(days=15)) == (0, 3)


async def test_a_check_in_today_counts_through_the_api(client, alice):
    made = await habit(client, alice)

    done = await client.post(f"/v1/habits/{made['id']}/checkins", headers=alice.headers, json={"note": "Ten minutes"})
    bare = await habit(client, alice, name="Stretch")
    no_body = await client.post(f"/v1/habits/{bare['id']}/checkins", headers=alice.headers)

    day = today().isoformat()
    assert done.status_code == 201 and done.json()["day"] == day and done.json()["note"] == "Ten minutes"
    assert no_body.status_code == 201
    got = (await client.get(f"/v1/habits/{made['id']}", headers=alice.headers)).json()
    assert (got["checkins"], got["last_day"], got["current_streak"], got["longest_streak"]) == (
        1,
        day,
        1,
        1,
    )
    twice = await client.post(f"/v1/habits/{made['id']}/checkins", headers=alice.headers, json={})
    assert twice.status_code == 409 and problem_type(twice).endswith("checkin-exists")


async def test_check_ins_are_listed_latest_first_and_taken_back(client, alice):
    made = await habit(client, alice)
    await check_in(client, alice, made["id"], date(2024, 1, 1), date(2024, 1, 3), date(2024, 1, 2))

    listed = await client.get(f"/v1/habits/{made['id']}/checkins", headers=alice.headers)
    assert [item["day"] for item in listed.json()["items"]] == ["2024-01-03", "2024-01-02", "2024-01-01"]
    before = await client.get(
        f"/v1/habits/{made['id']}/checkins", headers=alice.headers, params={"before": "2024-01-02"}
    )
    assert [item["day"] for item in before.json()["items"]] == ["2024-01-01"]

    assert (
        await client.delete(f"/v1/habits/{made['id']}/checkins/2024-01-02", headers=alice.headers)
    ).status_code == 204
    gone = await client.delete(f"/v1/habits/{made['id']}/checkins/2024-01-02", headers=alice.headers)
    assert gone.status_code == 404 and problem_type(gone).endswith("checkin-not-found")


@pytest.mark.parametrize(
    ("day", "status"),
    [("1999-12-31", 422), ("the day after tomorrow", 422), ("2024-02-30", 422), ("yesterday", 422)],
)
async def test_check_ins_outside_the_calendar_are_refused(client, alice, day, status):
    made = await habit(client, alice)
    if day == "the day after tomorrow":
        day = (today() + timedelta(days=2)).isoformat()

    refused = await client.post(f"/v1/habits/{made['id']}/checkins", headers=alice.headers, json={"day": day})

    assert refused.status_code == status, refused.text


async def test_tomorrow_is_allowed_for_people_east_of_utc(client, alice):
    made = await habit(client, alice)

    await check_in(client, alice, made["id"], today() + timedelta(days=1))


async def test_changing_the_frequency_recounts_the_streaks(client, alice):
    made = await habit(client, alice)
    url = f"/v1/habits/{made['id']}"

    custom = await client.patch(url, headers=alice.headers, json={"frequency": "custom", "custom_days": 2})
    without_days = await client.patch(url, headers=alice.headers, json={"frequency": "weekly", "custom_days": 2})
    weekly = await client.patch(url, headers=alice.headers, json={"frequency": "weekly", "meta": {"goal": 3}})

    assert custom.status_code == 200 and custom.json()["custom_days"] == 2
    assert without_days.status_code == 422
    assert weekly.json()["frequency"] == "weekly" and weekly.json()["custom_days"] is None
    assert weekly.json()["meta"] == {"goal": 3}
    needs_days = await client.patch(url, headers=alice.headers, json={"frequency": "custom"})
    assert needs_days.status_code == 422


async def test_a_patch_with_nothing_to_change_changes_nothing(client, alice):
    for fields in ({"frequency": "custom", "custom_days": 3}, {"frequency": "daily"}):
        made = await habit(client, alice, name=f"Walk {fields['frequency']}", **fields)
        unchanged = await client.patch(f"/v1/habits/{made['id']}", headers=alice.headers, json={})
        assert unchanged.status_code == 200, unchanged.text
        assert {**unchanged.json(), "updated_at": None} == {**made, "updated_at": None}


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "x" * 81},
        {"name": "Run", "frequency": "hourly"},
        {"name": "Run", "frequency": "custom"},
        {"name": "Run", "frequency": "daily", "custom_days": 2},
        {"name": "Run", "frequency": "custom", "custom_days": 0},
        {"name": "Run", "frequency": "custom", "custom_days": 367},
        {"name": "Run", "frequency": "custom", "custom_days": "3"},
        {"name": "Run", "meta": []},
        {"name": "Run", "meta": {"note": "x" * 4000}},
    ],
)
async def test_bad_habits_are_refused(client, alice, body):
    made = await client.post("/v1/habits", headers=alice.headers, json=body)

    assert made.status_code == 422, made.text


async def test_habits_are_listed_newest_first_and_removed_with_their_check_ins(client, alice):
    first = await habit(client, alice, name="One")
    second = await habit(client, alice, name="Two")
    await check_in(client, alice, first["id"], date(2024, 1, 1))

    listed = await client.get("/v1/habits", headers=alice.headers)
    assert [item["name"] for item in listed.json()["items"]] == ["Two", "One"]
    assert listed.json()["items"][1]["checkins"] == 1

    assert (await client.delete(f"/v1/habits/{first['id']}", headers=alice.headers)).status_code == 204
    assert (await client.get(f"/v1/habits/{first['id']}", headers=alice.headers)).status_code == 404
    assert (await client.get(f"/v1/habits/{second['id']}", headers=alice.headers)).status_code == 200


async def test_one_garden_per_person_planted_then_renamed(client, alice):
    missing = await client.get("/v1/garden", headers=alice.headers)
    planted = await client.put("/v1/garden", headers=alice.headers, json={"name": "My Growth Garden", "theme": "zen"})
    renamed = await client.put("/v1/garden", headers=alice.headers, json={"name": "Vines", "theme": "vineyard"})

    assert missing.status_code == 404 and problem_type(missing).endswith("garden-not-found")
    assert planted.status_code == 201 and renamed.status_code == 200
    assert renamed.json()["id"] == planted.json()["id"] and renamed.json()["theme"] == "vineyard"
    assert planted.json()["state"] == {"level": 1, "points": 0, "plants": [], "flowers": 0}
    assert (await client.delete("/v1/garden", headers=alice.headers)).status_code == 204
    assert (await client.delete("/v1/garden", headers=alice.headers)).status_code == 404


async def test_the_garden_grows_with_habits_check_ins_and_stories(client, alice):
    await client.put("/v1/garden", headers=alice.headers, json={"name": "Mine"})
    growing = await habit(client, alice, name="Walk")
    resting = await habit(client, alice, name="Paint")
    await check_in(client, alice, growing["id"], *[today() - timedelta(days=n) for n in range(7)])
    await check_in(client, alice, resting["id"], date(2024, 1, 1))
    for title in ("One", "Two"):
        assert (
            await client.post("/v1/stories", headers=alice.headers, json={"title": title, "content": "x"})
        ).is_success

    state = (await client.get("/v1/garden", headers=alice.headers)).json()["state"]

    # 8 check-ins and 2 stories of 3 points: 14 points, 1 + isqrt(14 // 5) = 2.
    assert (state["points"], state["level"], state["flowers"]) == (14, 2, 2)
    assert [(p["name"], p["stage"], p["thriving"]) for p in state["plants"]] == [
        ("Walk", "bud", True),
        ("Paint", "sprout", False),
    ]


@pytest.mark.parametrize("body", [{"name": ""}, {"name": "x" * 81}, {"name": "G", "theme": "x" * 41}, {}])
async def test_bad_gardens_are_refused(client, alice, body):
    assert (await client.put("/v1/garden", headers=alice.headers, json=body)).status_code == 422


async def test_journaling_frequency_is_zero_to_seven(client, alice):
    unset = await client.get("/v1/me/profile-extras", headers=alice.headers)
    put = await client.put("/v1/me/profile-extras", headers=alice.headers, json={"journaling_frequency": 5})
    changed = await client.put("/v1/me/profile-extras", headers=alice.headers, json={"journaling_frequency": 0})

    assert unset.json() == {"journaling_frequency": None, "updated_at": None}
    assert put.status_code == 200 and put.json()["journaling_frequency"] == 5
    assert changed.json()["journaling_frequency"] == 0
    for bad in (-1, 8, "3", 2.5, None):
        refused = await client.put("/v1/me/profile-extras", headers=alice.headers, json={"journaling_frequency": bad})
        assert refused.status_code == 422, bad
