"""Who hears what, from the outbox: a direct message or a mention while away, a contact
request, a sign-in from a new device, a password change, a reminder; not one's own action, not a
muted conversation, not a blocked person, not someone connected; and what preferences
and quiet hours change."""

from __future__ import annotations

from uuid import UUID

import pytest
from aiosmtpd.controller import Controller

from rapport.config import Settings
from rapport.kernel.db import system_transaction
from rapport.kernel.outbox import Scope, publish
from rapport.notifications import tasks
from tests.messaging.support import make_conversation, send
from tests.notifications.fakes import provider_settings
from tests.notifications.pipeline.support import (
    KEYS,
    Pipeline,
    delivery_log,
    job_rows,
    notifications_of,
    quiet_now,
    set_preference,
    set_settings,
    subscribe,
)
from tests.support import LOGIN, PASSWORD, Mailbox, Persona, login, make_settings

pytestmark = pytest.mark.module_database


@pytest.fixture(scope="module")
def module_settings(smtp_server: tuple[Controller, Mailbox]) -> Settings:
    """The module's app as conftest's `settings` make a test's: no job worker or outbox
    reader of its own, which would take the events and jobs from each test's `pipeline`."""
    controller, _ = smtp_server
    return make_settings(
        smtp_host="127.0.0.1",
        smtp_port=controller.port,
        worker_in_process=False,
        **provider_settings(vapid_private_key=KEYS.private_key),
    )


async def sign_in_elsewhere(client, persona: Persona, user_agent: str) -> None:
    """The persona signs in from a browser the account has never used."""
    response = await client.post(
        LOGIN, json={"email": persona.email, "password": PASSWORD}, headers={"User-Agent": user_agent}
    )
    assert response.status_code == 200, response.text


async def test_a_direct_message_to_someone_away_is_in_their_inbox_and_pushed(
    client, app_engine, alice, bob, pipeline: Pipeline, push_service
):
    browser = push_service.subscribe(application_server_key=None)
    await subscribe(pipeline.runtime, bob, browser)
    conversation = await make_conversation(app_engine, alice, bob, type="direct")

    await send(client, alice, conversation, "Are you coming tonight?")
    await pipeline.settle()

    [note] = await notifications_of(pipeline.runtime, bob)
    assert (note.type, note.category, note.priority, note.is_read) == ("message", "social", "normal", False)
    assert note.title == "alice" and note.body == "Are you coming tonight?"
    assert note.actor_id == UUID(alice.user_id) and note.conversation_id == conversation
    [push] = push_service.received_by(browser.endpoint)
    assert push.json()["title"] == "alice"
    assert push.json()["body"] == "Are you coming tonight?"
    [record] = await delivery_log(pipeline.runtime, note.id)
    assert record.status == "sent" and record.http_status == 201 and record.time_to_deliver_ms is not None
    assert await notifications_of(pipeline.runtime, alice) == []  # never one's own action


async def test_someone_connected_hears_it_on_the_stream_not_by_notification(
    client, app_engine, alice, bob, pipeline: Pipeline, push_service
):
    await subscribe(pipeline.runtime, bob, push_service.subscribe())
    conversation = await make_conversation(app_engine, alice, bob, type="direct")
    pipeline.connect(bob)

    await send(client, alice, conversation, "hi")
    await pipeline.settle()

    assert await notifications_of(pipeline.runtime, bob) == []
    assert push_service.received == []


async def test_a_mention_in_a_group_is_a_mention_and_a_plain_message_is_low_priority(
    client, app_engine, alice, bob, carol, pipeline: Pipeline
):
    room = await make_conversation(app_engine, alice, bob, carol, name="Climbing")

    await send(client, alice, room, "@bob bring the rope", mentions=[bob.user_id])
    await pipeline.settle()

    [to_bob] = await notifications_of(pipeline.runtime, bob)
    [to_carol] = await notifications_of(pipeline.runtime, carol)
    assert (to_bob.type, to_bob.priority, to_bob.title) == ("mention", "high", "alice mentioned you in Climbing")
    assert (to_carol.type, to_carol.priority, to_carol.title) == ("message", "low", "alice in Climbing")


async def test_messages_of_one_conversation_bundle_into_one_unread_notification(
    client, app_engine, alice, bob, pipeline: Pipeline, push_service
):
    browser = push_service.subscribe()
    await subscribe(pipeline.runtime, bob, browser)
    conversation = await make_conversation(app_engine, alice, bob, type="direct")

    for text in ("one", "two", "three"):
        await send(client, alice, conversation, text)
        await pipeline.settle()

    [note] = await notifications_of(pipeline.runtime, bob)
    assert note.bundle_count == 3
    assert note.body.endswith("three") and "3" in note.body  # the newest, and how many
    pushes = push_service.received_by(browser.endpoint)
    assert [push.json()["body"][-5:].strip(": ") for push in pushes] == ["one", "two", "three"]
    # One Topic for the conversation: the push service keeps only the newest undelivered.
    assert len({push.topic for push in pushes}) == 1


async def test_a_muted_conversation_notifies_nobody(client, app_engine, alice, bob, pipeline: Pipeline):
    conversation = await make_conversation(app_engine, alice, bob, type="direct")
    muted = await client.patch(f"/v1/conversations/{conversation}/me", json={"is_muted": True}, headers=bob.headers)
    assert muted.status_code == 200, muted.text

    await send(client, alice, conversation, "hello?")
    await pipeline.settle()

    assert await notifications_of(pipeline.runtime, bob) == []


async def test_nobody_hears_from_someone_they_block(client, app_engine, alice, bob, carol, pipeline: Pipeline):
    room = await make_conversation(app_engine, alice, bob, carol)
    blocked = await client.put(f"/v1/blocks/{alice.user_id}", json={}, headers=carol.headers)
    assert blocked.status_code in (200, 201), blocked.text

    await send(client, alice, room, "anyone?", mentions=[carol.user_id, bob.user_id])
    await pipeline.settle()

    assert await notifications_of(pipeline.runtime, carol) == []
    assert [note.type for note in await notifications_of(pipeline.runtime, bob)] == ["mention"]


async def test_a_contact_request_notifies_its_addressee(client, alice, bob, pipeline: Pipeline):
    asked = await client.post("/v1/contact-requests", json={"user_id": bob.user_id}, headers=alice.headers)
    assert asked.status_code == 201, asked.text
    await pipeline.settle()

    [note] = await notifications_of(pipeline.runtime, bob)
    assert (note.type, note.title, note.group_key) == (
        "contact_request",
        "alice wants to connect with you",
        "contact_requests",
    )
    assert await notifications_of(pipeline.runtime, alice) == []


async def test_a_sign_in_from_a_new_device_is_a_security_notification_and_an_email(
    client, alice, pipeline: Pipeline, mailbox
):
    await sign_in_elsewhere(client, alice, "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
    await pipeline.settle()

    [note] = await notifications_of(pipeline.runtime, alice)
    assert (note.type, note.category, note.title) == ("security", "security", "New sign-in to your account")
    [mail] = await mailbox.wait_for(alice.email)
    assert mail["Subject"] == "New sign-in to your account"
    assert {part.get_content_type() for part in mail.walk()} >= {"text/plain", "text/html"}


async def test_signing_in_again_from_a_known_device_is_no_news(client, alice, pipeline: Pipeline):
    again = await login(client, alice.email, PASSWORD)  # the same client as the persona's first sign-in
    assert again.status_code == 200, again.text
    await pipeline.settle()

    assert await notifications_of(pipeline.runtime, alice) == []


async def test_a_password_change_is_a_security_notification(client, alice, pipeline: Pipeline):
    changed = await client.post(
        "/v1/auth/password/change",
        json={"current_password": PASSWORD, "new_password": "another long and unusual passphrase"},
        headers=alice.headers,
    )
    assert changed.status_code == 204, changed.text
    await pipeline.settle()

    [note] = await notifications_of(pipeline.runtime, alice)
    assert (note.type, note.title) == ("security", "Your password was changed")


async def test_push_turned_off_for_messages_keeps_the_inbox_and_sends_no_push(
    client, app_engine, alice, bob, pipeline: Pipeline, push_service
):
    await subscribe(pipeline.runtime, bob, push_service.subscribe())
    await set_preference(pipeline.runtime, bob, channel="push", enabled=False, type="message")
    conversation = await make_conversation(app_engine, alice, bob, type="direct")

    await send(client, alice, conversation, "hi")
    await pipeline.settle()

    assert [note.type for note in await notifications_of(pipeline.runtime, bob)] == ["message"]
    assert push_service.received == []
    assert await job_rows(pipeline.runtime, tasks.push) == []


async def test_every_channel_off_for_a_type_makes_nothing(client, app_engine, alice, bob, pipeline: Pipeline):
    await set_preference(pipeline.runtime, bob, channel="in_app", enabled=False, type="message")
    await set_preference(pipeline.runtime, bob, channel="push", enabled=False, type="message")
    conversation = await make_conversation(app_engine, alice, bob, type="direct")

    await send(client, alice, conversation, "hi")
    await pipeline.settle()

    assert await notifications_of(pipeline.runtime, bob) == []


async def test_quiet_hours_hold_a_push_until_they_end(client, app_engine, alice, bob, pipeline: Pipeline, push_service):
    await subscribe(pipeline.runtime, bob, push_service.subscribe())
    await set_settings(pipeline.runtime, bob, time_zone="UTC", **quiet_now())
    conversation = await make_conversation(app_engine, alice, bob, type="direct")

    await send(client, alice, conversation, "late news")
    await pipeline.settle()

    assert [note.type for note in await notifications_of(pipeline.runtime, bob)] == ["message"]
    assert push_service.received == []
    [held] = await job_rows(pipeline.runtime, tasks.push)
    assert held.status == "queued" and held.attempts == 0  # waiting for the end of quiet hours


async def test_quiet_hours_drop_the_push_of_a_low_priority_notification(
    client, app_engine, alice, bob, carol, pipeline: Pipeline, push_service
):
    await subscribe(pipeline.runtime, bob, push_service.subscribe())
    await set_settings(pipeline.runtime, bob, time_zone="UTC", **quiet_now())
    room = await make_conversation(app_engine, alice, bob, carol)

    await send(client, alice, room, "chatter")  # a group's plain message: low priority
    await pipeline.settle()

    assert [note.priority for note in await notifications_of(pipeline.runtime, bob)] == ["low"]
    assert await job_rows(pipeline.runtime, tasks.push) == []


async def test_quiet_hours_do_not_hold_a_security_notification(client, alice, pipeline: Pipeline, push_service):
    browser = push_service.subscribe()
    await subscribe(pipeline.runtime, alice, browser)
    await set_settings(pipeline.runtime, alice, time_zone="UTC", **quiet_now())

    await sign_in_elsewhere(client, alice, "Mozilla/5.0 (iPhone) Safari/605.1")
    await pipeline.settle()

    [push] = push_service.received_by(browser.endpoint)
    assert push.json()["title"] == "New sign-in to your account"


async def test_a_reminder_due_is_a_system_notification_to_its_person_alone(alice, bob, pipeline: Pipeline):
    task_id = "0193a6f0-0000-7000-8000-000000000001"
    async with system_transaction(pipeline.runtime.system_engine) as db:
        await publish(
            db,
            scope=Scope.user(UUID(alice.user_id)),
            type="reminder.due",
            payload={
                "headline": "Task due: school shoes",
                "detail": "Due 2026-12-01 09:00 UTC.",
                "related_kind": "task",
                "related_id": task_id,
            },
            actor_id=None,
        )
    await pipeline.settle()

    [note] = await notifications_of(pipeline.runtime, alice)
    assert (note.type, note.category, note.title, note.body) == (
        "system",
        "system",
        "Task due: school shoes",
        "Due 2026-12-01 09:00 UTC.",
    )
    assert await notifications_of(pipeline.runtime, bob) == []
