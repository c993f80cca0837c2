"""Signing in with a phone: number and password (the locks of e-mail and password), a
one-time code by SMS, and a code by SMS as the second factor, weaker than the app and
so off until the owner turns it on."""

from __future__ import annotations

import time

import httpx
import pyotp
import pytest

from tests.identity.phone_support import *  # noqa: F403
from tests.identity.phone_support import (
    LOGIN,
    NOBODY_PHONE,
    SECOND_FACTOR,
    SECOND_FACTOR_VERIFY,
    SMS_FALLBACK,
    SMS_LOGIN,
    SMS_LOGIN_VERIFY,
    ZOE_PHONE,
    Phones,
    registered,
)
from tests.support import PASSWORD, Persona, problem_type, wrong

pytestmark = pytest.mark.module_database


async def password_login(client: httpx.AsyncClient, phone: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post(LOGIN, json={"phone": phone, "password": password})


async def enable_totp(client: httpx.AsyncClient, persona: Persona) -> pyotp.TOTP:
    enrolment = (await client.post("/v1/auth/totp", headers=persona.headers)).json()
    totp = pyotp.TOTP(enrolment["secret"])
    confirmed = await client.post("/v1/auth/totp/confirm", headers=persona.headers, json={"code": totp.now()})
    assert confirmed.status_code == 200, confirmed.text
    return totp


def next_code(totp: pyotp.TOTP) -> str:
    """The code of the next time step: the current one was spent confirming two-factor."""
    return totp.at(time.time() + totp.interval)


async def challenge(client: httpx.AsyncClient, phone: str) -> str:
    answer = await password_login(client, phone)
    assert answer.json().get("mfa_required") is True, answer.text
    return str(answer.json()["mfa_token"])


async def test_a_verified_number_signs_in_with_its_password(client: httpx.AsyncClient, phones: Phones) -> None:
    zoe = await registered(client, phones, ZOE_PHONE)

    answer = await password_login(client, "+33 6 12 34 56 05")

    assert answer.status_code == 200 and answer.json()["user_id"] == zoe.user_id


async def test_a_wrong_password_and_an_unknown_number_answer_alike(client: httpx.AsyncClient, phones: Phones) -> None:
    await registered(client, phones, ZOE_PHONE)

    wrong_password = await password_login(client, ZOE_PHONE, "not the password at all")
    unknown = await password_login(client, NOBODY_PHONE)

    assert wrong_password.status_code == unknown.status_code == 401
    assert problem_type(wrong_password) == problem_type(unknown) == "invalid-credentials"
    assert wrong_password.json()["detail"] == unknown.json()["detail"]


async def test_repeated_failures_lock_the_client_out_of_the_number(
    client: httpx.AsyncClient, phones: Phones, settings: object
) -> None:
    await registered(client, phones, ZOE_PHONE)
    for _ in range(5):
        await password_login(client, ZOE_PHONE, "not the password at all")

    locked = await password_login(client, ZOE_PHONE)

    assert (locked.status_code, problem_type(locked)) == (429, "login-throttled")
    assert int(locked.headers["retry-after"]) > 0


async def test_an_sms_code_signs_in(client: httpx.AsyncClient, phones: Phones) -> None:
    zoe = await registered(client, phones, ZOE_PHONE)

    assert (await client.post(SMS_LOGIN, json={"phone": ZOE_PHONE})).status_code == 202
    code = await phones.code(ZOE_PHONE)
    answer = await client.post(SMS_LOGIN_VERIFY, json={"phone": ZOE_PHONE, "code": code})

    assert answer.status_code == 200, answer.text
    assert answer.json()["user_id"] == zoe.user_id
    history = (await client.get("/v1/auth/login-history", headers=zoe.headers)).json()["items"]
    assert history[0]["method"] == "sms" and history[0]["succeeded"]


async def test_an_sms_code_works_once(client: httpx.AsyncClient, phones: Phones) -> None:
    await registered(client, phones, ZOE_PHONE)
    await client.post(SMS_LOGIN, json={"phone": ZOE_PHONE})
    code = await phones.code(ZOE_PHONE)
    await client.post(SMS_LOGIN_VERIFY, json={"phone": ZOE_PHONE, "code": code})

    again = await client.post(SMS_LOGIN_VERIFY, json={"phone": ZOE_PHONE, "code": code})

    assert (again.status_code, problem_type(again)) == (400, "invalid-code")


async def test_a_number_without_account_gets_a_note_not_a_sign_in_code(
    client: httpx.AsyncClient, phones: Phones
) -> None:
    answer = await client.post(SMS_LOGIN, json={"phone": NOBODY_PHONE})

    assert answer.status_code == 202
    [note] = await phones.to(NOBODY_PHONE)
    assert "no account" in note


async def test_an_sms_sign_in_still_asks_for_the_authenticator(client: httpx.AsyncClient, phones: Phones) -> None:
    zoe = await registered(client, phones, ZOE_PHONE)
    await enable_totp(client, zoe)
    await client.post(SMS_LOGIN, json={"phone": ZOE_PHONE})

    answer = await client.post(SMS_LOGIN_VERIFY, json={"phone": ZOE_PHONE, "code": await phones.code(ZOE_PHONE)})

    assert answer.status_code == 200 and answer.json()["mfa_required"] is True
    # The first step was an SMS code: a second one would be the same factor twice.
    refused = await client.post(SECOND_FACTOR, json={"mfa_token": answer.json()["mfa_token"]})
    assert (refused.status_code, problem_type(refused)) == (409, "sms-second-factor-unavailable")


async def test_sms_as_second_factor_is_off_until_turned_on(client: httpx.AsyncClient, phones: Phones) -> None:
    zoe = await registered(client, phones, ZOE_PHONE)
    await enable_totp(client, zoe)

    refused = await client.post(SECOND_FACTOR, json={"mfa_token": await challenge(client, ZOE_PHONE)})

    assert (refused.status_code, problem_type(refused)) == (409, "sms-second-factor-unavailable")


async def test_sms_stands_in_for_the_authenticator_once_turned_on(client: httpx.AsyncClient, phones: Phones) -> None:
    zoe = await registered(client, phones, ZOE_PHONE)
    totp = await enable_totp(client, zoe)
    turned_on = await client.put(SMS_FALLBACK, headers=zoe.headers, json={"enabled": True, "code": next_code(totp)})
    assert turned_on.status_code == 200 and turned_on.json() == {"sms_fallback": True}
    token = await challenge(client, ZOE_PHONE)

    assert (await client.post(SECOND_FACTOR, json={"mfa_token": token})).status_code == 202
    code = await phones.code(ZOE_PHONE)
    signed_in = await client.post(SECOND_FACTOR_VERIFY, json={"mfa_token": token, "code": code})

    assert signed_in.status_code == 200, signed_in.text
    again = await client.post(SECOND_FACTOR_VERIFY, json={"mfa_token": token, "code": code})
    assert again.status_code in (400, 401)


async def test_a_wrong_sms_second_factor_is_refused_and_counted(client: httpx.AsyncClient, phones: Phones) -> None:
    zoe = await registered(client, phones, ZOE_PHONE)
    totp = await enable_totp(client, zoe)
    await client.put(SMS_FALLBACK, headers=zoe.headers, json={"enabled": True, "code": next_code(totp)})
    token = await challenge(client, ZOE_PHONE)
    await client.post(SECOND_FACTOR, json={"mfa_token": token})
    code = await phones.code(ZOE_PHONE)

    refused = await client.post(SECOND_FACTOR_VERIFY, json={"mfa_token": token, "code": wrong(code)})

    assert (refused.status_code, problem_type(refused)) == (400, "invalid-code")
    history = (await client.get("/v1/auth/login-history", headers=zoe.headers)).json()["items"]
    assert history[0]["failure_reason"] == "invalid_sms_code"


async def test_the_sms_fallback_needs_an_authenticator_code(client: httpx.AsyncClient, phones: Phones) -> None:
    zoe = await registered(client, phones, ZOE_PHONE)
    totp = await enable_totp(client, zoe)

    refused = await client.put(
        SMS_FALLBACK, headers=zoe.headers, json={"enabled": True, "code": wrong(next_code(totp))}
    )

    assert (refused.status_code, problem_type(refused)) == (401, "invalid-totp-code")


async def test_the_sms_fallback_needs_two_factor_first(client: httpx.AsyncClient, phones: Phones) -> None:
    zoe = await registered(client, phones, ZOE_PHONE)

    refused = await client.put(SMS_FALLBACK, headers=zoe.headers, json={"enabled": True, "code": "123456"})

    assert (refused.status_code, problem_type(refused)) == (409, "totp-not-enabled")


async def test_the_api_description_says_sms_is_the_weaker_second_factor(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()

    described = document["paths"][SECOND_FACTOR]["post"]["description"]
    assert "Weaker than the authenticator app" in described
