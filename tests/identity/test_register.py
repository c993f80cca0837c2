"""Registration and e-mail verification: POST /v1/auth/register, /verify-email and
/verify-email/resend."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, update

from rapport.identity.models import otp_verifications
from rapport.kernel.db import system_transaction
from tests.support import PASSWORD, bearer, problem_type, wrong

pytestmark = pytest.mark.module_database

REGISTER = "/v1/auth/register"
VERIFY = "/v1/auth/verify-email"
RESEND = "/v1/auth/verify-email/resend"
ZOE = "zoe@example.com"
ZOE_PASSWORD = "zoe's long enough password"


async def register(client, email: str = ZOE, password: str = ZOE_PASSWORD):
    return await client.post(REGISTER, json={"email": email, "password": password})


async def verify(client, code: str, email: str = ZOE, **device):
    return await client.post(VERIFY, json={"email": email, "code": code, **device})


def body_of(message) -> str:
    return message.get_payload(decode=True).decode()


async def expire_codes(runtime, email: str) -> None:
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            update(otp_verifications)
            .where(otp_verifications.c.identifier == email)
            .values(expires_at=func.now() - timedelta(seconds=1))
        )


# Registering


async def test_register_is_accepted(client, mailbox):
    response = await register(client)
    assert response.status_code == 202


async def test_register_mails_a_six_digit_code(client, mailbox):
    await register(client)
    assert re.fullmatch(r"\d{6}", await mailbox.code_for(ZOE))


async def test_register_trims_and_lower_cases_the_address(client, mailbox, jobs_done):
    await register(client, email="  Zoe@Example.COM ")
    await jobs_done()
    assert [m["To"] for m in mailbox.messages] == [ZOE]


async def test_registering_a_taken_address_answers_the_same(client, mailbox, alice):
    fresh = await register(client)
    taken = await register(client, email=alice.email)
    assert (taken.status_code, taken.json()) == (fresh.status_code, fresh.json())


async def test_registering_a_taken_address_warns_its_owner_without_a_code(client, mailbox, alice, jobs_done):
    await register(client, email=alice.email.upper())
    await jobs_done()
    [warning] = mailbox.to(alice.email)
    assert not re.search(r"\b\d{6}\b", body_of(warning))


async def test_registering_a_taken_address_keeps_its_password(client, mailbox, alice):
    await register(client, email=alice.email, password="an intruder's password")
    response = await client.post("/v1/auth/login", json={"email": alice.email, "password": alice.password})
    assert response.status_code == 200


async def test_registering_again_before_verifying_sends_a_new_code(client, mailbox):
    await register(client)
    first = await mailbox.code_for(ZOE)
    await register(client)
    response = await verify(client, first)
    assert (response.status_code, problem_type(response)) == (400, "invalid-code")


async def test_registering_again_with_the_same_password_keeps_it(client, mailbox):
    await register(client)
    await mailbox.wait_for(ZOE)
    await register(client)
    await verify(client, await mailbox.code_for(ZOE, count=2))
    response = await client.post("/v1/auth/login", json={"email": ZOE, "password": ZOE_PASSWORD})
    assert response.status_code == 200


# Registering over a pending account: nobody's unverified password survives a contest


INTRUDER_PASSWORD = "mallory's own sneaky password"


async def test_registering_over_a_pending_account_does_not_hand_it_to_the_intruder(client, mailbox):
    await register(client)
    await mailbox.wait_for(ZOE)
    await register(client, password=INTRUDER_PASSWORD)
    verified = await verify(client, await mailbox.code_for(ZOE, count=2))
    assert verified.status_code == 200, verified.text
    response = await client.post("/v1/auth/login", json={"email": ZOE, "password": INTRUDER_PASSWORD})
    assert (response.status_code, problem_type(response)) == (401, "invalid-credentials")


async def test_registering_before_the_owner_does_not_hand_the_account_to_the_intruder(client, mailbox):
    await register(client, password=INTRUDER_PASSWORD)
    await mailbox.wait_for(ZOE)
    await register(client)
    verified = await verify(client, await mailbox.code_for(ZOE, count=2))
    assert verified.status_code == 200, verified.text
    response = await client.post("/v1/auth/login", json={"email": ZOE, "password": INTRUDER_PASSWORD})
    assert (response.status_code, problem_type(response)) == (401, "invalid-credentials")


async def test_registering_over_a_pending_account_answers_the_same(client, mailbox):
    first = await register(client)
    over = await register(client, password=INTRUDER_PASSWORD)
    assert (over.status_code, over.json()) == (first.status_code, first.json())


async def test_a_contested_registration_tells_the_inbox_and_the_owner_sets_a_password(client, mailbox):
    await register(client)
    await mailbox.wait_for(ZOE)
    await register(client, password=INTRUDER_PASSWORD)
    [_, contested] = await mailbox.wait_for(ZOE, count=2)
    assert "no password" in body_of(contested)
    await verify(client, mailbox.last_code(ZOE))
    await client.post("/v1/auth/password/forgot", json={"email": ZOE})
    reset = await client.post(
        "/v1/auth/password/reset",
        json={"email": ZOE, "code": await mailbox.code_for(ZOE, count=3), "new_password": "zoe's own new password"},
    )
    assert reset.status_code == 204, reset.text
    response = await client.post("/v1/auth/login", json={"email": ZOE, "password": "zoe's own new password"})
    assert response.status_code == 200


# Refused registrations


async def test_short_password_is_weak(client, mailbox, settings):
    response = await register(client, password="x" * (settings.password_min_length - 1))
    assert (response.status_code, problem_type(response)) == (422, "weak-password")


async def test_password_of_minimum_length_is_accepted(client, mailbox, settings):
    response = await register(client, password="vq7!Rz#p2K"[: settings.password_min_length])
    assert response.status_code == 202


@pytest.mark.parametrize("password", ["password123456", "qwertyuiop1", "xxxxxxxxxxxxxxxx", "1234567890"])
async def test_guessable_password_is_weak(client, mailbox, password):
    response = await register(client, password=password)
    assert (response.status_code, problem_type(response)) == (422, "weak-password")
    assert response.json()["detail"] != response.json()["title"]  # zxcvbn's advice


async def test_password_made_of_the_address_is_weak(client, mailbox):
    """Strong on its own (zxcvbn scores it 4), guessable once the address is known."""
    response = await register(client, email="zoe.smith@example.com", password="Zoe.Smith.1990")
    assert (response.status_code, problem_type(response)) == (422, "weak-password")


async def test_the_personas_password_is_strong(client, mailbox):
    response = await register(client, password=PASSWORD)
    assert response.status_code == 202


@pytest.mark.parametrize("password", ["zoe.smith.long@example.com", "Zoe.Smith.Long"])
async def test_password_that_is_the_address_is_weak(client, mailbox, password):
    response = await register(client, email="zoe.smith.long@example.com", password=password)
    assert (response.status_code, problem_type(response)) == (422, "weak-password")


async def test_weak_password_sends_no_mail(client, mailbox, jobs_done):
    await register(client, password="short")
    await jobs_done()
    assert mailbox.to(ZOE) == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"email": "a" * 60 + "@" + "b" * 260 + ".com", "password": ZOE_PASSWORD}, id="email-over-320"),
        pytest.param({"email": ZOE, "password": "p" * 1025}, id="password-over-1024"),
        pytest.param({"email": "not-an-address", "password": ZOE_PASSWORD}, id="email-malformed"),
        pytest.param({"email": ZOE, "password": ""}, id="password-empty"),
        pytest.param({"email": ZOE}, id="password-missing"),
        pytest.param({"password": ZOE_PASSWORD}, id="email-missing"),
        pytest.param({"email": ["zoe@example.com"], "password": ZOE_PASSWORD}, id="email-wrong-type"),
        pytest.param({"email": ZOE, "password": None}, id="password-null"),
        pytest.param({"email": ZOE, "password": ZOE_PASSWORD, "is_admin": True}, id="extra-field"),
    ],
)
async def test_invalid_registration_is_422(client, mailbox, body):
    response = await client.post(REGISTER, json=body)
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_invalid_registration_never_echoes_the_password(client, mailbox):
    response = await client.post(REGISTER, json={"email": "nope", "password": ZOE_PASSWORD})
    assert ZOE_PASSWORD not in response.text


async def test_malformed_registration_is_400(client, mailbox):
    response = await client.post(REGISTER, content=b'{"email": ', headers={"content-type": "application/json"})
    assert (response.status_code, problem_type(response)) == (400, "malformed-json")


# Verifying


async def test_verify_with_the_mailed_code_signs_in(client, mailbox):
    await register(client)
    response = await verify(client, await mailbox.code_for(ZOE))
    assert set(response.json()) >= {"access_token", "refresh_token", "session_id", "user_id"}


async def test_verified_account_is_active(client, mailbox):
    await register(client)
    tokens = (await verify(client, await mailbox.code_for(ZOE))).json()
    me = (await client.get("/v1/auth/me", headers=bearer(tokens["access_token"]))).json()
    assert (me["email"], me["status"], me["email_verified"]) == (ZOE, "active", True)


async def test_verify_accepts_the_address_in_any_case(client, mailbox):
    await register(client)
    response = await verify(client, await mailbox.code_for(ZOE), email=" ZOE@example.com")
    assert response.status_code == 200


async def test_verify_records_the_device(client, mailbox):
    await register(client)
    tokens = (await verify(client, await mailbox.code_for(ZOE), device_type="mobile", device_name="Zoe's phone")).json()
    [session] = (await client.get("/v1/auth/sessions", headers=bearer(tokens["access_token"]))).json()["items"]
    assert (session["device_type"], session["device_name"]) == ("mobile", "Zoe's phone")


async def test_verify_records_a_security_event(client, mailbox):
    await register(client)
    tokens = (await verify(client, await mailbox.code_for(ZOE))).json()
    events = (await client.get("/v1/auth/security-events", headers=bearer(tokens["access_token"]))).json()["items"]
    assert [e["event_type"] for e in events] == ["email_verified"]


async def test_wrong_code_is_invalid(client, mailbox):
    await register(client)
    response = await verify(client, wrong(await mailbox.code_for(ZOE)))
    assert (response.status_code, problem_type(response)) == (400, "invalid-code")


async def test_expired_code_is_invalid(client, mailbox, runtime):
    await register(client)
    code = await mailbox.code_for(ZOE)
    await expire_codes(runtime, ZOE)
    response = await verify(client, code)
    assert (response.status_code, problem_type(response)) == (400, "invalid-code")


async def test_used_code_is_invalid(client, mailbox):
    await register(client)
    code = await mailbox.code_for(ZOE)
    await verify(client, code)
    response = await verify(client, code)
    assert (response.status_code, problem_type(response)) == (400, "invalid-code")


async def test_code_for_an_unknown_address_is_invalid(client, mailbox):
    response = await verify(client, "123456", email="nobody@example.com")
    assert (response.status_code, problem_type(response)) == (400, "invalid-code")


async def test_code_for_another_address_is_invalid(client, mailbox):
    await register(client)
    await register(client, email="yan@example.com")
    response = await verify(client, await mailbox.code_for(ZOE), email="yan@example.com")
    assert (response.status_code, problem_type(response)) == (400, "invalid-code")


async def test_right_code_fails_once_attempts_are_spent(client, mailbox, settings):
    await register(client)
    code = await mailbox.code_for(ZOE)
    for _ in range(settings.otp_max_attempts):
        await verify(client, wrong(code))
    response = await verify(client, code)
    assert (response.status_code, problem_type(response)) == (400, "invalid-code")


async def test_right_code_works_after_fewer_wrong_tries_than_the_limit(client, mailbox, settings):
    await register(client)
    code = await mailbox.code_for(ZOE)
    for _ in range(settings.otp_max_attempts - 1):
        await verify(client, wrong(code))
    response = await verify(client, code)
    assert response.status_code == 200


@pytest.mark.parametrize("code", ["12345", "1234567", "12345a", "", 123456])
async def test_code_not_six_digits_is_422(client, mailbox, code):
    response = await verify(client, code)
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_verify_device_name_over_100_is_422(client, mailbox):
    await register(client)
    response = await verify(client, await mailbox.code_for(ZOE), device_name="d" * 101)
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


# Signing in before verifying


async def test_login_before_verifying_is_403(client, mailbox):
    await register(client)
    response = await client.post("/v1/auth/login", json={"email": ZOE, "password": ZOE_PASSWORD})
    assert (response.status_code, problem_type(response)) == (403, "email-not-verified")


async def test_wrong_password_before_verifying_is_invalid_credentials(client, mailbox):
    await register(client)
    response = await client.post("/v1/auth/login", json={"email": ZOE, "password": "not zoe's password"})
    assert (response.status_code, problem_type(response)) == (401, "invalid-credentials")


# Resending


async def test_resend_mails_a_new_code(client, mailbox):
    await register(client)
    await mailbox.wait_for(ZOE)
    await client.post(RESEND, json={"email": ZOE})
    response = await verify(client, await mailbox.code_for(ZOE, count=2))
    assert response.status_code == 200


async def test_resend_makes_the_earlier_code_stop_working(client, mailbox):
    await register(client)
    first = await mailbox.code_for(ZOE)
    await client.post(RESEND, json={"email": ZOE})
    response = await verify(client, first)
    assert (response.status_code, problem_type(response)) == (400, "invalid-code")


async def test_resend_answers_the_same_for_any_address(client, mailbox, alice):
    await register(client)
    answers = [await client.post(RESEND, json={"email": e}) for e in (ZOE, alice.email, "nobody@example.com")]
    assert len({(a.status_code, a.text) for a in answers}) == 1


async def test_resend_to_a_verified_address_mails_no_code(client, mailbox, alice):
    """Every request queues one mail (the same work whatever exists): here a note."""
    await client.post(RESEND, json={"email": alice.email})
    [note] = await mailbox.wait_for(alice.email)
    assert not re.search(r"\b\d{6}\b", body_of(note))


async def test_resend_to_an_unknown_address_mails_no_code(client, mailbox):
    await client.post(RESEND, json={"email": "nobody@example.com"})
    [note] = await mailbox.wait_for("nobody@example.com")
    assert not re.search(r"\b\d{6}\b", body_of(note))


# A wrong code tells nothing about the address (docs/decisions/0002)


async def test_a_wrong_code_answers_the_same_whatever_the_address_has(client, mailbox, alice):
    await register(client)
    code = await mailbox.code_for(ZOE)
    with_code = await verify(client, wrong(code))
    without_code = await verify(client, code, email=alice.email)
    unknown = await verify(client, code, email="nobody@example.com")
    answers = {(r.status_code, problem_type(r), r.json()["detail"]) for r in (with_code, without_code, unknown)}
    assert len(answers) == 1, answers
