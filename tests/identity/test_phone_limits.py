"""The limits of SMS codes (docs/decisions/0008 applied to SMS): the budget of wrong
guesses per number that fresh codes never renew, the cap of SMS per number answered as if
sent, and the limits on requests that send SMS, per number and per client."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from rapport.config import Settings
from rapport.identity import _limits as limits
from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime
from tests.identity.phone_support import *  # noqa: F403
from tests.identity.phone_support import FORGOT, NOBODY_PHONE, RESET, SMS_LOGIN, VERIFY, ZOE_PHONE, Phones, register
from tests.support import problem_type, wrong

pytestmark = pytest.mark.module_database

NEW_PASSWORD = "a brand new long password"


async def guess_wrong(client: httpx.AsyncClient, phone: str, code: str, times: int) -> None:
    for _ in range(times):
        body = {"phone": phone, "code": wrong(code), "new_password": NEW_PASSWORD}
        answer = await client.post(RESET, json=body)
        assert (answer.status_code, problem_type(answer)) == (400, "invalid-code"), answer.text


def test_sms_codes_have_the_bound_of_e_mailed_codes() -> None:
    """The same budget, per number typed: at most 0.4 % chance a year, centuries expected."""
    rule = limits.Rules.from_settings(Settings(_env_file=None)).code_guesses_per_address  # type: ignore[call-arg]
    per_year = rule.limit * (1 + 365 * 86_400 / rule.window_seconds)
    assert per_year / 1_000_000 < 0.004
    assert 1_000_000 / (rule.limit * 86_400 / rule.window_seconds) / 365 > 250


async def test_guessing_stops_at_the_budget_even_with_fresh_codes(
    client: httpx.AsyncClient, phones: Phones, settings: Settings
) -> None:
    await register(client, ZOE_PHONE)
    budget = settings.code_guesses_per_address_per_day
    while budget > 0:
        await client.post(FORGOT, json={"phone": ZOE_PHONE})
        guesses = min(budget, settings.otp_max_attempts)
        await guess_wrong(client, ZOE_PHONE, await phones.code(ZOE_PHONE), guesses)
        budget -= guesses
    # A fresh code: the SMS budget of the hour is spent, so the newest code is the last sent.
    right = await phones.code(ZOE_PHONE)

    answer = await client.post(RESET, json={"phone": ZOE_PHONE, "code": right, "new_password": NEW_PASSWORD})

    assert (answer.status_code, problem_type(answer)) == (429, "too-many-attempts")
    assert int(answer.headers["retry-after"]) > 0


async def test_a_number_without_account_spends_the_same_budget(client: httpx.AsyncClient, settings: Settings) -> None:
    for _ in range(settings.code_guesses_per_address_per_day):
        answer = await client.post(VERIFY, json={"phone": NOBODY_PHONE, "code": "123456"})
        assert problem_type(answer) == "invalid-code"

    answer = await client.post(VERIFY, json={"phone": NOBODY_PHONE, "code": "123456"})

    assert (answer.status_code, problem_type(answer)) == (429, "too-many-attempts")


async def test_past_its_sms_a_number_is_answered_as_if_sent_and_nothing_is_sent(
    client: httpx.AsyncClient, phones: Phones, settings: Settings
) -> None:
    answers = [
        await client.post(SMS_LOGIN, json={"phone": NOBODY_PHONE}) for _ in range(settings.sms_per_number_per_hour + 2)
    ]

    assert {(a.status_code, a.json()["detail"]) for a in answers} == {(202, answers[0].json()["detail"])}
    assert len(await phones.to(NOBODY_PHONE)) == settings.sms_per_number_per_hour


async def test_flooding_one_number_is_refused(client: httpx.AsyncClient, phones: Phones, settings: Settings) -> None:
    for _ in range(settings.sms_requests_per_number_per_hour):
        assert (await client.post(SMS_LOGIN, json={"phone": NOBODY_PHONE})).status_code == 202

    refused = await client.post(SMS_LOGIN, json={"phone": NOBODY_PHONE})

    assert (refused.status_code, problem_type(refused)) == (429, "too-many-attempts")
    assert int(refused.headers["retry-after"]) > 0


async def test_flooding_from_one_client_is_refused(client: httpx.AsyncClient, settings: Settings) -> None:
    """Many numbers, one client: SMS pumping through a range of numbers."""
    for n in range(settings.sms_requests_per_ip_per_hour):
        assert (await client.post(SMS_LOGIN, json={"phone": f"+336123457{n:02d}"})).status_code == 202

    refused = await client.post(SMS_LOGIN, json={"phone": "+33612345799"})

    assert (refused.status_code, problem_type(refused)) == (429, "too-many-attempts")


async def test_the_limits_hold_no_phone_number(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await client.post(SMS_LOGIN, json={"phone": NOBODY_PHONE})

    async with system_transaction(runtime.system_engine) as db:
        keys = (await db.execute(text("SELECT key FROM auth.rate_limits"))).scalars().all()
    assert keys and not any("612345699" in key for key in keys)
