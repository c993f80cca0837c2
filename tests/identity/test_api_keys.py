"""API keys for bots and scripts, through the API: shown once, usable as a Bearer token,
revocable, optionally expiring, and never able to change the account's security."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from sqlalchemy import select, update

from rapport.identity.models import api_keys, users
from rapport.kernel.db import system_transaction
from tests.support import bearer, problem_type

pytestmark = pytest.mark.module_database

KEYS = "/v1/auth/api-keys"
ME = "/v1/auth/me"


async def create_key(client, persona, name: str = "deploy bot", **fields) -> dict:
    response = await client.post(KEYS, headers=persona.headers, json={"name": name, **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def test_the_key_is_shown_once_and_stored_as_a_hash(client, runtime, alice):
    response = await client.post(KEYS, headers=alice.headers, json={"name": "deploy bot"})

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["key"].startswith("rk_") and created["key"].startswith(created["prefix"])
    assert (created["name"], created["expires_at"], created["last_used_at"]) == ("deploy bot", None, None)
    listed = await client.get(KEYS, headers=alice.headers)
    assert [k["id"] for k in listed.json()["items"]] == [created["id"]]
    assert "key" not in listed.json()["items"][0]
    assert created["key"] not in listed.text
    async with system_transaction(runtime.system_engine) as db:
        stored = (await db.execute(select(api_keys).where(api_keys.c.id == UUID(created["id"])))).one()
    assert created["key"].encode() not in stored.key_hash
    assert len(stored.prefix) < len(created["key"]) // 2


async def test_a_key_acts_as_its_owner_and_records_its_use(client, alice):
    created = await create_key(client, alice)

    response = await client.get(ME, headers=bearer(created["key"]))

    assert response.status_code == 200, response.text
    assert response.json()["id"] == alice.user_id
    [listed] = (await client.get(KEYS, headers=alice.headers)).json()["items"]
    assert listed["last_used_at"] is not None


async def test_a_revoked_key_stops_working_and_is_gone(client, alice):
    created = await create_key(client, alice)
    assert (await client.get(ME, headers=bearer(created["key"]))).status_code == 200

    revoke = await client.delete(f"{KEYS}/{created['id']}", headers=alice.headers)

    assert revoke.status_code == 204, revoke.text
    response = await client.get(ME, headers=bearer(created["key"]))
    assert response.status_code == 401
    assert problem_type(response) == "invalid-token"
    assert (await client.get(KEYS, headers=alice.headers)).json()["items"] == []
    for missing in (created["id"], uuid4()):
        again = await client.delete(f"{KEYS}/{missing}", headers=alice.headers)
        assert again.status_code == 404
        assert problem_type(again) == "api-key-not-found"


async def test_expiry_must_be_a_future_moment(client, alice):
    aware = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    naive = (datetime.now(UTC) - timedelta(hours=1)).replace(tzinfo=None).isoformat()
    # In UTC this is in the year 10000, which no datetime can hold.
    beyond_the_calendar = "9999-12-31T23:59:59-14:00"

    for expires_at in (aware, naive, beyond_the_calendar):
        response = await client.post(KEYS, headers=alice.headers, json={"name": "late", "expires_at": expires_at})
        assert response.status_code == 422, expires_at
        assert problem_type(response) == "validation-error"


async def test_a_key_works_until_it_expires(client, runtime, alice):
    future = datetime.now(UTC) + timedelta(days=30)
    created = await create_key(client, alice, expires_at=future.isoformat())
    assert datetime.fromisoformat(created["expires_at"]) == future
    assert (await client.get(ME, headers=bearer(created["key"]))).status_code == 200

    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            update(api_keys)
            .where(api_keys.c.id == UUID(created["id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

    response = await client.get(ME, headers=bearer(created["key"]))
    assert response.status_code == 401
    assert problem_type(response) == "invalid-token"


async def test_list_pages_newest_first(client, alice):
    ids = [(await create_key(client, alice, name=f"key {n}"))["id"] for n in range(3)]

    first = (await client.get(KEYS, headers=alice.headers, params={"limit": 2})).json()
    second = (await client.get(KEYS, headers=alice.headers, params={"limit": 2, "cursor": first["next"]})).json()

    assert [k["id"] for k in first["items"]] == [ids[2], ids[1]]
    assert first["next"] is not None
    assert [k["id"] for k in second["items"]] == [ids[0]]
    assert second["next"] is None


async def test_names_are_between_1_and_100_characters(client, alice):
    for body in ({"name": "x" * 101}, {"name": ""}, {"name": "   "}, {}, {"name": "nul\x00byte"}, {"name": "a\nb"}):
        response = await client.post(KEYS, headers=alice.headers, json=body)
        assert response.status_code == 422, body
        assert problem_type(response) == "validation-error"

    assert (await create_key(client, alice, name="é" * 100))["name"] == "é" * 100
    assert (await create_key(client, alice, name="  padded  "))["name"] == "padded"


async def test_a_key_may_not_manage_account_security(client, alice):
    created = await create_key(client, alice)
    key = bearer(created["key"])

    refused = [
        await client.post(KEYS, headers=key, json={"name": "child"}),
        await client.delete(f"{KEYS}/{created['id']}", headers=key),
        await client.post(
            "/v1/auth/password/change",
            headers=key,
            json={"current_password": alice.password, "new_password": "another long password"},
        ),
    ]

    assert [r.status_code for r in refused] == [403, 403, 403]
    assert {problem_type(r) for r in refused} == {"session-required"}
    assert [k["id"] for k in (await client.get(KEYS, headers=key)).json()["items"]] == [created["id"]]
    login = await client.post("/v1/auth/login", json={"email": alice.email, "password": alice.password})
    assert login.status_code == 200


async def test_create_and_revoke_are_security_events(client, alice):
    created = await create_key(client, alice)
    await client.delete(f"{KEYS}/{created['id']}", headers=alice.headers)

    events = (await client.get("/v1/auth/security-events", headers=alice.headers)).json()["items"]

    assert [(e["event_type"], e["details"]["api_key_id"]) for e in events[:2]] == [
        ("api_key_revoked", created["id"]),
        ("api_key_created", created["id"]),
    ]


async def test_a_suspended_accounts_key_stops_working(client, runtime, alice):
    created = await create_key(client, alice)
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(update(users).where(users.c.id == UUID(alice.user_id)).values(status="suspended"))

    response = await client.get(ME, headers=bearer(created["key"]))

    assert response.status_code == 401
    assert problem_type(response) == "invalid-token"
