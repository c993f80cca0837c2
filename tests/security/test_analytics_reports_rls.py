"""Nobody but platform administrators reads analytics' reports (migration
2026_11_30_0046): as `rapport_app`, acting for an ordinary person or for nobody, the
tables analytics.daily_metrics, analytics.feature_usage, analytics.user_retention,
analytics.funnels, analytics.funnel_events, analytics.ab_tests and
analytics.ab_test_exposures read empty and refuse writes; every view of the `views`
schema and every report function answers nothing; the rollup is refused; and every
route under /v1/admin/analytics, and the dashboard's data, refuse mallory."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.db import user_transaction
from rapport.kernel.runtime import Runtime
from tests.analytics.ingest_support import consent
from tests.analytics.reports_support import Event, add_events, rollup
from tests.analytics.reports_support import system_rows as rows_of
from tests.compliance.admin_support import admin_persona  # noqa: F401 (the admin fixture)
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

TABLES = (
    "analytics.daily_metrics",
    "analytics.feature_usage",
    "analytics.user_retention",
    "analytics.funnels",
    "analytics.funnel_events",
    "analytics.ab_tests",
    "analytics.ab_test_exposures",
)
VIEWS = (
    "views.user_growth",
    "views.active_users_summary",
    "views.user_engagement",
    "views.messaging_stats",
    "views.conversation_analytics",
    "views.media_storage_summary",
    "views.slow_queries",
)
# The report functions under the views and the reports, each called as it would do its work.
REPORT_FUNCTIONS = {
    "views.user_growth_between(date,date)": "SELECT count(*) FROM views.user_growth_between(NULL, NULL)",
    "views.active_users_at(date)": "SELECT count(*) FROM views.active_users_at(CURRENT_DATE)",
    "views.user_engagement_at(date)": "SELECT count(*) FROM views.user_engagement_at(CURRENT_DATE)",
    "views.messaging_stats_between(date,date)": (
        "SELECT count(*) FROM views.messaging_stats_between(CURRENT_DATE, CURRENT_DATE)"
    ),
    "views.conversation_analytics_top(integer)": "SELECT count(*) FROM views.conversation_analytics_top(10)",
    "views.media_storage()": "SELECT count(*) FROM views.media_storage()",
    "views.slow_queries_top(integer)": "SELECT count(*) FROM views.slow_queries_top(10)",
    "analytics.experiment_counts(uuid)": "SELECT count(*) FROM analytics.experiment_counts(:test)",
    "analytics.funnel_counts(uuid,timestamp with time zone,timestamp with time zone)": (
        "SELECT count(*) FROM analytics.funnel_counts(:funnel, now() - interval '1 day', now() + interval '1 day')"
    ),
}
ADMIN_READS = (
    "/daily-metrics",
    "/feature-usage",
    "/retention",
    "/funnels",
    "/funnels/signup",
    "/experiments",
    "/experiments/onboarding",
    "/user-growth",
    "/active-users",
    "/engagement",
    "/messaging",
    "/conversations",
    "/media-storage",
    "/slow-queries",
)


@pytest.fixture
async def reports(
    client: httpx.AsyncClient, runtime: Runtime, admin: Persona, alice: Persona, bob: Persona
) -> dict[str, UUID]:
    """A row in every report table: a funnel, a test alice and bob were exposed to, the
    day's figures and cohorts, a feature used."""
    funnel = await client.post(
        "/v1/admin/analytics/funnels",
        json={"key": "signup", "name": "Sign-up", "steps": ["app_open", "feature_used"]},
        headers=admin.headers,
    )
    test = await client.post(
        "/v1/admin/analytics/experiments",
        json={
            "key": "onboarding",
            "name": "Onboarding",
            "variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}],
            "conversion_event": "feature_used",
        },
        headers=admin.headers,
    )
    assert funnel.status_code == 201 and test.status_code == 201, (funnel.text, test.text)
    for person in (alice, bob):
        await consent(client, person)  # an exposure is kept only with it
        exposed = await client.get("/v1/analytics/experiments/onboarding", headers=person.headers)
        assert exposed.status_code == 200, exposed.text
    now = datetime.now(UTC)
    await add_events(
        runtime,
        [
            Event("app_open", now, UUID(alice.user_id)),
            Event("feature_used", now, UUID(alice.user_id), properties={"feature": "search"}),
        ],
    )
    await rollup(runtime, now.date())
    for table in TABLES:
        [row] = await rows_of(runtime, f"SELECT count(*) AS n FROM {table}")
        assert row.n > 0, table
    return {"funnel": UUID(funnel.json()["id"]), "test": UUID(test.json()["id"])}


async def _as(engine: AsyncEngine, person: Persona | None, statement: str, **params: Any) -> Any:
    """The first column of the statement's first row, acting for `person` (or nobody), or
    the error PostgreSQL refused it with."""
    try:
        if person is None:
            async with engine.begin() as db:
                return (await db.execute(text(statement), params)).scalar()
        async with user_transaction(engine, UUID(person.user_id)) as db:
            return (await db.execute(text(statement), params)).scalar()
    except DBAPIError as error:
        return str(error.orig)


@pytest.mark.usefixtures("reports")
async def test_nobody_but_administrators_reads_a_report_table(
    app_engine: AsyncEngine, mallory: Persona, alice: Persona, admin: Persona
) -> None:
    for table in TABLES:
        for who in (mallory, alice, None):
            assert await _as(app_engine, who, f"SELECT count(*) FROM {table}") == 0, (table, who)
        assert await _as(app_engine, admin, f"SELECT count(*) FROM {table}") > 0, table


@pytest.mark.usefixtures("reports")
async def test_nobody_writes_a_report_table(app_engine: AsyncEngine, mallory: Persona, alice: Persona) -> None:
    refused = {
        "INSERT INTO analytics.daily_metrics (day, metric, value) VALUES (CURRENT_DATE, 'events', 1)": "permission",
        "INSERT INTO analytics.user_retention (cohort_period, cohort_start, cohort_size)"
        " VALUES ('day', CURRENT_DATE, 1)": "permission",
        "INSERT INTO analytics.ab_test_exposures (test_id, user_id, variant)"
        " SELECT t.id, auth.current_user_id(), 'a' FROM analytics.ab_tests t": "permission",
        "INSERT INTO analytics.ab_tests (id, key, name, variants, conversion_event)"
        " VALUES (gen_random_uuid(), 'mine', 'Mine', '[{}, {}]', 'x')": "row-level security",
        "INSERT INTO analytics.funnels (id, key, name, window_seconds)"
        " VALUES (gen_random_uuid(), 'mine', 'Mine', 60)": "row-level security",
    }
    for statement, why in refused.items():
        outcome = await _as(app_engine, mallory, statement)
        assert isinstance(outcome, str) and why in outcome, (statement, outcome)
    # What mallory cannot see, mallory cannot change or remove.
    for statement in (
        "WITH s AS (UPDATE analytics.ab_tests SET status = 'stopped', stopped_at = now() RETURNING 1)"
        " SELECT count(*) FROM s",
        "WITH s AS (DELETE FROM analytics.funnels RETURNING 1) SELECT count(*) FROM s",
        "WITH s AS (DELETE FROM analytics.funnel_events RETURNING 1) SELECT count(*) FROM s",
    ):
        assert await _as(app_engine, alice, statement) == 0, statement


@pytest.mark.usefixtures("reports")
async def test_every_view_reads_empty_to_anyone_else(app_engine: AsyncEngine, mallory: Persona, admin: Persona) -> None:
    for view in VIEWS:
        assert await _as(app_engine, mallory, f"SELECT count(*) FROM {view}") == 0, view
        assert await _as(app_engine, None, f"SELECT count(*) FROM {view}") == 0, view
    assert await _as(app_engine, admin, "SELECT count(*) FROM views.user_engagement") > 0


async def test_report_functions_answer_administrators_alone(
    app_engine: AsyncEngine, reports: dict[str, UUID], mallory: Persona, admin: Persona
) -> None:
    for name, statement in REPORT_FUNCTIONS.items():
        assert await _as(app_engine, mallory, statement, **reports) == 0, name
        assert await _as(app_engine, None, statement, **reports) == 0, name
    assert await _as(app_engine, admin, REPORT_FUNCTIONS["analytics.experiment_counts(uuid)"], **reports) == 2


async def test_expose_records_only_the_callers_own_exposure(
    app_engine: AsyncEngine, runtime: Runtime, reports: dict[str, UUID], mallory: Persona
) -> None:
    assert await _as(app_engine, None, "SELECT count(*) FROM analytics.expose('onboarding')") == 0
    assert await _as(app_engine, mallory, "SELECT count(*) FROM analytics.expose('onboarding')") == 1
    exposed = await rows_of(
        runtime, "SELECT user_id FROM analytics.ab_test_exposures WHERE user_id = :m", m=UUID(mallory.user_id)
    )
    assert len(exposed) == 1
    # The variant alone comes back: never the test's definition or anyone else's exposure.
    columns = await _as(
        app_engine,
        mallory,
        "SELECT string_agg(k, ',') FROM"
        " (SELECT jsonb_object_keys(to_jsonb(x)) k FROM analytics.expose('onboarding') x) s",
    )
    assert sorted(columns.split(",")) == ["exposed_at", "running", "variant"]


async def test_the_rollup_is_refused_to_the_server(app_engine: AsyncEngine, mallory: Persona, admin: Persona) -> None:
    for who in (mallory, admin, None):
        for statement in (
            "SELECT analytics.rollup_day(CURRENT_DATE)",
            "SELECT analytics.rollup_retention(CURRENT_DATE)",
        ):
            outcome = await _as(app_engine, who, statement)
            assert isinstance(outcome, str) and "permission denied" in outcome, (statement, outcome)


@pytest.mark.usefixtures("reports")
async def test_every_admin_route_refuses_anyone_else(client: httpx.AsyncClient, mallory: Persona) -> None:
    for path in ADMIN_READS:
        refused = await client.get("/v1/admin/analytics" + path, headers=mallory.headers)
        assert refused.status_code == 403 and problem_type(refused) == "platform-admin-required", (path, refused.text)
        anonymous = await client.get("/v1/admin/analytics" + path)
        assert anonymous.status_code == 401, path
    writes = [
        ("POST", "/rollups", {"day": "2025-03-10"}),
        ("POST", "/funnels", {"key": "mine", "name": "Mine", "steps": ["a", "b"]}),
        ("DELETE", "/funnels/signup", None),
        (
            "POST",
            "/experiments",
            {
                "key": "mine",
                "name": "Mine",
                "variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}],
                "conversion_event": "x",
            },
        ),
        ("POST", "/experiments/onboarding/stop", None),
    ]
    for method, path, body in writes:
        refused = await client.request(method, "/v1/admin/analytics" + path, json=body, headers=mallory.headers)
        assert refused.status_code == 403 and problem_type(refused) == "platform-admin-required", (path, refused.text)
