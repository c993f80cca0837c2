"""Platform administrators (and only they) suspend, ban and restore accounts, read the audit,
the compliance logs and a person's consents, and list export and deletion requests. Each
action is in audit.admin_actions with who, what and why; each read of someone's data is
recorded where that person sees it."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from rapport.config import Settings
from rapport.kernel.db import system_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from rapport.kernel.runtime import Runtime
from tests.compliance.admin_support import admin_persona  # noqa: F401 (the admin fixture)
from tests.kernel.live_server import live_server
from tests.realtime.support import Follower
from tests.support import Persona, login, problem_type, sign_in

pytestmark = pytest.mark.module_database

REASON = "Reported for spam by three people (ticket 4411)"


async def admin_actions(database: DatabaseUrls) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(database.owner))
    try:
        return list(await conn.fetch("SELECT * FROM audit.admin_actions ORDER BY id"))
    finally:
        await conn.close()


async def change(client: httpx.AsyncClient, who: Persona, target: Persona | str, what: str) -> httpx.Response:
    user_id = target if isinstance(target, str) else target.user_id
    return await client.post(f"/v1/admin/users/{user_id}/{what}", json={"reason": REASON}, headers=who.headers)


# Suspend, ban, restore


async def test_suspending_ends_every_session_and_is_recorded_with_who_and_why(
    client: httpx.AsyncClient, admin: Persona, bob: Persona, database: DatabaseUrls
) -> None:
    suspended = await change(client, admin, bob, "suspend")

    assert suspended.status_code == 200, suspended.text
    body = suspended.json()
    assert (body["user_id"], body["account_status"], body["previous_status"]) == (bob.user_id, "suspended", "active")
    assert body["sessions_revoked"] == 1
    refused = await client.get("/v1/me/consents", headers=bob.headers)
    assert refused.status_code == 401, refused.text
    signing_in = await login(client, bob.email)
    assert signing_in.status_code == 403 and problem_type(signing_in) == "account-disabled"
    [recorded] = await admin_actions(database)
    assert (
        recorded["id"],
        recorded["admin_id"],
        recorded["action"],
        recorded["target_user_id"],
        recorded["reason"],
    ) == (
        body["admin_action_id"],
        UUID(admin.user_id),
        "account_suspended",
        UUID(bob.user_id),
        REASON,
    )
    assert json.loads(recorded["details"])["previous_status"] == "active"


async def test_restoring_lets_the_person_sign_in_again_and_their_log_tells_both(
    client: httpx.AsyncClient, admin: Persona, bob: Persona, database: DatabaseUrls
) -> None:
    assert (await change(client, admin, bob, "ban")).status_code == 200

    restored = await change(client, admin, bob, "restore")

    assert restored.status_code == 200, restored.text
    assert (restored.json()["account_status"], restored.json()["previous_status"]) == ("active", "banned")
    again = await login(client, bob.email)
    assert again.status_code == 200, again.text
    log = await client.get("/v1/me/compliance-log", headers={"Authorization": f"Bearer {again.json()['access_token']}"})
    assert [item["event_type"] for item in log.json()["items"]] == ["account_restored", "account_banned"]
    assert [row["action"] for row in await admin_actions(database)] == ["account_banned", "account_restored"]


@pytest.mark.parametrize(
    ("first", "then", "status"),
    [
        pytest.param(None, "restore", "active", id="restore-an-active-account"),
        pytest.param("suspend", "suspend", "suspended", id="suspend-twice"),
        pytest.param("ban", "suspend", "banned", id="suspend-a-banned-account"),
        pytest.param("ban", "ban", "banned", id="ban-twice"),
    ],
)
async def test_a_change_the_status_does_not_allow_is_a_409(
    client: httpx.AsyncClient, admin: Persona, bob: Persona, first: str | None, then: str, status: str
) -> None:
    if first is not None:
        assert (await change(client, admin, bob, first)).status_code == 200

    refused = await change(client, admin, bob, then)

    assert refused.status_code == 409, refused.text
    assert problem_type(refused) == "account-status-conflict"
    assert refused.json()["account_status"] == status


async def test_an_administrator_cannot_change_their_own_account_nor_an_unknown_one(
    client: httpx.AsyncClient, admin: Persona
) -> None:
    own = await change(client, admin, admin, "suspend")
    unknown = await change(client, admin, str(uuid7()), "suspend")

    assert (own.status_code, problem_type(own)) == (409, "own-account-refused")
    assert (unknown.status_code, problem_type(unknown)) == (404, "account-not-found")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-reason"),
        pytest.param({"reason": "   "}, id="blank-reason"),
        pytest.param({"reason": "x" * 2001}, id="long-reason"),
        pytest.param({"reason": REASON, "until": "2027-01-01T00:00:00Z"}, id="extra-field"),
    ],
)
async def test_an_action_without_a_reason_is_refused(
    client: httpx.AsyncClient, admin: Persona, bob: Persona, body: dict[str, Any], database: DatabaseUrls
) -> None:
    refused = await client.post(f"/v1/admin/users/{bob.user_id}/suspend", json=body, headers=admin.headers)

    assert refused.status_code == 422, refused.text
    assert await admin_actions(database) == []


async def test_suspension_closes_the_accounts_streams_at_once(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, admin: Persona, bob: Persona, alice: Persona
) -> None:
    made = await client.post("/v1/auth/api-keys", json={"name": "bot"}, headers=bob.headers)
    assert made.status_code == 201, made.text
    async with live_server(app, settings) as url:
        served = _Served(url)
        phone = await Follower.open(served, bob)
        bot = await Follower.open(served, made.json()["key"])
        bystander = await Follower.open(served, alice)

        assert (await change(client, admin, bob, "suspend")).status_code == 200

        assert await phone.closed_with(within=3) == 4000
        assert phone.socket.close_reason == "session-revoked"
        assert await bot.closed_with(within=3) == 4000
        assert bot.socket.close_reason == "api-key-revoked"
        assert bystander.socket.close_code is None
        await bystander.close()
    # The key is refused while the account is suspended, and works again once restored.
    key = {"Authorization": f"Bearer {made.json()['key']}"}
    assert (await client.get("/v1/me/consents", headers=key)).status_code in (401, 403)
    assert (await change(client, admin, bob, "restore")).status_code == 200
    assert (await client.get("/v1/me/consents", headers=key)).status_code == 200


class _Served:
    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def stream_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/v1/stream"


# Only administrators, only through a session

_ROUTES = [
    ("POST", "/v1/admin/users/{bob}/suspend", {"reason": REASON}),
    ("POST", "/v1/admin/users/{bob}/ban", {"reason": REASON}),
    ("POST", "/v1/admin/users/{bob}/restore", {"reason": REASON}),
    ("GET", "/v1/admin/users/{bob}/consents?reason=look", None),
    ("GET", "/v1/admin/audit/record_changes?reason=look", None),
    ("GET", "/v1/admin/audit/admin_actions?reason=look", None),
    ("GET", "/v1/admin/compliance-logs?reason=look", None),
    ("GET", "/v1/admin/export-requests?reason=look", None),
    ("GET", "/v1/admin/deletion-requests?reason=look", None),
    ("GET", "/v1/admin/breaches?reason=look", None),
    (
        "POST",
        "/v1/admin/breaches",
        {"title": "t", "description": "d", "severity": "low", "detected_at": "2026-11-30T00:00:00Z"},
    ),
    ("POST", "/v1/admin/breaches/{bob}/notifications", {"audience": "public", "channel": "web"}),
]


@pytest.mark.parametrize(("method", "path", "body"), _ROUTES, ids=[f"{m} {p.split('?')[0]}" for m, p, _ in _ROUTES])
async def test_nobody_else_may(
    client: httpx.AsyncClient,
    mallory: Persona,
    bob: Persona,
    database: DatabaseUrls,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    response = await client.request(method, path.format(bob=bob.user_id), json=body, headers=mallory.headers)

    assert response.status_code == 403, response.text
    assert problem_type(response) == "platform-admin-required"
    assert await admin_actions(database) == []
    assert (await client.get("/v1/me/consents", headers=bob.headers)).status_code == 200


async def test_an_administrators_api_key_is_not_enough(client: httpx.AsyncClient, admin: Persona, bob: Persona) -> None:
    made = await client.post("/v1/auth/api-keys", json={"name": "ops"}, headers=admin.headers)
    key = {"Authorization": f"Bearer {made.json()['key']}"}

    response = await client.post(f"/v1/admin/users/{bob.user_id}/suspend", json={"reason": REASON}, headers=key)

    assert (response.status_code, problem_type(response)) == (403, "session-required")


async def test_an_administrator_removed_from_office_can_no_longer(
    client: httpx.AsyncClient, admin: Persona, bob: Persona, runtime: Runtime
) -> None:
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(text("UPDATE auth.users SET is_admin = false WHERE id = :id"), {"id": UUID(admin.user_id)})

    response = await change(client, admin, bob, "suspend")

    assert (response.status_code, problem_type(response)) == (403, "platform-admin-required")


# Reads, each recorded


async def test_reading_the_audit_is_recorded_and_the_person_sees_the_read(
    client: httpx.AsyncClient, admin: Persona, bob: Persona, database: DatabaseUrls
) -> None:
    await sign_in(client, bob)
    assert (await login(client, bob.email, "not his password")).status_code == 401

    read = await client.get(
        "/v1/admin/audit/auth_events",
        params={"reason": "Investigating sign-in failures", "user_id": bob.user_id},
        headers=admin.headers,
    )

    assert read.status_code == 200, read.text
    items = read.json()["items"]
    assert [(item["content"]["event_type"], item["content"]["succeeded"]) for item in items][:2] == [
        ("sign_in", False),
        ("sign_in", True),
    ]
    assert all(item["content"]["user_id"] == bob.user_id for item in items)
    assert all(len(item["content_hash"]) == 64 and len(item["chain_hash"]) == 64 for item in items)
    [recorded] = await admin_actions(database)
    assert (recorded["action"], recorded["target"], recorded["target_user_id"], recorded["reason"]) == (
        "audit_read",
        "audit.auth_events",
        UUID(bob.user_id),
        "Investigating sign-in failures",
    )
    seen = await client.get("/v1/profile/sensitive-access", headers=bob.headers)
    assert seen.status_code == 200, seen.text
    assert [(item["accessed_by"], item["table_name"], item["action"]) for item in seen.json()["items"]] == [
        (admin.user_id, "audit.auth_events", "read")
    ]


async def test_record_changes_of_one_person_are_the_changes_of_their_rows(
    client: httpx.AsyncClient, admin: Persona, alice: Persona, bob: Persona
) -> None:
    changed = await client.patch("/v1/profile", json={"bio": "Changed for the audit"}, headers=bob.headers)
    assert changed.status_code == 200, changed.text

    read = await client.get(
        "/v1/admin/audit/record_changes",
        params={"reason": "Reviewing a complaint", "user_id": bob.user_id},
        headers=admin.headers,
    )

    assert read.status_code == 200, read.text
    items = read.json()["items"]
    assert items, "bob's profile change is in the audit"
    for item in items:
        content = item["content"]
        owners = {(content.get(side) or {}).get("user_id") for side in ("old_data", "new_data")}
        owners |= {(content.get(side) or {}).get("id") for side in ("old_data", "new_data")}
        assert bob.user_id in owners | {content["acting_user_id"]}, content
    assert alice.user_id not in {item["content"]["acting_user_id"] for item in items}


async def test_the_audit_pages_and_refuses_a_cursor_it_did_not_give(
    client: httpx.AsyncClient, admin: Persona, alice: Persona, bob: Persona
) -> None:
    params: dict[str, Any] = {"reason": "Review", "limit": 2}
    first = await client.get("/v1/admin/audit/record_changes", params=params, headers=admin.headers)
    second = await client.get(
        "/v1/admin/audit/record_changes", params={**params, "cursor": first.json()["next"]}, headers=admin.headers
    )
    forged = await client.get(
        "/v1/admin/audit/record_changes", params={**params, "cursor": "not-a-cursor"}, headers=admin.headers
    )
    too_far = await client.get(
        "/v1/admin/audit/record_changes", params={**params, "cursor": "__________8"}, headers=admin.headers
    )
    unknown = await client.get("/v1/admin/audit/messages", params=params, headers=admin.headers)

    ids = [item["id"] for item in first.json()["items"] + second.json()["items"]]
    assert len(ids) == 4 and ids == sorted(ids, reverse=True)
    assert (forged.status_code, problem_type(forged)) == (400, "invalid-cursor")
    assert (too_far.status_code, problem_type(too_far)) == (400, "invalid-cursor")
    assert unknown.status_code == 422, unknown.text


async def test_a_read_needs_a_reason(client: httpx.AsyncClient, admin: Persona, database: DatabaseUrls) -> None:
    for path in ("/v1/admin/audit/record_changes", "/v1/admin/compliance-logs", "/v1/admin/breaches"):
        for params in ({}, {"reason": "   "}, {"reason": "x" * 2001}):
            response = await client.get(path, params=params, headers=admin.headers)
            assert response.status_code == 422, (path, params, response.text)
    assert await admin_actions(database) == []


async def test_reading_someones_consents_and_compliance_log(
    client: httpx.AsyncClient, admin: Persona, alice: Persona, database: DatabaseUrls
) -> None:
    given = await client.post(
        "/v1/me/consents", json={"consent_type": "ai_features", "granted": True}, headers=alice.headers
    )
    assert given.status_code == 201, given.text

    consents = await client.get(
        f"/v1/admin/users/{alice.user_id}/consents", params={"reason": "Her data request"}, headers=admin.headers
    )
    logs = await client.get(
        "/v1/admin/compliance-logs",
        params={"reason": "Her data request", "user_id": alice.user_id, "event_type": "consent_given"},
        headers=admin.headers,
    )

    assert consents.status_code == 200, consents.text
    states = {item["consent_type"]: item["granted"] for item in consents.json()["current"]["consents"]}
    assert states["ai_features"] is True
    assert [item["id"] for item in consents.json()["history"]["items"]] == [given.json()["id"]]
    assert logs.status_code == 200, logs.text
    assert [(item["user_id"], item["event_type"]) for item in logs.json()["items"]] == [
        (alice.user_id, "consent_given")
    ]
    assert [row["action"] for row in await admin_actions(database)] == ["consents_read", "compliance_logs_read"]
    seen = await client.get("/v1/profile/sensitive-access", headers=alice.headers)
    assert {item["table_name"] for item in seen.json()["items"]} == {
        "compliance.consent_logs",
        "compliance.compliance_logs",
    }


async def test_export_and_deletion_requests_are_listed(
    client: httpx.AsyncClient, admin: Persona, alice: Persona, bob: Persona, runtime: Runtime, database: DatabaseUrls
) -> None:
    export_id = uuid7()
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text("INSERT INTO compliance.exports (id, user_id) VALUES (:id, :user_id)"),
            {"id": export_id, "user_id": UUID(alice.user_id)},
        )
        now = (await db.execute(text("SELECT now()"))).scalar_one()
        await db.execute(
            text(
                "INSERT INTO compliance.deletion_requests (user_id, requested_at, erase_after, confirmed_by)"
                " VALUES (:user_id, :now, :after, 'password')"
            ),
            {"user_id": UUID(bob.user_id), "now": now, "after": now + timedelta(days=30)},
        )

    exports = await client.get("/v1/admin/export-requests", params={"reason": "Backlog"}, headers=admin.headers)
    deletions = await client.get("/v1/admin/deletion-requests", params={"reason": "Backlog"}, headers=admin.headers)

    assert exports.status_code == 200, exports.text
    assert [(item["id"], item["user_id"], item["status"]) for item in exports.json()["items"]] == [
        (str(export_id), alice.user_id, "pending")
    ]
    assert deletions.status_code == 200, deletions.text
    assert [(item["user_id"], item["confirmed_by"]) for item in deletions.json()["items"]] == [
        (bob.user_id, "password")
    ]
    assert [row["action"] for row in await admin_actions(database)] == [
        "export_requests_listed",
        "deletion_requests_listed",
    ]


async def test_admin_actions_are_hash_chained_like_every_audit_table(
    client: httpx.AsyncClient, admin: Persona, bob: Persona, runtime: Runtime
) -> None:
    from rapport.compliance import service
    from rapport.kernel.models import admin_actions as table

    assert (await change(client, admin, bob, "suspend")).status_code == 200
    assert (await change(client, admin, bob, "restore")).status_code == 200

    async with system_transaction(runtime.system_engine) as db:
        report = await service.verify_chain(db, table)
    assert (report.rows, report.problem) == (2, None)
