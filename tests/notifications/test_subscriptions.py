"""Push subscriptions: POST /v1/push-subscriptions (a browser's PushSubscription JSON, or
an FCM or APNs device token; 201 new, 200 again), GET (list, one), DELETE, the system's
deactivation when the push service says a subscription is gone, and
GET /v1/push/vapid-public-key."""

from __future__ import annotations

import base64
import secrets
from uuid import UUID

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import text

from rapport.kernel.actor import Actor
from rapport.kernel.db import system_transaction, user_transaction
from rapport.notifications import service
from rapport.notifications.schemas import WebPushKeys, WebPushSubscriptionIn
from rapport.notifications.service import (
    EndpointRule,
    PushEndpointRefused,
    WebPushNotConfigured,
    application_server_key,
)
from tests.support import make_settings, problem_type

pytestmark = pytest.mark.module_database

SUBSCRIPTIONS = "/v1/push-subscriptions"
VAPID_KEY = "/v1/push/vapid-public-key"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def browser_keys() -> dict[str, str]:
    """What a browser's PushSubscription carries: its P-256 public key and auth secret."""
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return {"p256dh": b64url(point), "auth": b64url(secrets.token_bytes(16))}


def browser_subscription(endpoint: str | None = None) -> dict:
    """`PushSubscription.toJSON()`, as a browser gives it."""
    return {
        "endpoint": endpoint or f"https://push.example.net/send/{secrets.token_urlsafe(24)}",
        "expirationTime": None,
        "keys": browser_keys(),
    }


async def register(client, persona, body):
    return await client.post(SUBSCRIPTIONS, headers=persona.headers, json=body)


async def listed(client, persona):
    response = await client.get(SUBSCRIPTIONS, headers=persona.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def stored_keys(runtime, subscription_id):
    async with system_transaction(runtime.system_engine) as db:
        row = (
            await db.execute(
                text("SELECT p256dh, auth, user_id FROM notifications.push_subscriptions WHERE id = :id"),
                {"id": subscription_id},
            )
        ).one()
    return row.p256dh, row.auth, str(row.user_id)


async def test_a_browser_registers_its_web_push_subscription(client, runtime, alice):
    body = browser_subscription()

    response = await register(client, alice, body)

    assert response.status_code == 201, response.text
    created = response.json()
    assert UUID(created["id"]).version == 7
    assert (created["provider"], created["endpoint"], created["token"]) == ("webpush", body["endpoint"], None)
    assert created["is_active"] is True and created["last_used_at"] is None
    assert await stored_keys(runtime, created["id"]) == (body["keys"]["p256dh"], body["keys"]["auth"], alice.user_id)


async def test_the_browser_s_user_agent_is_kept_unless_the_body_names_one(client, alice):
    headers = {**alice.headers, "User-Agent": "Firefox/140.0"}

    from_header = await client.post(SUBSCRIPTIONS, headers=headers, json=browser_subscription())
    from_body = await client.post(SUBSCRIPTIONS, headers=headers, json={**browser_subscription(), "user_agent": "Tab"})

    assert from_header.json()["user_agent"] == "Firefox/140.0"
    assert from_body.json()["user_agent"] == "Tab"


async def test_a_long_user_agent_header_is_cut_to_what_is_kept(client, alice):
    headers = {**alice.headers, "User-Agent": "Mozilla/5.0 " + "x" * 600}

    response = await client.post(SUBSCRIPTIONS, headers=headers, json=browser_subscription())

    assert response.status_code == 201, response.text
    assert len(response.json()["user_agent"]) == 500


async def test_registering_the_same_endpoint_again_answers_200_with_fresh_keys(client, runtime, alice):
    body = browser_subscription()
    first = (await register(client, alice, body)).json()
    renewed = {**body, "keys": browser_keys()}

    again = await register(client, alice, renewed)

    assert again.status_code == 200, again.text
    assert again.json()["id"] == first["id"]
    assert (await stored_keys(runtime, first["id"]))[:2] == (renewed["keys"]["p256dh"], renewed["keys"]["auth"])
    assert len(await listed(client, alice)) == 1


@pytest.mark.parametrize("provider", ["fcm", "apns"])
async def test_a_native_app_registers_its_device_token_once(client, alice, provider):
    token = secrets.token_hex(32)

    first = await register(client, alice, {"provider": provider, "token": token})
    again = await register(client, alice, {"provider": provider, "token": token})

    assert first.status_code == 201, first.text
    assert (first.json()["provider"], first.json()["token"], first.json()["endpoint"]) == (provider, token, None)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


async def test_one_token_under_two_providers_is_two_subscriptions(client, alice):
    token = secrets.token_hex(32)

    fcm = await register(client, alice, {"provider": "fcm", "token": token})
    apns = await register(client, alice, {"provider": "apns", "token": token})

    assert (fcm.status_code, apns.status_code) == (201, 201)
    assert fcm.json()["id"] != apns.json()["id"]


async def test_a_subscription_names_one_of_your_devices(client, alice, bob):
    phone = await client.post(
        "/v1/devices",
        headers=alice.headers,
        json={"name": "Alice's phone", "device_type": "mobile", "platform": "android"},
    )
    bobs = await client.post(
        "/v1/devices", headers=bob.headers, json={"name": "Bob's phone", "device_type": "mobile", "platform": "ios"}
    )
    token = {"provider": "fcm", "token": secrets.token_hex(32)}

    linked = await register(client, alice, {**token, "device_id": phone.json()["id"]})
    refused = await register(client, alice, {"provider": "fcm", "token": "x" * 40, "device_id": bobs.json()["id"]})

    assert linked.status_code == 201, linked.text
    assert linked.json()["device_id"] == phone.json()["id"]
    assert refused.status_code == 404
    assert problem_type(refused) == "device-not-found"


async def test_subscriptions_list_newest_first_and_read_one_by_one(client, alice):
    older = (await register(client, alice, browser_subscription())).json()
    newer = (await register(client, alice, {"provider": "apns", "token": secrets.token_hex(32)})).json()

    assert [item["id"] for item in await listed(client, alice)] == [newer["id"], older["id"]]
    one = await client.get(f"{SUBSCRIPTIONS}/{older['id']}", headers=alice.headers)
    assert one.status_code == 200
    assert one.json() == older


async def test_a_deleted_subscription_is_gone(client, alice):
    created = (await register(client, alice, browser_subscription())).json()

    deleted = await client.delete(f"{SUBSCRIPTIONS}/{created['id']}", headers=alice.headers)

    assert deleted.status_code == 204
    assert await listed(client, alice) == []
    again = await client.delete(f"{SUBSCRIPTIONS}/{created['id']}", headers=alice.headers)
    assert again.status_code == 404
    assert problem_type(again) == "push-subscription-not-found"


async def test_a_subscription_the_push_service_says_is_gone_is_deactivated_until_registered_again(
    client, runtime, alice
):
    body = browser_subscription()
    created = (await register(client, alice, body)).json()

    async with system_transaction(runtime.system_engine) as db:
        assert await service.deactivate(db, subscription_id=UUID(created["id"])) is True
        assert await service.deactivate(db, subscription_id=UUID(created["id"])) is False

    assert [item["is_active"] for item in await listed(client, alice)] == [False]
    again = await register(client, alice, {**body, "keys": browser_keys()})
    assert again.status_code == 200
    assert again.json()["is_active"] is True


async def test_an_endpoint_belongs_to_whoever_registered_it_last(client, runtime, alice, bob):
    """One browser, signed in to alice's account and then to bob's: its pushes are bob's now."""
    body = browser_subscription()
    alices = (await register(client, alice, body)).json()

    bobs = await register(client, bob, {**body, "keys": browser_keys()})

    assert bobs.status_code == 201, bobs.text
    assert bobs.json()["id"] == alices["id"]
    assert await listed(client, alice) == []
    assert [item["endpoint"] for item in await listed(client, bob)] == [body["endpoint"]]
    assert (await stored_keys(runtime, alices["id"]))[2] == bob.user_id


async def test_a_person_has_at_most_so_many_subscriptions(client, alice, monkeypatch):
    from rapport.notifications import _subscriptions

    monkeypatch.setattr(_subscriptions, "MAX_SUBSCRIPTIONS", 3)
    tokens = [secrets.token_hex(32) for _ in range(3)]
    for token in tokens:
        assert (await register(client, alice, {"provider": "fcm", "token": token})).status_code == 201

    refused = await register(client, alice, {"provider": "fcm", "token": secrets.token_hex(32)})
    again = await register(client, alice, {"provider": "fcm", "token": tokens[0]})

    assert refused.status_code == 409
    assert problem_type(refused) == "too-many-push-subscriptions"
    assert again.status_code == 200


def _without(body: dict, key: str) -> dict:
    return {name: value for name, value in body.items() if name != key}


@pytest.mark.parametrize(
    "body",
    [
        _without(browser_subscription(), "keys"),
        {**browser_subscription(), "keys": {"p256dh": b64url(b"\x04" + b"x" * 63), "auth": b64url(b"a" * 16)}},
        {**browser_subscription(), "keys": {"p256dh": b64url(b"\x03" + b"x" * 64), "auth": b64url(b"a" * 16)}},
        {**browser_subscription(), "keys": {**browser_keys(), "auth": b64url(b"a" * 15)}},
        {**browser_subscription(), "keys": {**browser_keys(), "auth": "not base64!"}},
        {**browser_subscription(), "endpoint": "ftp://push.example.net/x"},
        {**browser_subscription(), "endpoint": "https://"},
        {**browser_subscription(), "sound": "ding"},
        {"provider": "webpush", "token": secrets.token_hex(32)},
        {"provider": "pigeon", "token": secrets.token_hex(32)},
        {"provider": "fcm", "token": "has spaces in it"},
        {"provider": "fcm"},
        {},
    ],
)
async def test_bad_subscriptions_are_refused(client, alice, body):
    response = await register(client, alice, body)

    assert response.status_code == 422, response.text
    assert problem_type(response) == "validation-error"


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://fcm.googleapis.com/fcm/send/abc",  # not https
        "https://10.0.0.7/send/abc",  # an address of the server's own network
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://fcm.googleapis.com.evil.example/send/abc",  # the name only starts like one
        "https://evilfcm.googleapis.com.example/send/abc",
    ],
)
async def test_a_production_server_pushes_only_to_the_browsers_push_services(runtime, alice, endpoint):
    production = EndpointRule.for_settings(make_settings(environment="production"))
    browser = browser_subscription(endpoint)
    subscription = WebPushSubscriptionIn(endpoint=browser["endpoint"], keys=WebPushKeys(**browser["keys"]))

    with pytest.raises(PushEndpointRefused):
        async with user_transaction(runtime.engine, UUID(alice.user_id)) as db:
            await service.do_register_subscription(
                db, actor=Actor(UUID(alice.user_id)), subscription=subscription, user_agent=None, endpoints=production
            )


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/abc",
        "https://updates.push.services.mozilla.com/wpush/v2/abc",
        "https://web.push.apple.com/QGuQyavXutnMH",
        "https://wns2-by3p.notify.windows.com/w/?token=abc",
    ],
)
def test_the_browsers_push_services_are_admitted_in_production(endpoint):
    assert EndpointRule.for_settings(make_settings(environment="production")).admits(endpoint)


async def test_a_development_server_accepts_a_local_http_push_service(client, alice):
    response = await register(client, alice, browser_subscription("http://127.0.0.1:8030/push/abc"))

    assert response.status_code == 201, response.text


async def test_the_vapid_key_of_a_server_without_one_is_not_found(client):
    response = await client.get(VAPID_KEY)

    assert response.status_code == 404
    assert problem_type(response) == "web-push-not-configured"


def test_the_vapid_public_key_is_the_configured_one_or_that_of_the_private_key():
    key = ec.generate_private_key(ec.SECP256R1())
    public = b64url(
        key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    private = b64url(key.private_numbers().private_value.to_bytes(32, "big"))

    assert application_server_key(make_settings(vapid_public_key=public)) == public
    assert application_server_key(make_settings(vapid_private_key=private)) == public
    with pytest.raises(WebPushNotConfigured):
        application_server_key(make_settings())


async def test_subscriptions_need_a_signed_in_caller(client):
    assert (await client.post(SUBSCRIPTIONS, json=browser_subscription())).status_code == 401
    assert (await client.get(SUBSCRIPTIONS)).status_code == 401
