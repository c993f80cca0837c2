"""A person's export holds their analytics: their events (client and server), their sessions
and their links to the crashes they reported (with their messages), as every table whose
rows go with the account is exported."""

from __future__ import annotations

import pytest

from rapport.analytics import service as analytics_service
from tests.analytics.ingest_support import CRASHES, consent, event, send_events
from tests.compliance.erase_support import (
    archive_sections,
    compliance_app,  # noqa: F401  (this module's app serves the compliance routes)
    compliance_settings,  # noqa: F401
    exported,
)


@pytest.mark.personas_sign_in
async def test_the_export_holds_the_persons_analytics(client, app, runtime, alice, bob):
    await consent(client, alice)
    await consent(client, bob)
    session = "0193a5f0-0000-7000-8000-0000000000e1"
    await send_events(client, alice, [event("app_open", session_id=session, properties={"k": "alice's"})])
    await send_events(client, bob, [event("app_open", properties={"k": "bob's"})])
    crash = {"platform": "web", "exception_type": "TypeError", "stack_trace": "at f (a.js:1:1)", "message": "mine"}
    assert (await client.post(CRASHES, json=crash, headers=alice.headers)).status_code == 202
    await analytics_service.record_server_events(runtime.system_engine)

    _, archive = await exported(client, app, alice)
    sections = archive_sections(archive)
    events = sections["analytics/events.jsonl"]
    assert {row["user_id"] for row in events} == {alice.user_id}
    assert {(row["event_name"], row["source"]) for row in events} >= {("app_open", "client"), ("logged_in", "server")}
    assert [row["session_id"] for row in sections["analytics/user_sessions.jsonl"]] == [session]
    assert [row["last_message"] for row in sections["analytics/crash_report_users.jsonl"]] == ["mine"]
