"""Web Push against a push service that checks VAPID and decrypts the payload as the
browser does: what lands in `received` is what the service worker would read."""

from __future__ import annotations

import re

import httpx
import pytest

from rapport.notifications._providers import Providers, PushMessage, PushTarget, providers_from
from rapport.notifications.vapid import VapidKeyPair, new_key_pair
from tests.notifications.fakes import BrowserSubscription, PushService, closed_port_url, provider_settings
from tests.support import make_settings

MESSAGE = PushMessage(
    title="Bob",
    body="Are you coming tonight?",
    url="https://rapport.test/c/1",
    tag="conversation:1",
    data={"conversation_id": "1"},
    ttl_s=3600,
    urgency="high",
)


def providers(vapid_keys: VapidKeyPair, http: httpx.AsyncClient) -> Providers:
    return providers_from(make_settings(**provider_settings(vapid_private_key=vapid_keys.private_key)), http)


def target(subscription: BrowserSubscription) -> PushTarget:
    return PushTarget(
        provider="webpush", endpoint=subscription.endpoint, p256dh=subscription.p256dh, auth=subscription.auth
    )


async def test_the_browser_reads_the_push_the_service_accepted(
    push_service: PushService, vapid_keys: VapidKeyPair, http: httpx.AsyncClient
) -> None:
    subscription = push_service.subscribe(application_server_key=vapid_keys.public_key)

    outcome = await providers(vapid_keys, http).push.send(target(subscription), MESSAGE)

    assert outcome.delivered and outcome.http_status == 201 and not outcome.gone and not outcome.retry
    assert outcome.provider_id is not None and outcome.provider_id.startswith(f"{push_service.url}/message/")
    [push] = push_service.received
    assert push.json() == {
        "title": "Bob",
        "body": "Are you coming tonight?",
        "url": "https://rapport.test/c/1",
        "tag": "conversation:1",
        "data": {"conversation_id": "1"},
    }


async def test_the_push_carries_ttl_urgency_topic_and_a_vapid_token_for_the_service(
    push_service: PushService, vapid_keys: VapidKeyPair, http: httpx.AsyncClient
) -> None:
    subscription = push_service.subscribe(application_server_key=vapid_keys.public_key)

    await providers(vapid_keys, http).push.send(target(subscription), MESSAGE)

    [push] = push_service.received
    assert (push.ttl, push.urgency) == (3600, "high")
    # "conversation:1" is not in the Topic alphabet: a digest of it, the same every time.
    assert push.topic is not None and re.fullmatch(r"[A-Za-z0-9_-]{32}", push.topic)
    assert push.vapid_key == vapid_keys.public_key
    assert push.vapid_claims["aud"] == push_service.url
    assert push.vapid_claims["sub"] == "mailto:ops@rapport.test"


async def test_a_tag_in_the_topic_alphabet_is_the_topic_itself(
    push_service: PushService, vapid_keys: VapidKeyPair, http: httpx.AsyncClient
) -> None:
    subscription = push_service.subscribe()
    sender = providers(vapid_keys, http).push

    await sender.send(target(subscription), PushMessage("t", "b", None, "mention-42", {}))
    await sender.send(target(subscription), PushMessage("t", "b", None, "conversation:1", {}))
    await sender.send(target(subscription), PushMessage("t", "b", None, "conversation:1", {}))

    topics = [push.topic for push in push_service.received]
    assert topics[0] == "mention-42"
    assert topics[1] == topics[2] != "conversation:1"


async def test_one_vapid_token_serves_many_pushes_to_one_service(
    push_service: PushService, vapid_keys: VapidKeyPair, http: httpx.AsyncClient
) -> None:
    sender = providers(vapid_keys, http).push
    first, second = push_service.subscribe(), push_service.subscribe()

    await sender.send(target(first), MESSAGE)
    await sender.send(target(second), MESSAGE)

    assert push_service.received[0].authorization == push_service.received[1].authorization


async def test_a_body_too_long_for_one_push_is_shortened_and_still_decrypts(
    push_service: PushService, vapid_keys: VapidKeyPair, http: httpx.AsyncClient
) -> None:
    subscription = push_service.subscribe()
    long = PushMessage(title="Bob", body="é" * 5000, url=None, tag=None, data={})

    outcome = await providers(vapid_keys, http).push.send(target(subscription), long)

    assert outcome.delivered
    body = push_service.received[0].json()["body"]
    assert body.endswith("…") and 1000 < len(body) < 5000


@pytest.mark.parametrize("status", [404, 410])
async def test_a_subscription_the_service_forgot_is_gone(
    push_service: PushService, vapid_keys: VapidKeyPair, http: httpx.AsyncClient, status: int
) -> None:
    subscription = push_service.subscribe()
    push_service.mark_gone(subscription.endpoint, status)

    outcome = await providers(vapid_keys, http).push.send(target(subscription), MESSAGE)

    assert (outcome.delivered, outcome.gone, outcome.retry, outcome.http_status) == (False, True, False, status)
    assert push_service.received == []


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_an_overloaded_service_is_worth_another_try(
    push_service: PushService, vapid_keys: VapidKeyPair, http: httpx.AsyncClient, status: int
) -> None:
    subscription = push_service.subscribe()
    push_service.fail_next(status)
    sender = providers(vapid_keys, http).push

    failed = await sender.send(target(subscription), MESSAGE)
    again = await sender.send(target(subscription), MESSAGE)

    assert (failed.delivered, failed.gone, failed.retry) == (False, False, True)
    assert again.delivered


async def test_an_unreachable_service_is_worth_another_try(vapid_keys: VapidKeyPair, http: httpx.AsyncClient) -> None:
    subscription = BrowserSubscription(
        endpoint=f"{closed_port_url()}/push/x",
        private_key=new_subscription_key(),
        auth_secret=b"0123456789abcdef",
        application_server_key=None,
    )

    outcome = await providers(vapid_keys, http).push.send(target(subscription), MESSAGE)

    assert (outcome.delivered, outcome.gone, outcome.retry, outcome.http_status) == (False, False, True, None)


async def test_a_subscription_made_for_another_server_key_is_refused(
    push_service: PushService, vapid_keys: VapidKeyPair, http: httpx.AsyncClient
) -> None:
    subscription = push_service.subscribe(application_server_key=new_key_pair().public_key)

    outcome = await providers(vapid_keys, http).push.send(target(subscription), MESSAGE)

    assert (outcome.delivered, outcome.http_status, outcome.gone, outcome.retry) == (False, 403, False, False)


async def test_keys_no_browser_could_make_mean_the_subscription_is_gone(
    push_service: PushService, vapid_keys: VapidKeyPair, http: httpx.AsyncClient
) -> None:
    subscription = push_service.subscribe()
    broken = PushTarget(provider="webpush", endpoint=subscription.endpoint, p256dh="AAAA", auth=subscription.auth)

    outcome = await providers(vapid_keys, http).push.send(broken, MESSAGE)

    assert (outcome.delivered, outcome.gone, outcome.retry) == (False, True, False)
    assert push_service.received == [] and push_service.refused == []


def new_subscription_key():  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())
