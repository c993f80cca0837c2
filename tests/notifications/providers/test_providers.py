"""`providers_from`: what the settings configure is used, the rest is left out."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import structlog

from rapport.notifications._providers import PushMessage, PushTarget, providers_from
from rapport.notifications.vapid import VapidKeyPair
from tests.notifications.fakes import ApnsService, FcmService, PushService, SmsService, provider_settings
from tests.support import make_settings

MESSAGE = PushMessage("Bob", "Hi", None, None, {})


@contextmanager
def every_log() -> Iterator[list[dict[str, Any]]]:
    """What is logged, at every level: an app started earlier in this process filters
    below its RAPPORT_LOG_LEVEL, and capture_logs alone keeps that filter."""
    previous = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with structlog.testing.capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**previous)


async def test_nothing_configured_sends_nothing_and_says_why(http: httpx.AsyncClient) -> None:
    with every_log() as logs:
        providers = providers_from(make_settings(), http)

    assert providers.sms is None and providers.vapid_public_key is None
    outcome = await providers.push.send(PushTarget(provider="fcm", token="t"), MESSAGE)
    assert (outcome.delivered, outcome.retry, outcome.gone) == (False, False, False)
    assert outcome.detail == "fcm is not configured"
    disabled = {entry["provider"] for entry in logs if entry["event"] == "notifications.provider_disabled"}
    assert disabled == {"webpush", "fcm", "apns", "sms"}


async def test_each_target_goes_to_its_own_provider(
    push_service: PushService,
    fcm: FcmService,
    apns: ApnsService,
    sms: SmsService,
    vapid_keys: VapidKeyPair,
    http: httpx.AsyncClient,
) -> None:
    settings = make_settings(**provider_settings(vapid_private_key=vapid_keys.private_key, fcm=fcm, apns=apns, sms=sms))
    providers = providers_from(settings, http)
    subscription = push_service.subscribe(application_server_key=providers.vapid_public_key)
    try:
        assert all(providers.push_configured(name) for name in ("webpush", "fcm", "apns"))
        webpush = PushTarget("webpush", subscription.endpoint, subscription.p256dh, subscription.auth)
        for target in (webpush, PushTarget("fcm", token="f"), PushTarget("apns", token="a" * 64)):
            assert (await providers.push.send(target, MESSAGE)).delivered
        assert providers.sms is not None
        assert (await providers.sms.send("+33612345678", "Hi", idempotency_key="k")).delivered
    finally:
        await providers.aclose()

    assert providers.vapid_public_key == vapid_keys.public_key
    assert [len(push_service.received), len(fcm.received), len(apns.received), len(sms.received)] == [1, 1, 1, 1]
