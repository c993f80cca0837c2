"""Signing in with e-mail and password (POST /v1/auth/login), who the token says you are
(GET /v1/auth/me), and the record of attempts (GET /v1/auth/login-history)."""

from __future__ import annotations

import uuid

import bcrypt
import pytest
from sqlalchemy import select, update

from rapport.identity import tokens
from rapport.identity.models import users
from rapport.kernel.crypto import Keyring
from rapport.kernel.db import system_transaction
from tests.support import PASSWORD, bearer, create_verified_user, login, problem_type

pytestmark = pytest.mark.module_database

LOGIN = "/v1/auth/login"
ME = "/v1/auth/me"
HISTORY = "/v1/auth/login-history"
CAROL = "carol@example.com"


@pytest.fixture
async def unsigned_carol(runtime) -> str:
    """A verified account that has not signed in yet."""
    await create_verified_user(runtime, CAROL)
    return CAROL


async def password_hash(runtime, email: str) -> str:
    async with system_transaction(runtime.system_engine) as db:
        return (await db.execute(select(users.c.password_hash).where(users.c.email == email))).scalar_one()


async def set_password_hash(runtime, email: str, value: str) -> None:
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(update(users).where(users.c.email == email).values(password_hash=value))


# Success


async def test_login_gives_a_bearer_token_pair(client, unsigned_carol):
    body = (await login(client, CAROL)).json()
    assert body["token_type"] == "bearer" and body["access_token"] and body["refresh_token"].startswith("rt_")


async def test_access_token_names_the_account(client, unsigned_carol):
    token = (await login(client, CAROL)).json()["access_token"]
    assert (await client.get(ME, headers=bearer(token))).json()["email"] == CAROL


async def test_access_token_expiry_is_announced(client, unsigned_carol, settings):
    assert (await login(client, CAROL)).json()["expires_in"] == settings.access_token_ttl_seconds


async def test_login_accepts_the_address_in_any_case(client, unsigned_carol):
    response = await login(client, "  Carol@EXAMPLE.com")
    assert response.status_code == 200


async def test_login_records_last_login(client, unsigned_carol):
    token = (await login(client, CAROL)).json()["access_token"]
    assert (await client.get(ME, headers=bearer(token))).json()["last_login_at"] is not None


async def test_login_records_the_device(client, unsigned_carol):
    token = (await login(client, CAROL, device_type="desktop", device_name="Carol's laptop")).json()["access_token"]
    [session] = (await client.get("/v1/auth/sessions", headers=bearer(token))).json()["items"]
    assert (session["device_type"], session["device_name"], session["ip_address"]) == (
        "desktop",
        "Carol's laptop",
        "203.0.113.7",
    )


async def test_login_records_the_user_agent(client, unsigned_carol):
    response = await client.post(
        LOGIN, json={"email": CAROL, "password": PASSWORD}, headers={"User-Agent": "RapportTest/1.0"}
    )
    [session] = (await client.get("/v1/auth/sessions", headers=bearer(response.json()["access_token"]))).json()["items"]
    assert session["user_agent"] == "RapportTest/1.0"


# Refusals, and what they do not reveal


async def test_wrong_password_is_401_invalid_credentials(client, unsigned_carol):
    response = await login(client, CAROL, password="not carol's password")
    assert (response.status_code, problem_type(response)) == (401, "invalid-credentials")


async def test_unknown_email_is_401_invalid_credentials(client):
    response = await login(client, "nobody@example.com")
    assert (response.status_code, problem_type(response)) == (401, "invalid-credentials")


def _shape(response) -> tuple:
    body = response.json()
    return (
        response.status_code,
        response.headers.get("www-authenticate"),
        sorted(body),
        body["type"],
        body["title"],
        body["detail"],
    )


async def test_wrong_password_and_unknown_email_answer_identically(client, unsigned_carol):
    wrong_password = await login(client, CAROL, password="not carol's password")
    unknown_email = await login(client, "nobody@example.com", password="not carol's password")
    assert _shape(wrong_password) == _shape(unknown_email)


@pytest.mark.parametrize("status", ["suspended", "banned"])
async def test_disabled_account_is_403_account_disabled(client, unsigned_carol, runtime, status):
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(update(users).where(users.c.email == CAROL).values(status=status))
    response = await login(client, CAROL)
    assert (response.status_code, problem_type(response)) == (403, "account-disabled")


async def test_disabled_account_with_a_wrong_password_is_invalid_credentials(client, unsigned_carol, runtime):
    """Only the right password learns that the account is disabled."""
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(update(users).where(users.c.email == CAROL).values(status="suspended"))
    response = await login(client, CAROL, password="not carol's password")
    assert problem_type(response) == "invalid-credentials"


async def test_password_is_case_sensitive(client, unsigned_carol):
    response = await login(client, CAROL, password=PASSWORD.upper())
    assert problem_type(response) == "invalid-credentials"


async def test_account_without_a_password_cannot_sign_in_with_one(client, unsigned_carol, runtime):
    await set_password_hash(runtime, CAROL, None)
    response = await login(client, CAROL)
    assert problem_type(response) == "invalid-credentials"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"email": "a" * 60 + "@" + "b" * 260 + ".com", "password": PASSWORD}, id="email-over-320"),
        pytest.param({"email": CAROL, "password": "p" * 1025}, id="password-over-1024"),
        pytest.param({"email": CAROL, "password": PASSWORD, "device_name": "d" * 101}, id="device-name-over-100"),
        pytest.param({"email": CAROL, "password": PASSWORD, "device_type": "toaster"}, id="device-type-unknown"),
        pytest.param({"email": CAROL}, id="password-missing"),
        pytest.param({"password": PASSWORD}, id="email-missing"),
        pytest.param({"email": CAROL, "password": 123456789012}, id="password-wrong-type"),
        pytest.param({"email": 42, "password": PASSWORD}, id="email-wrong-type"),
        pytest.param({"email": CAROL, "password": PASSWORD, "remember": True}, id="extra-field"),
    ],
)
async def test_invalid_login_is_422(client, unsigned_carol, body):
    response = await client.post(LOGIN, json=body)
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_device_name_of_100_is_accepted(client, unsigned_carol):
    response = await login(client, CAROL, device_name="d" * 100)
    assert response.status_code == 200


async def test_device_name_with_a_nul_character_is_422(client, unsigned_carol):
    """PostgreSQL text cannot hold U+0000: refused at the edge, not a 500 from the database."""
    response = await login(client, CAROL, device_name="Carol\u0000's phone")
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_malformed_login_is_400(client):
    response = await client.post(LOGIN, content=b"email=carol", headers={"content-type": "application/json"})
    assert (response.status_code, problem_type(response)) == (400, "malformed-json")


# Imported bcrypt hashes


async def test_bcrypt_hash_still_verifies(client, unsigned_carol, runtime):
    await set_password_hash(runtime, CAROL, bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode())
    response = await login(client, CAROL)
    assert response.status_code == 200


async def test_bcrypt_hash_is_replaced_by_argon2id_at_sign_in(client, unsigned_carol, runtime):
    await set_password_hash(runtime, CAROL, bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode())
    await login(client, CAROL)
    assert (await password_hash(runtime, CAROL)).startswith("$argon2id$")


async def test_bcrypt_hash_refuses_a_wrong_password(client, unsigned_carol, runtime):
    await set_password_hash(runtime, CAROL, bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode())
    response = await login(client, CAROL, password="not carol's password")
    assert problem_type(response) == "invalid-credentials"


async def test_bcrypt_hash_is_kept_after_a_failed_sign_in(client, unsigned_carol, runtime):
    stored = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    await set_password_hash(runtime, CAROL, stored)
    await login(client, CAROL, password="not carol's password")
    assert await password_hash(runtime, CAROL) == stored


# Bearer tokens


async def test_me_without_a_token_is_401_unauthenticated(client):
    response = await client.get(ME)
    assert (response.status_code, problem_type(response)) == (401, "unauthenticated")


async def test_me_with_another_scheme_is_401_unauthenticated(client):
    response = await client.get(ME, headers={"Authorization": "Basic Y2Fyb2w6cGFzc3dvcmQ="})
    assert (response.status_code, problem_type(response)) == (401, "unauthenticated")


async def test_401_asks_for_a_bearer_token(client):
    response = await client.get(ME)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_garbage_bearer_is_401_invalid_token(client):
    response = await client.get(ME, headers=bearer("garbage"))
    assert (response.status_code, problem_type(response)) == (401, "invalid-token")


async def test_expired_access_token_is_401_invalid_token(client, alice, runtime):
    expired = tokens.issue_access_token(
        runtime.keyring, user_id=uuid.UUID(alice.user_id), session_id=uuid.UUID(alice.session_id), ttl_seconds=-10
    )
    response = await client.get(ME, headers=bearer(expired))
    assert (response.status_code, problem_type(response)) == (401, "invalid-token")


async def test_access_token_signed_with_another_key_is_invalid(client, alice):
    forged = tokens.issue_access_token(
        Keyring("another-server-secret-key-of-some-length"),
        user_id=uuid.UUID(alice.user_id),
        session_id=uuid.UUID(alice.session_id),
        ttl_seconds=60,
    )
    response = await client.get(ME, headers=bearer(forged))
    assert (response.status_code, problem_type(response)) == (401, "invalid-token")


async def test_access_token_for_an_unknown_session_is_invalid(client, alice, runtime):
    token = tokens.issue_access_token(
        runtime.keyring, user_id=uuid.UUID(alice.user_id), session_id=uuid.uuid4(), ttl_seconds=60
    )
    response = await client.get(ME, headers=bearer(token))
    assert (response.status_code, problem_type(response)) == (401, "invalid-token")


async def test_two_factor_challenge_token_is_not_an_access_token(client, alice, runtime):
    token = tokens.issue_mfa_token(runtime.keyring, user_id=uuid.UUID(alice.user_id), method="password")
    response = await client.get(ME, headers=bearer(token))
    assert (response.status_code, problem_type(response)) == (401, "invalid-token")


async def test_refresh_token_is_not_an_access_token(client, alice):
    response = await client.get(ME, headers=bearer(alice.refresh_token))
    assert (response.status_code, problem_type(response)) == (401, "invalid-token")


# Login history


@pytest.mark.personas_sign_in
async def test_login_history_shows_a_success(client, alice):
    [entry] = (await client.get(HISTORY, headers=alice.headers)).json()["items"]
    assert (entry["method"], entry["succeeded"], entry["ip_address"]) == ("password", True, "203.0.113.7")


@pytest.mark.personas_sign_in
async def test_login_history_shows_a_failure_newest_first(client, alice):
    await login(client, alice.email, password="not alice's password")
    items = (await client.get(HISTORY, headers=alice.headers)).json()["items"]
    assert [(e["succeeded"], e["failure_reason"]) for e in items] == [(False, "invalid_password"), (True, None)]


@pytest.mark.personas_sign_in
async def test_login_history_is_the_accounts_own(client, alice, bob):
    await login(client, bob.email, password="not bob's password")
    items = (await client.get(HISTORY, headers=alice.headers)).json()["items"]
    assert len(items) == 1


async def test_login_history_needs_a_token(client):
    response = await client.get(HISTORY)
    assert response.status_code == 401
