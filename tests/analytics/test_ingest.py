"""POST /v1/analytics/events: a batch of a person's events, kept in one statement when
every event is right and the person has given the privacy_policy consent; refused whole,
naming the event's index and field, when any is wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import text

from rapport.analytics import schemas as s
from rapport.kernel.db import system_transaction
from rapport.kernel.ids import uuid7
from tests.analytics.ingest_support import EVENTS, consent, event, now_iso, rows, send_events
from tests.support import problem_type

pytestmark = pytest.mark.module_database


async def test_a_batch_is_kept_with_every_field(client, runtime, alice):
    await consent(client, alice)
    session = str(uuid7())
    sent = [
        event(
            "app_open",
            event_category="engagement",
            session_id=session,
            event_timestamp=now_iso(),
            properties={"cold_start": True, "nested": {"a": [1, 2]}},
            platform="ios",
            device_type="phone",
            device_model="iPhone15,2",
            os_name="iOS",
            os_version="18.1",
            app_version="3.2.0",
            country="FR",
            region="Île-de-France",
            city="Paris",
            utm_source="newsletter",
            utm_medium="email",
            utm_campaign="winter",
            utm_term="chat",
            utm_content="hero",
            network_type="wifi",
            network_quality="good",
            duration_ms=1200,
            load_time_ms=340,
        ),
        event("screen_view", session_id=session, properties={"screen": "inbox"}),
    ]
    response = await send_events(client, alice, sent)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 2}

    kept = await rows(runtime, "SELECT * FROM analytics.events WHERE source = 'client' ORDER BY event_name")
    assert [row["event_name"] for row in kept] == ["app_open", "screen_view"]
    first = kept[0]
    assert first["user_id"] == UUID(alice.user_id)
    assert first["source"] == "client"
    assert first["session_id"] == UUID(session)
    assert first["properties"] == {"cold_start": True, "nested": {"a": [1, 2]}}
    assert first["region"] == "Île-de-France"
    assert first["duration_ms"] == 1200 and first["load_time_ms"] == 340
    # Without a time of its own, an event happened when it was received.
    second = kept[1]
    assert second["event_timestamp"] == second["created_at"]
    assert second["event_category"] is None


async def test_without_consent_the_batch_is_accepted_and_dropped(client, runtime, alice):
    response = await send_events(client, alice, [event()])
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 0}
    await consent(client, alice)
    await consent(client, alice, granted=False)
    response = await send_events(client, alice, [event()])
    assert response.json() == {"accepted": 0}
    assert await rows(runtime, "SELECT id FROM analytics.events WHERE source = 'client'") == []
    # Nothing was spent of the rate limit either.
    assert await rows(runtime, "SELECT key FROM auth.rate_limits WHERE key LIKE 'analytics-events:%'") == []


async def test_a_full_batch_is_kept_and_one_more_is_refused(client, runtime, alice):
    await consent(client, alice)
    response = await send_events(client, alice, [event(f"e{i}") for i in range(s.MAX_EVENTS)])
    assert response.json() == {"accepted": s.MAX_EVENTS}
    response = await send_events(client, alice, [event() for _ in range(s.MAX_EVENTS + 1)])
    assert response.status_code == 422
    assert problem_type(response) == "validation-error"
    assert response.json()["errors"][0]["loc"] == ["body", "events"]
    response = await send_events(client, alice, [])
    assert response.status_code == 422
    assert len(await rows(runtime, "SELECT id FROM analytics.events WHERE source = 'client'")) == s.MAX_EVENTS


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"event_name": "Screen View"}, "event_name"),
        ({"event_name": "x" * 65}, "event_name"),
        ({"event_name": "1st"}, "event_name"),
        ({"event_category": "sales"}, "event_category"),
        ({"properties": ["not", "an", "object"]}, "properties"),
        ({"properties": {"blob": "x" * 9000}}, "properties"),
        ({"properties": {f"k{i}": i for i in range(51)}}, "properties"),
        ({"properties": {"nul": "a\u0000b"}}, "properties"),
        ({"session_id": "not-a-uuid"}, "session_id"),
        ({"event_timestamp": "2026-11-30T10:00:00"}, "event_timestamp"),
        ({"event_timestamp": (datetime.now(UTC) + timedelta(days=2)).isoformat()}, "event_timestamp"),
        ({"event_timestamp": (datetime.now(UTC) - timedelta(days=60)).isoformat()}, "event_timestamp"),
        ({"platform": "p" * 33}, "platform"),
        ({"utm_source": "u" * 257}, "utm_source"),
        ({"duration_ms": -1}, "duration_ms"),
        ({"load_time_ms": "12"}, "load_time_ms"),
        ({"user_id": "00000000-0000-0000-0000-000000000000"}, "user_id"),
        ({"source": "server"}, "source"),
    ],
)
async def test_one_bad_event_refuses_the_batch_naming_its_index_and_field(client, runtime, alice, bad, field):
    await consent(client, alice)
    batch = [event(), event(), event(), {**event(), **bad}]
    response = await send_events(client, alice, batch)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem_type(response) == "validation-error"
    assert response.json()["errors"][0]["loc"][:4] == ["body", "events", "3", field]
    assert await rows(runtime, "SELECT id FROM analytics.events WHERE source = 'client'") == []


async def test_a_body_past_the_byte_limit_is_refused(client, runtime, alice):
    await consent(client, alice)
    # Each event is within its own limits; together they pass the batch's.
    batch = [event(properties={"blob": "x" * 7000}) for _ in range(40)]
    response = await send_events(client, alice, batch)
    assert response.status_code == 413, response.text
    assert problem_type(response) == "payload-too-large"


async def test_malformed_bodies_and_missing_tokens_are_refused(client, alice):
    response = await client.post(
        EVENTS, content=b"{not json", headers={**alice.headers, "content-type": "application/json"}
    )
    assert response.status_code in (400, 422)
    assert response.headers["content-type"].startswith("application/problem+json")
    response = await client.post(EVENTS, json={"events": [event()]})
    assert response.status_code == 401
    response = await client.post(EVENTS, json={"events": [event()], "extra": 1}, headers=alice.headers)
    assert response.status_code == 422


async def test_past_the_hourly_budget_the_batch_is_refused_whole(client, runtime, alice):
    await consent(client, alice)
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text("INSERT INTO auth.rate_limits (key, tat) VALUES (:key, now() + interval '2 hours')"),
            {"key": f"analytics-events:{alice.user_id}"},
        )
    response = await send_events(client, alice, [event()])
    assert response.status_code == 429, response.text
    assert problem_type(response) == "analytics-too-many-events"
    assert int(response.headers["retry-after"]) >= 1
    assert await rows(runtime, "SELECT id FROM analytics.events WHERE source = 'client'") == []


async def test_a_revoked_session_sends_nothing(client, runtime, alice):
    await consent(client, alice)
    response = await client.post("/v1/auth/logout", headers=alice.headers)
    assert response.status_code in (200, 204), response.text
    response = await send_events(client, alice, [event()])
    assert response.status_code == 401
    assert problem_type(response) == "invalid-token"
