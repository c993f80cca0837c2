"""What a deployment decides for every number: the countries it sends SMS to, and how
many SMS it sends a day. Both answer the same whether or not a number has an account."""

from __future__ import annotations

import httpx
import pytest
from aiosmtpd.controller import Controller

from rapport.config import Settings
from tests.identity.phone_support import *  # noqa: F403
from tests.identity.phone_support import (
    CAROL_PHONE,
    FORGOT,
    LOGIN,
    NOBODY_PHONE,
    REGISTER,
    SMS_LOGIN,
    US_PHONE,
    ZOE_PHONE,
    Phones,
    register,
    registered,
    sms_settings,
)
from tests.notifications.fakes import SmsService
from tests.support import PASSWORD, problem_type

pytestmark = pytest.mark.module_database

DAILY_CAP = 6


@pytest.fixture(scope="module")
def module_settings(smtp_server: tuple[Controller, object], sms: SmsService) -> Settings:
    controller, _ = smtp_server
    return sms_settings(controller, sms, sms_allowed_countries="FR,DE", sms_per_day=DAILY_CAP)


async def test_a_number_of_a_country_not_allowed_is_refused_before_any_sms(
    client: httpx.AsyncClient, phones: Phones
) -> None:
    for path, body in (
        (REGISTER, {"phone": US_PHONE, "password": PASSWORD}),
        (SMS_LOGIN, {"phone": US_PHONE}),
        (FORGOT, {"phone": US_PHONE}),
    ):
        refused = await client.post(path, json=body)
        assert (refused.status_code, problem_type(refused)) == (422, "phone-country-not-allowed"), refused.text
        assert refused.json()["allowed"] == ["DE", "FR"]
    assert await phones.count() == 0


async def test_allowed_countries_receive_their_sms(client: httpx.AsyncClient, phones: Phones) -> None:
    await registered(client, phones, CAROL_PHONE)  # Germany

    assert (await client.post(LOGIN, json={"phone": CAROL_PHONE, "password": PASSWORD})).status_code == 200


async def test_the_daily_cap_refuses_every_number_alike_once_spent(client: httpx.AsyncClient, phones: Phones) -> None:
    await registered(client, phones, ZOE_PHONE)
    for n in range(DAILY_CAP - 1):
        assert (await client.post(SMS_LOGIN, json={"phone": f"+336123457{n:02d}"})).status_code == 202

    with_account = await client.post(SMS_LOGIN, json={"phone": ZOE_PHONE})
    without = await client.post(SMS_LOGIN, json={"phone": NOBODY_PHONE})
    registering = await register(client, "+33612345698")

    for refused in (with_account, without, registering):
        assert (refused.status_code, problem_type(refused)) == (503, "sms-unavailable"), refused.text
        assert 0 < int(refused.headers["retry-after"]) <= 86_400
    assert with_account.json()["detail"] == without.json()["detail"]
    assert await phones.count() == DAILY_CAP
    # Signing in with the password needs no SMS: it goes on.
    assert (await client.post(LOGIN, json={"phone": ZOE_PHONE, "password": PASSWORD})).status_code == 200


def test_a_country_list_that_is_not_iso_codes_stops_the_start() -> None:
    with pytest.raises(ValueError, match="ISO 3166-1"):
        Settings(_env_file=None, sms_allowed_countries="France")  # type: ignore[call-arg]
