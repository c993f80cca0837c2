"""Wrong two-factor codes spend the account's budget when signed in too: a stolen session
cannot guess its way to turning two-factor off or to new recovery codes."""

from __future__ import annotations

from tests.identity.test_totp import away_from_step_boundary, code, enable, wrong_code
from tests.support import problem_type


async def test_guessing_codes_to_disable_two_factor_locks(client, alice, settings):
    secret, _ = await enable(client, alice)
    for _ in range(settings.second_factor_guesses_per_account_per_day):
        response = await client.post("/v1/auth/totp/disable", headers=alice.headers, json={"code": wrong_code(secret)})
        assert problem_type(response) == "invalid-totp-code"
    locked = await client.post("/v1/auth/totp/disable", headers=alice.headers, json={"code": code(secret, 1)})
    assert (locked.status_code, problem_type(locked)) == (429, "too-many-attempts")
    me = await client.get("/v1/auth/me", headers=alice.headers)
    assert me.json()["two_factor_enabled"] is True


async def test_guessing_codes_for_new_recovery_codes_locks(client, alice, settings):
    secret, _ = await enable(client, alice)
    for _ in range(settings.second_factor_guesses_per_account_per_day):
        await client.post("/v1/auth/totp/recovery-codes", headers=alice.headers, json={"code": wrong_code(secret)})
    locked = await client.post("/v1/auth/totp/recovery-codes", headers=alice.headers, json={"code": code(secret, 1)})
    assert (locked.status_code, problem_type(locked)) == (429, "too-many-attempts")


async def test_a_right_code_costs_nothing(client, alice, settings):
    secret, _ = await enable(client, alice)
    for _ in range(settings.second_factor_guesses_per_account_per_day - 1):
        await client.post("/v1/auth/totp/recovery-codes", headers=alice.headers, json={"code": wrong_code(secret)})
    renewed = await client.post("/v1/auth/totp/recovery-codes", headers=alice.headers, json={"code": code(secret, 1)})
    assert renewed.status_code == 200, renewed.text
    wrong = await client.post("/v1/auth/totp/disable", headers=alice.headers, json={"code": wrong_code(secret)})
    assert problem_type(wrong) == "invalid-totp-code"


async def test_a_used_code_when_signed_in_says_so_and_does_not_count(client, alice, settings):
    await away_from_step_boundary()
    secret, _ = await enable(client, alice)
    for _ in range(settings.second_factor_guesses_per_account_per_day + 1):
        replay = await client.post("/v1/auth/totp/recovery-codes", headers=alice.headers, json={"code": code(secret)})
        assert (replay.status_code, problem_type(replay)) == (401, "totp-code-already-used")
    renewed = await client.post("/v1/auth/totp/recovery-codes", headers=alice.headers, json={"code": code(secret, 1)})
    assert renewed.status_code == 200, renewed.text


async def test_disabling_with_neither_code_is_422_and_not_counted(client, alice, settings):
    secret, _ = await enable(client, alice)
    for _ in range(settings.second_factor_guesses_per_account_per_day + 1):
        neither = await client.post("/v1/auth/totp/disable", headers=alice.headers, json={})
        assert (neither.status_code, problem_type(neither)) == (422, "validation-error")
    disabled = await client.post("/v1/auth/totp/disable", headers=alice.headers, json={"code": code(secret, 1)})
    assert disabled.status_code == 204, disabled.text
