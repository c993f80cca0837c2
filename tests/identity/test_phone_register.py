"""Registering with a phone number instead of an e-mail address, verifying it by SMS, and
resetting a password by SMS: answers that never tell which numbers have accounts
(docs/decisions/0002), the SMS going out through the Twilio stand-in."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime
from tests.identity.phone_support import *  # noqa: F403
from tests.identity.phone_support import (
    FORGOT,
    LOGIN,
    NOBODY_PHONE,
    RESEND,
    RESET,
    VERIFY,
    ZOE_PHONE,
    Phones,
    register,
    registered,
)
from tests.support import PASSWORD, Persona, problem_type, wrong

pytestmark = pytest.mark.module_database

NEW_PASSWORD = "a brand new long password"


def without_request_id(response: httpx.Response) -> dict[str, object]:
    return {key: value for key, value in response.json().items() if key != "request_id"}


async def test_registering_with_a_phone_texts_a_code_that_activates_and_signs_in(
    client: httpx.AsyncClient, phones: Phones
) -> None:
    answer = await register(client, "+33 6 12 34 56 05")
    assert answer.status_code == 202

    [message] = await phones.to(ZOE_PHONE)
    assert "verification code" in message
    verified = await client.post(VERIFY, json={"phone": ZOE_PHONE, "code": await phones.code(ZOE_PHONE)})
    assert verified.status_code == 200, verified.text
    me = await client.get("/v1/auth/me", headers={"Authorization": f"Bearer {verified.json()['access_token']}"})
    assert (me.json()["email"], me.json()["phone_number"], me.json()["phone_verified"], me.json()["status"]) == (
        None,
        ZOE_PHONE,
        True,
        "active",
    )


async def test_the_number_is_stored_in_e164(client: httpx.AsyncClient, phones: Phones, runtime: Runtime) -> None:
    await register(client, "+33 (0)6 12-34-56-05")

    async with system_transaction(runtime.system_engine) as db:
        stored = (await db.execute(text("SELECT phone_number FROM auth.users WHERE email IS NULL"))).scalar_one()
    assert stored == ZOE_PHONE


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("0612345605", "international format"),  # no country code
        ("+33 1 23", "not a valid"),
        ("+1 900 555 0123", "cannot receive SMS"),  # premium rate
        ("+33 1 40 00 00 00", "cannot receive SMS"),  # a landline
        ("call me", "international format"),
    ],
)
async def test_a_number_that_is_not_a_mobile_number_is_refused(
    client: httpx.AsyncClient, phones: Phones, number: str, why: str
) -> None:
    answer = await register(client, number)

    assert (answer.status_code, problem_type(answer)) == (422, "validation-error"), answer.text
    assert why in answer.text
    assert await phones.count() == 0


async def test_a_number_that_has_an_account_gets_a_note_and_the_same_answer(
    client: httpx.AsyncClient, phones: Phones
) -> None:
    await registered(client, phones, ZOE_PHONE)
    fresh = await register(client, NOBODY_PHONE)

    again = await register(client, ZOE_PHONE, "another long enough password")

    assert (again.status_code, again.json()) == (fresh.status_code, fresh.json())
    assert "already has an account" in (await phones.to(ZOE_PHONE))[-1]


async def test_a_pending_number_registered_again_with_another_password_loses_its_password(
    client: httpx.AsyncClient, phones: Phones
) -> None:
    """As with e-mail: whoever reads the SMS verifies, and sets a password by SMS reset."""
    await register(client, ZOE_PHONE)
    await register(client, ZOE_PHONE, "mallory's own long password")
    code = await phones.code(ZOE_PHONE)
    assert "has none" in (await phones.to(ZOE_PHONE))[-1]
    assert (await client.post(VERIFY, json={"phone": ZOE_PHONE, "code": code})).status_code == 200

    for password in (PASSWORD, "mallory's own long password"):
        refused = await client.post(LOGIN, json={"phone": ZOE_PHONE, "password": password})
        assert problem_type(refused) == "invalid-credentials"


async def test_the_same_password_again_only_sends_a_new_code(client: httpx.AsyncClient, phones: Phones) -> None:
    await register(client, ZOE_PHONE)
    first = await phones.code(ZOE_PHONE)
    await register(client, ZOE_PHONE)
    second = await phones.code(ZOE_PHONE)

    stale = await client.post(VERIFY, json={"phone": ZOE_PHONE, "code": first})
    fresh = await client.post(VERIFY, json={"phone": ZOE_PHONE, "code": second})

    assert fresh.status_code == 200
    if first != second:
        assert problem_type(stale) == "invalid-code"
    signed_in = await client.post(LOGIN, json={"phone": ZOE_PHONE, "password": PASSWORD})
    assert signed_in.status_code == 200


async def test_an_unverified_number_cannot_sign_in(client: httpx.AsyncClient, phones: Phones) -> None:
    await register(client, ZOE_PHONE)

    refused = await client.post(LOGIN, json={"phone": ZOE_PHONE, "password": PASSWORD})

    assert (refused.status_code, problem_type(refused)) == (403, "phone-not-verified")


async def test_a_wrong_code_is_refused_like_a_number_without_account(client: httpx.AsyncClient, phones: Phones) -> None:
    await register(client, ZOE_PHONE)
    code = await phones.code(ZOE_PHONE)

    wrong_code = await client.post(VERIFY, json={"phone": ZOE_PHONE, "code": wrong(code)})
    unknown = await client.post(VERIFY, json={"phone": NOBODY_PHONE, "code": code})

    assert wrong_code.status_code == unknown.status_code == 400
    assert without_request_id(wrong_code) == without_request_id(unknown)
    assert problem_type(wrong_code) == "invalid-code"


async def test_resend_answers_the_same_for_every_number(client: httpx.AsyncClient, phones: Phones) -> None:
    await register(client, ZOE_PHONE)

    pending = await client.post(RESEND, json={"phone": ZOE_PHONE})
    unknown = await client.post(RESEND, json={"phone": NOBODY_PHONE})

    assert (pending.status_code, pending.json()) == (unknown.status_code, unknown.json())
    assert len(await phones.to(ZOE_PHONE)) == 2
    [note] = await phones.to(NOBODY_PHONE)
    assert "no account" in note and not any(ch.isdigit() for ch in note.split(":", 1)[1])


async def test_every_code_request_queues_one_sms_whether_or_not_the_number_has_an_account(
    client: httpx.AsyncClient, phones: Phones
) -> None:
    """The same work either way: one SMS each, a code or a note without one."""
    await registered(client, phones, ZOE_PHONE)
    before = await phones.count()

    # Two each: within the SMS a number may get in an hour, the registration's included.
    for path in (FORGOT, "/v1/auth/login/sms"):
        for phone in (ZOE_PHONE, NOBODY_PHONE):
            answer = await client.post(path, json={"phone": phone})
            assert answer.status_code == 202

    assert await phones.count() == before + 4


async def test_a_password_is_reset_by_sms_and_every_session_ends(client: httpx.AsyncClient, phones: Phones) -> None:
    zoe = await registered(client, phones, ZOE_PHONE)
    await client.post(FORGOT, json={"phone": ZOE_PHONE})
    code = await phones.code(ZOE_PHONE)

    reset = await client.post(RESET, json={"phone": ZOE_PHONE, "code": code, "new_password": NEW_PASSWORD})

    assert reset.status_code == 204, reset.text
    assert (await client.get("/v1/auth/me", headers=zoe.headers)).status_code == 401
    assert (await client.post(LOGIN, json={"phone": ZOE_PHONE, "password": NEW_PASSWORD})).status_code == 200


async def test_a_reset_code_verifies_a_pending_number(client: httpx.AsyncClient, phones: Phones) -> None:
    await register(client, ZOE_PHONE)
    await client.post(FORGOT, json={"phone": ZOE_PHONE})
    code = await phones.code(ZOE_PHONE)

    await client.post(RESET, json={"phone": ZOE_PHONE, "code": code, "new_password": NEW_PASSWORD})

    assert (await client.post(LOGIN, json={"phone": ZOE_PHONE, "password": NEW_PASSWORD})).status_code == 200


async def test_a_weak_password_is_refused_before_any_sms(client: httpx.AsyncClient, phones: Phones) -> None:
    answer = await register(client, ZOE_PHONE, "33612345605")

    assert (answer.status_code, problem_type(answer)) == (422, "weak-password")
    assert await phones.count() == 0


async def test_a_phone_account_has_a_profile_not_named_after_its_number(
    client: httpx.AsyncClient, phones: Phones
) -> None:
    zoe: Persona = await registered(client, phones, ZOE_PHONE)

    profile = (await client.get("/v1/profile", headers=zoe.headers)).json()

    assert profile["username"].startswith("user") and "612345605" not in profile["display_name"]
