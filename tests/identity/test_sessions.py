"""Sessions (devices): GET /v1/auth/sessions, DELETE /v1/auth/sessions/{id} and
POST /v1/auth/logout."""

from __future__ import annotations

import uuid

import pytest

from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

SESSIONS = "/v1/auth/sessions"
LOGOUT = "/v1/auth/logout"
ME = "/v1/auth/me"


async def session_ids(client, persona: Persona) -> list[str]:
    return [s["id"] for s in (await client.get(SESSIONS, headers=persona.headers)).json()["items"]]


# Listing


async def test_list_marks_the_current_session(client, alice):
    items = (await client.get(SESSIONS, headers=alice.headers)).json()["items"]
    assert [(s["id"], s["current"]) for s in items] == [(alice.session_id, True)]


async def test_list_shows_every_device_newest_first(client, alice, alice_phone):
    assert await session_ids(client, alice) == [alice_phone.session_id, alice.session_id]


async def test_current_flag_follows_the_token(client, alice, alice_phone):
    items = (await client.get(SESSIONS, headers=alice_phone.headers)).json()["items"]
    assert [s["current"] for s in items] == [True, False]


async def test_list_shows_only_the_accounts_own_sessions(client, alice, bob):
    assert await session_ids(client, alice) == [alice.session_id]


async def test_list_needs_a_token(client):
    response = await client.get(SESSIONS)
    assert (response.status_code, problem_type(response)) == (401, "unauthenticated")


# Revoking one


async def test_revoke_another_session_is_204(client, alice, alice_phone):
    response = await client.delete(f"{SESSIONS}/{alice_phone.session_id}", headers=alice.headers)
    assert response.status_code == 204


async def test_revoked_session_token_stops_working(client, alice, alice_phone):
    await client.delete(f"{SESSIONS}/{alice_phone.session_id}", headers=alice.headers)
    response = await client.get(ME, headers=alice_phone.headers)
    assert (response.status_code, problem_type(response)) == (401, "invalid-token")


async def test_revoked_session_cannot_refresh(client, alice, alice_phone):
    await client.delete(f"{SESSIONS}/{alice_phone.session_id}", headers=alice.headers)
    response = await client.post("/v1/auth/refresh", json={"refresh_token": alice_phone.refresh_token})
    assert (response.status_code, problem_type(response)) == (401, "invalid-token")


async def test_revoking_another_session_keeps_this_one(client, alice, alice_phone):
    await client.delete(f"{SESSIONS}/{alice_phone.session_id}", headers=alice.headers)
    assert (await client.get(ME, headers=alice.headers)).status_code == 200


async def test_revoked_session_leaves_the_list(client, alice, alice_phone):
    await client.delete(f"{SESSIONS}/{alice_phone.session_id}", headers=alice.headers)
    assert await session_ids(client, alice) == [alice.session_id]


async def test_revoking_is_a_security_event(client, alice, alice_phone):
    await client.delete(f"{SESSIONS}/{alice_phone.session_id}", headers=alice.headers)
    [event] = (await client.get("/v1/auth/security-events", headers=alice.headers)).json()["items"]
    assert (event["event_type"], event["details"]) == ("session_revoked", {"session_id": alice_phone.session_id})


async def test_revoking_the_current_session_signs_out(client, alice):
    await client.delete(f"{SESSIONS}/{alice.session_id}", headers=alice.headers)
    assert (await client.get(ME, headers=alice.headers)).status_code == 401


async def test_revoking_an_unknown_session_is_404(client, alice):
    response = await client.delete(f"{SESSIONS}/{uuid.uuid4()}", headers=alice.headers)
    assert (response.status_code, problem_type(response)) == (404, "session-not-found")


async def test_revoking_a_session_twice_is_404(client, alice, alice_phone):
    await client.delete(f"{SESSIONS}/{alice_phone.session_id}", headers=alice.headers)
    response = await client.delete(f"{SESSIONS}/{alice_phone.session_id}", headers=alice.headers)
    assert (response.status_code, problem_type(response)) == (404, "session-not-found")


async def test_revoking_someone_elses_session_is_404(client, alice, mallory):
    response = await client.delete(f"{SESSIONS}/{alice.session_id}", headers=mallory.headers)
    assert (response.status_code, problem_type(response)) == (404, "session-not-found")


async def test_someone_elses_failed_revoke_leaves_the_session_working(client, alice, mallory):
    await client.delete(f"{SESSIONS}/{alice.session_id}", headers=mallory.headers)
    assert (await client.get(ME, headers=alice.headers)).status_code == 200


async def test_revoking_needs_a_token(client, alice):
    response = await client.delete(f"{SESSIONS}/{alice.session_id}")
    assert response.status_code == 401


# Logging out


async def test_logout_is_204(client, alice):
    response = await client.post(LOGOUT, headers=alice.headers)
    assert response.status_code == 204


async def test_logout_ends_the_access_token(client, alice):
    await client.post(LOGOUT, headers=alice.headers)
    response = await client.get(ME, headers=alice.headers)
    assert (response.status_code, problem_type(response)) == (401, "invalid-token")


async def test_logout_leaves_other_devices_signed_in(client, alice, alice_phone):
    await client.post(LOGOUT, headers=alice.headers)
    assert (await client.get(ME, headers=alice_phone.headers)).status_code == 200


async def test_logout_twice_is_401(client, alice):
    await client.post(LOGOUT, headers=alice.headers)
    response = await client.post(LOGOUT, headers=alice.headers)
    assert (response.status_code, problem_type(response)) == (401, "invalid-token")


async def test_logout_needs_a_token(client):
    response = await client.post(LOGOUT)
    assert (response.status_code, problem_type(response)) == (401, "unauthenticated")


async def test_logout_with_an_api_key_is_refused_and_the_key_keeps_working(client, alice):
    """An API key has no session: a 204 would say it was signed out while it still works.
    Keys are revoked with DELETE /v1/auth/api-keys/{id}."""
    created = await client.post("/v1/auth/api-keys", headers=alice.headers, json={"name": "bot"})
    key = {"Authorization": f"Bearer {created.json()['key']}"}
    response = await client.post(LOGOUT, headers=key)
    assert (response.status_code, problem_type(response)) == (403, "session-required")
    assert (await client.get(ME, headers=key)).status_code == 200
