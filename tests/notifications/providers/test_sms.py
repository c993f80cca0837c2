"""SMS in Twilio's Messages API format against a stand-in that checks basic auth and the
form, and honours the idempotency key."""

from __future__ import annotations

import httpx
import pytest

from rapport.notifications._providers import SmsSender, providers_from
from tests.notifications.fakes import SmsService, provider_settings
from tests.support import make_settings


def sender(sms: SmsService, http: httpx.AsyncClient, **overrides: object) -> SmsSender:
    providers = providers_from(make_settings(**{**provider_settings(sms=sms), **overrides}), http)
    assert providers.sms is not None
    return providers.sms


async def test_the_sms_is_accepted_with_its_sid(sms: SmsService, http: httpx.AsyncClient) -> None:
    outcome = await sender(sms, http).send("+33612345678", "Your code is 123456", idempotency_key="n-1")

    assert outcome.delivered and outcome.http_status == 201 and outcome.detail == "queued"
    [received] = sms.received
    assert outcome.provider_id == received.sid
    assert (received.to, received.sender, received.body) == ("+33612345678", "+15005550006", "Your code is 123456")
    assert received.idempotency_key == "n-1"


async def test_the_same_idempotency_key_sends_once(sms: SmsService, http: httpx.AsyncClient) -> None:
    first = await sender(sms, http).send("+33612345678", "Hello", idempotency_key="n-2")
    again = await sender(sms, http).send("+33612345678", "Hello", idempotency_key="n-2")

    assert first.delivered and again.delivered and first.provider_id == again.provider_id
    assert len(sms.received) == 1


async def test_a_messaging_service_sends_as_itself(sms: SmsService, http: httpx.AsyncClient) -> None:
    service_sid = "MG" + "0" * 32

    await sender(sms, http, sms_sender=service_sid).send("+33612345678", "Hello", idempotency_key="n-3")

    assert sms.received[0].sender == service_sid


async def test_a_wrong_token_is_refused_and_not_retried(sms: SmsService, http: httpx.AsyncClient) -> None:
    outcome = await sender(sms, http, sms_token="wrong").send("+33612345678", "Hello", idempotency_key="n-4")

    assert (outcome.delivered, outcome.http_status, outcome.retry, outcome.gone) == (False, 401, False, False)
    assert sms.received == []


async def test_a_number_that_said_stop_is_gone(sms: SmsService, http: httpx.AsyncClient) -> None:
    sms.mark_gone("+33612345678")

    outcome = await sender(sms, http).send("+33612345678", "Hello", idempotency_key="n-5")

    assert (outcome.delivered, outcome.http_status, outcome.gone, outcome.retry) == (False, 400, True, False)
    assert outcome.detail.startswith("21610")


@pytest.mark.parametrize("status", [429, 500])
async def test_an_overloaded_provider_is_worth_another_try(
    sms: SmsService, http: httpx.AsyncClient, status: int
) -> None:
    sms.fail_next(status)

    outcome = await sender(sms, http).send("+33612345678", "Hello", idempotency_key="n-6")

    assert (outcome.delivered, outcome.gone, outcome.retry) == (False, False, True)
