"""The daily rollup (analytics.rollup_day) against figures counted by hand on a small
fixture: who did what on one UTC day, to the microsecond at its edges; run again, it
gives the same rows; the hourly round queues it; administrators read it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.analytics import service_reports
from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime
from tests.analytics.reports_support import MONDAY, Event, add_events, at, make_months, people_signed_up, rollup
from tests.analytics.reports_support import system_rows as rows_of
from tests.compliance.admin_support import admin_persona  # noqa: F401 (the admin fixture)
from tests.messaging.support import make_conversation, send
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

DAY = MONDAY + timedelta(days=7)  # 2025-03-10


async def _fixture(database: DatabaseUrls, runtime: Runtime) -> dict[str, UUID]:
    await make_months(database, DAY)
    people = await people_signed_up(
        database, ana=at(DAY - timedelta(days=1)), ben=at(DAY - timedelta(days=1)), cal=at(DAY, 9)
    )
    s1, s2, s3 = uuid7(), uuid7(), uuid7()
    ana, ben, cal = people["ana"], people["ben"], people["cal"]
    await add_events(
        runtime,
        [
            # The day begins at 00:00:00 UTC and ends before the next one.
            Event("app_open", at(DAY, 0, 0, 0), ana, s1),
            Event("app_open", at(DAY, 8), ana, s1),
            Event("feature_used", at(DAY, 8, 5), ana, s1, {"feature": "search"}),
            Event("app_open", at(DAY, 9), ben, s2),
            Event("feature_used", at(DAY, 9, 1), ben, s2, {"feature": "search"}),
            Event("feature_used", at(DAY, 9, 2), ben, s2, {"feature": "  stickers "}),
            Event("feature_used", at(DAY, 9, 3), ben, s2, {"other": "no feature named"}),
            Event("message_sent", at(DAY, 23, 59, 59, 999999), cal, s3),
            Event("app_open", at(DAY, 15)),  # nobody signed in
            # Outside the day: the evening before, and the next day's first moment.
            Event("app_open", at(DAY - timedelta(days=1), 23, 59, 59, 999999), ana, s1),
            Event("app_open", at(DAY + timedelta(days=1), 0, 0, 0), ben, s2),
        ],
    )
    return people


async def _figures(runtime: Runtime, day: date) -> dict[tuple[str, str], int]:
    rows = await rows_of(runtime, "SELECT metric, dimension, value FROM analytics.daily_metrics WHERE day = :d", d=day)
    return {(row.metric, row.dimension): row.value for row in rows}


async def test_a_day_rolls_up_to_the_figures_counted_by_hand(database: DatabaseUrls, runtime: Runtime) -> None:
    await _fixture(database, runtime)

    await rollup(runtime, DAY)

    figures = await _figures(runtime, DAY)
    assert figures == {
        ("events", ""): 9,
        ("events_by_name", "app_open"): 4,
        ("events_by_name", "feature_used"): 4,
        ("events_by_name", "message_sent"): 1,
        ("active_users", ""): 3,  # ana, ben, cal (the anonymous event names nobody)
        ("sessions", ""): 3,
        ("new_users", ""): 1,  # cal; ana and ben signed up the day before
        ("messages_sent", ""): 0,
        ("active_senders", ""): 0,
        ("conversations_created", ""): 0,
        ("files_uploaded", ""): 0,
        ("bytes_uploaded", ""): 0,
    }
    features = await rows_of(
        runtime, "SELECT feature, uses, users FROM analytics.feature_usage WHERE day = :d ORDER BY feature", d=DAY
    )
    assert [tuple(row) for row in features] == [("search", 2, 2), ("stickers", 1, 1)]


async def test_rolling_a_day_up_again_replaces_it_whole(database: DatabaseUrls, runtime: Runtime) -> None:
    people = await _fixture(database, runtime)
    await rollup(runtime, DAY)
    first = await _figures(runtime, DAY)

    await rollup(runtime, DAY)
    assert await _figures(runtime, DAY) == first, "the same rows, not twice the counts"

    # An erased person's events go with them: the day computed again no longer counts them.
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(text("DELETE FROM analytics.events WHERE user_id = :id"), {"id": people["ben"]})
    await rollup(runtime, DAY)
    again = await _figures(runtime, DAY)
    assert again[("active_users", "")] == 2 and again[("events", "")] == 5
    assert ("events_by_name", "feature_used") in again and again[("events_by_name", "feature_used")] == 1
    features = await rows_of(runtime, "SELECT feature, uses FROM analytics.feature_usage WHERE day = :d", d=DAY)
    assert [tuple(row) for row in features] == [("search", 1)]


async def test_today_counts_accounts_messages_and_conversations(
    client: httpx.AsyncClient,
    runtime: Runtime,
    app_engine: AsyncEngine,
    alice: Persona,
    bob: Persona,
) -> None:
    conversation = await make_conversation(app_engine, alice, bob)
    await send(client, alice, conversation, "one")
    await send(client, alice, conversation, "two")
    await send(client, bob, conversation, "three")
    today = datetime.now(UTC).date()

    await rollup(runtime, today)

    figures = await _figures(runtime, today)
    assert figures[("new_users", "")] == 2
    assert figures[("messages_sent", "")] == 3
    assert figures[("active_senders", "")] == 2
    assert figures[("conversations_created", "")] == 1


async def test_the_rollup_is_system_work_alone(app_engine: AsyncEngine, alice: Persona) -> None:
    with pytest.raises(DBAPIError, match="permission denied"):
        async with user_transaction(app_engine, UUID(alice.user_id)) as db:
            await db.execute(text("SELECT analytics.rollup_day(CURRENT_DATE)"))


async def test_the_hourly_round_queues_today_and_yesterday_once(
    runtime: Runtime, jobs_done: Callable[[], Awaitable[None]]
) -> None:
    now = datetime.now(UTC)
    today = now.date()
    async with system_transaction(runtime.system_engine) as db:
        queued = await service_reports.enqueue_due(db, now=now)
        again = await service_reports.enqueue_due(db, now=now)
    assert queued == [today - timedelta(days=1), today]
    assert again == [], "a day already waiting is not queued twice"

    await jobs_done()
    done = await rows_of(runtime, "SELECT DISTINCT day FROM analytics.daily_metrics ORDER BY day")
    assert [row.day for row in done] == [today - timedelta(days=1), today]
    async with system_transaction(runtime.system_engine) as db:
        assert await service_reports.enqueue_due(db, now=now) == [today], "yesterday is done once it is over"


async def test_an_administrator_reads_the_figures_and_rolls_a_day_up(
    client: httpx.AsyncClient, database: DatabaseUrls, runtime: Runtime, admin: Persona
) -> None:
    await _fixture(database, runtime)
    rolled = await client.post("/v1/admin/analytics/rollups", json={"day": DAY.isoformat()}, headers=admin.headers)
    assert rolled.status_code == 200, rolled.text
    assert rolled.json() == {"day": DAY.isoformat(), "metrics_written": 12}

    read = await client.get(
        "/v1/admin/analytics/daily-metrics",
        params={"since": DAY.isoformat(), "until": DAY.isoformat(), "metric": "events_by_name"},
        headers=admin.headers,
    )
    assert read.status_code == 200, read.text
    assert [(i["dimension"], i["value"]) for i in read.json()["items"]] == [
        ("app_open", 4),
        ("feature_used", 4),
        ("message_sent", 1),
    ]
    usage = await client.get(
        "/v1/admin/analytics/feature-usage",
        params={"since": DAY.isoformat(), "until": DAY.isoformat()},
        headers=admin.headers,
    )
    assert [(i["feature"], i["uses"], i["users"]) for i in usage.json()["items"]] == [
        ("search", 2, 2),
        ("stickers", 1, 1),
    ]


@pytest.mark.parametrize(
    ("params", "status", "kind"),
    [
        ({"since": "2025-03-10", "until": "2025-03-01"}, 400, "analytics-report-range-invalid"),
        ({"since": "2024-01-01", "until": "2025-03-01"}, 400, "analytics-report-range-invalid"),
        ({"since": "March"}, 422, "validation-error"),
        ({"metric": "revenue"}, 422, "validation-error"),
    ],
)
async def test_bad_parameters_are_problems(
    client: httpx.AsyncClient, admin: Persona, params: dict[str, str], status: int, kind: str
) -> None:
    read = await client.get("/v1/admin/analytics/daily-metrics", params=params, headers=admin.headers)
    assert read.status_code == status, read.text
    assert read.headers["content-type"].startswith("application/problem+json")
    assert problem_type(read) == kind


async def test_a_day_not_begun_cannot_be_rolled_up(client: httpx.AsyncClient, admin: Persona) -> None:
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    refused = await client.post(
        "/v1/admin/analytics/rollups", json={"day": tomorrow.isoformat()}, headers=admin.headers
    )
    assert refused.status_code == 400 and problem_type(refused) == "analytics-report-range-invalid"
