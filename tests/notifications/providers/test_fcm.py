"""FCM HTTP v1 against a stand-in that checks the service-account assertion at its token
endpoint, the bearer on each send, and the message's shape."""

from __future__ import annotations

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from rapport.notifications._providers import Providers, PushMessage, PushTarget, providers_from
from tests.notifications.fakes import FcmService, provider_settings
from tests.support import make_settings

MESSAGE = PushMessage(
    title="Carol",
    body="sent you a contact request",
    url="https://rapport.test/contacts",
    tag="contact_request",
    data={"request_id": "7"},
    ttl_s=600,
    urgency="high",
)
DEVICE = PushTarget(provider="fcm", token="fcm-device-token-1")


def providers(fcm: FcmService, http: httpx.AsyncClient, **overrides: object) -> Providers:
    return providers_from(make_settings(**{**provider_settings(fcm=fcm), **overrides}), http)


async def test_the_message_reaches_fcm_with_a_token_from_the_service_account(
    fcm: FcmService, http: httpx.AsyncClient
) -> None:
    outcome = await providers(fcm, http).push.send(DEVICE, MESSAGE)

    assert outcome.delivered and outcome.http_status == 200
    assert outcome.provider_id == f"projects/{fcm.project_id}/messages/0:1"
    [received] = fcm.received
    assert received.message["token"] == "fcm-device-token-1"
    assert received.message["notification"] == {"title": "Carol", "body": "sent you a contact request"}
    assert received.message["data"] == {"request_id": "7", "url": "https://rapport.test/contacts"}
    assert received.message["android"] == {
        "ttl": "600s",
        "priority": "HIGH",
        "collapse_key": "contact_request",
        "notification": {"tag": "contact_request"},
    }
    assert received.message["apns"]["headers"]["apns-collapse-id"] == "contact_request"


async def test_one_access_token_serves_many_sends(fcm: FcmService, http: httpx.AsyncClient) -> None:
    sender = providers(fcm, http).push

    for _ in range(3):
        assert (await sender.send(DEVICE, MESSAGE)).delivered

    assert fcm.token_requests == 1
    assert len({received.access_token for received in fcm.received}) == 1


async def test_a_revoked_access_token_is_replaced_and_the_send_goes_through(
    fcm: FcmService, http: httpx.AsyncClient
) -> None:
    sender = providers(fcm, http).push
    await sender.send(DEVICE, MESSAGE)
    fcm.revoke_access_tokens()

    outcome = await sender.send(DEVICE, MESSAGE)

    assert outcome.delivered and fcm.token_requests == 2 and len(fcm.received) == 2


async def test_an_unregistered_token_is_gone(fcm: FcmService, http: httpx.AsyncClient) -> None:
    fcm.mark_gone("fcm-device-token-1")

    outcome = await providers(fcm, http).push.send(DEVICE, MESSAGE)

    assert (outcome.delivered, outcome.http_status, outcome.gone, outcome.retry) == (False, 404, True, False)
    assert outcome.detail.startswith("UNREGISTERED")


@pytest.mark.parametrize("status", [429, 503])
async def test_an_overloaded_fcm_is_worth_another_try(fcm: FcmService, http: httpx.AsyncClient, status: int) -> None:
    fcm.fail_next(status)

    outcome = await providers(fcm, http).push.send(DEVICE, MESSAGE)

    assert (outcome.delivered, outcome.gone, outcome.retry) == (False, False, True)


async def test_a_service_account_whose_key_fcm_does_not_know_gets_no_token(
    fcm: FcmService, http: httpx.AsyncClient
) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    account = {**fcm.service_account(), "private_key": pem}

    outcome = await providers(fcm, http, fcm_service_account_json=orjson.dumps(account).decode()).push.send(
        DEVICE, MESSAGE
    )

    assert (outcome.delivered, outcome.http_status, outcome.retry) == (False, 400, False)
    assert "invalid_grant" in outcome.detail and fcm.received == []


async def test_the_service_account_can_be_a_file(fcm: FcmService, http: httpx.AsyncClient, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "service-account.json"
    path.write_bytes(orjson.dumps(fcm.service_account()))
    settings = make_settings(fcm_service_account_file=path, fcm_endpoint=fcm.url)

    assert (await providers_from(settings, http).push.send(DEVICE, MESSAGE)).delivered
