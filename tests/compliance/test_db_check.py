"""`rapport db check [--fix]`: a database filled through the API passes every check; each
check finds a fault planted behind the application's back (as the server's superuser, as a
bad restore or a manual edit would leave it), `--fix` repairs it from the rows, and the
next check finds nothing; what is not safe to repair is left, and said."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import URL

from rapport.compliance import service_db
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from rapport.kernel.runtime import Runtime
from tests.module_scope import empty_database, module_personas, start_from_here
from tests.support import Persona, populate, rapport_env

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.module_database


@pytest.fixture
async def su(admin_url: URL, database: DatabaseUrls) -> AsyncIterator[asyncpg.Connection]:
    """The server's superuser in the test's database, to plant faults no role of Rapport's
    could write; triggers (and foreign keys) off while it plants."""
    conn = await asyncpg.connect(asyncpg_dsn(admin_url.set(database=database.owner.database)))
    await conn.execute("SET session_replication_role = replica")
    yield conn
    await conn.close()


@pytest.fixture(scope="module")
async def module_world(module_app: FastAPI, module_database: DatabaseUrls) -> dict[str, Persona]:
    """tests.support.populate's rows: contacts, files, a group with messages (one carrying
    a file), a thread, a pin, a reaction, a channel. Built once: each test's reset puts
    them back as they were (module_scope.start_from_here), the faults it planted gone."""
    await empty_database(module_database)
    alice, bob, carol, mallory = await module_personas(module_app, "alice", "bob", "carol", "mallory")
    transport = httpx.ASGITransport(app=module_app, raise_app_exceptions=False, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://rapport.test") as client:
        await populate(client, alice, bob, carol, mallory)
    async with asyncio.timeout(10):
        await module_app.state.notifications.catch_up()
        await module_app.state.worker.wait_idle()
    await start_from_here(module_database)
    return {"alice": alice, "bob": bob, "carol": carol, "mallory": mallory}


@pytest.fixture
async def world(module_world: dict[str, Persona], database: DatabaseUrls) -> dict[str, Persona]:
    """The module's world, as built: the test's database was reset to it (or the world was
    built after that reset, for the module's first test that asks for it)."""
    return module_world


@pytest.fixture
async def without_the_contacts_address_check(su: asyncpg.Connection) -> AsyncIterator[None]:
    """social.contacts without the CHECK on its addresses, as rows from before it could be;
    the CHECK is put back after the test, since the module's database is emptied between
    tests, not migrated again."""
    definition = await su.fetchval(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'social.contacts'::regclass AND conname = 'ck_contacts_email'"
    )
    await su.execute("ALTER TABLE social.contacts DROP CONSTRAINT ck_contacts_email")
    yield
    await su.execute("DELETE FROM social.contacts")
    await su.execute(f"ALTER TABLE social.contacts ADD CONSTRAINT ck_contacts_email {definition}")


async def weekend(su: asyncpg.Connection) -> UUID:
    conversation: UUID = await su.fetchval("SELECT id FROM messaging.conversations WHERE name = 'Weekend'")
    return conversation


async def check(runtime: Runtime, name: str, *, fix: bool = False) -> service_db.CheckResult:
    [result] = await service_db.run_checks(runtime.system_engine, fix=fix, only=[name])
    return result


async def found_fixed_then(runtime: Runtime, name: str) -> tuple[list[service_db.Fault], int, int]:
    """The faults one check finds, how many --fix repaired, and how many the next run finds."""
    found = await check(runtime, name)
    fixed = await check(runtime, name, fix=True)
    again = await check(runtime, name)
    assert [fault.key for fault in fixed.faults] == [fault.key for fault in found.faults]
    return found.faults, fixed.fixed, len(again.faults)


async def test_a_database_filled_through_the_api_passes_every_check(
    runtime: Runtime, world: dict[str, Persona]
) -> None:
    results = await service_db.run_checks(runtime.system_engine)

    assert [result.name for result in results] == [c.name for c in service_db.CHECKS]
    assert {result.name: [f.detail for f in result.faults] for result in results if result.faults} == {}


async def test_rows_of_a_message_that_is_gone_are_found_and_removed(
    runtime: Runtime, su: asyncpg.Connection, world: dict[str, Persona]
) -> None:
    conversation = await weekend(su)
    bob = UUID(world["bob"].user_id)
    gone = uuid7()
    await su.execute(
        "INSERT INTO messaging.reactions (conversation_id, message_id, user_id, emoji) VALUES ($1, $2, $3, '🙂')",
        conversation,
        gone,
        bob,
    )
    await su.execute(
        "INSERT INTO messaging.mentions (user_id, conversation_id, seq, message_id) VALUES ($1, $2, 999, $3)",
        bob,
        conversation,
        gone,
    )
    await su.execute(
        "INSERT INTO messaging.message_history (conversation_id, message_id, operation, content, content_metadata)"
        " VALUES ($1, $2, 'edit', 'what it said', '{}')",
        conversation,
        gone,
    )
    reactions = await su.fetchval("SELECT count(*) FROM messaging.reactions")

    faults, fixed, left = await found_fixed_then(runtime, "message-remains")

    assert [(f.key, f.detail) for f in faults] == [
        (
            (conversation, gone),
            "the message is gone; 3 rows remain in messaging.mentions, messaging.message_history, messaging.reactions",
        )
    ]
    assert (fixed, left) == (1, 0)
    # bob's reaction to a message that is there stays.
    assert await su.fetchval("SELECT count(*) FROM messaging.reactions") == reactions - 1 == 1


async def test_a_reply_thread_without_its_root_is_found_and_removed(
    runtime: Runtime, su: asyncpg.Connection, world: dict[str, Persona]
) -> None:
    conversation = await weekend(su)
    orphan = uuid7()
    await su.execute(
        "INSERT INTO messaging.threads (id, conversation_id, root_message_id) VALUES ($1, $2, $3)",
        orphan,
        conversation,
        uuid7(),
    )

    faults, fixed, left = await found_fixed_then(runtime, "orphan-threads")

    assert [f.key for f in faults] == [(orphan,)]
    assert (fixed, left) == (1, 0)
    # populate's thread, whose root is there, stays.
    assert await su.fetchval("SELECT count(*) FROM messaging.threads") == 1


@pytest.mark.usefixtures("without_the_contacts_address_check")
async def test_addresses_are_normalised_unless_the_normal_form_is_taken(
    runtime: Runtime, su: asyncpg.Connection, world: dict[str, Persona]
) -> None:
    alice = UUID(world["alice"].user_id)
    identity, first, second = uuid7(), uuid7(), uuid7()
    await su.execute(
        "INSERT INTO auth.identities (id, user_id, provider, subject, email) VALUES ($1, $2, 'google', 'g-1', $3)",
        identity,
        alice,
        "  Alice@Example.COM ",
    )
    # Offline contacts kept under one address twice, as rows from before the CHECK could be.
    for contact, address in ((first, "kim@example.com"), (second, " Kim@Example.com")):
        await su.execute(
            "INSERT INTO social.contacts (id, owner_id, first_name, email) VALUES ($1, $2, 'Kim', $3)",
            contact,
            alice,
            address,
        )

    found = await check(runtime, "unnormalised-addresses")
    fixed = await check(runtime, "unnormalised-addresses", fix=True)
    again = await check(runtime, "unnormalised-addresses")

    assert sorted(f.key for f in found.faults) == sorted(
        [("auth.identities", "email", identity), ("social.contacts", "email", second)]
    )
    assert fixed.fixed == 1
    assert [(f.key, why) for f, why in fixed.unfixed] == [
        (("social.contacts", "email", second), "another row already holds the address in its normal form")
    ]
    assert [f.key for f in again.faults] == [("social.contacts", "email", second)]
    assert await su.fetchval("SELECT email FROM auth.identities WHERE id = $1", identity) == "alice@example.com"


async def test_every_column_that_holds_an_address_is_checked(su: asyncpg.Connection) -> None:
    columns = await su.fetch(
        """
        SELECT c.table_schema || '.' || c.table_name AS source, c.column_name
          FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
         WHERE t.table_type = 'BASE TABLE' AND c.data_type = 'text'
           AND (c.column_name = 'email' OR c.column_name LIKE '%\\_email')
           AND c.table_schema NOT IN ('pg_catalog', 'information_schema', 'audit')
        """
    )
    found = {(row["source"], row["column_name"]) for row in columns}

    assert found == {column for column in service_db.ADDRESS_COLUMNS if re.fullmatch(r"(\w+_)?email", column[1])}


async def test_every_table_of_message_rows_is_checked(su: asyncpg.Connection) -> None:
    tables = await su.fetch(
        """
        SELECT c.table_schema || '.' || c.table_name AS source
          FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
         WHERE t.table_type = 'BASE TABLE' AND c.column_name IN ('conversation_id', 'message_id')
           AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
         GROUP BY c.table_schema, c.table_name HAVING count(*) = 2
        """
    )

    assert {row["source"] for row in tables} == set(service_db.MESSAGE_ROWS)


async def test_a_member_count_that_differs_is_recounted(
    runtime: Runtime, su: asyncpg.Connection, world: dict[str, Persona]
) -> None:
    conversation = await weekend(su)
    await su.execute("UPDATE messaging.conversations SET member_count = 9 WHERE id = $1", conversation)

    faults, fixed, left = await found_fixed_then(runtime, "member-counts")

    assert [(f.key, f.detail) for f in faults] == [((conversation,), "member_count is 9; 3 take part")]
    assert (fixed, left) == (1, 0)
    assert await su.fetchval("SELECT member_count FROM messaging.conversations WHERE id = $1", conversation) == 3


async def test_a_last_message_that_disagrees_with_the_messages_is_repaired(
    client: httpx.AsyncClient, runtime: Runtime, su: asyncpg.Connection, world: dict[str, Persona]
) -> None:
    alice, bob = world["alice"], world["bob"]
    behind = await weekend(su)
    made = await client.post(
        "/v1/conversations",
        headers=alice.headers,
        json={"type": "group", "name": "Other", "participant_ids": [bob.user_id]},
    )
    pointing = UUID(made.json()["id"])
    sent = await client.post(f"/v1/conversations/{pointing}/messages", headers=alice.headers, json={"content": "hi"})
    assert sent.status_code == 201, sent.text
    truth = {
        row["id"]: (row["last_seq"], row["last_message_id"], row["last_message_at"])
        for row in await su.fetch("SELECT id, last_seq, last_message_id, last_message_at FROM messaging.conversations")
    }
    await su.execute("UPDATE messaging.conversations SET last_seq = last_seq - 1 WHERE id = $1", behind)
    await su.execute("UPDATE messaging.conversations SET last_message_id = $2 WHERE id = $1", pointing, uuid7())

    faults, fixed, left = await found_fixed_then(runtime, "last-message")

    assert sorted(f.key for f in faults) == sorted([(behind,), (pointing,)])
    assert "last_seq is 2 but a message has the sequence 3" in {f.detail for f in faults}
    assert (fixed, left) == (2, 0)
    now = {
        row["id"]: (row["last_seq"], row["last_message_id"], row["last_message_at"])
        for row in await su.fetch("SELECT id, last_seq, last_message_id, last_message_at FROM messaging.conversations")
    }
    assert now == truth


async def test_markers_past_the_last_message_move_back_to_it(
    client: httpx.AsyncClient, runtime: Runtime, su: asyncpg.Connection, world: dict[str, Persona]
) -> None:
    conversation = await weekend(su)
    carol = world["carol"]
    await su.execute(
        "UPDATE messaging.participants SET read_seq = 40, delivered_seq = 41"
        " WHERE conversation_id = $1 AND user_id = $2",
        conversation,
        UUID(carol.user_id),
    )

    faults, fixed, left = await found_fixed_then(runtime, "markers-past-last-message")

    assert [(f.key, f.detail) for f in faults] == [
        ((conversation, UUID(carol.user_id)), "read_seq 40, delivered_seq 41: past last_seq 3")
    ]
    assert (fixed, left) == (1, 0)
    listing = (await client.get("/v1/conversations", headers=carol.headers)).json()["items"]
    [room] = [item for item in listing if item["id"] == str(conversation)]
    assert (room["read_seq"], room["unread_count"]) == (3, 0)


async def test_an_attachment_count_that_differs_is_recounted(
    runtime: Runtime, su: asyncpg.Connection, world: dict[str, Persona]
) -> None:
    conversation = await weekend(su)
    message = await su.fetchval(
        "SELECT id FROM messaging.messages WHERE conversation_id = $1 AND content = 'The garden'", conversation
    )
    await su.execute("UPDATE messaging.messages SET attachment_count = 3 WHERE id = $1", message)

    faults, fixed, left = await found_fixed_then(runtime, "attachment-counts")

    assert [(f.key, f.detail) for f in faults] == [((conversation, message), "attachment_count is 3; it carries 1")]
    assert (fixed, left) == (1, 0)
    assert await su.fetchval("SELECT attachment_count FROM messaging.messages WHERE id = $1", message) == 1


async def test_a_thread_count_that_differs_is_recounted(
    runtime: Runtime, su: asyncpg.Connection, world: dict[str, Persona]
) -> None:
    thread = await su.fetchval("SELECT id FROM messaging.threads")
    await su.execute("UPDATE messaging.threads SET message_count = 5 WHERE id = $1", thread)

    faults, fixed, left = await found_fixed_then(runtime, "thread-counts")

    assert [(f.key, f.detail) for f in faults] == [((thread,), "message_count is 5; 0 messages are in it")]
    assert (fixed, left) == (1, 0)
    assert await su.fetchval("SELECT message_count FROM messaging.threads WHERE id = $1", thread) == 0


async def test_a_partition_missing_ahead_is_made(
    runtime: Runtime, su: asyncpg.Connection, world: dict[str, Persona]
) -> None:
    now = datetime.now(UTC)
    index = now.year * 12 + now.month - 1 + 2
    name = f"messages_p{index // 12}{index % 12 + 1:02d}"
    await su.execute(f"DROP TABLE messaging.{name}")

    faults, fixed, left = await found_fixed_then(runtime, "partitions-ahead")

    assert [(f.key, f.detail) for f in faults] == [
        (("messaging.messages", name), f"no partition {name} for {index // 12}-{index % 12 + 1:02d}")
    ]
    assert (fixed, left) == (1, 0)
    made = await su.fetchrow(
        "SELECT c.relforcerowsecurity, c.relispartition FROM pg_class c WHERE c.oid = to_regclass($1)",
        f"messaging.{name}",
    )
    assert (made["relforcerowsecurity"], made["relispartition"]) == (True, True)


async def test_an_unknown_check_is_refused(runtime: Runtime) -> None:
    with pytest.raises(service_db.UnknownCheck):
        await service_db.run_checks(runtime.system_engine, only=["everything"])


def _db_check(admin_url: URL, database: DatabaseUrls, *args: str) -> subprocess.CompletedProcess[str]:
    script = (
        "import typer; from rapport.compliance.cli_db import db_check; "
        "app = typer.Typer(); app.command('check')(db_check); app.command('other')(lambda: None); "
        "app(prog_name='rapport db')"
    )
    return subprocess.run(
        [sys.executable, "-c", script, "check", *args],
        env=rapport_env(admin_url, database, COLUMNS="200"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_the_command_reports_faults_and_repairs_them(
    admin_url: URL, database: DatabaseUrls, su: asyncpg.Connection, world: dict[str, Persona]
) -> None:
    conversation = await weekend(su)
    await su.execute("UPDATE messaging.conversations SET member_count = 9 WHERE id = $1", conversation)
    commands = ((), ("--fix",), (), ("--check", "everything"))
    # One after the other, each in a thread: the command runs its own event loop.
    found, repaired, clean, unknown = [
        await asyncio.to_thread(_db_check, admin_url, database, *args) for args in commands
    ]

    assert found.returncode == 1, found.stderr
    assert re.search(r"member-counts\s*│\s*1\s*│\s*recounts them", found.stdout), found.stdout
    assert f"member-counts: conversation {conversation}: member_count is 9; 3 take part" in found.stdout
    assert repaired.returncode == 0, repaired.stderr
    assert re.search(r"member-counts\s*│\s*1\s*│\s*1\s*│", repaired.stdout), repaired.stdout
    assert clean.returncode == 0, clean.stderr
    assert (unknown.returncode, "No check is named everything" in unknown.stderr) == (2, True)
