"""Wrong two-factor codes count toward a lock when signed in too: a stolen session
cannot guess its way to turning two-factor off or to new recovery codes."""

from __future__ import annotations

from tests.conftest import problem_type
from tests.identity.test_totp import code, enable, wrong_code


async def test_guessing_codes_to_disable_two_factor_locks(client, alice, settings):
    secret, _ = await enable(client, alice)
    for _ in range(settings.login_lock_threshold):
        response = await client.post("/v1/auth/totp/disable", headers=alice.headers, json={"code": wrong_code(secret)})
        assert problem_type(response) == "invalid-totp-code"
    locked = await client.post("/v1/auth/totp/disable", headers=alice.headers, json={"code": code(secret, 1)})
    assert (locked.status_code, problem_type(locked)) == (429, "login-throttled")
    me = await client.get("/v1/auth/me", headers=alice.headers)
    assert me.json()["two_factor_enabled"] is True


async def test_guessing_codes_for_new_recovery_codes_locks(client, alice, settings):
    secret, _ = await enable(client, alice)
    for _ in range(settings.login_lock_threshold):
        await client.post("/v1/auth/totp/recovery-codes", headers=alice.headers, json={"code": wrong_code(secret)})
    locked = await client.post("/v1/auth/totp/recovery-codes", headers=alice.headers, json={"code": code(secret, 1)})
    assert (locked.status_code, problem_type(locked)) == (429, "login-throttled")


async def test_a_right_code_clears_the_count(client, alice, settings):
    secret, _ = await enable(client, alice)
    for _ in range(settings.login_lock_threshold - 1):
        await client.post("/v1/auth/totp/recovery-codes", headers=alice.headers, json={"code": wrong_code(secret)})
    renewed = await client.post("/v1/auth/totp/recovery-codes", headers=alice.headers, json={"code": code(secret, 1)})
    assert renewed.status_code == 200, renewed.text
    wrong = await client.post("/v1/auth/totp/disable", headers=alice.headers, json={"code": wrong_code(secret)})
    assert problem_type(wrong) == "invalid-totp-code"
