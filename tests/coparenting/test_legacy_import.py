"""Seed 000's legacy `invitations` rows become pairing sessions, from a CSV file or a
table, each once: a pending one still opens with its old token, an accepted one is an
active pairing, and what cannot be imported is reported with the reason."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import URL

from rapport.kernel import jobs
from rapport.kernel.db import create_engine, system_transaction
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from rapport.kernel.runtime import Runtime
from rapport.modules.coparenting import service
from rapport.modules.coparenting._pairing import open_missing_room
from rapport.modules.coparenting._pairing_jobs import JOINED, MEDIATION_AVAILABLE
from tests.coparenting.pairing_support import STATUS, accept, as_system
from tests.support import Persona, rapport_env

pytestmark = pytest.mark.module_database

ROOT = Path(__file__).resolve().parents[2]
JobsDone = Callable[[], Awaitable[None]]
HEADER = "id,inviter_id,inviter_email,invitee_email,token,status,created_at,expires_at,accepted_at\n"


def _csv(path: Path, alice: Persona, bob: Persona) -> Path:
    soon = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    past = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    path.write_text(
        HEADER
        + f"1,,{alice.email},carol@example.com,legacy-token-1,pending,{past},{soon},\n"
        + f"2,{alice.user_id},,{bob.email},legacy-token-2,accepted,{past},{soon},{past}\n"
        + f"3,,{alice.email},dave@example.com,legacy-token-3,pending,{past},{past},\n"
        + f"4,,nobody@example.com,erin@example.com,legacy-token-4,pending,{past},{soon},\n"
        + f"5,,{alice.email},frank@example.com,legacy-token-5,lost,{past},{soon},\n"
        + f"6,,{alice.email},nobody-yet@example.com,legacy-token-6,accepted,{past},{soon},{past}\n"
    )
    return path


async def _import(runtime: Runtime, rows: list[service.LegacyInvitation]) -> service.ImportReport:
    async with system_transaction(runtime.system_engine) as db:
        return await service.do_import_invitations(db, rows=rows)


async def test_a_csv_of_legacy_invitations_is_imported_once(
    client: httpx.AsyncClient, runtime: Runtime, tmp_path: Path, alice: Persona, bob: Persona
) -> None:
    rows = service.read_invitations_csv(_csv(tmp_path / "invitations.csv", alice, bob))

    first = await _import(runtime, rows)
    again = await _import(runtime, rows)

    assert (first.imported, first.already) == (3, 0)
    assert sorted(first.skipped) == [
        (4, "no account has the inviter's address"),
        (5, "unknown status 'lost'"),
        (6, "accepted, but no account has the invitee's address"),
    ]
    assert (again.imported, again.already, len(again.skipped)) == (0, 3, 3)
    imported = await as_system(
        runtime,
        "SELECT legacy_invitation_id, status, invite_type, parent_b_email FROM coparenting.pairing_sessions"
        " ORDER BY legacy_invitation_id",
    )
    assert [tuple(row) for row in imported] == [
        (1, "pending", "email", "carol@example.com"),
        (2, "active", "email", "bob@example.com"),
        (3, "expired", "email", "dave@example.com"),
    ]
    status = (await client.get(STATUS, headers=bob.headers)).json()
    assert (status["status"], status["partner_id"], status["user_role"]) == ("active", alice.user_id, "acceptor")
    steps = await as_system(runtime, "SELECT count(*) FROM coparenting.pairing_audit_log WHERE action = 'imported'")
    assert steps[0][0] == 3


async def test_an_accepted_legacy_invitation_gets_its_shared_room_as_accepting_does_once(
    client: httpx.AsyncClient, runtime: Runtime, jobs_done: JobsDone, tmp_path: Path, alice: Persona, bob: Persona
) -> None:
    rows = service.read_invitations_csv(_csv(tmp_path / "invitations.csv", alice, bob))

    await _import(runtime, rows)
    await jobs_done()
    again = await _import(runtime, rows)
    await jobs_done()
    # The job run again (a retry after a lost acknowledgement): nothing more.
    [(pairing_id, room)] = await as_system(
        runtime, "SELECT id, shared_room_id FROM coparenting.pairing_sessions WHERE legacy_invitation_id = 2"
    )
    async with system_transaction(runtime.system_engine) as db:
        await jobs.enqueue(db, open_missing_room, {"pairing_id": str(pairing_id)})
    await jobs_done()

    assert again.imported == 0 and room is not None
    rooms = await as_system(
        runtime, "SELECT id FROM messaging.conversations WHERE settings ? 'coparenting_pairing_id' ORDER BY id"
    )
    assert [row.id for row in rooms] == [room]
    assert await service.do_open_missing_room(runtime, pairing_id=pairing_id) is None
    for parent, partner in ((alice, bob), (bob, alice)):
        status = (await client.get(STATUS, headers=parent.headers)).json()
        assert (status["shared_room_id"], status["partner_id"]) == (str(room), partner.user_id)
        people = await client.get(f"/v1/conversations/{room}/participants", headers=parent.headers)
        assert {p["user_id"] for p in people.json()["items"]} == {alice.user_id, bob.user_id}
        listed = await client.get(f"/v1/conversations/{room}/messages", headers=parent.headers)
        items = sorted(listed.json()["items"], key=lambda m: m["seq"])
        assert [(m["type"], m["content"], m["sender_id"]) for m in items] == [
            ("system", JOINED, None),
            ("ai", MEDIATION_AVAILABLE, None),
        ]
    conversation = (await client.get(f"/v1/conversations/{room}", headers=alice.headers)).json()
    assert (conversation["type"], conversation["max_participants"]) == ("group", 2)
    topics = await client.get(f"/v1/coparenting/rooms/{room}/topics", headers=alice.headers)
    assert (topics.status_code, topics.json()["enabled_by"]) == (200, bob.user_id)


async def test_an_imported_pairing_whose_parents_block_each_other_gets_no_room(
    client: httpx.AsyncClient, runtime: Runtime, jobs_done: JobsDone, tmp_path: Path, alice: Persona, bob: Persona
) -> None:
    blocked = await client.put(f"/v1/blocks/{bob.user_id}", headers=alice.headers)
    assert blocked.status_code == 200, blocked.text
    rows = service.read_invitations_csv(_csv(tmp_path / "invitations.csv", alice, bob))

    await _import(runtime, rows)
    await jobs_done()

    [(pairing_id, room)] = await as_system(
        runtime, "SELECT id, shared_room_id FROM coparenting.pairing_sessions WHERE legacy_invitation_id = 2"
    )
    assert room is None
    assert await service.do_open_missing_room(runtime, pairing_id=pairing_id) is None
    rooms = await as_system(runtime, "SELECT id FROM messaging.conversations WHERE settings ? 'coparenting_pairing_id'")
    assert rooms == []
    # The job gave up at once: nothing left to retry, nothing dead.
    left = await as_system(runtime, "SELECT status FROM kernel.jobs WHERE task = 'coparenting.open_missing_room'")
    assert left == []


async def test_a_pending_legacy_invitation_opens_with_its_old_token(
    client: httpx.AsyncClient,
    runtime: Runtime,
    tmp_path: Path,
    alice: Persona,
    make_persona: Callable[[str], Awaitable[Persona]],
) -> None:
    bob = Persona(name="bob", email="bob@example.com", password="x")
    await _import(runtime, service.read_invitations_csv(_csv(tmp_path / "i.csv", alice, bob)))
    carol = await make_persona("carol")

    accepted = await accept(client, carol, token="legacy-token-1")

    assert (accepted.status_code, accepted.json()["partner_id"]) == (200, alice.user_id), accepted.text


async def test_a_legacy_table_is_read_and_imported(
    runtime: Runtime, database: DatabaseUrls, admin_url: URL, alice: Persona
) -> None:
    su = await asyncpg.connect(asyncpg_dsn(admin_url.set(database=database.owner.database)))
    try:
        await su.execute(
            """
            CREATE TABLE public.invitations (
                id serial PRIMARY KEY, inviter_id integer, inviter_email text, invitee_email text NOT NULL,
                token text UNIQUE NOT NULL, status text DEFAULT 'pending', created_at timestamptz DEFAULT now(),
                expires_at timestamptz, accepted_at timestamptz);
            GRANT SELECT ON public.invitations TO rapport_owner;
            """
        )
        await su.execute(
            "INSERT INTO public.invitations (inviter_email, invitee_email, token, expires_at)"
            " VALUES ($1, 'carol@example.com', 'from-the-table', now() + interval '1 day')",
            alice.email,
        )
        engine = create_engine(database.owner, pool_size=1)
        try:
            async with engine.connect() as db:
                rows = await service.read_invitations_table(db, table="public.invitations")
        finally:
            await engine.dispose()
        report = await _import(runtime, rows)
    finally:
        await su.execute("DROP TABLE IF EXISTS public.invitations")
        await su.close()

    assert (report.imported, report.skipped) == (1, [])
    with pytest.raises(ValueError, match="not a table name"):
        await service.read_invitations_table(None, table="invitations; DROP TABLE x")  # type: ignore[arg-type]


def _command(admin_url: URL, database: DatabaseUrls, *args: str) -> subprocess.CompletedProcess[str]:
    script = (
        "from rapport.modules.coparenting.cli import coparenting_app; coparenting_app(prog_name='rapport coparenting')"
    )
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        env=rapport_env(admin_url, database, COLUMNS="200"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_the_command_imports_a_csv_and_says_what_it_skipped(
    admin_url: URL, database: DatabaseUrls, tmp_path: Path, alice: Persona, bob: Persona
) -> None:
    path = _csv(tmp_path / "invitations.csv", alice, bob)

    done = await asyncio.to_thread(_command, admin_url, database, "import-invitations", "--csv", str(path))
    again = await asyncio.to_thread(_command, admin_url, database, "import-invitations", "--csv", str(path))

    assert done.returncode == 0, done.stderr
    assert "imported 3, already imported 0, skipped 3" in done.stdout
    assert "unknown status 'lost'" in done.stdout
    assert "imported 0, already imported 3, skipped 3" in again.stdout
