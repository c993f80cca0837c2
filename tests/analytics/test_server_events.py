"""Rapport's own events: a sign-up, a sign-in and a message sent are recorded into
analytics.events (source server) from the outbox, with the actor and the time they
happened, once the recorder has read past them."""

from __future__ import annotations

from uuid import UUID

import pytest

from rapport.analytics import service as analytics_service
from rapport.analytics.schemas import SERVER_EVENT_NAMES
from tests.analytics.ingest_support import rows
from tests.messaging.support import make_conversation, send

pytestmark = pytest.mark.module_database

SERVER_ROWS = (
    "SELECT event_name, event_category, user_id, properties, device_type, event_timestamp, created_at"
    " FROM analytics.events WHERE source = 'server' AND user_id = :user_id ORDER BY event_timestamp, event_name"
)


@pytest.mark.personas_sign_in
async def test_sign_up_sign_in_and_a_message_are_recorded(client, runtime, app_engine, alice, bob):
    conversation_id = await make_conversation(app_engine, alice, bob)
    await send(client, alice, conversation_id, "hello")
    await analytics_service.record_server_events(runtime.system_engine)

    recorded = await rows(runtime, SERVER_ROWS, user_id=UUID(alice.user_id))
    assert [row["event_name"] for row in recorded] == ["signed_up", "logged_in", "message_sent"]
    assert {row["event_name"] for row in recorded} == set(SERVER_EVENT_NAMES)
    by_name = {row["event_name"]: row for row in recorded}
    assert by_name["signed_up"]["event_category"] == "acquisition"
    assert by_name["logged_in"]["properties"] == {"method": "password"}
    assert by_name["logged_in"]["device_type"] is not None
    assert by_name["message_sent"]["properties"] == {"conversation_id": str(conversation_id)}
    # When it happened (the outbox's time), recorded at or after it.
    assert all(row["event_timestamp"] <= row["created_at"] for row in recorded)
    # Bob signed up and in, and sent nothing.
    assert [row["event_name"] for row in await rows(runtime, SERVER_ROWS, user_id=UUID(bob.user_id))] == [
        "signed_up",
        "logged_in",
    ]


async def test_each_outbox_event_is_recorded_once(client, runtime, app_engine, alice, bob):
    conversation_id = await make_conversation(app_engine, alice, bob)
    for _ in range(3):
        await send(client, alice, conversation_id)
    await analytics_service.record_server_events(runtime.system_engine)
    await analytics_service.record_server_events(runtime.system_engine)
    sent = await rows(
        runtime,
        "SELECT id FROM analytics.events WHERE event_name = 'message_sent' AND user_id = :user_id",
        user_id=UUID(alice.user_id),
    )
    assert len(sent) == 3
