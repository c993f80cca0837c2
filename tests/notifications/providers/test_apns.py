"""APNs over HTTP/2 against a stand-in that checks the provider token (ES256, kid, iss)
and the apns-* headers, and answers for removed apps as APNs does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from rapport.notifications._providers import Providers, PushMessage, PushTarget, providers_from
from tests.notifications.fakes import ApnsService, provider_settings
from tests.support import make_settings

MESSAGE = PushMessage(
    title="Alice",
    body="mentioned you in Climbing",
    url="https://rapport.test/c/9",
    tag="mention:9",
    data={"conversation_id": "9"},
    ttl_s=3600,
    urgency="normal",
)
DEVICE = PushTarget(provider="apns", token="a1b2c3d4" * 8)


@pytest.fixture
async def apns_providers(apns: ApnsService, http: httpx.AsyncClient) -> AsyncIterator[Providers]:
    providers = providers_from(make_settings(**provider_settings(apns=apns)), http)
    yield providers
    await providers.aclose()


async def test_the_push_reaches_apns_over_http2_with_its_headers(apns: ApnsService, apns_providers: Providers) -> None:
    outcome = await apns_providers.push.send(DEVICE, MESSAGE)

    assert outcome.delivered and outcome.http_status == 200
    [received] = apns.received
    assert received.http_version == "2"
    assert outcome.provider_id == received.apns_id
    assert received.device_token == DEVICE.token
    assert received.headers["apns-topic"] == "org.rapport.app"
    assert received.headers["apns-push-type"] == "alert"
    assert received.headers["apns-priority"] == "10"
    assert received.headers["apns-collapse-id"] == "mention:9"
    assert received.payload == {
        "aps": {
            "alert": {"title": "Alice", "body": "mentioned you in Climbing"},
            "sound": "default",
            "thread-id": "mention:9",
        },
        "data": {"conversation_id": "9"},
        "url": "https://rapport.test/c/9",
    }


async def test_a_low_urgency_push_goes_at_priority_5(apns: ApnsService, apns_providers: Providers) -> None:
    await apns_providers.push.send(DEVICE, PushMessage("t", "b", None, None, {}, urgency="low"))

    assert apns.received[0].headers["apns-priority"] == "5"
    assert "apns-collapse-id" not in apns.received[0].headers


async def test_one_provider_token_serves_many_pushes(apns: ApnsService, apns_providers: Providers) -> None:
    for _ in range(3):
        await apns_providers.push.send(DEVICE, MESSAGE)

    assert len(set(apns.provider_tokens_seen)) == 1


async def test_an_expired_provider_token_is_made_anew(apns: ApnsService, apns_providers: Providers) -> None:
    await apns_providers.push.send(DEVICE, MESSAGE)
    apns.expire_provider_tokens()

    outcome = await apns_providers.push.send(DEVICE, MESSAGE)

    assert outcome.delivered and len(apns.received) == 2
    assert len(set(apns.provider_tokens_seen)) == 2


@pytest.mark.parametrize(("reason", "status"), [("Unregistered", 410), ("BadDeviceToken", 400)])
async def test_a_token_apns_no_longer_knows_is_gone(
    apns: ApnsService, apns_providers: Providers, reason: str, status: int
) -> None:
    apns.mark_gone(DEVICE.token or "", reason)

    outcome = await apns_providers.push.send(DEVICE, MESSAGE)

    assert (outcome.delivered, outcome.http_status, outcome.gone, outcome.retry) == (False, status, True, False)
    assert outcome.detail == reason


@pytest.mark.parametrize("status", [429, 503])
async def test_an_overloaded_apns_is_worth_another_try(
    apns: ApnsService, apns_providers: Providers, status: int
) -> None:
    apns.fail_next(status)

    outcome = await apns_providers.push.send(DEVICE, MESSAGE)

    assert (outcome.delivered, outcome.gone, outcome.retry) == (False, False, True)


async def test_a_key_apns_does_not_know_is_refused(apns: ApnsService, http: httpx.AsyncClient) -> None:
    impostor = ApnsService()  # its key only; never started
    settings = make_settings(**{**provider_settings(apns=apns), "apns_private_key": impostor.private_key_pem})
    providers = providers_from(settings, http)
    try:
        outcome = await providers.push.send(DEVICE, MESSAGE)
    finally:
        await providers.aclose()

    assert (outcome.delivered, outcome.http_status, outcome.retry) == (False, 403, False)
    assert outcome.detail == "InvalidProviderToken" and apns.received == []


async def test_the_key_can_be_a_p8_file(apns: ApnsService, http: httpx.AsyncClient, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / f"AuthKey_{apns.key_id}.p8"
    path.write_text(apns.private_key_pem)
    settings = make_settings(**{**provider_settings(apns=apns), "apns_private_key": str(path)})
    providers = providers_from(settings, http)
    try:
        assert (await providers.push.send(DEVICE, MESSAGE)).delivered
    finally:
        await providers.aclose()


def test_a_key_that_is_not_a_key_is_refused_at_start(http: httpx.AsyncClient, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        apns_key_id="K", apns_team_id="T", apns_topic="org.rapport.app", apns_private_key=str(tmp_path / "missing.p8")
    )

    with pytest.raises(ValueError, match="RAPPORT_APNS_PRIVATE_KEY"):
        providers_from(settings, http)
