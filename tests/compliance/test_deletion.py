"""Deleting one's account: confirmed by the password or a fresh sign-in; disabled at once
for a grace period in which signing in again restores it as it was; erased after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
from fastapi import FastAPI

from rapport.compliance import service_deletion
from rapport.config import Settings
from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime
from tests.compliance.erase_support import (
    ME,
    compliance_app,  # noqa: F401  (this module's app serves the compliance routes)
    compliance_settings,  # noqa: F401
    execute,
    fetch,
    jobs_done,
)
from tests.support import Mailbox, Persona, bearer, login, problem_type, sign_in


async def _delete(client: httpx.AsyncClient, persona: Persona, body: object = None) -> httpx.Response:
    return await client.request("DELETE", ME, headers=persona.headers, json=body)


async def _log(database: DatabaseUrls, user_id: str) -> list[str]:
    rows = await fetch(
        database, "SELECT event_type FROM compliance.compliance_logs WHERE user_id = $1 ORDER BY id", UUID(user_id)
    )
    return [row["event_type"] for row in rows]


async def test_deleting_with_the_password_disables_the_account_for_the_grace_period(
    client: httpx.AsyncClient,
    app: FastAPI,
    database: DatabaseUrls,
    settings: Settings,
    mailbox: Mailbox,
    alice: Persona,
    alice_phone: Persona,
) -> None:
    key = await client.post("/v1/auth/api-keys", headers=alice.headers, json={"name": "script"})
    assert key.status_code == 201, key.text
    deleted = await _delete(client, alice, {"password": alice.password})
    assert deleted.status_code == 202, deleted.text
    body = deleted.json()
    assert body["confirmed_by"] == "password"
    grace = datetime.fromisoformat(body["erase_after"]) - datetime.fromisoformat(body["requested_at"])
    assert grace == timedelta(days=settings.account_deletion_grace_days)
    # Every session ends, on every device; the API key stops working too.
    for persona in (alice, alice_phone):
        assert (await client.get("/v1/auth/me", headers=persona.headers)).status_code == 401
    assert (await client.get("/v1/profile", headers=bearer(key.json()["key"]))).status_code == 401
    [user] = await fetch(database, "SELECT status FROM auth.users WHERE id = $1", UUID(alice.user_id))
    assert user["status"] == "deleted"
    assert await _log(database, alice.user_id) == ["data_deletion_requested"]
    await jobs_done(app)
    [mail] = await mailbox.wait_for(alice.email)
    assert "deleted" in mail["Subject"]


async def test_signing_in_during_the_grace_period_restores_the_account(
    client: httpx.AsyncClient, app: FastAPI, database: DatabaseUrls, alice: Persona, bob: Persona
) -> None:
    profile = await client.patch("/v1/profile", headers=alice.headers, json={"bio": "Still here"})
    assert profile.status_code == 200, profile.text
    assert (await _delete(client, alice, {"password": alice.password})).status_code == 202
    found = await client.get("/v1/users/search", params={"q": "alice"}, headers=bob.headers)
    assert found.status_code == 200 and found.json()["items"] == [], "a deleted account is not found"

    await sign_in(client, alice)
    me = await client.get("/v1/auth/me", headers=alice.headers)
    assert me.status_code == 200 and me.json()["status"] == "active"
    assert (await client.get("/v1/profile", headers=alice.headers)).json()["bio"] == "Still here"
    assert (
        await fetch(database, "SELECT 1 FROM compliance.deletion_requests WHERE user_id = $1", UUID(alice.user_id))
        == []
    )
    assert await _log(database, alice.user_id) == ["data_deletion_requested", "data_deletion_cancelled"]
    found = await client.get("/v1/users/search", params={"q": "alice"}, headers=bob.headers)
    assert [item["user_id"] for item in found.json()["items"]] == [alice.user_id]


async def test_a_fresh_sign_in_confirms_without_the_password(
    client: httpx.AsyncClient, database: DatabaseUrls, alice: Persona
) -> None:
    deleted = await _delete(client, alice)
    assert deleted.status_code == 202, deleted.text
    assert deleted.json()["confirmed_by"] == "recent_sign_in"


async def test_an_old_sign_in_needs_the_password(
    client: httpx.AsyncClient,
    database: DatabaseUrls,
    settings: Settings,
    alice: Persona,
) -> None:
    minutes = settings.account_deletion_fresh_sign_in_minutes + 1
    await execute(
        database,
        "UPDATE auth.sessions SET created_at = now() - make_interval(mins => $2) WHERE id = $1",
        UUID(alice.session_id),
        minutes,
    )
    stale = await _delete(client, alice)
    assert stale.status_code == 403 and problem_type(stale) == "reauthentication-required"
    wrong = await _delete(client, alice, {"password": "not her password at all"})
    assert wrong.status_code == 403 and problem_type(wrong) == "wrong-password"
    [user] = await fetch(database, "SELECT status FROM auth.users WHERE id = $1", UUID(alice.user_id))
    assert user["status"] == "active"
    assert (await _delete(client, alice, {"password": alice.password})).status_code == 202


async def test_bad_requests_are_refused(client: httpx.AsyncClient, alice: Persona) -> None:
    unknown = await _delete(client, alice, {"password": alice.password, "now": True})
    assert unknown.status_code == 422
    typed = await _delete(client, alice, {"password": 12345})
    assert typed.status_code == 422
    empty = await _delete(client, alice, {"password": ""})
    assert empty.status_code == 422
    anonymous = await client.request("DELETE", ME, json={"password": alice.password})
    assert anonymous.status_code == 401
    key = await client.post("/v1/auth/api-keys", headers=alice.headers, json={"name": "script"})
    by_key = await client.request("DELETE", ME, headers=bearer(key.json()["key"]), json={"password": alice.password})
    assert by_key.status_code == 403 and problem_type(by_key) == "session-required"


async def test_after_the_grace_period_the_account_is_erased(
    client: httpx.AsyncClient,
    app: FastAPI,
    runtime: Runtime,
    database: DatabaseUrls,
    settings: Settings,
    alice: Persona,
    bob: Persona,
) -> None:
    assert (await _delete(client, alice, {"password": alice.password})).status_code == 202
    [request] = await fetch(
        database, "SELECT erase_after FROM compliance.deletion_requests WHERE user_id = $1", UUID(alice.user_id)
    )
    # Not a moment before its time.
    assert await service_deletion.erase_now_due(runtime, now=request["erase_after"] - timedelta(seconds=1)) == []
    # Once the grace period is over, signing in no longer restores it...
    await execute(
        database, "UPDATE compliance.deletion_requests SET erase_after = now() WHERE user_id = $1", UUID(alice.user_id)
    )
    late = await login(client, alice.email, alice.password)
    assert late.status_code == 403 and problem_type(late) == "account-disabled"
    # ...and the erasure takes it.
    [erased] = await service_deletion.erase_now_due(runtime, now=datetime.now(UTC))
    assert erased.subject == service_deletion.subject_of(runtime.keyring, UUID(alice.user_id))
    assert await fetch(database, "SELECT 1 FROM auth.users WHERE id = $1", UUID(alice.user_id)) == []
    gone = await login(client, alice.email, alice.password)
    assert gone.status_code == 401 and problem_type(gone) == "invalid-credentials"
    # Her log stays, under her subject; the erasure's own entry names no one.
    rows = await fetch(database, "SELECT user_id, event_type, details FROM compliance.compliance_logs ORDER BY id")
    assert [(r["user_id"], r["event_type"]) for r in rows] == [
        (None, "data_deletion_requested"),
        (None, "data_deletion_completed"),
    ]
    assert all(erased.subject in row["details"] and alice.user_id not in row["details"] for row in rows)
    # Her address is free again.
    again = await client.post("/v1/auth/register", json={"email": alice.email, "password": alice.password})
    assert again.status_code == 202
    await jobs_done(app)
