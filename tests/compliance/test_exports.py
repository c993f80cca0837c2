"""Exports of one's data: the archive holds every row its person owns, compared table by
table with a query of the test's own, and nothing of anyone else's; it is made in the
background, downloaded as a stream (ranges, validators), and removed when it expires."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import orjson
import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI

from rapport.compliance import service_deletion, service_exports
from rapport.config import Settings
from rapport.kernel.jobs import Worker
from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime
from rapport.media import service as media_service
from rapport.modules.matching import service as matching_service
from tests.compliance.erase_support import (
    ENCRYPTED_DEVICE,
    EXPORTS,
    archive_sections,
    compliance_app,  # noqa: F401  (this module's app serves the compliance routes)
    compliance_settings,  # noqa: F401
    execute,
    exported,
    fetch,
    jobs_done,
    png,
    populate_person,
)
from tests.support import Mailbox, Persona, make_settings, problem_type

# Every table whose rows go with a person's account, and the columns naming them: the
# archive must hold exactly these rows of each.
_OWNED = """
SELECT format('%I.%I', n.nspname, c.relname) AS name, n.nspname || '/' || c.relname || '.jsonl' AS section,
       array_agg(a.attname::text) AS columns
  FROM pg_constraint k
  JOIN pg_class c ON c.oid = k.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
 WHERE k.contype = 'f' AND k.confrelid = 'auth.users'::regclass AND k.confdeltype = 'c' AND k.conparentid = 0
 GROUP BY 1, 2
"""

# The rows about her that outlive her account, each as this test reads them.
ABOUT_HER = {
    "auth/users.jsonl": "SELECT to_jsonb(t) AS row FROM auth.users t WHERE t.id = $1",
    "messaging/messages.jsonl": "SELECT to_jsonb(t) AS row FROM messaging.messages t WHERE t.sender_id = $1",
    "messaging/message_history.jsonl": """
        SELECT to_jsonb(h) AS row FROM messaging.message_history h
          JOIN messaging.messages m ON m.conversation_id = h.conversation_id AND m.id = h.message_id
         WHERE m.sender_id = $1""",
    "messaging/conversations.jsonl": """
        SELECT DISTINCT ON (c.id) to_jsonb(c) AS row FROM messaging.conversations c
          LEFT JOIN messaging.participants p ON p.conversation_id = c.id
         WHERE p.user_id = $1 OR c.creator_id = $1""",
    "messaging/threads.jsonl": "SELECT to_jsonb(t) AS row FROM messaging.threads t WHERE t.creator_id = $1",
    "messaging/pins.jsonl": "SELECT to_jsonb(t) AS row FROM messaging.pins t WHERE t.pinned_by = $1",
    "messaging/calls.jsonl": "SELECT to_jsonb(t) AS row FROM messaging.calls t WHERE t.started_by = $1",
    "messaging/invites.jsonl": "SELECT to_jsonb(t) AS row FROM messaging.invites t WHERE t.created_by = $1",
    "messaging/reports.jsonl": "SELECT to_jsonb(t) AS row FROM messaging.reports t WHERE t.reporter_id = $1",
    "messaging/blocked_terms.jsonl": "SELECT to_jsonb(t) AS row FROM messaging.blocked_terms t WHERE t.created_by = $1",
    "media/file_versions.jsonl": """
        SELECT to_jsonb(v) AS row FROM media.file_versions v JOIN media.files f ON f.id = v.file_id
         WHERE f.owner_id = $1""",
    "media/album_items.jsonl": """
        SELECT to_jsonb(i) AS row FROM media.album_items i JOIN media.albums a ON a.id = i.album_id
         WHERE a.owner_id = $1""",
    "media/attachments.jsonl": """
        SELECT to_jsonb(t) AS row FROM media.attachments t JOIN media.files f ON f.id = t.file_id
         WHERE f.owner_id = $1""",
    "coparenting/pairing_sessions.jsonl": """
        SELECT to_jsonb(t) AS row FROM coparenting.pairing_sessions t WHERE $1 IN (t.parent_a_id, t.parent_b_id)""",
    "coparenting/pairing_audit_log.jsonl": """
        SELECT to_jsonb(t) AS row FROM coparenting.pairing_audit_log t
         WHERE t.actor_id = $1 OR t.pairing_id IN (
               SELECT s.id FROM coparenting.pairing_sessions s WHERE $1 IN (s.parent_a_id, s.parent_b_id))""",
    "audit/sensitive_data_access.jsonl": (
        "SELECT to_jsonb(t) AS row FROM audit.sensitive_data_access t WHERE t.user_id = $1"
    ),
    "audit/auth_events.jsonl": "SELECT to_jsonb(t) AS row FROM audit.auth_events t WHERE t.user_id = $1",
    "audit/data_exports.jsonl": "SELECT to_jsonb(t) AS row FROM audit.data_exports t WHERE t.user_id = $1",
    "compliance/compliance_logs.jsonl": (
        "SELECT to_jsonb(t) AS row FROM compliance.compliance_logs t WHERE t.user_id = $1"
    ),
    # Rows naming her that are someone else's: only what she may read of them.
    "matching/matches.jsonl": """
        SELECT to_jsonb(t) AS row FROM matching.matches t
         WHERE t.user_id = $1 OR (t.matched_user_id = $1 AND t.status IN ('liked', 'mutual'))""",
    "matching/match_results.jsonl": "SELECT to_jsonb(t) AS row FROM matching.match_results t WHERE t.user_id = $1",
}
# Written by the export itself once its archive was made (its completion and download):
# the archive holds what was there when it was read.
MOVING = {"compliance/exports.jsonl", "audit/data_exports.jsonl", "compliance/compliance_logs.jsonl"}
# Keys the archive leaves out: secrets, derived search vectors, the audit's chain.
SECRET_KEYS = {
    "password_hash",
    "token_hash",
    "code_hash",
    "key_hash",
    "link_token_hash",
    "invite_token_hash",
    "secret_encrypted",
    "p256dh",
    "auth",
    "search",
    "search_vector",
    "chain_position",
    "content_hash",
    "chain_hash",
}
HIDDEN_IN = {
    "messaging/reports.jsonl": {"message_content", "message_sender_id"},
    "coparenting/pairing_sessions.jsonl": {"pairing_code"},
}


def _shown(row: Any, section: str) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(row) if isinstance(row, str) else row
    return {key: item for key, item in value.items() if key not in SECRET_KEYS | HIDDEN_IN.get(section, set())}


def _key(row: dict[str, Any]) -> str:
    return orjson.dumps(row, option=orjson.OPT_SORT_KEYS).decode()


async def _expected(database: DatabaseUrls, user_id: UUID) -> dict[str, list[dict[str, Any]]]:
    expected: dict[str, list[dict[str, Any]]] = {}
    for table in await fetch(database, _OWNED):
        condition = " OR ".join(f"t.{column} = $1" for column in table["columns"])
        rows = await fetch(database, f"SELECT to_jsonb(t) AS row FROM {table['name']} t WHERE {condition}", user_id)
        expected[table["section"]] = [_shown(r["row"], table["section"]) for r in rows]
    for section, query in ABOUT_HER.items():
        rows = await fetch(database, query, user_id)
        expected[section] = [_shown(r["row"], section) for r in rows]
    return expected


async def test_the_archive_holds_every_row_she_owns_and_nothing_of_anyone_elses(
    client: httpx.AsyncClient,
    app: FastAPI,
    database: DatabaseUrls,
    alice: Persona,
    bob: Persona,
    carol: Persona,
    mallory: Persona,
) -> None:
    made = await populate_person(client, app, database, alice, bob, carol, mallory)
    # What never reaches her: bob's words to carol alone, carol's private draft.
    carols = f"/v1/conversations/{made.carols_id}"
    sent = await client.post(f"{carols}/messages", headers=bob.headers, json={"content": "Only for carol: hubbleforth"})
    assert sent.status_code == 201, sent.text
    drafted = await client.put(f"{carols}/draft", headers=carol.headers, json={"content": "Carol's own thornquist"})
    assert drafted.status_code == 200, drafted.text
    await jobs_done(app)

    status, data = await exported(client, app, alice)
    sections = archive_sections(data)
    expected = await _expected(database, UUID(alice.user_id))
    assert sorted(sections) == sorted(expected), "a file per table she has rows in, and no other"
    for section, rows in expected.items():
        got = {_key(row) for row in sections[section]}
        want = {_key(row) for row in rows}
        if section in MOVING:
            # The archive saw these before its own completion: the same rows, by id.
            assert {r["id"] for r in sections[section]} <= {r["id"] for r in rows}, section
            continue
        assert got == want, section
    assert status["sections"] == {name: len(rows) for name, rows in sections.items()}

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        manifest = orjson.loads(archive.read("manifest.json"))
        assert archive.read(f"files/{made.photo_id}/versions/1/photo.png") == made.photo_bytes
        assert archive.read(f"files/{made.photo_id}/photo.png") == png(11)
        assert archive.read(f"files/{made.shared_bytes_id}/twin.png") == made.shared_bytes
    assert "README.txt" in names
    assert manifest["user_id"] == alice.user_id and manifest["sections"] == status["sections"]
    assert len([n for n in names if n.startswith("files/")]) == manifest["files"]

    # Nothing of anyone else's: no one else's address, and nothing said where she was not.
    lowered = data.lower()
    for other in (bob.email, carol.email, mallory.email, b"hubbleforth", b"thornquist", b"twin-of-bob"):
        assert (other.encode() if isinstance(other, str) else other) not in lowered
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        plain = b"".join(archive.read(name) for name in names if name.endswith((".jsonl", ".json")))
    for secret in (b"$argon2", b"secret_encrypted", b"token_hash"):
        assert secret not in plain

    # Exporting what is sensitive is a read of it, on record; her pairing with bob is hers too.
    reads = {(r["table_name"], r["accessed_by"]) for r in sections["audit/sensitive_data_access.jsonl"]}
    assert {("coparenting.child_details", None), ("coparenting.coparent_details", None)} <= reads
    [pairing] = sections["coparenting/pairing_sessions.jsonl"]
    assert (pairing["parent_a_id"], pairing["parent_b_id"]) == (alice.user_id, bob.user_id)
    assert "pairing_code" not in pairing
    # Her end-to-end encryption: her device's public keys, and the ciphertexts she sent and
    # those waiting for her device, as stored (Rapport has no text of them).
    [device] = sections["encryption/devices.jsonl"]
    assert device["name"] == ENCRYPTED_DEVICE and device["identity_key"].startswith("\\x")
    envelopes = sections["encryption/envelopes.jsonl"]
    assert sorted((e["sender_id"] == alice.user_id, e["recipient_id"] == alice.user_id) for e in envelopes) == [
        (False, True),
        (True, False),
    ]


async def test_what_others_decided_about_her_stays_theirs(
    client: httpx.AsyncClient, app: FastAPI, runtime: Runtime, alice: Persona, carol: Persona
) -> None:
    # Alice and carol are proposed to each other; carol passes, and her list of the people
    # most like her names alice: neither is alice's to read, so neither is in her archive.
    profile = {
        "birth_date": "1990-01-01",
        "gender": "woman",
        "interests": ["chess"],
        "pref_genders": ["woman"],
        "latitude": 48.85,
        "longitude": 2.35,
    }
    for persona in (alice, carol):
        answer = await client.put("/v1/matching/profile", headers=persona.headers, json=profile)
        assert answer.status_code == 200, answer.text
    refreshed = await client.post("/v1/matching/similar/refresh", headers=carol.headers)
    assert [row["profile"]["user_id"] for row in refreshed.json()] == [alice.user_id], refreshed.text
    await matching_service.propose_daily(runtime.system_engine)
    [carols] = (await client.get("/v1/matching/daily", headers=carol.headers)).json()["matches"]
    passed = await client.post(f"/v1/matching/matches/{carols['id']}/pass", headers=carol.headers)
    assert passed.status_code == 200, passed.text

    _, data = await exported(client, app, alice)
    sections = archive_sections(data)
    [mine] = sections["matching/matches.jsonl"]
    assert (mine["user_id"], mine["matched_user_id"], mine["status"]) == (alice.user_id, carol.user_id, "proposed")
    assert sections["matching/match_results.jsonl"] == []


async def test_an_export_is_asked_for_followed_and_downloaded(
    client: httpx.AsyncClient, app: FastAPI, runtime: Runtime, database: DatabaseUrls, alice: Persona
) -> None:
    status, data = await exported(client, app, alice)
    listed = await client.get(EXPORTS, headers=alice.headers)
    assert [item["id"] for item in listed.json()["items"]] == [status["id"]]
    assert status["size_bytes"] == len(data)
    url = status["download_url"]
    part = await client.get(url, headers={**alice.headers, "Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == data[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{len(data)}"
    same = await client.get(url, headers={**alice.headers, "If-None-Match": f'"{status["sha256"]}"'})
    assert same.status_code == 304
    whole = await client.get(url, headers=alice.headers)
    assert whole.headers["content-type"] == "application/zip"
    assert "attachment" in whole.headers["content-disposition"]
    assert whole.headers["etag"] == f'"{status["sha256"]}"'
    # The log and the audit say what happened, to her.
    events = [
        r["event_type"]
        for r in await fetch(
            database,
            "SELECT event_type FROM compliance.compliance_logs WHERE user_id = $1 ORDER BY id",
            UUID(alice.user_id),
        )
    ]
    assert events == ["data_export_requested", "data_export_completed"]
    steps = [
        r["event"]
        for r in await fetch(
            database, "SELECT event FROM audit.data_exports WHERE export_id = $1 ORDER BY id", UUID(status["id"])
        )
    ]
    assert steps == ["requested", "completed", "downloaded", "downloaded"], "whole downloads only"
    # A new export is a new one.
    again = await client.post(EXPORTS, headers=alice.headers)
    assert again.status_code == 202 and again.json()["id"] != status["id"]


async def test_an_expired_export_is_removed_with_its_bytes(
    client: httpx.AsyncClient,
    app: FastAPI,
    runtime: Runtime,
    settings: Settings,
    alice: Persona,
) -> None:
    status, _ = await exported(client, app, alice)
    expires_at = datetime.fromisoformat(status["expires_at"])
    assert expires_at - datetime.fromisoformat(status["completed_at"]) == timedelta(days=settings.export_ttl_days)
    stored = Path(str(settings.media_dir)) / "blobs"
    assert list(stored.rglob(status["sha256"]))
    store = media_service.MediaStore.from_settings(settings)
    try:
        assert (
            await service_exports.expire_exports(runtime.system_engine, store, now=expires_at - timedelta(minutes=1))
            == 0
        )
        assert await service_exports.expire_exports(runtime.system_engine, store, now=expires_at) == 1
    finally:
        await store.close()
    assert not list(stored.rglob(status["sha256"]))
    after = (await client.get(f"{EXPORTS}/{status['id']}", headers=alice.headers)).json()
    assert after["status"] == "expired" and after["download_url"] is None
    gone = await client.get(status["download_url"], headers=alice.headers)
    assert gone.status_code == 410 and problem_type(gone) == "export-expired"


async def test_the_rounds_queue_the_expiry_and_the_erasure(
    client: httpx.AsyncClient, app: FastAPI, runtime: Runtime, database: DatabaseUrls, alice: Persona, bob: Persona
) -> None:
    status, _ = await exported(client, app, alice)
    await execute(database, "UPDATE compliance.exports SET expires_at = now() WHERE id = $1", UUID(status["id"]))
    deleted = await client.request("DELETE", "/v1/me", headers=bob.headers, json={"password": bob.password})
    assert deleted.status_code == 202, deleted.text
    await execute(
        database,
        "UPDATE compliance.deletion_requests SET erase_after = requested_at WHERE user_id = $1",
        UUID(bob.user_id),
    )
    rounds = service_deletion.rounds(runtime, every_seconds=0.05)
    rounds.start()
    try:
        async with asyncio.timeout(30):
            await _until_gone(database, bob, export_id=UUID(status["id"]))
    finally:
        await rounds.stop()
        await jobs_done(app)


async def _until_gone(database: DatabaseUrls, person: Persona, *, export_id: UUID) -> None:
    """Until the person's account is erased and the export has expired (the rounds' jobs)."""
    account = "SELECT 1 FROM auth.users WHERE id = $1"
    export = "SELECT 1 FROM compliance.exports WHERE id = $1 AND status <> 'expired'"
    while True:
        if not (await fetch(database, account, UUID(person.user_id)) or await fetch(database, export, export_id)):
            return
        await asyncio.sleep(0.05)


async def test_a_failed_or_unfinished_export_is_not_downloaded(
    client: httpx.AsyncClient, app: FastAPI, database: DatabaseUrls, alice: Persona
) -> None:
    status, _ = await exported(client, app, alice)
    url = f"{EXPORTS}/{status['id']}/download"
    await execute(database, "UPDATE compliance.exports SET status = 'running' WHERE id = $1", UUID(status["id"]))
    running = await client.get(url, headers=alice.headers)
    assert running.status_code == 409 and problem_type(running) == "export-not-ready"
    assert running.headers["retry-after"]
    await execute(database, "UPDATE compliance.exports SET status = 'failed' WHERE id = $1", UUID(status["id"]))
    failed = await client.get(url, headers=alice.headers)
    assert failed.status_code == 409 and problem_type(failed) == "export-failed"
    missing = await client.get(f"{EXPORTS}/{UUID(int=7)}", headers=alice.headers)
    assert missing.status_code == 404 and problem_type(missing) == "export-not-found"
    malformed = await client.get(f"{EXPORTS}/not-an-id", headers=alice.headers)
    assert malformed.status_code == 422


class TestWhileTheWorkerIsAway:
    """With no worker running, an export waits: asking again answers with it."""

    @pytest.fixture
    def settings(self, smtp_server: tuple[Controller, Mailbox], tmp_path: Path) -> Settings:
        controller, _ = smtp_server
        return make_settings(
            smtp_host="127.0.0.1", smtp_port=controller.port, media_dir=tmp_path / "media", worker_in_process=False
        )

    @pytest.fixture
    async def worker(self, app: FastAPI) -> AsyncIterator[Worker]:
        running = Worker(app.state.runtime, queues=[service_deletion.QUEUE], poll_seconds=0.05)
        yield running
        await running.stop()

    async def test_one_export_at_a_time(self, client: httpx.AsyncClient, worker: Worker, alice: Persona) -> None:
        first = await client.post(EXPORTS, headers=alice.headers)
        assert first.status_code == 202, first.text
        assert first.headers["location"] == f"{EXPORTS}/{first.json()['id']}"
        assert first.json()["status"] == "pending" and first.json()["download_url"] is None
        again = await client.post(EXPORTS, headers=alice.headers)
        assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
        waiting = await client.get(f"{EXPORTS}/{first.json()['id']}/download", headers=alice.headers)
        assert waiting.status_code == 409 and problem_type(waiting) == "export-not-ready"
        worker.start()
        async with asyncio.timeout(30):
            await worker.wait_idle()
        done = (await client.get(f"{EXPORTS}/{first.json()['id']}", headers=alice.headers)).json()
        assert done["status"] == "completed"
