"""A sign-in held as unusual, of an account without two-factor, that has a verified number
and no address: the step-up code goes by SMS. The location domain holds it (a sign-in
from a Tor exit of the sample IP database); a sign-in that began with an SMS code is not
held again for another one."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.identity.phone_support import *  # noqa: F403
from tests.identity.phone_support import LOGIN, SMS_LOGIN, SMS_LOGIN_VERIFY, ZOE_PHONE, Phones, registered
from tests.location.support import TOR_IP, import_files
from tests.support import PASSWORD, problem_type, wrong

pytestmark = pytest.mark.module_database

STEP_UP = "/v1/auth/login/step-up"


@contextlib.asynccontextmanager
async def _from(app: FastAPI, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(ip, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://rapport.test") as http:
        yield http


async def test_a_held_sign_in_of_a_phone_only_account_needs_the_texted_code(
    app: FastAPI, client: httpx.AsyncClient, runtime, phones: Phones
) -> None:
    zoe = await registered(client, phones, ZOE_PHONE)
    await import_files(runtime)

    async with _from(app, TOR_IP) as tor:
        held = await tor.post(LOGIN, json={"phone": ZOE_PHONE, "password": PASSWORD})
        assert held.status_code == 200, held.text
        assert (held.json()["mfa_required"], held.json()["factor"]) == (True, "sms")
        code = await phones.code(ZOE_PHONE)
        refused = await tor.post(STEP_UP, json={"mfa_token": held.json()["mfa_token"], "code": wrong(code)})
        signed_in = await tor.post(STEP_UP, json={"mfa_token": held.json()["mfa_token"], "code": code})

    assert (refused.status_code, problem_type(refused)) == (400, "invalid-code")
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["user_id"] == zoe.user_id
    history = (await client.get("/v1/auth/login-history", headers=zoe.headers)).json()["items"]
    assert [(h["method"], h["succeeded"]) for h in history[:2]] == [("phone+sms_code", True), ("phone+sms_code", False)]


async def test_a_sign_in_begun_with_an_sms_code_is_not_held_for_another(
    app: FastAPI, client: httpx.AsyncClient, runtime, phones: Phones
) -> None:
    zoe = await registered(client, phones, ZOE_PHONE)
    await import_files(runtime)

    async with _from(app, TOR_IP) as tor:
        assert (await tor.post(SMS_LOGIN, json={"phone": ZOE_PHONE})).status_code == 202
        answer = await tor.post(SMS_LOGIN_VERIFY, json={"phone": ZOE_PHONE, "code": await phones.code(ZOE_PHONE)})

    assert answer.status_code == 200, answer.text
    assert answer.json()["user_id"] == zoe.user_id and "access_token" in answer.json()
    flagged = (await client.get("/v1/me/locations/suspicious", headers=zoe.headers)).json()["items"]
    assert [(f["reason"], f["second_factor_required"]) for f in flagged] == [("risky_address", False)]
