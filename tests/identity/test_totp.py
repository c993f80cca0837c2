"""Two-factor sign-in with TOTP (RFC 6238) and recovery codes, through the API.

Codes change every 30-second step; the server accepts one step either side, each step
once. Enabling spends this step's code, so the next sign-in uses the next step's code.
A test that needs "this step" to stay this step first moves away from a step boundary.
"""

from __future__ import annotations

import asyncio
import time

import jwt
import pyotp
import pytest
from sqlalchemy import select

from rapport.identity.models import totp_credentials
from rapport.kernel.db import system_transaction
from tests.support import problem_type

pytestmark = pytest.mark.module_database

ME = "/v1/auth/me"
LOGIN = "/v1/auth/login"
LOGIN_TOTP = "/v1/auth/login/totp"


async def away_from_step_boundary(margin: float = 3.0) -> None:
    """Wait, if needed, until at least `margin` seconds remain in this time step."""
    into_step = time.time() % 30
    if into_step > 30 - margin:
        await asyncio.sleep(30 - into_step + 0.1)


def code(secret: str, steps_ahead: int = 0) -> str:
    """The code of this step, or of a step ahead (the server accepts the next one)."""
    return pyotp.TOTP(secret).at(time.time(), counter_offset=steps_ahead)


def wrong_code(secret: str) -> str:
    """A well-formed code that matches no step in the server's window."""
    valid = {code(secret, offset) for offset in (-1, 0, 1, 2)}
    return next(c for c in (f"{n:06d}" for n in range(1000, 1010)) if c not in valid)


async def enrol(client, persona) -> str:
    response = await client.post("/v1/auth/totp", headers=persona.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/Rapport:")
    assert f"secret={body['secret']}" in body["otpauth_uri"]
    return body["secret"]


async def enable(client, persona) -> tuple[str, list[str]]:
    """Enrol and confirm with this step's code; returns the secret and recovery codes."""
    secret = await enrol(client, persona)
    response = await client.post("/v1/auth/totp/confirm", headers=persona.headers, json={"code": code(secret)})
    assert response.status_code == 200, response.text
    return secret, response.json()["recovery_codes"]


async def mfa_token(client, persona) -> str:
    response = await client.post(LOGIN, json={"email": persona.email, "password": persona.password})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mfa_required"] is True
    assert "access_token" not in body
    return body["mfa_token"]


async def two_factor_enabled(client, persona) -> bool:
    return (await client.get(ME, headers=persona.headers)).json()["two_factor_enabled"]


async def test_confirm_returns_ten_recovery_codes_and_turns_two_factor_on(client, alice):
    _, recovery = await enable(client, alice)

    assert len(set(recovery)) == 10
    assert await two_factor_enabled(client, alice)


async def test_confirm_with_wrong_code_is_refused(client, alice):
    secret = await enrol(client, alice)

    response = await client.post("/v1/auth/totp/confirm", headers=alice.headers, json={"code": wrong_code(secret)})

    assert response.status_code == 401
    assert problem_type(response) == "invalid-totp-code"
    assert not await two_factor_enabled(client, alice)


# Six digits, but not ASCII ones: never a code. (Refused as wrong, or as malformed once
# the schema's pattern admits only 0-9; never a 500.)
ARABIC_INDIC_DIGITS = "\u0661\u0662\u0663\u0664\u0665\u0666"


async def test_non_ascii_digits_are_not_a_code(client, alice):
    secret = await enrol(client, alice)
    at_confirm = await client.post("/v1/auth/totp/confirm", headers=alice.headers, json={"code": ARABIC_INDIC_DIGITS})
    await client.post("/v1/auth/totp/confirm", headers=alice.headers, json={"code": code(secret)})

    at_login = await client.post(
        LOGIN_TOTP, json={"mfa_token": await mfa_token(client, alice), "code": ARABIC_INDIC_DIGITS}
    )

    for response in (at_confirm, at_login):
        assert (response.status_code, problem_type(response)) in {
            (401, "invalid-totp-code"),
            (422, "validation-error"),
        }, response.text


async def test_login_asks_for_second_factor_and_code_gives_tokens(client, alice):
    secret, _ = await enable(client, alice)
    token = await mfa_token(client, alice)

    response = await client.post(LOGIN_TOTP, json={"mfa_token": token, "code": code(secret, 1)})

    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["user_id"] == alice.user_id
    me = await client.get(ME, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200
    history = (await client.get("/v1/auth/login-history", headers=alice.headers)).json()["items"]
    assert (history[0]["method"], history[0]["succeeded"]) == ("password+totp", True)


async def test_a_code_is_accepted_once(client, alice):
    await away_from_step_boundary()
    secret, _ = await enable(client, alice)
    this_step, next_step = code(secret), code(secret, 1)

    confirming_code = await client.post(
        LOGIN_TOTP, json={"mfa_token": await mfa_token(client, alice), "code": this_step}
    )
    first = await client.post(LOGIN_TOTP, json={"mfa_token": await mfa_token(client, alice), "code": next_step})
    replay = await client.post(LOGIN_TOTP, json={"mfa_token": await mfa_token(client, alice), "code": next_step})

    assert (confirming_code.status_code, first.status_code, replay.status_code) == (401, 200, 401)
    assert problem_type(confirming_code) == problem_type(replay) == "totp-code-already-used"


async def test_a_used_code_does_not_count_as_a_guess(client, alice, settings):
    """Right after enrolment the app still shows the code just used: typing it again is
    no attack, and must not lock the person out."""
    await away_from_step_boundary()
    secret, _ = await enable(client, alice)
    token = await mfa_token(client, alice)
    for _ in range(settings.second_factor_guesses_per_account_per_day + 1):
        replay = await client.post(LOGIN_TOTP, json={"mfa_token": token, "code": code(secret)})
        assert problem_type(replay) == "totp-code-already-used"
    response = await client.post(LOGIN_TOTP, json={"mfa_token": token, "code": code(secret, 1)})
    assert response.status_code == 200, response.text


async def test_a_challenge_token_signs_in_once(client, alice):
    secret, recovery = await enable(client, alice)
    token = await mfa_token(client, alice)

    first = await client.post(LOGIN_TOTP, json={"mfa_token": token, "code": code(secret, 1)})
    second = await client.post(LOGIN_TOTP, json={"mfa_token": token, "recovery_code": recovery[0]})

    assert first.status_code == 200, first.text
    assert (second.status_code, problem_type(second)) == (401, "invalid-token")
    sessions = (await client.get("/v1/auth/sessions", headers=alice.headers)).json()["items"]
    assert len(sessions) == 2  # alice's own, and the one the token opened
    # Refused whole: the recovery code it carried is still good.
    again = await client.post(
        LOGIN_TOTP, json={"mfa_token": await mfa_token(client, alice), "recovery_code": recovery[0]}
    )
    assert again.status_code == 200, again.text


async def test_a_wrong_code_does_not_spend_the_challenge(client, alice):
    secret, _ = await enable(client, alice)
    token = await mfa_token(client, alice)
    await client.post(LOGIN_TOTP, json={"mfa_token": token, "code": wrong_code(secret)})
    response = await client.post(LOGIN_TOTP, json={"mfa_token": token, "code": code(secret, 1)})
    assert response.status_code == 200, response.text


async def test_neither_code_nor_recovery_code_is_422_and_not_counted(client, alice, settings):
    secret, recovery = await enable(client, alice)
    token = await mfa_token(client, alice)
    for _ in range(settings.second_factor_guesses_per_account_per_day + 1):
        neither = await client.post(LOGIN_TOTP, json={"mfa_token": token})
        both = await client.post(
            LOGIN_TOTP, json={"mfa_token": token, "code": code(secret, 1), "recovery_code": recovery[0]}
        )
        assert [(r.status_code, problem_type(r)) for r in (neither, both)] == [(422, "validation-error")] * 2
    response = await client.post(LOGIN_TOTP, json={"mfa_token": token, "code": code(secret, 1)})
    assert response.status_code == 200, response.text


async def test_wrong_code_at_login_is_refused_and_recorded(client, alice):
    secret, _ = await enable(client, alice)

    response = await client.post(
        LOGIN_TOTP, json={"mfa_token": await mfa_token(client, alice), "code": wrong_code(secret)}
    )

    assert response.status_code == 401
    assert problem_type(response) == "invalid-totp-code"
    history = (await client.get("/v1/auth/login-history", headers=alice.headers)).json()["items"]
    assert (history[0]["succeeded"], history[0]["failure_reason"]) == (False, "invalid_totp")


async def test_a_recovery_code_works_once(client, alice):
    _, recovery = await enable(client, alice)

    # Typed as read aloud: upper case, with spaces around.
    first = await client.post(
        LOGIN_TOTP, json={"mfa_token": await mfa_token(client, alice), "recovery_code": f" {recovery[0].upper()} "}
    )
    second = await client.post(
        LOGIN_TOTP, json={"mfa_token": await mfa_token(client, alice), "recovery_code": recovery[0]}
    )

    assert first.status_code == 200, first.text
    assert second.status_code == 401
    assert problem_type(second) == "invalid-totp-code"
    events = (await client.get("/v1/auth/security-events", headers=alice.headers)).json()["items"]
    assert events[0]["event_type"] == "recovery_code_used"


async def test_regenerating_recovery_codes_retires_the_old_ones(client, alice):
    secret, old = await enable(client, alice)

    response = await client.post("/v1/auth/totp/recovery-codes", headers=alice.headers, json={"code": code(secret, 1)})
    assert response.status_code == 200, response.text
    new = response.json()["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old)

    stale = await client.post(LOGIN_TOTP, json={"mfa_token": await mfa_token(client, alice), "recovery_code": old[0]})
    fresh = await client.post(LOGIN_TOTP, json={"mfa_token": await mfa_token(client, alice), "recovery_code": new[0]})
    assert stale.status_code == 401
    assert problem_type(stale) == "invalid-totp-code"
    assert fresh.status_code == 200, fresh.text


async def test_wrong_code_neither_regenerates_nor_disables(client, alice):
    secret, old = await enable(client, alice)

    regenerate = await client.post(
        "/v1/auth/totp/recovery-codes", headers=alice.headers, json={"code": wrong_code(secret)}
    )
    disable = await client.post("/v1/auth/totp/disable", headers=alice.headers, json={"code": wrong_code(secret)})
    disable_recovery = await client.post(
        "/v1/auth/totp/disable", headers=alice.headers, json={"recovery_code": "aaaaa-aaaaa"}
    )

    assert [r.status_code for r in (regenerate, disable, disable_recovery)] == [401, 401, 401]
    assert {problem_type(r) for r in (regenerate, disable, disable_recovery)} == {"invalid-totp-code"}
    assert await two_factor_enabled(client, alice)
    still = await client.post(LOGIN_TOTP, json={"mfa_token": await mfa_token(client, alice), "recovery_code": old[0]})
    assert still.status_code == 200, still.text


async def test_disable_with_code_turns_two_factor_off(client, alice):
    secret, _ = await enable(client, alice)

    response = await client.post("/v1/auth/totp/disable", headers=alice.headers, json={"code": code(secret, 1)})

    assert response.status_code == 204, response.text
    assert not await two_factor_enabled(client, alice)
    login = await client.post(LOGIN, json={"email": alice.email, "password": alice.password})
    assert "access_token" in login.json()
    events = (await client.get("/v1/auth/security-events", headers=alice.headers)).json()["items"]
    assert [e["event_type"] for e in events[:2]] == ["totp_disabled", "totp_enabled"]


async def test_disable_with_recovery_code(client, alice):
    _, recovery = await enable(client, alice)

    response = await client.post("/v1/auth/totp/disable", headers=alice.headers, json={"recovery_code": recovery[3]})

    assert response.status_code == 204, response.text
    assert not await two_factor_enabled(client, alice)


async def test_two_factor_actions_need_two_factor(client, alice):
    confirm = await client.post("/v1/auth/totp/confirm", headers=alice.headers, json={"code": "123456"})
    disable = await client.post("/v1/auth/totp/disable", headers=alice.headers, json={"code": "123456"})
    regenerate = await client.post("/v1/auth/totp/recovery-codes", headers=alice.headers, json={"code": "123456"})

    assert [r.status_code for r in (confirm, disable, regenerate)] == [409, 409, 409]
    assert [problem_type(r) for r in (confirm, disable, regenerate)] == [
        "totp-not-enrolled",
        "totp-not-enabled",
        "totp-not-enabled",
    ]


async def test_enrol_or_confirm_when_enabled_conflicts(client, alice):
    secret, _ = await enable(client, alice)

    enrol_again = await client.post("/v1/auth/totp", headers=alice.headers)
    confirm_again = await client.post("/v1/auth/totp/confirm", headers=alice.headers, json={"code": code(secret, 1)})

    assert [r.status_code for r in (enrol_again, confirm_again)] == [409, 409]
    assert {problem_type(r) for r in (enrol_again, confirm_again)} == {"totp-already-enabled"}


async def test_bad_mfa_tokens_are_refused(client, runtime, alice):
    secret, _ = await enable(client, alice)
    past = int(time.time()) - 600
    expired = jwt.encode(
        {"iss": "rapport", "typ": "mfa", "sub": alice.user_id, "amr": "password", "iat": past, "exp": past + 300},
        runtime.keyring.derive("jwt"),
        algorithm="HS256",
    )
    forged = jwt.encode(
        {"iss": "rapport", "typ": "mfa", "sub": alice.user_id, "amr": "password", "iat": past, "exp": past + 3600},
        b"not the server key, but 32 bytes long",
        algorithm="HS256",
    )

    for token in ("not-a-token", expired, forged, alice.access_token):
        response = await client.post(LOGIN_TOTP, json={"mfa_token": token, "code": code(secret, 1)})
        assert response.status_code == 401, token
        assert problem_type(response) == "invalid-token"


async def test_malformed_codes_are_validation_errors(client, alice):
    await enrol(client, alice)

    at_login = await client.post(LOGIN_TOTP, json={"mfa_token": "x", "code": "12ab56"})
    at_confirm = await client.post("/v1/auth/totp/confirm", headers=alice.headers, json={"code": "1234567"})

    assert [r.status_code for r in (at_login, at_confirm)] == [422, 422]
    assert {problem_type(r) for r in (at_login, at_confirm)} == {"validation-error"}


async def test_repeated_wrong_codes_spend_the_accounts_budget(client, runtime, alice):
    secret, _ = await enable(client, alice)
    token = await mfa_token(client, alice)
    for _ in range(runtime.settings.second_factor_guesses_per_account_per_day):
        wrong = await client.post(LOGIN_TOTP, json={"mfa_token": token, "code": wrong_code(secret)})
        assert wrong.status_code == 401, wrong.text

    limited = await client.post(LOGIN_TOTP, json={"mfa_token": token, "code": code(secret, 1)})

    assert limited.status_code == 429
    assert problem_type(limited) == "too-many-attempts"
    assert int(limited.headers["Retry-After"]) > 0


async def test_a_recovery_code_still_works_once_the_budget_is_spent(client, runtime, alice):
    """A stranger who holds the password can spend the TOTP budget; the owner still has
    the recovery codes (fifty random bits each: beyond guessing)."""
    secret, recovery = await enable(client, alice)
    token = await mfa_token(client, alice)
    for _ in range(runtime.settings.second_factor_guesses_per_account_per_day):
        await client.post(LOGIN_TOTP, json={"mfa_token": token, "code": wrong_code(secret)})
    response = await client.post(LOGIN_TOTP, json={"mfa_token": token, "recovery_code": recovery[0]})
    assert response.status_code == 200, response.text


async def test_an_api_key_may_not_enrol(client, alice):
    created = await client.post("/v1/auth/api-keys", headers=alice.headers, json={"name": "bot"})
    key_headers = {"Authorization": f"Bearer {created.json()['key']}"}

    response = await client.post("/v1/auth/totp", headers=key_headers)

    assert response.status_code == 403
    assert problem_type(response) == "session-required"


async def test_enrolment_alone_changes_nothing_and_the_secret_is_encrypted(client, runtime, alice):
    secret = await enrol(client, alice)

    assert not await two_factor_enabled(client, alice)
    login = await client.post(LOGIN, json={"email": alice.email, "password": alice.password})
    assert "access_token" in login.json()
    async with system_transaction(runtime.system_engine) as db:
        stored = (
            await db.execute(
                select(totp_credentials.c.secret_encrypted).where(totp_credentials.c.user_id == alice.user_id)
            )
        ).scalar_one()
    assert secret.encode() not in stored
    assert secret.lower().encode() not in stored.lower()
    assert runtime.keyring.decrypt("totp-secret", stored).decode() == secret
