"""The tamper-evident audit: every row of every audit table is hash-chained to the one before
it as it is appended; verification (`rapport audit verify`) names the first row changed,
removed or inserted out of order. The tampering here is done as the tables' owner, as
someone with the database's keys would; erasure's redaction and retention's pruning keep
the chains verifiable."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.compliance import service
from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.models import CHAINED_AUDIT_TABLES
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from rapport.kernel.runtime import Runtime
from tests.support import Persona, login, rapport_env

pytestmark = pytest.mark.module_database


@pytest.fixture
async def owner(database: DatabaseUrls) -> AsyncIterator[asyncpg.Connection]:
    """A connection as the audit tables' owner: the one who could tamper with them."""
    conn = await asyncpg.connect(asyncpg_dsn(database.owner))
    yield conn
    await conn.close()


async def verify(runtime: Runtime, table: str = "audit.record_changes") -> service.ChainReport:
    [chosen] = [t for t in CHAINED_AUDIT_TABLES if t.fullname == table]
    async with system_transaction(runtime.system_engine) as db:
        return await service.verify_chain(db, chosen)


async def verify_all(runtime: Runtime) -> list[service.ChainReport]:
    async with system_transaction(runtime.system_engine) as db:
        return await service.verify_all(db)


async def activity(client: httpx.AsyncClient, alice: Persona, bob: Persona) -> None:
    """Rows in every chain the API writes: account and profile changes, sign-ins, blocks."""
    for visibility in ("contacts", "private", "public"):
        changed = await client.patch("/v1/profile", json={"profile_visibility": visibility}, headers=alice.headers)
        assert changed.status_code == 200, changed.text
    blocked = await client.put(f"/v1/blocks/{bob.user_id}", headers=alice.headers)
    assert blocked.status_code == 200, blocked.text
    assert (await login(client, alice.email, "not her password")).status_code == 401


async def chain(owner: asyncpg.Connection, table: str = "audit.record_changes") -> list[asyncpg.Record]:
    return list(
        await owner.fetch(f"SELECT id, chain_position, content_hash, chain_hash FROM {table} ORDER BY chain_position")
    )


@pytest.mark.personas_sign_in
async def test_every_chain_is_intact_after_ordinary_use(
    client: httpx.AsyncClient, alice: Persona, bob: Persona, runtime: Runtime, owner: asyncpg.Connection
) -> None:
    await activity(client, alice, bob)

    reports = await verify_all(runtime)

    assert {report.table for report in reports} == {table.fullname for table in CHAINED_AUDIT_TABLES}
    assert [report.problem for report in reports] == [None] * len(reports)
    counted = {report.table: report.rows for report in reports}
    assert counted["audit.record_changes"] >= 6 and counted["audit.auth_events"] >= 3
    rows = await chain(owner)
    assert [row["chain_position"] for row in rows] == list(range(1, len(rows) + 1))
    head = await owner.fetchrow(
        "SELECT chain_position, chain_hash FROM audit.chain_heads WHERE table_name = $1", "audit.record_changes"
    )
    assert (head["chain_position"], head["chain_hash"]) == (rows[-1]["chain_position"], rows[-1]["chain_hash"])


@pytest.mark.personas_sign_in
async def test_sign_in_attempts_and_security_events_reach_the_audit(
    client: httpx.AsyncClient, alice: Persona, runtime: Runtime, owner: asyncpg.Connection
) -> None:
    assert (await login(client, alice.email, "not her password")).status_code == 401

    rows = await owner.fetch(
        "SELECT event_type, succeeded, host(ip_address) AS ip FROM audit.auth_events WHERE user_id = $1 ORDER BY id",
        UUID(alice.user_id),
    )

    assert [(row["event_type"], row["succeeded"], row["ip"]) for row in rows][-2:] == [
        ("sign_in", True, "203.0.113.7"),
        ("sign_in", False, "203.0.113.7"),
    ]
    assert (await verify(runtime, "audit.auth_events")).problem is None


async def test_a_changed_row_is_named(
    client: httpx.AsyncClient, alice: Persona, bob: Persona, runtime: Runtime, owner: asyncpg.Connection
) -> None:
    await activity(client, alice, bob)
    victim = (await chain(owner))[2]

    await owner.execute(
        'UPDATE audit.record_changes SET new_data = new_data || \'{"username": "someone_else"}\' WHERE id = $1',
        victim["id"],
    )
    report = await verify(runtime)

    assert report.problem is not None
    assert (report.problem.kind, report.problem.row_id) == ("changed", victim["id"])
    assert f"row {victim['id']} was changed" in report.problem.message


async def test_a_changed_row_whose_content_hash_was_recomputed_breaks_the_link(
    client: httpx.AsyncClient, alice: Persona, bob: Persona, runtime: Runtime, owner: asyncpg.Connection
) -> None:
    await activity(client, alice, bob)
    victim = (await chain(owner))[2]

    await owner.execute("SET TimeZone = 'UTC'")
    await owner.execute("UPDATE audit.record_changes SET new_data = '{\"forged\": true}' WHERE id = $1", victim["id"])
    await owner.execute(
        "UPDATE audit.record_changes t SET content_hash = audit.content_digest(to_jsonb(t)) WHERE id = $1", victim["id"]
    )
    report = await verify(runtime)

    assert report.problem is not None
    assert (report.problem.kind, report.problem.row_id) == ("unlinked", victim["id"])


async def test_a_removed_row_is_named(
    client: httpx.AsyncClient, alice: Persona, bob: Persona, runtime: Runtime, owner: asyncpg.Connection
) -> None:
    await activity(client, alice, bob)
    rows = await chain(owner)
    before, victim, after = rows[1], rows[2], rows[3]

    await owner.execute("DELETE FROM audit.record_changes WHERE id = $1", victim["id"])
    report = await verify(runtime)

    assert report.problem is not None
    assert (report.problem.kind, report.problem.chain_position, report.problem.row_id) == (
        "removed",
        victim["chain_position"],
        after["id"],
    )
    assert f"after row {before['id']}" in report.problem.message


async def test_the_last_row_removed_is_seen_against_the_head(
    client: httpx.AsyncClient, alice: Persona, bob: Persona, runtime: Runtime, owner: asyncpg.Connection
) -> None:
    await activity(client, alice, bob)
    last = (await chain(owner))[-1]

    await owner.execute("DELETE FROM audit.record_changes WHERE id = $1", last["id"])
    report = await verify(runtime)

    assert report.problem is not None
    assert (report.problem.kind, report.problem.chain_position) == ("removed", last["chain_position"])


async def test_a_row_inserted_between_two_others_is_named(
    client: httpx.AsyncClient, alice: Persona, bob: Persona, runtime: Runtime, owner: asyncpg.Connection
) -> None:
    """The forger makes room (every later row moves up a place), writes a row whose content
    hash is right and whose chain hash follows from the row before it: only the next row
    gives it away, as its chain hash still follows from the row before the forged one."""
    await activity(client, alice, bob)
    before = (await chain(owner))[2]
    place = before["chain_position"] + 1
    forged = await _forge_between(owner, before, acting_user_id=UUID(alice.user_id))
    report = await verify(runtime)

    assert report.problem is not None
    assert (report.problem.kind, report.problem.row_id, report.problem.chain_position) == ("inserted", forged, place)
    assert f"row {forged} (position {place}) was inserted out of order" in report.problem.message


async def _forge_between(owner: asyncpg.Connection, before: asyncpg.Record, *, acting_user_id: UUID) -> int:
    """Insert a forged row right after `before` as the forger would: every later row moves
    up a place, the forged row's content hash is right and its chain hash follows from
    `before`, and the head counts one row more. Returns the forged row's id."""
    place = before["chain_position"] + 1
    async with owner.transaction():
        await owner.execute("SET LOCAL TimeZone = 'UTC'")
        await owner.execute("ALTER TABLE audit.record_changes DISABLE TRIGGER tr_record_changes_chain")
        await owner.execute(
            "UPDATE audit.record_changes SET chain_position = -chain_position WHERE chain_position >= $1", place
        )
        await owner.execute(
            "UPDATE audit.record_changes SET chain_position = 1 - chain_position WHERE chain_position < 0"
        )
        forged: int = await owner.fetchval(
            """
            INSERT INTO audit.record_changes (schema_name, table_name, operation, new_data, acting_user_id,
                                              transaction_id, chain_position, content_hash, chain_hash)
            VALUES ('auth', 'users', 'UPDATE', '{"is_admin": true}', $1, 1, $2, sha256('x'), sha256('x'))
            RETURNING id
            """,
            acting_user_id,
            place,
        )
        await owner.execute(
            """
            UPDATE audit.record_changes t
               SET content_hash = audit.content_digest(to_jsonb(t)),
                   chain_hash = sha256($2 || audit.content_digest(to_jsonb(t)))
             WHERE id = $1
            """,
            forged,
            before["chain_hash"],
        )
        await owner.execute(
            "UPDATE audit.chain_heads SET chain_position = chain_position + 1 WHERE table_name = 'audit.record_changes'"
        )
        await owner.execute("ALTER TABLE audit.record_changes ENABLE TRIGGER tr_record_changes_chain")
    return forged


async def test_a_row_added_past_the_head_is_named(
    client: httpx.AsyncClient, alice: Persona, bob: Persona, runtime: Runtime, owner: asyncpg.Connection
) -> None:
    await activity(client, alice, bob)
    last = (await chain(owner))[-1]

    async with owner.transaction():
        await owner.execute("ALTER TABLE audit.record_changes DISABLE TRIGGER tr_record_changes_chain")
        forged = await owner.fetchval(
            """
            INSERT INTO audit.record_changes (schema_name, table_name, operation, transaction_id, chain_position,
                                              content_hash, chain_hash)
            VALUES ('auth', 'users', 'DELETE', 1, $1, sha256('x'), sha256('y'))
            RETURNING id
            """,
            last["chain_position"] + 1,
        )
        await owner.execute("ALTER TABLE audit.record_changes ENABLE TRIGGER tr_record_changes_chain")
    report = await verify(runtime)

    assert report.problem is not None
    assert (report.problem.kind, report.problem.row_id) == ("inserted", forged)


async def test_appends_from_concurrent_transactions_keep_one_chain(
    client: httpx.AsyncClient, alice: Persona, bob: Persona, carol: Persona, runtime: Runtime
) -> None:
    people = [alice, bob, carol]

    async def churn(who: Persona) -> None:
        for visibility in ("contacts", "private", "public", "contacts"):
            changed = await client.patch("/v1/profile", json={"profile_visibility": visibility}, headers=who.headers)
            assert changed.status_code == 200, changed.text

    await asyncio.gather(*(churn(who) for who in people), *(login(client, who.email, "wrong") for who in people))
    reports = await verify_all(runtime)

    assert [report.problem for report in reports] == [None] * len(reports)


async def test_erasure_redacts_without_breaking_any_chain(
    client: httpx.AsyncClient, alice: Persona, bob: Persona, runtime: Runtime, owner: asyncpg.Connection
) -> None:
    await activity(client, alice, bob)
    await activity(client, bob, alice)
    alice_id = UUID(alice.user_id)

    async with system_transaction(runtime.system_engine) as db:
        redacted = await service.erase_from_audit(db, user_id=alice_id, terms=["alice"])

    assert redacted > 0
    assert [report.problem for report in await verify_all(runtime)] == [None] * len(CHAINED_AUDIT_TABLES)
    leftover = await owner.fetchval(
        """
        SELECT count(*) FROM audit.record_changes t
         WHERE t.redacted_at IS NULL AND (t.acting_user_id = $1 OR to_jsonb(t)::text ILIKE '%' || $2 || '%'
                                          OR to_jsonb(t)::text ILIKE '%alice%')
        """,
        alice_id,
        alice.user_id,
    )
    assert leftover == 0
    assert await owner.fetchval("SELECT count(*) FROM audit.auth_events WHERE user_id = $1", alice_id) == 0
    recorded = await owner.fetchval("SELECT count(*) FROM audit.redactions")
    assert recorded == redacted
    # Bob's own rows that do not name her stay whole.
    assert await owner.fetchval("SELECT count(*) FROM audit.auth_events WHERE user_id = $1", UUID(bob.user_id)) > 0


async def test_a_redacted_row_changed_later_is_named_and_a_forged_redaction_too(
    client: httpx.AsyncClient, alice: Persona, bob: Persona, runtime: Runtime, owner: asyncpg.Connection
) -> None:
    await activity(client, alice, bob)
    async with system_transaction(runtime.system_engine) as db:
        await service.erase_from_audit(db, user_id=UUID(alice.user_id))
    redacted = await owner.fetchval("SELECT min(id) FROM audit.auth_events WHERE redacted_at IS NOT NULL")
    await owner.execute("UPDATE audit.auth_events SET event_type = 'sign_out' WHERE id = $1", redacted)

    changed = await verify(runtime, "audit.auth_events")

    assert changed.problem is not None
    assert (changed.problem.kind, changed.problem.row_id) == ("changed", redacted)

    # Hiding a change behind a redaction mark is seen too: no redaction record covers it.
    whole = await owner.fetchval("SELECT min(id) FROM audit.record_changes WHERE redacted_at IS NULL")
    await owner.execute("UPDATE audit.record_changes SET new_data = NULL, redacted_at = now() WHERE id = $1", whole)
    hidden = await verify(runtime)
    assert hidden.problem is not None
    assert (hidden.problem.kind, hidden.problem.row_id) == ("unaccounted-redaction", whole)


async def test_pruning_the_oldest_rows_keeps_the_rest_verifiable(
    client: httpx.AsyncClient, alice: Persona, bob: Persona, runtime: Runtime, owner: asyncpg.Connection
) -> None:
    await activity(client, alice, bob)
    rows = await chain(owner)
    cut = rows[3]
    await owner.execute(
        "UPDATE audit.record_changes SET occurred_at = occurred_at - interval '11 years' WHERE chain_position < $1",
        cut["chain_position"],
    )
    # The shift rewrote their content: rehash the shifted rows as if they had always been that old.
    await owner.execute("SET TimeZone = 'UTC'")
    await _rechain(owner)
    assert (await verify(runtime)).problem is None

    async with system_transaction(runtime.system_engine) as db:
        removed = await service.prune_audit(
            db, table_name="audit.record_changes", older_than=datetime.now(UTC) - timedelta(days=3650)
        )

    assert removed == cut["chain_position"] - 1
    report = await verify(runtime)
    assert report.problem is None and report.rows == len(rows) - removed
    head = await owner.fetchrow(
        "SELECT anchor_position FROM audit.chain_heads WHERE table_name = 'audit.record_changes'"
    )
    assert head["anchor_position"] == removed


async def _rechain(owner: asyncpg.Connection) -> None:
    """Recompute record_changes' hashes in order (what only the owner could do)."""
    previous = b""
    for row in await owner.fetch("SELECT id FROM audit.record_changes ORDER BY chain_position"):
        content = await owner.fetchval(
            "SELECT audit.content_digest(to_jsonb(t)) FROM audit.record_changes t WHERE id = $1", row["id"]
        )
        previous = await owner.fetchval("SELECT sha256($1::bytea || $2::bytea)", previous, content)
        await owner.execute(
            "UPDATE audit.record_changes SET content_hash = $2, chain_hash = $3 WHERE id = $1",
            row["id"],
            content,
            previous,
        )
    await owner.execute(
        "UPDATE audit.chain_heads SET chain_hash = $1 WHERE table_name = 'audit.record_changes'", previous
    )


async def test_only_system_work_erases_or_prunes(app_engine: AsyncEngine, alice: Persona) -> None:
    for statement in (
        "SELECT audit.erase_person(CAST(:id AS uuid))",
        "SELECT audit.prune_chain('audit.record_changes', now())",
    ):
        with pytest.raises(DBAPIError, match="permission denied"):
            async with user_transaction(app_engine, UUID(alice.user_id)) as db:
                await db.execute(text(statement), {"id": alice.user_id})


# `rapport audit verify`


def _verify_command(admin_url: URL, database: DatabaseUrls, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "rapport", "audit", "verify"]
    env = rapport_env(admin_url, database, RAPPORT_DATA_DIR=str(tmp_path))
    return subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)


async def test_the_command_says_intact_then_names_the_changed_row(
    client: httpx.AsyncClient,
    alice: Persona,
    bob: Persona,
    owner: asyncpg.Connection,
    admin_url: URL,
    database: DatabaseUrls,
    tmp_path: Path,
) -> None:
    await activity(client, alice, bob)

    intact = await asyncio.to_thread(_verify_command, admin_url, database, tmp_path)
    assert intact.returncode == 0, intact.stderr
    assert intact.stdout.startswith(f"intact: {len(CHAINED_AUDIT_TABLES)} chains")

    victim = (await chain(owner))[1]
    await owner.execute(
        "UPDATE audit.record_changes SET transaction_id = transaction_id + 1 WHERE id = $1", victim["id"]
    )
    broken = await asyncio.to_thread(_verify_command, admin_url, database, tmp_path)

    assert broken.returncode == 1, broken.stderr
    assert f"BROKEN audit.record_changes: row {victim['id']} was changed" in broken.stdout


async def test_the_command_names_a_removed_row(
    client: httpx.AsyncClient,
    alice: Persona,
    bob: Persona,
    owner: asyncpg.Connection,
    admin_url: URL,
    database: DatabaseUrls,
    tmp_path: Path,
) -> None:
    await activity(client, alice, bob)
    rows = await chain(owner)
    before, victim, after = rows[1], rows[2], rows[3]

    await owner.execute("DELETE FROM audit.record_changes WHERE id = $1", victim["id"])
    broken = await asyncio.to_thread(_verify_command, admin_url, database, tmp_path)

    assert broken.returncode == 1, broken.stderr
    position = victim["chain_position"]
    assert (
        f"BROKEN audit.record_changes: rows at positions {position}..{position} were removed "
        f"after row {before['id']}, before row {after['id']}"
    ) in broken.stdout


async def test_the_command_names_a_row_inserted_out_of_order(
    client: httpx.AsyncClient,
    alice: Persona,
    bob: Persona,
    owner: asyncpg.Connection,
    admin_url: URL,
    database: DatabaseUrls,
    tmp_path: Path,
) -> None:
    await activity(client, alice, bob)
    before = (await chain(owner))[2]

    forged = await _forge_between(owner, before, acting_user_id=UUID(alice.user_id))
    broken = await asyncio.to_thread(_verify_command, admin_url, database, tmp_path)

    assert broken.returncode == 1, broken.stderr
    place = before["chain_position"] + 1
    assert f"BROKEN audit.record_changes: row {forged} (position {place}) was inserted out of order" in broken.stdout
