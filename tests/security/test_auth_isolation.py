"""Mallory, signed in with her own account, reaches for alice's sessions, keys and
records through the identity API, and gets nothing."""

from __future__ import annotations

import pytest

from tests.support import problem_type

pytestmark = pytest.mark.module_database

SESSIONS = "/v1/auth/sessions"
KEYS = "/v1/auth/api-keys"
ME = "/v1/auth/me"


async def test_mallory_lists_only_her_own_sessions(client, alice, mallory):
    response = await client.get(SESSIONS, headers=mallory.headers)

    assert response.status_code == 200
    assert [s["id"] for s in response.json()["items"]] == [mallory.session_id]


async def test_mallory_cannot_revoke_alices_session(client, alice, mallory):
    response = await client.delete(f"{SESSIONS}/{alice.session_id}", headers=mallory.headers)

    assert response.status_code == 404
    assert problem_type(response) == "session-not-found"
    assert (await client.get(ME, headers=alice.headers)).status_code == 200


async def test_mallory_can_neither_see_nor_revoke_alices_api_key(client, alice, mallory):
    created = (await client.post(KEYS, headers=alice.headers, json={"name": "alice's bot"})).json()

    response = await client.delete(f"{KEYS}/{created['id']}", headers=mallory.headers)

    assert response.status_code == 404
    assert problem_type(response) == "api-key-not-found"
    me = await client.get(ME, headers={"Authorization": f"Bearer {created['key']}"})
    assert me.status_code == 200
    assert me.json()["id"] == alice.user_id
    assert (await client.get(KEYS, headers=mallory.headers)).json()["items"] == []


@pytest.mark.personas_sign_in
async def test_mallory_does_not_see_alices_login_history(client, alice, mallory):
    alices = {h["id"] for h in (await client.get("/v1/auth/login-history", headers=alice.headers)).json()["items"]}
    assert alices

    response = await client.get("/v1/auth/login-history", headers=mallory.headers)

    assert response.status_code == 200
    mine = {h["id"] for h in response.json()["items"]}
    assert mine and not mine & alices


async def test_mallory_does_not_see_alices_security_events(client, alice, mallory):
    await client.post(KEYS, headers=alice.headers, json={"name": "alice's bot"})
    alices = (await client.get("/v1/auth/security-events", headers=alice.headers)).json()["items"]
    assert alices

    response = await client.get("/v1/auth/security-events", headers=mallory.headers)

    assert response.status_code == 200
    assert response.json()["items"] == []


async def test_a_revoked_session_token_stops_working_at_once(client, alice):
    phone = await client.post("/v1/auth/login", json={"email": alice.email, "password": alice.password})
    phone_headers = {"Authorization": f"Bearer {phone.json()['access_token']}"}

    await client.delete(f"{SESSIONS}/{phone.json()['session_id']}", headers=alice.headers)

    response = await client.get(ME, headers=phone_headers)
    assert response.status_code == 401
    assert problem_type(response) == "invalid-token"


async def test_only_a_valid_bearer_gets_in(client, alice, mallory):
    header, payload, _ = alice.access_token.split(".")
    _, _, mallorys_signature = mallory.access_token.split(".")
    refused = {
        "garbage": "garbage",
        "unknown API key": "rk_garbage",
        "unsigned JWT": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
        "alice's claims, mallory's signature": f"{header}.{payload}.{mallorys_signature}",
        "a refresh token": alice.refresh_token,
    }

    for what, token in refused.items():
        response = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, what
        assert problem_type(response) == "invalid-token", what
    for headers in ({}, {"Authorization": "Basic YWxpY2U6cGFzcw=="}):
        response = await client.get(ME, headers=headers)
        assert response.status_code == 401
        assert problem_type(response) == "unauthenticated"
