"""analytics.user_sessions, folded from events as they are inserted (one upsert per
batch): a session's span, event count and screens viewed, whatever the order its batches
arrive in; a session id another person already holds is left alone. Administrators read
sessions through the API; anyone else is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from rapport.kernel.ids import uuid7
from tests.analytics.ingest_support import consent, event, rows, send_events
from tests.compliance.admin_support import make_admin
from tests.support import problem_type

pytestmark = pytest.mark.module_database

SESSIONS = "/v1/analytics/sessions"


async def test_a_sessions_figures_add_up_across_batches(client, runtime, alice, bob):
    await consent(client, alice)
    session = str(uuid7())
    start = datetime.now(UTC) - timedelta(minutes=30)

    def at(minutes: int) -> str:
        return (start + timedelta(minutes=minutes)).isoformat()

    # The later batch first: the span is the earliest and latest event, whatever the order.
    later = [
        event("screen_view", session_id=session, event_timestamp=at(20), platform="android"),
        event("button_click", session_id=session, event_timestamp=at(25)),
    ]
    earlier = [
        event("app_open", session_id=session, event_timestamp=at(0)),
        event("screen_view", session_id=session, event_timestamp=at(1)),
        event("page_view", session_id=session, event_timestamp=at(2)),
    ]
    assert (await send_events(client, alice, later)).json() == {"accepted": 2}
    assert (await send_events(client, alice, earlier)).json() == {"accepted": 3}
    # An event without a session counts toward none.
    assert (await send_events(client, alice, [event("app_open")])).json() == {"accepted": 1}

    (found,) = await rows(runtime, "SELECT * FROM analytics.user_sessions")
    assert found["session_id"] == UUID(session)
    assert found["user_id"] == UUID(alice.user_id)
    assert found["event_count"] == 5
    assert found["screens_viewed"] == 3
    assert found["started_at"] == start
    assert found["ended_at"] == start + timedelta(minutes=25)
    assert found["duration_ms"] == 25 * 60 * 1000
    assert found["platform"] == "android"

    # Bob naming alice's session adds nothing to it (his events are kept as his).
    await consent(client, bob)
    assert (await send_events(client, bob, [event(session_id=session)])).json() == {"accepted": 1}
    (after,) = await rows(runtime, "SELECT * FROM analytics.user_sessions")
    assert (after["user_id"], after["event_count"]) == (UUID(alice.user_id), 5)


async def test_administrators_read_sessions_and_others_are_refused(client, runtime, alice, bob):
    await consent(client, alice)
    session = str(uuid7())
    await send_events(client, alice, [event(session_id=session), event(session_id=session)])

    refused = await client.get(SESSIONS, headers=bob.headers)
    assert refused.status_code == 403
    assert problem_type(refused) == "platform-admin-required"
    assert (await client.get(f"{SESSIONS}/{session}", headers=alice.headers)).status_code == 403

    admin = await make_admin(runtime, bob)
    listed = await client.get(SESSIONS, headers=admin.headers, params={"user_id": alice.user_id})
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()["items"]
    assert (item["session_id"], item["event_count"]) == (session, 2)
    one = await client.get(f"{SESSIONS}/{session}", headers=admin.headers)
    assert one.json()["user_id"] == alice.user_id
    missing = await client.get(f"{SESSIONS}/{uuid7()}", headers=admin.headers)
    assert missing.status_code == 404
    assert problem_type(missing) == "analytics-session-not-found"
    events = await client.get(f"/v1/analytics/users/{alice.user_id}/events", headers=admin.headers)
    assert events.status_code == 200, events.text
    assert {e["event_name"] for e in events.json()["items"] if e["source"] == "client"} == {"screen_view"}
