"""Sign-up cohorts (analytics.user_retention): by day and by ISO week, who came back on
their own day 1, 7 and 30, against figures counted by hand; a day not yet over for the
whole cohort is unknown, not zero."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime
from tests.analytics.reports_support import MONDAY, Event, add_events, at, make_months, people_signed_up, rollup
from tests.analytics.reports_support import system_rows as rows_of
from tests.compliance.admin_support import admin_persona  # noqa: F401 (the admin fixture)
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

WEDNESDAY = MONDAY + timedelta(days=2)


def d(n: int, hour: int = 12) -> datetime:
    """A moment n days after the Monday."""
    return at(MONDAY + timedelta(days=n), hour)


async def _fixture(database: DatabaseUrls, runtime: Runtime) -> None:
    await make_months(database, MONDAY, MONDAY + timedelta(days=31))
    # Three sign up on the Monday (one just before midnight), one on the Wednesday.
    people = await people_signed_up(
        database, ana=d(0, 8), ben=d(0, 9), cal=at(MONDAY, 23, 59, 59), dee=at(WEDNESDAY, 10)
    )
    ana, ben, dee = people["ana"], people["ben"], people["dee"]
    await add_events(
        runtime,
        [
            Event("app_open", d(0, 10), ana),  # day 0 counts for nothing
            Event("app_open", d(1), ana),
            Event("app_open", d(7), ana),
            Event("app_open", d(30, 0), ana),
            Event("app_open", at(MONDAY + timedelta(days=1), 0), ben),  # day 1's first moment
            Event("app_open", d(8), ben),  # day 8: not day 7
            Event("app_open", d(2 + 1), dee),  # dee's day 1
            Event("app_open", d(2 + 7), dee),  # dee's day 7
            Event("app_open", d(2 + 31), dee),  # dee's day 31: not day 30
        ],
    )


async def test_cohorts_by_day_and_week_match_the_hand_count(database: DatabaseUrls, runtime: Runtime) -> None:
    await _fixture(database, runtime)

    # Each day's rollup recomputes the cohorts whose day 1, 7 or 30 it may be: the Monday's
    # day 30, and the Wednesday's (the week's cohort is computed whole by either).
    await rollup(runtime, MONDAY + timedelta(days=30), MONDAY + timedelta(days=32))

    rows = await rows_of(
        runtime,
        "SELECT cohort_period, cohort_start, cohort_size, retained_day_1, retained_day_7, retained_day_30"
        " FROM analytics.user_retention WHERE cohort_size > 0 ORDER BY 1, 2",
    )
    assert [tuple(row) for row in rows] == [
        ("day", MONDAY, 3, 2, 1, 1),
        ("day", WEDNESDAY, 1, 1, 1, 0),
        ("week", MONDAY, 4, 3, 2, 1),
    ]


async def test_recomputing_gives_the_same_cohorts(database: DatabaseUrls, runtime: Runtime) -> None:
    await _fixture(database, runtime)
    await rollup(runtime, MONDAY + timedelta(days=30), MONDAY + timedelta(days=32))
    query = "SELECT cohort_period, cohort_start, cohort_size, retained_day_1, retained_day_7, retained_day_30"
    query += " FROM analytics.user_retention ORDER BY 1, 2"
    first = [tuple(row) for row in await rows_of(runtime, query)]

    await rollup(runtime, MONDAY + timedelta(days=32), MONDAY + timedelta(days=1), MONDAY + timedelta(days=30))

    assert [tuple(row) for row in await rows_of(runtime, query)] == first


async def test_a_day_not_over_is_unknown(runtime: Runtime, alice: Persona) -> None:
    today = datetime.now(UTC).date()
    await rollup(runtime, today)

    [cohort] = await rows_of(
        runtime,
        "SELECT cohort_size, retained_day_1, retained_day_7, retained_day_30 FROM analytics.user_retention"
        " WHERE cohort_period = 'day' AND cohort_start = :d",
        d=today,
    )
    assert tuple(cohort) == (1, None, None, None)


async def test_an_administrator_reads_the_cohorts_with_their_rates(
    client: httpx.AsyncClient, database: DatabaseUrls, runtime: Runtime, admin: Persona
) -> None:
    await _fixture(database, runtime)
    await rollup(runtime, MONDAY + timedelta(days=30), MONDAY + timedelta(days=32))

    read = await client.get(
        "/v1/admin/analytics/retention",
        params={"period": "week", "since": MONDAY.isoformat(), "until": (MONDAY + timedelta(days=6)).isoformat()},
        headers=admin.headers,
    )
    assert read.status_code == 200, read.text
    [week] = read.json()["items"]
    assert (week["cohort_size"], week["rate_day_1"], week["rate_day_7"], week["rate_day_30"]) == (4, 0.75, 0.5, 0.25)

    refused = await client.get("/v1/admin/analytics/retention", params={"period": "month"}, headers=admin.headers)
    assert refused.status_code == 422 and problem_type(refused) == "validation-error"
