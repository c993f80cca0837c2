"""The corners of the phone paths: a client spraying wrong SMS codes across many numbers,
one code worn out by wrong tries, SMS as a second factor switched off again (by its owner,
or by removing the number), and a suspended account signing in with an SMS code."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from uuid import UUID

import httpx
import pyotp
import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from sqlalchemy import select

from rapport.config import Settings
from rapport.identity.models import login_history
from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime
from tests.compliance.admin_support import make_admin
from tests.identity.phone_support import *  # noqa: F403
from tests.identity.phone_support import (
    ALICE_PHONE,
    BOB_PHONE,
    FORGOT,
    PHONE_REMOVE,
    RESET,
    SECOND_FACTOR,
    SECOND_FACTOR_VERIFY,
    SMS_FALLBACK,
    SMS_LOGIN,
    SMS_LOGIN_VERIFY,
    VERIFY,
    ZOE_PHONE,
    Phones,
    add_phone,
    register,
    registered,
    sms_settings,
)
from tests.identity.phone_support import LOGIN as PHONE_LOGIN
from tests.identity.test_totp import away_from_step_boundary
from tests.notifications.fakes import SmsService
from tests.support import PASSWORD, Persona, problem_type, wrong

pytestmark = pytest.mark.module_database

NEW_PASSWORD = "a brand new long password"
TOTP_LOGIN = "/v1/auth/login/totp"
EMAIL_LOGIN = "/v1/auth/login"


# A client spraying numbers


class TestPerClient:
    """Wrong SMS codes for many numbers from one client: each number stays within its own
    budget, so only the client's budget stops them."""

    MAX = 3

    @pytest.fixture
    def settings(self, smtp_server: tuple[Controller, object], sms: SmsService) -> Settings:
        controller, _ = smtp_server
        return sms_settings(controller, sms, code_guesses_per_ip_per_hour=self.MAX)

    @pytest.fixture
    def app(self, fresh_app: FastAPI) -> FastAPI:
        return fresh_app

    @pytest.fixture
    async def other_client(self, app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("198.51.100.9", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://rapport.test") as http:
            yield http

    async def test_a_client_that_sprays_numbers_is_stopped(
        self, client: httpx.AsyncClient, other_client: httpx.AsyncClient
    ) -> None:
        # Each kind of SMS code in turn, each number new.
        for n in range(self.MAX):
            route = (SMS_LOGIN_VERIFY, VERIFY, RESET)[n % 3]
            body = {"phone": f"+336123457{n:02d}", "code": "123456"}
            answer = await client.post(route, json=body | ({"new_password": NEW_PASSWORD} if route == RESET else {}))
            assert (answer.status_code, problem_type(answer)) == (400, "invalid-code"), answer.text

        stopped = await client.post(SMS_LOGIN_VERIFY, json={"phone": "+33612345790", "code": "123456"})
        elsewhere = await other_client.post(SMS_LOGIN_VERIFY, json={"phone": "+33612345790", "code": "123456"})

        assert (stopped.status_code, problem_type(stopped)) == (429, "too-many-attempts")
        assert int(stopped.headers["retry-after"]) > 0
        assert (elsewhere.status_code, problem_type(elsewhere)) == (400, "invalid-code")

    async def test_a_stopped_client_is_refused_even_the_right_code(
        self, client: httpx.AsyncClient, other_client: httpx.AsyncClient, phones: Phones
    ) -> None:
        """The budget is spent before the code is looked at: a hit does not get through."""
        await registered(client, phones, ZOE_PHONE)
        assert (await client.post(SMS_LOGIN, json={"phone": ZOE_PHONE})).status_code == 202
        code = await phones.code(ZOE_PHONE)
        for n in range(self.MAX):
            await client.post(SMS_LOGIN_VERIFY, json={"phone": f"+336123457{n:02d}", "code": "123456"})

        stopped = await client.post(SMS_LOGIN_VERIFY, json={"phone": ZOE_PHONE, "code": code})
        elsewhere = await other_client.post(SMS_LOGIN_VERIFY, json={"phone": ZOE_PHONE, "code": code})

        assert (stopped.status_code, problem_type(stopped)) == (429, "too-many-attempts")
        assert elsewhere.status_code == 200, elsewhere.text

    async def test_the_client_budget_is_the_one_e_mailed_codes_spend(self, client: httpx.AsyncClient) -> None:
        for n in range(self.MAX):
            await client.post(SMS_LOGIN_VERIFY, json={"phone": f"+336123457{n:02d}", "code": "123456"})

        stopped = await client.post("/v1/auth/verify-email", json={"email": "someone@example.com", "code": "123456"})

        assert (stopped.status_code, problem_type(stopped)) == (429, "too-many-attempts")


# One code worn out by wrong tries


async def sign_in_code(client: httpx.AsyncClient, phones: Phones) -> tuple[str, str]:
    """Zoe, registered with her number, asks for a sign-in code: the route and the code."""
    await registered(client, phones, ZOE_PHONE)
    assert (await client.post(SMS_LOGIN, json={"phone": ZOE_PHONE})).status_code == 202
    return SMS_LOGIN_VERIFY, await phones.code(ZOE_PHONE)


async def verification_code(client: httpx.AsyncClient, phones: Phones) -> tuple[str, str]:
    assert (await register(client, ZOE_PHONE)).status_code == 202
    return VERIFY, await phones.code(ZOE_PHONE)


async def reset_code(client: httpx.AsyncClient, phones: Phones) -> tuple[str, str]:
    await registered(client, phones, ZOE_PHONE)
    assert (await client.post(FORGOT, json={"phone": ZOE_PHONE})).status_code == 202
    return RESET, await phones.code(ZOE_PHONE)


CODES = {"sign-in": sign_in_code, "verification": verification_code, "reset": reset_code}
RIGHT = {SMS_LOGIN_VERIFY: 200, VERIFY: 200, RESET: 204}


async def try_code(client: httpx.AsyncClient, route: str, code: str) -> httpx.Response:
    body = {"phone": ZOE_PHONE, "code": code} | ({"new_password": NEW_PASSWORD} if route == RESET else {})
    return await client.post(route, json=body)


@pytest.mark.parametrize("kind", list(CODES))
async def test_a_code_dies_after_its_wrong_tries(
    client: httpx.AsyncClient, phones: Phones, settings: Settings, kind: str
) -> None:
    route, code = await CODES[kind](client, phones)
    for _ in range(settings.otp_max_attempts):
        refused = await try_code(client, route, wrong(code))
        assert (refused.status_code, problem_type(refused)) == (400, "invalid-code"), refused.text

    right = await try_code(client, route, code)

    # The number's budget of wrong guesses is not spent: the code itself is worn out.
    assert settings.code_guesses_per_address_per_day > settings.otp_max_attempts
    assert (right.status_code, problem_type(right)) == (400, "invalid-code"), right.text


@pytest.mark.parametrize("kind", list(CODES))
async def test_a_code_survives_one_wrong_try_fewer(
    client: httpx.AsyncClient, phones: Phones, settings: Settings, kind: str
) -> None:
    route, code = await CODES[kind](client, phones)
    for _ in range(settings.otp_max_attempts - 1):
        await try_code(client, route, wrong(code))

    right = await try_code(client, route, code)

    assert right.status_code == RIGHT[route], right.text


async def test_after_a_worn_out_code_a_fresh_one_signs_in(
    client: httpx.AsyncClient, phones: Phones, settings: Settings
) -> None:
    route, code = await sign_in_code(client, phones)
    for _ in range(settings.otp_max_attempts):
        await try_code(client, route, wrong(code))

    assert (await client.post(SMS_LOGIN, json={"phone": ZOE_PHONE})).status_code == 202
    fresh = await phones.code(ZOE_PHONE)

    assert (await try_code(client, route, fresh)).status_code == 200


# SMS as a second factor, switched off again


async def enable_totp(client: httpx.AsyncClient, persona: Persona) -> tuple[pyotp.TOTP, list[str]]:
    """Two-factor on, confirmed with the code of the step before this one (within the
    server's drift window), so that this step's and the next one's remain to be used."""
    await away_from_step_boundary(margin=10.0)
    enrolment = (await client.post("/v1/auth/totp", headers=persona.headers)).json()
    totp = pyotp.TOTP(enrolment["secret"])
    confirmed = await client.post(
        "/v1/auth/totp/confirm", headers=persona.headers, json={"code": totp.at(time.time() - totp.interval)}
    )
    assert confirmed.status_code == 200, confirmed.text
    return totp, list(confirmed.json()["recovery_codes"])


async def set_fallback(client: httpx.AsyncClient, persona: Persona, *, enabled: bool, code: str) -> None:
    answer = await client.put(SMS_FALLBACK, headers=persona.headers, json={"enabled": enabled, "code": code})
    assert answer.status_code == 200 and answer.json() == {"sms_fallback": enabled}, answer.text


async def challenge(client: httpx.AsyncClient, body: dict[str, str]) -> str:
    answer = await client.post(EMAIL_LOGIN if "email" in body else PHONE_LOGIN, json=body)
    assert answer.status_code == 200 and answer.json().get("mfa_required") is True, answer.text
    return str(answer.json()["mfa_token"])


async def test_switching_the_sms_fallback_off_leaves_the_authenticator(
    client: httpx.AsyncClient, phones: Phones
) -> None:
    zoe = await registered(client, phones, ZOE_PHONE)
    totp, recovery_codes = await enable_totp(client, zoe)
    set_on = time.time()
    await set_fallback(client, zoe, enabled=True, code=totp.at(set_on))
    sign_in_body = {"phone": ZOE_PHONE, "password": PASSWORD}
    token = await challenge(client, sign_in_body)
    assert (await client.post(SECOND_FACTOR, json={"mfa_token": token})).status_code == 202
    sent = await phones.code(ZOE_PHONE)

    await set_fallback(client, zoe, enabled=False, code=totp.at(set_on + totp.interval))

    # Neither the code already sent nor a new one completes a sign-in now.
    late = await client.post(SECOND_FACTOR_VERIFY, json={"mfa_token": token, "code": sent})
    fresh_token = await challenge(client, sign_in_body)
    asked = await client.post(SECOND_FACTOR, json={"mfa_token": fresh_token})
    for refused in (late, asked):
        assert (refused.status_code, problem_type(refused)) == (409, "sms-second-factor-unavailable"), refused.text
    # The authenticator's side (here a recovery code) completes it.
    signed_in = await client.post(TOTP_LOGIN, json={"mfa_token": fresh_token, "recovery_code": recovery_codes[0]})
    assert signed_in.status_code == 200, signed_in.text
    events = (await client.get("/v1/auth/security-events", headers=zoe.headers)).json()["items"]
    assert "sms_second_factor_disabled" in [event["event_type"] for event in events]


async def test_removing_the_number_switches_the_sms_second_factor_off(
    client: httpx.AsyncClient, phones: Phones, alice: Persona
) -> None:
    await add_phone(client, phones, alice, ALICE_PHONE)
    totp, _ = await enable_totp(client, alice)
    await set_fallback(client, alice, enabled=True, code=totp.now())
    sign_in_body = {"email": alice.email, "password": PASSWORD}
    before = await client.post(SECOND_FACTOR, json={"mfa_token": await challenge(client, sign_in_body)})
    assert before.status_code == 202, before.text

    removed = await client.post(PHONE_REMOVE, headers=alice.headers, json={"password": PASSWORD})
    assert removed.status_code == 204, removed.text
    # A verified number again: only the switch can keep SMS off now.
    await add_phone(client, phones, alice, BOB_PHONE)

    after = await client.post(SECOND_FACTOR, json={"mfa_token": await challenge(client, sign_in_body)})
    assert (after.status_code, problem_type(after)) == (409, "sms-second-factor-unavailable"), after.text
    assert not any("security code" in body for body in await phones.to(BOB_PHONE))


# A suspended account


async def test_a_suspended_account_signing_in_with_an_sms_code_is_told_it_is_disabled(
    client: httpx.AsyncClient,
    phones: Phones,
    runtime: Runtime,
    make_persona: Callable[[str], Awaitable[Persona]],
) -> None:
    zoe = await registered(client, phones, ZOE_PHONE)
    assert (await client.post(SMS_LOGIN, json={"phone": ZOE_PHONE})).status_code == 202
    code = await phones.code(ZOE_PHONE)
    admin = await make_admin(runtime, await make_persona("ada"))
    suspended = await client.post(
        f"/v1/admin/users/{zoe.user_id}/suspend", headers=admin.headers, json={"reason": "Reported for spam"}
    )
    assert suspended.status_code == 200, suspended.text

    wrong_code = await client.post(SMS_LOGIN_VERIFY, json={"phone": ZOE_PHONE, "code": wrong(code)})
    right_code = await client.post(SMS_LOGIN_VERIFY, json={"phone": ZOE_PHONE, "code": code})

    # Only the right code learns that the account is disabled.
    assert (wrong_code.status_code, problem_type(wrong_code)) == (400, "invalid-code")
    assert (right_code.status_code, problem_type(right_code)) == (403, "account-disabled"), right_code.text
    assert "access_token" not in right_code.json()
    async with system_transaction(runtime.system_engine) as db:
        attempts = (
            await db.execute(
                select(login_history.c.method, login_history.c.succeeded, login_history.c.failure_reason)
                .where(login_history.c.user_id == UUID(zoe.user_id))
                .order_by(login_history.c.created_at.desc())
            )
        ).all()
    assert tuple(attempts[0]) == ("sms", False, "account_disabled")
    # And a suspended account is sent no new sign-in code, only a note.
    assert (await client.post(SMS_LOGIN, json={"phone": ZOE_PHONE})).status_code == 202
    assert "no account" in (await phones.to(ZOE_PHONE))[-1]
