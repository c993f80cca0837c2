"""Refresh-token rotation (POST /v1/auth/refresh): each refresh token works once, and a
used one that comes back revokes its session."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, update

from rapport.identity.models import refresh_tokens
from rapport.kernel.crypto import sha256
from rapport.kernel.db import system_transaction
from tests.support import Persona, bearer, problem_type, sign_in

pytestmark = pytest.mark.module_database

REFRESH = "/v1/auth/refresh"
ME = "/v1/auth/me"


async def refresh(client, token: str):
    return await client.post(REFRESH, json={"refresh_token": token})


# Rotation


async def test_refresh_gives_a_working_access_token(client, alice):
    pair = (await refresh(client, alice.refresh_token)).json()
    assert (await client.get(ME, headers=bearer(pair["access_token"]))).status_code == 200


async def test_refresh_gives_a_new_refresh_token(client, alice):
    pair = (await refresh(client, alice.refresh_token)).json()
    assert pair["refresh_token"] != alice.refresh_token


async def test_refresh_stays_in_the_same_session(client, alice):
    pair = (await refresh(client, alice.refresh_token)).json()
    assert (pair["session_id"], pair["user_id"]) == (alice.session_id, alice.user_id)


async def test_new_refresh_token_refreshes_again(client, alice):
    second = (await refresh(client, alice.refresh_token)).json()["refresh_token"]
    response = await refresh(client, second)
    assert response.status_code == 200


async def test_earlier_access_token_keeps_working_after_refresh(client, alice):
    await refresh(client, alice.refresh_token)
    assert (await client.get(ME, headers=alice.headers)).status_code == 200


# Reuse


async def test_reused_refresh_token_is_401_refresh_token_reused(client, alice):
    await refresh(client, alice.refresh_token)
    response = await refresh(client, alice.refresh_token)
    assert (response.status_code, problem_type(response)) == (401, "refresh-token-reused")


async def test_reuse_revokes_the_newer_refresh_token(client, alice):
    newer = (await refresh(client, alice.refresh_token)).json()["refresh_token"]
    await refresh(client, alice.refresh_token)
    response = await refresh(client, newer)
    assert (response.status_code, problem_type(response)) == (401, "invalid-token")


async def test_reuse_ends_the_session_for_access_tokens_too(client, alice):
    newer_access = (await refresh(client, alice.refresh_token)).json()["access_token"]
    await refresh(client, alice.refresh_token)
    response = await client.get(ME, headers=bearer(newer_access))
    assert (response.status_code, problem_type(response)) == (401, "invalid-token")


async def test_reuse_is_a_critical_security_event(client, alice):
    await refresh(client, alice.refresh_token)
    await refresh(client, alice.refresh_token)
    await sign_in(client, alice)  # the reuse ended her session
    [event] = [
        e
        for e in (await client.get("/v1/auth/security-events", headers=alice.headers)).json()["items"]
        if e["event_type"] == "refresh_token_reused"
    ]
    assert (event["severity"], event["details"]["session_revoked"]) == ("critical", True)


async def test_reuse_leaves_the_accounts_other_sessions_alone(client, alice):
    laptop = await sign_in(client, Persona(name="alice", email=alice.email, password=alice.password))
    await refresh(client, alice.refresh_token)
    await refresh(client, alice.refresh_token)
    assert (await client.get(ME, headers=laptop.headers)).status_code == 200


# Tokens that never worked or no longer work


async def test_garbage_refresh_token_is_401_invalid_token(client):
    response = await refresh(client, "rt_garbage")
    assert (response.status_code, problem_type(response)) == (401, "invalid-token")


async def test_expired_refresh_token_is_401_invalid_token(client, alice, runtime):
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.token_hash == sha256(alice.refresh_token))
            .values(expires_at=func.now() - timedelta(seconds=1))
        )
    response = await refresh(client, alice.refresh_token)
    assert (response.status_code, problem_type(response)) == (401, "invalid-token")


async def test_refresh_after_logout_is_401_invalid_token(client, alice):
    await client.post("/v1/auth/logout", headers=alice.headers)
    response = await refresh(client, alice.refresh_token)
    assert (response.status_code, problem_type(response)) == (401, "invalid-token")


async def test_refresh_after_logout_does_not_spend_the_token(client, alice):
    """A refused refresh changes nothing: presenting the token again is not a reuse."""
    await client.post("/v1/auth/logout", headers=alice.headers)
    await refresh(client, alice.refresh_token)
    response = await refresh(client, alice.refresh_token)
    assert problem_type(response) == "invalid-token"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"refresh_token": ""}, id="empty"),
        pytest.param({"refresh_token": "rt_" + "x" * 254}, id="over-256"),
        pytest.param({"refresh_token": 42}, id="wrong-type"),
        pytest.param({}, id="missing"),
        pytest.param({"refresh_token": "rt_x", "session_id": "y"}, id="extra-field"),
    ],
)
async def test_invalid_refresh_request_is_422(client, body):
    response = await client.post(REFRESH, json=body)
    assert (response.status_code, problem_type(response)) == (422, "validation-error")
