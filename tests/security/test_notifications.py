"""Notifications as mallory: she reads, marks, changes or deletes nothing of alice's (her
notifications, preferences, push subscriptions and delivery records), through the API or
straight through SQL as `rapport_app`, and learns nothing of them (404, never 403). The
server's role writes no notification, delivery record, template or outbox cursor: those
are system work, on `rapport_worker` in a system transaction."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime
from tests.module_scope import build_once
from tests.notifications.inbox_support import NOTIFICATIONS, notify
from tests.security.messaging_sql import DENIED, POLICY, attempt, changed
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

SUBSCRIPTIONS = "/v1/push-subscriptions"


def _browser_subscription() -> dict:
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return {
        "endpoint": f"https://push.example.net/send/{secrets.token_urlsafe(24)}",
        "keys": {
            "p256dh": base64.urlsafe_b64encode(point).rstrip(b"=").decode(),
            "auth": base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode(),
        },
    }


@dataclass(frozen=True)
class Alices:
    """What alice has: a notification, a push subscription, preferences, delivery records."""

    notification: UUID
    subscription: UUID
    endpoint: str


@dataclass(frozen=True)
class World:
    alice: Persona
    mallory: Persona
    alices: Alices


@pytest.fixture(scope="module")
async def module_world(module_app: FastAPI, module_database: DatabaseUrls) -> World:
    """Alice's rows, and mallory; built once: each test's reset puts them back as they
    were (module_scope.build_once)."""
    async with build_once(module_app, module_database) as built:
        alice, mallory = await built.personas("alice", "mallory")
        return World(alice, mallory, await _build(built.client, built.runtime, alice))


@pytest.fixture
def alices(module_world: World, database: DatabaseUrls) -> Alices:
    """Alice's rows, as built: the test's database was reset to them."""
    return module_world.alices


# The world's people, for the tests that name them.
@pytest.fixture
def alice(module_world: World, alices: Alices) -> Persona:
    return module_world.alice


@pytest.fixture
def mallory(module_world: World, alices: Alices) -> Persona:
    return module_world.mallory


async def _build(client, runtime: Runtime, alice: Persona) -> Alices:
    notification = await notify(runtime, alice, "For alice only")
    browser = _browser_subscription()
    registered = await client.post(SUBSCRIPTIONS, headers=alice.headers, json=browser)
    assert registered.status_code == 201, registered.text
    subscription = UUID(registered.json()["id"])
    saved = await client.put(
        "/v1/notification-preferences",
        headers=alice.headers,
        json={"time_zone": "Europe/Paris", "channels": [{"channel": "push", "enabled": False}]},
    )
    assert saved.status_code == 200, saved.text
    ids = {"notification": notification, "subscription": subscription, "user": UUID(alice.user_id)}
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text(
                "INSERT INTO notifications.push_delivery_log (id, notification_id, user_id, subscription_id, provider)"
                " VALUES (:id, :notification, :user, :subscription, 'webpush')"
            ),
            {"id": uuid7(), **ids},
        )
        await db.execute(
            text(
                "INSERT INTO notifications.email_notifications (id, user_id, kind, notification_ids)"
                " VALUES (:id, :user, 'notification', ARRAY[:notification]::uuid[])"
            ),
            {"id": uuid7(), "user": ids["user"], "notification": notification},
        )
        await db.execute(
            text(
                "INSERT INTO notifications.sms_notifications (id, user_id, notification_id, phone, body)"
                " VALUES (:id, :user, :notification, '+33612345678', 'For alice only')"
            ),
            {"id": uuid7(), "user": ids["user"], "notification": notification},
        )
    return Alices(notification=notification, subscription=subscription, endpoint=browser["endpoint"])


# Through the API


async def test_mallory_sees_none_of_alice_s_notifications(client, alice, mallory, alices):
    listed = await client.get(NOTIFICATIONS, headers=mallory.headers)
    counted = await client.get(f"{NOTIFICATIONS}/unread-count", headers=mallory.headers)

    assert listed.json() == {"items": [], "next": None, "unread_count": 0}
    assert counted.json() == {"unread_count": 0}


async def test_mallory_marks_none_of_alice_s_notifications_read(client, alice, mallory, alices):
    response = await client.post(
        f"{NOTIFICATIONS}/read", headers=mallory.headers, json={"ids": [str(alices.notification)]}
    )

    # The same answer as for an id that exists nowhere: she learns nothing.
    assert response.status_code == 200
    assert response.json() == {"unread_count": 0}
    assert (await client.get(f"{NOTIFICATIONS}/unread-count", headers=alice.headers)).json() == {"unread_count": 1}
    everything = await client.post(f"{NOTIFICATIONS}/read", headers=mallory.headers, json={"all": True})
    assert everything.json() == {"unread_count": 0}
    assert (await client.get(f"{NOTIFICATIONS}/unread-count", headers=alice.headers)).json() == {"unread_count": 1}


async def test_mallory_reads_and_deletes_none_of_alice_s_subscriptions_nor_learns_they_exist(
    client, alice, mallory, alices
):
    nowhere = uuid7()
    for method in ("GET", "DELETE"):
        theirs = await client.request(method, f"{SUBSCRIPTIONS}/{alices.subscription}", headers=mallory.headers)
        missing = await client.request(method, f"{SUBSCRIPTIONS}/{nowhere}", headers=mallory.headers)
        assert (theirs.status_code, problem_type(theirs)) == (404, "push-subscription-not-found")
        assert (missing.status_code, problem_type(missing)) == (404, "push-subscription-not-found")
        assert theirs.json()["detail"] == missing.json()["detail"]

    assert (await client.get(SUBSCRIPTIONS, headers=mallory.headers)).json()["items"] == []
    assert len((await client.get(SUBSCRIPTIONS, headers=alice.headers)).json()["items"]) == 1


async def test_mallory_s_preferences_are_her_own(client, alice, mallory, alices):
    hers = await client.get("/v1/notification-preferences", headers=mallory.headers)
    await client.put("/v1/notification-preferences", headers=mallory.headers, json={"time_zone": "Asia/Tokyo"})

    assert (hers.json()["time_zone"], hers.json()["channels"]) == ("UTC", [])
    alices_now = (await client.get("/v1/notification-preferences", headers=alice.headers)).json()
    assert alices_now["time_zone"] == "Europe/Paris"
    assert alices_now["channels"] == [{"type": None, "category": None, "channel": "push", "enabled": False}]


# Straight through SQL, as the server's role


@pytest.mark.parametrize(
    "table",
    [
        "notifications.notifications",
        "notifications.settings",
        "notifications.preferences",
        "notifications.push_subscriptions",
        "notifications.push_delivery_log",
        "notifications.email_notifications",
        "notifications.sms_notifications",
    ],
)
async def test_mallory_and_nobody_read_none_of_alice_s_rows(
    app_engine: AsyncEngine, alice, mallory, alices, table
) -> None:
    statement = f"SELECT count(*) FROM {table} WHERE user_id = :alice"

    assert await attempt(app_engine, mallory, statement, alice=alice.user_id) == 0
    assert await attempt(app_engine, None, statement, alice=alice.user_id) == 0
    assert await attempt(app_engine, alice, statement, alice=alice.user_id) == 1


async def test_mallory_changes_and_deletes_none_of_alice_s_rows(app_engine: AsyncEngine, alice, mallory, alices):
    ids = {"alice": alice.user_id, "notification": str(alices.notification), "subscription": str(alices.subscription)}
    tries = [
        "UPDATE notifications.notifications SET is_read = true, read_at = now() WHERE id = :notification RETURNING 1",
        "UPDATE notifications.settings SET time_zone = 'UTC' WHERE user_id = :alice RETURNING 1",
        "UPDATE notifications.preferences SET enabled = true WHERE user_id = :alice RETURNING 1",
        "DELETE FROM notifications.preferences WHERE user_id = :alice RETURNING 1",
        "DELETE FROM notifications.push_subscriptions WHERE id = :subscription RETURNING 1",
    ]
    for statement in tries:
        assert await changed(app_engine, mallory, statement, **ids) == 0, statement


async def test_mallory_writes_no_preferences_for_alice(app_engine: AsyncEngine, alice, mallory, alices):
    settings = "INSERT INTO notifications.settings (user_id, time_zone) VALUES (:alice, 'UTC') RETURNING 1"
    choice = (
        "INSERT INTO notifications.preferences (id, user_id, channel, enabled)"
        " VALUES (:id, :alice, 'sms', true) RETURNING 1"
    )

    assert await attempt(app_engine, mallory, settings, alice=alice.user_id) == POLICY
    assert await attempt(app_engine, mallory, choice, alice=alice.user_id, id=str(uuid7())) == POLICY


async def test_nobody_takes_over_another_s_subscription_row_around_the_registration(
    app_engine: AsyncEngine, alice, mallory, alices
):
    tries = [
        "INSERT INTO notifications.push_subscriptions (id, user_id, provider, token)"
        " VALUES (:id, :mallory, 'fcm', 'stolen') RETURNING 1",
        "UPDATE notifications.push_subscriptions SET user_id = :mallory WHERE id = :subscription RETURNING 1",
    ]
    ids = {"id": str(uuid7()), "mallory": mallory.user_id, "subscription": str(alices.subscription)}
    for statement in tries:
        assert await attempt(app_engine, mallory, statement, **ids) == DENIED, statement
    nobody = (
        "SELECT created FROM notifications.register_push_subscription("
        ":id, 'fcm', NULL, NULL, NULL, 'token-of-nobody', NULL, NULL)"
    )
    assert await attempt(app_engine, None, nobody, id=str(uuid7())) == DENIED


async def test_the_server_s_role_writes_no_notification(app_engine: AsyncEngine, alice, alices):
    """Not even for oneself: notifications come from the pipeline, as system work."""
    insert = (
        "INSERT INTO notifications.notifications (id, user_id, type, category, title)"
        " VALUES (:id, :alice, 'security', 'security', 'Your password changed') RETURNING 1"
    )
    tries = [
        (insert, {"id": str(uuid7()), "alice": alice.user_id}),
        ("UPDATE notifications.notifications SET title = 'Forged' WHERE id = :n RETURNING 1", {}),
        ("UPDATE notifications.notifications SET user_id = :alice WHERE id = :n RETURNING 1", {}),
        ("DELETE FROM notifications.notifications WHERE id = :n RETURNING 1", {}),
    ]
    for statement, params in tries:
        params = {"n": str(alices.notification), "alice": alice.user_id, **params}
        assert await attempt(app_engine, alice, statement, **params) == DENIED, statement


async def test_the_server_s_role_writes_no_delivery_record(app_engine: AsyncEngine, alice, alices):
    ids = {"id": str(uuid7()), "alice": alice.user_id, "notification": str(alices.notification)}
    tries = [
        "INSERT INTO notifications.push_delivery_log (id, notification_id, user_id, provider)"
        " VALUES (:id, :notification, :alice, 'webpush') RETURNING 1",
        "UPDATE notifications.push_delivery_log SET status = 'delivered' WHERE user_id = :alice RETURNING 1",
        "INSERT INTO notifications.email_notifications (id, user_id, kind) VALUES (:id, :alice, 'digest') RETURNING 1",
        "UPDATE notifications.email_notifications SET status = 'sent' WHERE user_id = :alice RETURNING 1",
        "INSERT INTO notifications.sms_notifications (id, user_id, notification_id, phone, body)"
        " VALUES (:id, :alice, :notification, '+33600000000', 'x') RETURNING 1",
        "DELETE FROM notifications.sms_notifications WHERE user_id = :alice RETURNING 1",
    ]
    for statement in tries:
        assert await attempt(app_engine, alice, statement, **ids) == DENIED, statement


async def test_templates_are_system_work_alone(app_engine: AsyncEngine, runtime: Runtime, alice, alices):
    # Written as system work (the migration seeds the defaults; an operator's job may change them).
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text(
                "INSERT INTO notifications.templates (id, type, channel, language, body_text)"
                " VALUES (:id, 'digest', 'email', 'eo', 'Resumo') ON CONFLICT DO NOTHING"
            ),
            {"id": uuid7()},
        )
    count = "SELECT count(*) FROM notifications.templates WHERE type = 'digest' AND language = 'eo'"
    async with system_transaction(runtime.system_engine) as db:
        assert (await db.execute(text(count))).scalar_one() == 1
    # Requests never render a template: the server's role reads none, signed in or not.
    assert await attempt(app_engine, alice, count) == DENIED
    assert await attempt(app_engine, None, count) == DENIED
    tries = [
        "UPDATE notifications.templates SET body_text = 'Click http://evil.example' RETURNING 1",
        "DELETE FROM notifications.templates RETURNING 1",
        "INSERT INTO notifications.templates (id, type, channel, body_text)"
        " VALUES (gen_random_uuid(), 'system', 'sms', 'x') RETURNING 1",
    ]
    for statement in tries:
        assert await attempt(app_engine, alice, statement) == DENIED, statement


async def test_the_outbox_cursor_is_system_work_alone(app_engine: AsyncEngine, runtime: Runtime, alice, alices):
    assert await attempt(app_engine, alice, "SELECT count(*) FROM notifications.consumer") == DENIED
    assert (
        await attempt(
            app_engine, alice, "INSERT INTO notifications.consumer (name, position) VALUES ('mine', 0) RETURNING 1"
        )
        == DENIED
    )
    # The worker's role outside a system transaction is refused by the policies too.
    assert await attempt(runtime.system_engine.engine, None, "SELECT count(*) FROM notifications.consumer") == 0
    refused = "INSERT INTO notifications.consumer (name, position) VALUES ('rogue', 0) RETURNING 1"
    assert await attempt(runtime.system_engine.engine, None, refused) == POLICY


async def test_the_worker_writes_notifications_only_in_system_work(runtime: Runtime, alice, alices):
    """`rapport_worker` without `rapport.system` (what `act_as` leaves, for instance) is
    not system work: it inserts no notification and reads no one's."""
    insert = text(
        "INSERT INTO notifications.notifications (id, user_id, type, category, title)"
        " VALUES (:id, :alice, 'system', 'system', 'Forged')"
    )
    with pytest.raises(DBAPIError, match="row-level security"):
        async with runtime.system_engine.engine.begin() as db:
            await db.execute(insert, {"id": uuid7(), "alice": alice.user_id})
    async with runtime.system_engine.engine.begin() as db:
        seen = (await db.execute(text("SELECT count(*) FROM notifications.notifications"))).scalar_one()
    assert seen == 0


async def test_register_push_subscription_acts_for_the_caller_alone(
    app_engine: AsyncEngine, runtime: Runtime, client, alice, mallory, alices
):
    """The definer function behind POST /v1/push-subscriptions, called straight: it
    registers for the transaction's user only, with a device of theirs only; with no
    user set it refuses, and the worker's role may not call it."""
    register = (
        "SELECT created FROM notifications.register_push_subscription("
        ":id, 'apns', NULL, NULL, NULL, :token, CAST(:device AS uuid), NULL)"
    )
    phone = await client.post(
        "/v1/devices", headers=alice.headers, json={"name": "Alice's phone", "device_type": "mobile", "platform": "ios"}
    )
    alices_device = phone.json()["id"]

    as_mallory = await attempt(app_engine, mallory, register, id=str(uuid7()), token="m" * 64, device=None)
    with pytest.raises(DBAPIError) as refused:
        async with user_transaction(app_engine, UUID(mallory.user_id)) as db:
            await db.execute(text(register), {"id": uuid7(), "token": "n" * 64, "device": alices_device})
    cause = refused.value.orig.__cause__ if refused.value.orig is not None else None
    assert isinstance(cause, asyncpg.PostgresError)
    assert (cause.sqlstate, str(cause)) == ("RN404", "device-not-found")
    by_nobody = await attempt(app_engine, None, register, id=str(uuid7()), token="o" * 64, device=None)
    by_worker = await attempt(
        runtime.system_engine.engine, None, register, id=str(uuid7()), token="p" * 64, device=None
    )

    assert as_mallory is True
    assert by_nobody == DENIED  # the function itself refuses (insufficient_privilege)
    assert by_worker == DENIED  # no EXECUTE for rapport_worker
    async with system_transaction(runtime.system_engine) as db:
        owners = (
            await db.execute(
                text("SELECT token, user_id::text FROM notifications.push_subscriptions WHERE provider = 'apns'")
            )
        ).all()
    assert [tuple(row) for row in owners] == [("m" * 64, mallory.user_id)]
