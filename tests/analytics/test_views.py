"""The seed's views (schema `views`) against hand counts: user growth, active users
(DAU, WAU, MAU, stickiness), engagement levels, messaging per day, conversations, media
storage and slow queries (or why there are none); each through its administrators'
route and as SQL for system work."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime
from tests.analytics.reports_support import (
    MONDAY,
    Event,
    add_events,
    at,
    days,
    files_owned,
    make_months,
    people_signed_up,
)
from tests.analytics.reports_support import system_rows as rows_of
from tests.compliance.admin_support import admin_persona  # noqa: F401 (the admin fixture)
from tests.messaging.support import make_conversation, send
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

DAY = MONDAY + timedelta(days=27)  # 2025-03-30: its 30 days are all in March
VIEWS = (
    "user_growth",
    "active_users_summary",
    "user_engagement",
    "messaging_stats",
    "conversation_analytics",
    "media_storage_summary",
    "slow_queries",
)


async def _people_and_activity(database: DatabaseUrls, runtime: Runtime) -> dict[str, object]:
    await make_months(database, date(2025, 2, 1), DAY)
    people = await people_signed_up(
        database, ana=at(MONDAY, 9), ben=at(MONDAY, 10), cal=at(MONDAY + timedelta(days=2)), dee=at(date(2025, 3, 1))
    )
    first = DAY - timedelta(days=29)
    await add_events(
        runtime,
        [
            *(Event("app_open", at(day), people["ana"]) for day in days(first + timedelta(days=10), 20)),  # 20 days
            *(Event("app_open", at(day, 8), people["ben"]) for day in days(DAY - timedelta(days=7), 8)),  # 8 days
            Event("app_open", at(DAY - timedelta(days=20)), people["cal"]),  # 1 day, weeks ago
            Event("app_open", at(first - timedelta(days=1)), people["dee"]),  # before the 30 days
        ],
    )
    return dict(people)


async def test_user_growth_counts_sign_ups_with_the_running_total(
    client: httpx.AsyncClient, database: DatabaseUrls, runtime: Runtime, admin: Persona
) -> None:
    await _people_and_activity(database, runtime)
    read = await client.get(
        "/v1/admin/analytics/user-growth",
        params={"since": MONDAY.isoformat(), "until": (MONDAY + timedelta(days=3)).isoformat()},
        headers=admin.headers,
    )
    assert read.status_code == 200, read.text
    assert [(i["day"], i["new_users"], i["total_users"]) for i in read.json()["items"]] == [
        ("2025-03-03", 2, 3),  # dee signed up on the 1st
        ("2025-03-04", 0, 3),
        ("2025-03-05", 1, 4),
        ("2025-03-06", 0, 4),
    ]


async def test_active_users_and_stickiness(
    client: httpx.AsyncClient, database: DatabaseUrls, runtime: Runtime, admin: Persona
) -> None:
    await _people_and_activity(database, runtime)
    read = await client.get("/v1/admin/analytics/active-users", params={"day": DAY.isoformat()}, headers=admin.headers)
    assert read.status_code == 200, read.text
    # On the day: ana and ben; in its 7 days, the same; in its 30, cal too.
    assert read.json() == {"day": DAY.isoformat(), "dau": 2, "wau": 2, "mau": 3, "stickiness": 0.6667}


async def test_engagement_levels_by_active_days(
    client: httpx.AsyncClient, database: DatabaseUrls, runtime: Runtime, admin: Persona
) -> None:
    await _people_and_activity(database, runtime)
    read = await client.get("/v1/admin/analytics/engagement", params={"day": DAY.isoformat()}, headers=admin.headers)
    assert read.status_code == 200, read.text
    body = read.json()
    # ana 20 days: power; ben 8: active; cal 1: casual; dee none in the 30 days: inactive
    # (the administrator signed up after the day: not counted).
    assert [(lvl["engagement_level"], lvl["users"], lvl["percentage"]) for lvl in body["levels"]] == [
        ("power_user", 1, 25.0),
        ("active_user", 1, 25.0),
        ("casual_user", 1, 25.0),
        ("inactive_user", 1, 25.0),
    ]
    assert set(body["thresholds"]) == {"power_user", "active_user", "casual_user", "inactive_user"}


async def test_messaging_and_conversations(
    client: httpx.AsyncClient, app_engine: AsyncEngine, admin: Persona, alice: Persona, bob: Persona
) -> None:
    conversation = await make_conversation(app_engine, alice, bob)
    await send(client, alice, conversation, "one")
    await send(client, alice, conversation, "two")
    await send(client, bob, conversation, "three")
    today = datetime.now(UTC).date()

    stats = await client.get(
        "/v1/admin/analytics/messaging", params={"since": today.isoformat()}, headers=admin.headers
    )
    assert stats.status_code == 200, stats.text
    assert stats.json()["items"] == [
        {
            "day": today.isoformat(),
            "messages": 3,
            "messages_with_media": 0,
            "active_senders": 2,
            "conversations_created": 1,
        }
    ]
    busiest = await client.get("/v1/admin/analytics/conversations", params={"limit": 5}, headers=admin.headers)
    assert busiest.status_code == 200, busiest.text
    [row] = busiest.json()["items"]
    assert (row["conversation_id"], row["member_count"], row["messages_7d"], row["senders_7d"]) == (
        str(conversation),
        2,
        3,
        2,
    )
    assert row["message_count"] >= 3


async def test_media_storage_by_owner_kind_and_month(
    client: httpx.AsyncClient, database: DatabaseUrls, admin: Persona, alice: Persona, bob: Persona
) -> None:
    march, april = at(date(2025, 3, 5)), at(date(2025, 4, 5))
    await files_owned(database, UUID(alice.user_id), ("image", 1000, march), ("image", 500, april))
    await files_owned(database, UUID(bob.user_id), ("video", 7000, april))

    read = await client.get("/v1/admin/analytics/media-storage", headers=admin.headers)
    assert read.status_code == 200, read.text
    rows = {(i["grouped_by"], i["key"]): (i["files"], i["bytes"]) for i in read.json()["items"]}
    assert rows == {
        ("kind", "image"): (2, 1500),
        ("kind", "video"): (1, 7000),
        ("month", "2025-03"): (1, 1000),
        ("month", "2025-04"): (2, 7500),
        ("total", ""): (3, 8500),
        ("user", alice.user_id): (2, 1500),
        ("user", bob.user_id): (1, 7000),
    }
    kinds = await client.get(
        "/v1/admin/analytics/media-storage", params={"grouped_by": "kind", "limit": 1}, headers=admin.headers
    )
    assert [i["key"] for i in kinds.json()["items"]] == ["video"]


async def test_slow_queries_say_why_they_are_missing(
    client: httpx.AsyncClient, runtime: Runtime, admin: Persona
) -> None:
    [installed] = await rows_of(
        runtime, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') AS yes"
    )
    read = await client.get("/v1/admin/analytics/slow-queries", headers=admin.headers)
    assert read.status_code == 200, read.text
    body = read.json()
    assert body["available"] is installed.yes
    if not installed.yes:
        assert body["items"] == [] and "pg_stat_statements" in body["reason"]


async def test_every_view_reads_for_system_work(database: DatabaseUrls, runtime: Runtime) -> None:
    await _people_and_activity(database, runtime)
    for view in VIEWS:
        await rows_of(runtime, f"SELECT * FROM views.{view}")  # runs, whatever it holds today
    growth = await rows_of(runtime, "SELECT day, new_users, total_users FROM views.user_growth ORDER BY day LIMIT 1")
    assert tuple(growth[0]) == (date(2025, 3, 1), 1, 1)
    engagement = await rows_of(runtime, "SELECT count(*) AS n FROM views.user_engagement")
    assert engagement[0].n == 4


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/admin/analytics/user-growth", {"since": "2025-03-10", "until": "2025-03-09"}),
        ("/v1/admin/analytics/messaging", {"since": "2020-01-01"}),
    ],
)
async def test_a_bad_range_is_a_problem(
    client: httpx.AsyncClient, admin: Persona, path: str, params: dict[str, str]
) -> None:
    read = await client.get(path, params=params, headers=admin.headers)
    assert read.status_code == 400 and problem_type(read) == "analytics-report-range-invalid", read.text


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/admin/analytics/active-users", {"day": "yesterday"}),
        ("/v1/admin/analytics/conversations", {"limit": "0"}),
        ("/v1/admin/analytics/media-storage", {"grouped_by": "planet"}),
        ("/v1/admin/analytics/slow-queries", {"limit": "501"}),
    ],
)
async def test_a_bad_parameter_is_a_problem(
    client: httpx.AsyncClient, admin: Persona, path: str, params: dict[str, str]
) -> None:
    read = await client.get(path, params=params, headers=admin.headers)
    assert read.status_code == 422 and problem_type(read) == "validation-error", read.text
