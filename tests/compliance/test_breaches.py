"""Breach handling: a platform administrator records a detected breach (breach_detected)
and each notification sent about it (breach_notified); a person named as notified finds it
in their own compliance log; every step is an administrator action in the audit."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from rapport.kernel.db import system_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from rapport.kernel.runtime import Runtime
from tests.compliance.admin_support import admin_persona  # noqa: F401 (the admin fixture)
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

BREACH = {
    "title": "Support inbox exposed",
    "description": "A misconfigured mailbox rule forwarded support mail to an outside address.",
    "severity": "high",
    "data_categories": ["e-mail addresses", "support messages"],
    "affected_users": 2,
    "detected_at": "2026-11-29T22:10:00Z",
    "contained_at": "2026-11-30T01:00:00Z",
}


async def owner_fetch(database: DatabaseUrls, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(database.owner))
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def record(client: httpx.AsyncClient, admin: Persona, **changes: Any) -> dict[str, Any]:
    response = await client.post("/v1/admin/breaches", json={**BREACH, **changes}, headers=admin.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_breach_and_its_notifications_are_recorded_and_logged(
    client: httpx.AsyncClient,
    admin: Persona,
    alice: Persona,
    bob: Persona,
    carol: Persona,
    database: DatabaseUrls,
    runtime: Runtime,
) -> None:
    breach = await record(client, admin)

    assert (breach["severity"], breach["recorded_by"], breach["notifications"]) == ("high", admin.user_id, [])
    authority = await client.post(
        f"/v1/admin/breaches/{breach['id']}/notifications",
        json={"audience": "supervisory_authority", "channel": "email", "recipients": 1, "notes": "Case 2026-118"},
        headers=admin.headers,
    )
    people = await client.post(
        f"/v1/admin/breaches/{breach['id']}/notifications",
        json={"audience": "affected_users", "channel": "email", "user_ids": [alice.user_id, bob.user_id]},
        headers=admin.headers,
    )
    assert authority.status_code == 201, authority.text
    assert people.status_code == 201, people.text
    assert people.json()["recipients"] == 2

    listed = await client.get("/v1/admin/breaches", params={"reason": "Quarterly review"}, headers=admin.headers)
    assert listed.status_code == 200, listed.text
    [shown] = listed.json()["items"]
    assert [n["audience"] for n in shown["notifications"]] == ["supervisory_authority", "affected_users"]

    for person, told in ((alice, True), (bob, True), (carol, False)):
        log = await client.get("/v1/me/compliance-log", headers=person.headers)
        events = [(item["event_type"], item["details"].get("breach_id")) for item in log.json()["items"]]
        assert events == ([("breach_notified", breach["id"])] if told else [])

    async with system_transaction(runtime.system_engine) as db:
        logged = (await db.execute(text("SELECT user_id, event_type FROM compliance.compliance_logs"))).all()
    assert sorted((str(row.user_id), row.event_type) for row in logged) == sorted(
        [
            ("None", "breach_detected"),
            ("None", "breach_notified"),
            ("None", "breach_notified"),
            (alice.user_id, "breach_notified"),
            (bob.user_id, "breach_notified"),
        ]
    )
    actions = await owner_fetch(database, "SELECT admin_id, action, target FROM audit.admin_actions ORDER BY id")
    assert [(row["admin_id"], row["action"], row["target"]) for row in actions] == [
        (UUID(admin.user_id), "breach_recorded", f"breach:{breach['id']}"),
        (UUID(admin.user_id), "breach_notification_recorded", f"breach:{breach['id']}"),
        (UUID(admin.user_id), "breach_notification_recorded", f"breach:{breach['id']}"),
        (UUID(admin.user_id), "breaches_listed", "compliance.breaches"),
    ]


async def test_a_notification_about_no_breach_is_a_404(client: httpx.AsyncClient, admin: Persona) -> None:
    response = await client.post(
        f"/v1/admin/breaches/{uuid7()}/notifications",
        json={"audience": "public", "channel": "web"},
        headers=admin.headers,
    )

    assert (response.status_code, problem_type(response)) == (404, "breach-not-found")


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"severity": "catastrophic"}, id="unknown-severity"),
        pytest.param({"contained_at": "2026-11-29T00:00:00Z"}, id="contained-before-detected"),
        pytest.param({"affected_users": -1}, id="negative-count"),
        pytest.param({"title": ""}, id="empty-title"),
        pytest.param({"data_categories": ["x"] * 51}, id="too-many-categories"),
        pytest.param({"detected_at": "yesterday"}, id="bad-time"),
        pytest.param({"detected_at": "2026-11-29T22:10:00"}, id="time-without-zone"),
    ],
)
async def test_a_bad_breach_is_a_422(client: httpx.AsyncClient, admin: Persona, changes: dict[str, Any]) -> None:
    response = await client.post("/v1/admin/breaches", json={**BREACH, **changes}, headers=admin.headers)

    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"audience": "press", "channel": "web"}, id="unknown-audience"),
        pytest.param({"audience": "public", "channel": "pigeon"}, id="unknown-channel"),
        pytest.param({"audience": "public", "channel": "web", "user_ids": ["nobody"]}, id="bad-user-id"),
        pytest.param({"audience": "public", "channel": "web", "recipients": -2}, id="negative-recipients"),
    ],
)
async def test_a_bad_notification_is_a_422(client: httpx.AsyncClient, admin: Persona, body: dict[str, Any]) -> None:
    breach = await record(client, admin)

    response = await client.post(f"/v1/admin/breaches/{breach['id']}/notifications", json=body, headers=admin.headers)

    assert response.status_code == 422, response.text
