"""What an answer's timing reveals on the phone paths: "forgot password" by SMS, "resend
the code" and "send me a sign-in code" take as long for a number with an account as for
one without (docs/decisions/0002), as their e-mail counterparts do.

The method of tests/identity/test_enumeration_timing.py, unchanged: requests for a known
and an unknown number interleaved in random order, and the best threshold on response
time that tells one from the other doing no better than chance, within its tolerance.
The SMS limits are set out of the way: this measures the work, not the limiter's
refusals or the "answered as if sent" past a number's SMS of the hour.
"""

from __future__ import annotations

import httpx
import pytest
from aiosmtpd.controller import Controller

from rapport.config import Settings
from tests.identity.phone_support import *  # noqa: F403
from tests.identity.phone_support import (
    FORGOT,
    NOBODY_PHONE,
    RESEND,
    SMS_LOGIN,
    ZOE_PHONE,
    Phones,
    register,
    registered,
    sms_settings,
)
from tests.identity.test_enumeration_timing import TOLERANCE, WARM_UP, best_threshold_accuracy, timed_pairs
from tests.notifications.fakes import SmsService

pytestmark = pytest.mark.module_database

UNLIMITED = 100_000


@pytest.fixture(scope="module")  # type: ignore[no-redef]  # replaces phone_support's
def module_settings(smtp_server: tuple[Controller, object], sms: SmsService) -> Settings:
    controller, _ = smtp_server
    return sms_settings(
        controller,
        sms,
        sms_requests_per_number_per_hour=UNLIMITED,
        sms_requests_per_ip_per_hour=UNLIMITED,
        sms_per_number_per_hour=UNLIMITED,
        sms_per_day=UNLIMITED,
    )


async def assert_alike(client: httpx.AsyncClient, phones: Phones, path: str) -> None:
    async def send(phone: str) -> httpx.Response:
        return await client.post(path, json={"phone": phone})

    await timed_pairs(send, ZOE_PHONE, NOBODY_PHONE, pairs=WARM_UP)
    known, unknown = await timed_pairs(send, ZOE_PHONE, NOBODY_PHONE)

    assert best_threshold_accuracy(known, unknown) <= TOLERANCE
    # What was measured: a code for the number with an account, a note for the other.
    assert "code is" in (await phones.to(ZOE_PHONE))[-1]
    assert "no account" in (await phones.to(NOBODY_PHONE))[-1]


async def test_forgot_by_phone_takes_as_long_for_any_number(client: httpx.AsyncClient, phones: Phones) -> None:
    await registered(client, phones, ZOE_PHONE)

    await assert_alike(client, phones, FORGOT)


async def test_resend_takes_as_long_for_any_number(client: httpx.AsyncClient, phones: Phones) -> None:
    assert (await register(client, ZOE_PHONE)).status_code == 202  # pending: resend issues it a code

    await assert_alike(client, phones, RESEND)


async def test_a_sign_in_code_takes_as_long_for_any_number(client: httpx.AsyncClient, phones: Phones) -> None:
    await registered(client, phones, ZOE_PHONE)

    await assert_alike(client, phones, SMS_LOGIN)
