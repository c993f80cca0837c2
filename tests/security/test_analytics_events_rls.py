"""Analytics as those who should not read it: events, sessions and crashes are read by
platform administrators (and system work) alone. Mallory, a stranger, and Alice, whose
rows they are, read none of them through the API, and through SQL as `rapport_app` (their
context, or none) read no row of analytics.events, analytics.user_sessions,
analytics.crash_reports, analytics.crash_report_users or analytics.cursor, nor a partition
of the events directly. A person inserts only client events of their own; nobody updates or
deletes an event, nor writes a session or a crash, through SQL."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest
from sqlalchemy import text

from rapport.kernel.db import user_transaction
from rapport.kernel.ids import uuid7
from tests.analytics.ingest_support import CRASHES, consent, event, rows, send_events
from tests.compliance.admin_support import make_admin
from tests.security.messaging_sql import DENIED, POLICY, attempt, changed
from tests.support import problem_type

pytestmark = pytest.mark.module_database

TABLES = (
    "analytics.events",
    "analytics.user_sessions",
    "analytics.crash_reports",
    "analytics.crash_report_users",
)
INSERT_EVENT = (
    "INSERT INTO analytics.events (user_id, event_name, source) VALUES (CAST(:user_id AS uuid), 'app_open', :source)"
)


@pytest.fixture
async def world(client, runtime, alice):
    """Alice with an event in a session, and a crash."""
    await consent(client, alice)
    session = str(uuid7())
    assert (await send_events(client, alice, [event(session_id=session)])).json() == {"accepted": 1}
    crash = {"platform": "web", "exception_type": "TypeError", "stack_trace": "at f (app.js:1:2)", "message": "x"}
    assert (await client.post(CRASHES, json=crash, headers=alice.headers)).status_code == 202
    for table in TABLES:
        assert await rows(runtime, f"SELECT 1 FROM {table}"), f"{table} is empty: the test would prove nothing"
    return session


async def test_nobody_but_administrators_reads_through_the_api(client, runtime, world, alice, mallory, carol):
    crash_id = (await rows(runtime, "SELECT id FROM analytics.crash_reports"))[0]["id"]
    for who in (alice, mallory):
        for path in (
            "/v1/analytics/sessions",
            f"/v1/analytics/sessions/{world}",
            "/v1/analytics/crashes",
            f"/v1/analytics/crashes/{crash_id}",
            f"/v1/analytics/users/{alice.user_id}/events",
        ):
            response = await client.get(path, headers=who.headers)
            assert response.status_code == 403, (who.name, path, response.text)
            assert problem_type(response) == "platform-admin-required"
    admin = await make_admin(runtime, carol)
    assert len((await client.get("/v1/analytics/sessions", headers=admin.headers)).json()["items"]) == 1


async def test_nobody_but_administrators_reads_through_sql(runtime, app_engine, world, alice, mallory, carol):
    for table in (*TABLES, "analytics.cursor"):
        for who in (alice, mallory, None):
            found = await attempt(app_engine, who, f"SELECT count(*) FROM {table}")
            assert found in (0, DENIED), (table, who and who.name, found)
    partition = f"analytics.events_p{datetime.now(UTC):%Y%m}"
    assert await attempt(app_engine, alice, f"SELECT count(*) FROM {partition}") == DENIED
    admin = await make_admin(runtime, carol)
    for table in TABLES:
        assert await attempt(app_engine, admin, f"SELECT count(*) FROM {table}") >= 1, table


async def test_a_person_inserts_only_their_own_client_events(runtime, app_engine, world, alice, mallory):
    assert await attempt(app_engine, mallory, INSERT_EVENT, user_id=alice.user_id, source="client") == POLICY
    assert await attempt(app_engine, mallory, INSERT_EVENT, user_id=mallory.user_id, source="server") == POLICY
    assert await attempt(app_engine, None, INSERT_EVENT, user_id=alice.user_id, source="client") == POLICY
    # Her own client event passes the policy (the API's path).
    assert await attempt(app_engine, mallory, INSERT_EVENT, user_id=mallory.user_id, source="client") is None


async def test_nobody_changes_events_sessions_or_crashes(runtime, app_engine, world, alice, mallory):
    for who in (alice, mallory):
        assert await changed(app_engine, who, "UPDATE analytics.events SET event_name = 'x' RETURNING 1") == DENIED
        assert await changed(app_engine, who, "DELETE FROM analytics.events RETURNING 1") == DENIED
        for table in TABLES[1:]:
            assert await changed(app_engine, who, f"DELETE FROM {table} RETURNING 1") == DENIED
        assert (
            await changed(app_engine, who, "UPDATE analytics.user_sessions SET event_count = 0 RETURNING 1") == DENIED
        )
        assert (
            await attempt(
                app_engine,
                who,
                "INSERT INTO analytics.user_sessions (session_id, user_id, started_at, ended_at)"
                " VALUES (gen_random_uuid(), CAST(:u AS uuid), now(), now())",
                u=who.user_id,
            )
            == DENIED
        )
    assert len(await rows(runtime, "SELECT 1 FROM analytics.events WHERE source = 'client'")) == 1


async def test_the_ingest_function_acts_only_for_a_live_session_of_the_caller(
    runtime, app_engine, world, alice, mallory
):
    batch = '[{"event_name": "forged"}]'
    async with user_transaction(app_engine, UUID(mallory.user_id)) as db:
        with pytest.raises(Exception, match="invalid-token"):
            await db.execute(
                text(
                    "SELECT analytics.ingest_events(CAST(:u AS uuid), CAST(:s AS uuid), NULL, CAST(:b AS jsonb), 1, 10)"
                ),
                {"u": alice.user_id, "s": mallory.session_id, "b": batch},
            )
    # Nor can anyone spend or reset Alice's budget.
    assert (
        await attempt(
            app_engine,
            mallory,
            "INSERT INTO auth.rate_limits (key, tat) VALUES (:key, now())",
            key=f"analytics-events:{alice.user_id}",
        )
        == POLICY
    )
    assert await rows(runtime, "SELECT 1 FROM analytics.events WHERE event_name = 'forged'") == []
