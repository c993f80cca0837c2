"""Passwords: forgotten (POST /v1/auth/password/forgot), reset with the mailed code
(POST /v1/auth/password/reset) and changed while signed in (POST /v1/auth/password/change)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, update

from rapport.identity.models import otp_verifications
from rapport.kernel.db import system_transaction
from tests.support import Persona, login, problem_type, sign_in, wrong

pytestmark = pytest.mark.module_database

FORGOT = "/v1/auth/password/forgot"
RESET = "/v1/auth/password/reset"
CHANGE = "/v1/auth/password/change"
ME = "/v1/auth/me"
NEW_PASSWORD = "a brand new long password"
ALICE = "alice@example.com"


async def forgot(client, email: str):
    return await client.post(FORGOT, json={"email": email})


async def reset(client, email: str, code: str, new_password: str = NEW_PASSWORD):
    return await client.post(RESET, json={"email": email, "code": code, "new_password": new_password})


async def change(client, persona: Persona, current: str | None = None, new: str = NEW_PASSWORD):
    body = {"current_password": persona.password if current is None else current, "new_password": new}
    return await client.post(CHANGE, json=body, headers=persona.headers)


# Forgot


async def test_forgot_is_accepted(client, mailbox, alice):
    response = await forgot(client, alice.email)
    assert response.status_code == 202


async def test_forgot_mails_a_code(client, mailbox, alice):
    await forgot(client, alice.email)
    assert len(await mailbox.code_for(alice.email)) == 6


async def test_forgot_answers_the_same_for_an_unknown_address(client, mailbox, alice):
    known = await forgot(client, alice.email)
    unknown = await forgot(client, "nobody@example.com")
    assert (unknown.status_code, unknown.json()) == (known.status_code, known.json())


async def test_forgot_mails_an_unknown_address_no_code(client, mailbox):
    """Every request queues one mail (the same work whatever exists): here a note."""
    await forgot(client, "nobody@example.com")
    [note] = await mailbox.wait_for("nobody@example.com")
    assert not re.search(r"\b\d{6}\b", note.get_payload(decode=True).decode())


async def test_forgot_with_a_malformed_address_is_422(client, mailbox):
    response = await forgot(client, "not-an-address")
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


# Reset


async def test_reset_with_the_code_is_204(client, mailbox, alice):
    await forgot(client, alice.email)
    response = await reset(client, alice.email, await mailbox.code_for(alice.email))
    assert response.status_code == 204


async def test_reset_password_signs_in(client, mailbox, alice):
    await forgot(client, alice.email)
    await reset(client, alice.email, await mailbox.code_for(alice.email))
    assert (await login(client, alice.email, NEW_PASSWORD)).status_code == 200


async def test_reset_retires_the_old_password(client, mailbox, alice):
    await forgot(client, alice.email)
    await reset(client, alice.email, await mailbox.code_for(alice.email))
    response = await login(client, alice.email, alice.password)
    assert problem_type(response) == "invalid-credentials"


async def test_reset_ends_every_session(client, mailbox, alice, alice_phone):
    await forgot(client, alice.email)
    await reset(client, alice.email, await mailbox.code_for(alice.email))
    statuses = [(await client.get(ME, headers=p.headers)).status_code for p in (alice, alice_phone)]
    assert statuses == [401, 401]


async def test_reset_ends_refresh_tokens_too(client, mailbox, alice):
    await forgot(client, alice.email)
    await reset(client, alice.email, await mailbox.code_for(alice.email))
    response = await client.post("/v1/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert problem_type(response) == "invalid-token"


async def test_reset_is_a_security_event(client, mailbox, alice):
    await forgot(client, alice.email)
    await reset(client, alice.email, await mailbox.code_for(alice.email))
    again = await sign_in(client, Persona(name="alice", email=alice.email, password=NEW_PASSWORD))
    events = (await client.get("/v1/auth/security-events", headers=again.headers)).json()["items"]
    assert [(e["event_type"], e["details"]) for e in events] == [("password_reset", {"sessions_revoked": 1})]


async def test_reset_verifies_a_pending_address(client, mailbox):
    await client.post("/v1/auth/register", json={"email": "zoe@example.com", "password": "zoe's first password"})
    await mailbox.wait_for("zoe@example.com")
    await forgot(client, "zoe@example.com")
    await reset(client, "zoe@example.com", await mailbox.code_for("zoe@example.com", count=2))
    assert (await login(client, "zoe@example.com", NEW_PASSWORD)).status_code == 200


async def test_reset_with_a_wrong_code_is_invalid(client, mailbox, alice):
    await forgot(client, alice.email)
    response = await reset(client, alice.email, wrong(await mailbox.code_for(alice.email)))
    assert (response.status_code, problem_type(response)) == (400, "invalid-code")


async def test_a_wrong_code_answers_the_same_whatever_the_address_has(client, mailbox, alice, bob):
    await forgot(client, alice.email)
    code = await mailbox.code_for(alice.email)
    with_code = await reset(client, alice.email, wrong(code))
    without_code = await reset(client, bob.email, code)
    unknown = await reset(client, "nobody@example.com", code)
    answers = {(r.status_code, problem_type(r), r.json()["detail"]) for r in (with_code, without_code, unknown)}
    assert len(answers) == 1, answers


async def test_reset_with_a_wrong_code_keeps_the_password(client, mailbox, alice):
    await forgot(client, alice.email)
    await reset(client, alice.email, wrong(await mailbox.code_for(alice.email)))
    assert (await login(client, alice.email, alice.password)).status_code == 200


async def test_reset_without_asking_is_invalid(client, mailbox, alice):
    response = await reset(client, alice.email, "123456")
    assert (response.status_code, problem_type(response)) == (400, "invalid-code")


async def test_reset_for_an_unknown_address_is_invalid(client, mailbox):
    response = await reset(client, "nobody@example.com", "123456")
    assert (response.status_code, problem_type(response)) == (400, "invalid-code")


async def test_reset_code_works_once(client, mailbox, alice):
    await forgot(client, alice.email)
    code = await mailbox.code_for(alice.email)
    await reset(client, alice.email, code)
    response = await reset(client, alice.email, code, new_password="yet another long password")
    assert (response.status_code, problem_type(response)) == (400, "invalid-code")


async def test_expired_reset_code_is_invalid(client, mailbox, alice, runtime):
    await forgot(client, alice.email)
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(update(otp_verifications).values(expires_at=func.now() - timedelta(seconds=1)))
    response = await reset(client, alice.email, await mailbox.code_for(alice.email))
    assert (response.status_code, problem_type(response)) == (400, "invalid-code")


async def test_reset_code_fails_once_attempts_are_spent(client, mailbox, alice, settings):
    await forgot(client, alice.email)
    code = await mailbox.code_for(alice.email)
    for _ in range(settings.otp_max_attempts):
        await reset(client, alice.email, wrong(code))
    response = await reset(client, alice.email, code)
    assert (response.status_code, problem_type(response)) == (400, "invalid-code")


async def test_asking_again_makes_the_earlier_reset_code_stop_working(client, mailbox, alice):
    await forgot(client, alice.email)
    first = await mailbox.code_for(alice.email)
    await forgot(client, alice.email)
    response = await reset(client, alice.email, first)
    assert (response.status_code, problem_type(response)) == (400, "invalid-code")


async def test_verification_code_does_not_reset_a_password(client, mailbox):
    await client.post("/v1/auth/register", json={"email": "zoe@example.com", "password": "zoe's first password"})
    response = await reset(client, "zoe@example.com", await mailbox.code_for("zoe@example.com"))
    assert (response.status_code, problem_type(response)) == (400, "invalid-code")


async def test_reset_code_does_not_verify_an_address(client, mailbox):
    await client.post("/v1/auth/register", json={"email": "zoe@example.com", "password": "zoe's first password"})
    await mailbox.wait_for("zoe@example.com")
    await forgot(client, "zoe@example.com")
    reset_code = await mailbox.code_for("zoe@example.com", count=2)
    response = await client.post("/v1/auth/verify-email", json={"email": "zoe@example.com", "code": reset_code})
    assert (response.status_code, problem_type(response)) == (400, "invalid-code")


async def test_reset_to_a_weak_password_is_422(client, mailbox, alice):
    await forgot(client, alice.email)
    response = await reset(client, alice.email, await mailbox.code_for(alice.email), new_password="short")
    assert (response.status_code, problem_type(response)) == (422, "weak-password")


async def test_reset_to_a_guessable_password_is_weak(client, mailbox, alice):
    await forgot(client, alice.email)
    response = await reset(client, alice.email, await mailbox.code_for(alice.email), new_password="password123456")
    assert (response.status_code, problem_type(response)) == (422, "weak-password")


async def test_reset_to_the_current_password_is_refused_and_keeps_the_code(client, mailbox, alice):
    await forgot(client, alice.email)
    code = await mailbox.code_for(alice.email)
    same = await reset(client, alice.email, code, new_password=alice.password)
    assert (same.status_code, problem_type(same)) == (422, "password-unchanged")
    assert (await reset(client, alice.email, code)).status_code == 204


async def test_weak_password_does_not_spend_the_code(client, mailbox, alice):
    await forgot(client, alice.email)
    code = await mailbox.code_for(alice.email)
    await reset(client, alice.email, code, new_password="short")
    assert (await reset(client, alice.email, code)).status_code == 204


async def test_reset_answers_weak_password_the_same_for_an_unknown_address(client, mailbox, alice):
    """Otherwise a weak password would tell which addresses have accounts."""
    known = await reset(client, alice.email, "123456", new_password="short")
    unknown = await reset(client, "nobody@example.com", "123456", new_password="short")
    assert (unknown.status_code, problem_type(unknown)) == (known.status_code, problem_type(known))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"email": ALICE, "code": "123456", "new_password": "p" * 1025}, id="password-over-1024"),
        pytest.param({"email": ALICE, "code": "12345", "new_password": NEW_PASSWORD}, id="code-short"),
        pytest.param({"email": ALICE, "new_password": NEW_PASSWORD}, id="code-missing"),
        pytest.param({"email": ALICE, "code": 123456, "new_password": NEW_PASSWORD}, id="code-wrong-type"),
        pytest.param({"email": ALICE, "code": "123456", "new_password": NEW_PASSWORD, "x": 1}, id="extra-field"),
    ],
)
async def test_invalid_reset_is_422(client, mailbox, body):
    response = await client.post(RESET, json=body)
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


# Change


async def test_change_is_204(client, alice):
    response = await change(client, alice)
    assert response.status_code == 204


async def test_changed_password_signs_in(client, alice):
    await change(client, alice)
    assert (await login(client, alice.email, NEW_PASSWORD)).status_code == 200


async def test_change_retires_the_old_password(client, alice):
    await change(client, alice)
    response = await login(client, alice.email, alice.password)
    assert problem_type(response) == "invalid-credentials"


async def test_change_keeps_the_current_session(client, alice, alice_phone):
    await change(client, alice)
    assert (await client.get(ME, headers=alice.headers)).status_code == 200


async def test_change_ends_every_other_session(client, alice, alice_phone):
    await change(client, alice)
    response = await client.get(ME, headers=alice_phone.headers)
    assert (response.status_code, problem_type(response)) == (401, "invalid-token")


async def test_change_ends_other_sessions_refresh_tokens(client, alice, alice_phone):
    await change(client, alice)
    response = await client.post("/v1/auth/refresh", json={"refresh_token": alice_phone.refresh_token})
    assert problem_type(response) == "invalid-token"


async def test_change_is_a_security_event(client, alice, alice_phone):
    await change(client, alice)
    [event] = (await client.get("/v1/auth/security-events", headers=alice.headers)).json()["items"]
    assert (event["event_type"], event["details"]) == ("password_changed", {"sessions_revoked": 1})


async def test_change_with_a_wrong_current_password_is_401(client, alice):
    response = await change(client, alice, current="not alice's password")
    assert (response.status_code, problem_type(response)) == (401, "invalid-credentials")


async def test_change_with_a_wrong_current_password_keeps_the_password(client, alice):
    await change(client, alice, current="not alice's password")
    assert (await login(client, alice.email, alice.password)).status_code == 200


async def test_change_with_a_wrong_current_password_is_recorded(client, alice):
    await change(client, alice, current="not alice's password")
    [event] = (await client.get("/v1/auth/security-events", headers=alice.headers)).json()["items"]
    assert (event["event_type"], event["severity"]) == ("password_change_failed", "warning")


async def test_change_to_a_weak_password_is_422(client, alice):
    response = await change(client, alice, new="short")
    assert (response.status_code, problem_type(response)) == (422, "weak-password")


async def test_change_to_the_address_is_weak(client, alice):
    response = await change(client, alice, new=alice.email)
    assert (response.status_code, problem_type(response)) == (422, "weak-password")


async def test_change_to_a_guessable_password_is_weak(client, alice):
    response = await change(client, alice, new="alicealice2024")
    assert (response.status_code, problem_type(response)) == (422, "weak-password")


async def test_change_to_the_same_password_is_refused(client, alice):
    response = await change(client, alice, new=alice.password)
    assert (response.status_code, problem_type(response)) == (422, "password-unchanged")


async def test_change_needs_a_token(client):
    response = await client.post(CHANGE, json={"current_password": "x" * 12, "new_password": NEW_PASSWORD})
    assert (response.status_code, problem_type(response)) == (401, "unauthenticated")


async def test_change_with_an_ended_session_is_401(client, alice):
    await client.post("/v1/auth/logout", headers=alice.headers)
    response = await change(client, alice)
    assert (response.status_code, problem_type(response)) == (401, "invalid-token")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"current_password": "p" * 1025, "new_password": NEW_PASSWORD}, id="current-over-1024"),
        pytest.param({"current_password": "x", "new_password": "p" * 1025}, id="new-over-1024"),
        pytest.param({"new_password": NEW_PASSWORD}, id="current-missing"),
        pytest.param({"current_password": "x", "new_password": 1234567890}, id="new-wrong-type"),
    ],
)
async def test_invalid_change_is_422(client, alice, body):
    response = await client.post(CHANGE, json=body, headers=alice.headers)
    assert (response.status_code, problem_type(response)) == (422, "validation-error")
