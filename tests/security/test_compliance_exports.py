"""Exports and deletion requests as mallory, a stranger, and as alice's own API key: nobody
but alice reads her exports, downloads her archive or deletes her account, through the API
or straight through SQL as `rapport_app` (the role the server connects as) in their own
context or in none. Platform administrators read the requests, never the archives. The
functions of deletion and erasure are system work: the server's role cannot call them,
and cannot make a message's erasure guard stand aside by setting its flag."""

from __future__ import annotations

from uuid import UUID

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.provisioning import DatabaseUrls
from tests.compliance.erase_support import (
    EXPORTS,
    ME,
    compliance_app,  # noqa: F401  (this module's app serves the compliance routes)
    compliance_settings,  # noqa: F401
    exported,
    fetch,
    make_admin,
)
from tests.security.messaging_sql import DENIED, POLICY, attempt, changed
from tests.support import Persona, bearer, problem_type


async def test_nobody_else_reads_or_downloads_an_export(
    client: httpx.AsyncClient, app: FastAPI, alice: Persona, mallory: Persona
) -> None:
    status, _ = await exported(client, app, alice)
    for path in (f"{EXPORTS}/{status['id']}", f"{EXPORTS}/{status['id']}/download"):
        answer = await client.get(path, headers=mallory.headers)
        assert answer.status_code == 404 and problem_type(answer) == "export-not-found", path
    assert (await client.get(EXPORTS, headers=mallory.headers)).json()["items"] == []
    for path in (EXPORTS, f"{EXPORTS}/{status['id']}", f"{EXPORTS}/{status['id']}/download"):
        assert (await client.get(path)).status_code == 401, path


async def test_an_api_key_neither_exports_nor_deletes(client: httpx.AsyncClient, app: FastAPI, alice: Persona) -> None:
    status, _ = await exported(client, app, alice)
    made = await client.post("/v1/auth/api-keys", headers=alice.headers, json={"name": "script"})
    key = bearer(made.json()["key"])
    for method, path in (
        ("POST", EXPORTS),
        ("GET", EXPORTS),
        ("GET", f"{EXPORTS}/{status['id']}"),
        ("GET", f"{EXPORTS}/{status['id']}/download"),
        ("DELETE", ME),
    ):
        answer = await client.request(method, path, headers=key)
        assert answer.status_code == 403 and problem_type(answer) == "session-required", (method, path)


async def test_through_sql_her_exports_and_request_are_hers_alone(
    client: httpx.AsyncClient,
    app: FastAPI,
    app_engine: AsyncEngine,
    database: DatabaseUrls,
    alice: Persona,
    mallory: Persona,
) -> None:
    status, _ = await exported(client, app, alice)
    export_id = status["id"]
    assert (
        await client.request("DELETE", ME, headers=alice.headers, json={"password": alice.password})
    ).status_code == 202
    one = "SELECT count(*) FROM compliance.exports WHERE id = :id"
    assert await attempt(app_engine, mallory, one, id=export_id) == 0
    assert await attempt(app_engine, None, one, id=export_id) == 0
    asked = "SELECT count(*) FROM compliance.deletion_requests WHERE user_id = :id"
    assert await attempt(app_engine, mallory, asked, id=alice.user_id) == 0
    assert await attempt(app_engine, None, asked, id=alice.user_id) == 0
    # Nobody asks for an export in another's name, or one already made.
    forged = "INSERT INTO compliance.exports (id, user_id) VALUES (gen_random_uuid(), :id)"
    assert await attempt(app_engine, mallory, forged, id=alice.user_id) == POLICY
    made = (
        "INSERT INTO compliance.exports (id, user_id, status, completed_at, expires_at, size_bytes, sha256,"
        " storage_key) VALUES (gen_random_uuid(), :id, 'completed', now(), now() + interval '1 day', 1,"
        " sha256('x'), 'ab/cd/x')"
    )
    assert await attempt(app_engine, mallory, made, id=mallory.user_id) == POLICY
    # Nobody changes or removes an export or a request: not even their own.
    for statement in (
        "UPDATE compliance.exports SET storage_key = 'ab/cd/x' WHERE id = :id RETURNING 1",
        "DELETE FROM compliance.exports WHERE id = :id RETURNING 1",
    ):
        assert await changed(app_engine, mallory, statement, id=export_id) == DENIED
    for statement in (
        "UPDATE compliance.deletion_requests SET erase_after = now() WHERE user_id = :id RETURNING 1",
        "DELETE FROM compliance.deletion_requests WHERE user_id = :id RETURNING 1",
        "INSERT INTO compliance.deletion_requests (user_id, erase_after, confirmed_by)"
        " VALUES (:id, now(), 'password') RETURNING 1",
    ):
        assert await changed(app_engine, mallory, statement, id=mallory.user_id) == DENIED
    [row] = await fetch(database, "SELECT count(*) AS n FROM compliance.exports WHERE id = $1", UUID(export_id))
    assert row["n"] == 1


async def test_administrators_read_requests_never_archives(
    client: httpx.AsyncClient,
    app: FastAPI,
    app_engine: AsyncEngine,
    database: DatabaseUrls,
    alice: Persona,
    bob: Persona,
) -> None:
    status, _ = await exported(client, app, alice)
    await make_admin(database, bob.user_id)
    one = "SELECT count(*) FROM compliance.exports WHERE id = :id"
    assert await attempt(app_engine, bob, one, id=status["id"]) == 1
    download = await client.get(f"{EXPORTS}/{status['id']}/download", headers=bob.headers)
    assert download.status_code == 404 and problem_type(download) == "export-not-found"


async def test_the_server_role_runs_no_deletion_or_erasure(
    client: httpx.AsyncClient,
    app_engine: AsyncEngine,
    database: DatabaseUrls,
    alice: Persona,
    bob: Persona,
    mallory: Persona,
) -> None:
    for call in (
        "SELECT compliance.erase_messages(:id)",
        "SELECT compliance.schedule_deletion(:id, interval '1 second', 'password')",
        "SELECT compliance.cancel_deletion(:id)",
        "SELECT compliance.deletion_pending(:id)",
    ):
        assert await attempt(app_engine, mallory, call, id=alice.user_id) == DENIED, call
        assert await attempt(app_engine, alice, call, id=alice.user_id) == DENIED, call
    # Her message in a conversation with mallory: the erasure's flag does not make its guard
    # stand aside for a user's transaction, not even its sender's.
    made = await client.post(
        "/v1/conversations",
        headers=alice.headers,
        json={"type": "group", "name": "Shared", "participant_ids": [mallory.user_id]},
    )
    sent = await client.post(
        f"/v1/conversations/{made.json()['id']}/messages", headers=alice.headers, json={"content": "Keep this"}
    )
    assert sent.status_code == 201, sent.text
    rewrite = (
        "WITH flag AS (SELECT set_config('rapport.erasing', 'on', true))"
        " UPDATE messaging.messages SET content = 'changed', mentions = '{}' FROM flag"
        " WHERE id = :id RETURNING 1"
    )
    plain = "UPDATE messaging.messages SET content = 'changed' WHERE id = :id RETURNING 1"
    assert (await changed(app_engine, mallory, plain, id=sent.json()["id"])).startswith("RM403")
    for who in (mallory, alice):
        assert await changed(app_engine, who, rewrite, id=sent.json()["id"]) == DENIED
    [row] = await fetch(database, "SELECT content FROM messaging.messages WHERE id = $1", UUID(sent.json()["id"]))
    assert row["content"] == "Keep this"
