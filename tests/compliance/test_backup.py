"""`rapport db backup` and `rapport db restore`: a database filled through the API, backed
up, restored into a new database, comes back identical (every row of every table, the
sequences, the roles' grants, the policies, functions and triggers) and serves the app;
and what a restore must refuse, it refuses."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from pprint import pformat
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.engine import URL

from rapport.analytics import service as analytics_service
from rapport.app import create_app
from rapport.compliance import service_backup
from rapport.compliance.service_backup import BackupError, Tools
from rapport.config import Settings
from rapport.kernel import provisioning
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from rapport.modules.coparenting import service as coparenting_service
from tests.conftest import drop_database
from tests.support import PASSWORD, STARTUP_TIMEOUT_S, Persona, login, make_settings, populate, rapport_env

_targets = itertools.count()

# The catalogue's description of everything a restore must bring back besides rows, each
# query's rows sorted so that two databases compare equal when they hold the same things.
# Object ids differ between databases, so objects are named, never numbered. Grants are
# compared as they take effect: an object with no grants of its own (NULL) has its kind's
# defaults, which pg_dump leaves unwritten however the source came by them.
_USER_SCHEMAS = "n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'"
_CATALOGUE = {
    "schemas": f"""
        SELECT n.nspname, pg_get_userbyid(n.nspowner), coalesce(n.nspacl, acldefault('n'::"char", n.nspowner))::text[]
          FROM pg_namespace n
         WHERE {_USER_SCHEMAS} ORDER BY 1""",
    "relations": f"""
        SELECT format('%I.%I', n.nspname, c.relname), c.relkind, pg_get_userbyid(c.relowner),
               coalesce(c.relacl,
                        acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner))::text[],
               c.relrowsecurity, c.relforcerowsecurity, c.relispartition
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_SCHEMAS} ORDER BY 1""",
    "column grants": f"""
        SELECT format('%I.%I', n.nspname, c.relname), a.attname, a.attacl::text[]
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE a.attacl IS NOT NULL AND {_USER_SCHEMAS} ORDER BY 1, 2""",
    "policies": """
        SELECT schemaname, tablename, policyname, permissive, roles::text[], cmd, qual, with_check
          FROM pg_policies ORDER BY 1, 2, 3""",
    "functions": f"""
        SELECT p.oid::regprocedure::text, pg_get_userbyid(p.proowner),
               coalesce(p.proacl, acldefault('f'::"char", p.proowner))::text[],
               p.prosecdef, p.proconfig, md5(pg_get_functiondef(p.oid))
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE p.prokind IN ('f', 'p') AND {_USER_SCHEMAS} ORDER BY 1""",
    "triggers": """
        SELECT tgrelid::regclass::text, tgname, tgenabled, pg_get_triggerdef(oid) FROM pg_trigger
         WHERE NOT tgisinternal ORDER BY 1, 2""",
    "constraints": f"""
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(c.oid) FROM pg_constraint c
          JOIN pg_namespace n ON n.oid = c.connamespace WHERE {_USER_SCHEMAS} ORDER BY 1, 2""",
    "indexes": f"""
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
          JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE {_USER_SCHEMAS} ORDER BY 1""",
    "default privileges": """
        SELECT pg_get_userbyid(defaclrole), defaclnamespace::regnamespace::text, defaclobjtype, defaclacl::text[]
          FROM pg_default_acl ORDER BY 1, 2, 3""",
    "sequences": "SELECT schemaname, sequencename, last_value FROM pg_sequences ORDER BY 1, 2",
    # User objects' comments (ids from 16384 are not the system's).
    "comments": "SELECT description FROM pg_description WHERE objoid >= 16384 ORDER BY 1",
    "database grants": """
        SELECT coalesce(datacl, acldefault('d'::"char", datdba))::text[] FROM pg_database
         WHERE datname = current_database()""",
}

_TABLES = f"""
SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND {_USER_SCHEMAS} ORDER BY 1
"""


async def _connect(admin_url: URL, database: str) -> asyncpg.Connection:
    return await asyncpg.connect(asyncpg_dsn(admin_url.set(database=database)))


async def settled(admin_url: URL, database: str, app: FastAPI, jobs_done: Callable[[], Awaitable[None]]) -> None:
    """Until the app's background work has nothing left: jobs run, and the outbox's readers
    (notifications, the topic organiser, analytics' recorder) past the last event. A job may publish an event
    after the readers caught up, and a reader's position moves after the comparison began
    otherwise."""
    conn = await _connect(admin_url, database)
    try:
        async with asyncio.timeout(20):
            while True:
                await jobs_done()
                await coparenting_service.organise_all(app.state.runtime.system_engine)
                await analytics_service.record_server_events(app.state.runtime.system_engine)
                behind = await conn.fetchval(
                    """SELECT coalesce((SELECT max(position) FROM kernel.events), 0)
                              > (SELECT coalesce(max(position), 0) FROM coparenting.topic_cursor)"""
                )
                if not behind:
                    return
                await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def tables_of(admin_url: URL, database: str) -> dict[str, tuple[int, str]]:
    """Every table's row count and the MD5 of all its rows' texts in order: computed here,
    apart from the manifest's own checksums, as the superuser past row-level security."""
    conn = await _connect(admin_url, database)
    try:
        await conn.execute("SET row_security = off; SET TimeZone = 'UTC'; SET extra_float_digits = 1")
        found = {}
        for table in await conn.fetch(_TABLES):
            row = await conn.fetchrow(
                f"""SELECT count(*) AS n, md5(coalesce(string_agg("whole row"::text, E'\\n'
                    ORDER BY "whole row"::text), '')) AS digest FROM ONLY {table["name"]} AS "whole row" """
            )
            assert row is not None
            found[table["name"]] = (row["n"], row["digest"])
        return found
    finally:
        await conn.close()


def _comparable(value: Any) -> Any:
    if isinstance(value, list):
        # Arrays (grants, settings) as tuples: rows are compared as sets too.
        return tuple(value)
    if isinstance(value, str):
        # PostgreSQL prints an expression as it parsed it: `(a AND b) AND c` written in a
        # migration prints with its inner parentheses, and reads back from the dump as
        # one flat AND without them. The same expression either way.
        return re.sub(r"[()\s]", "", value)
    return value


async def catalogue_of(admin_url: URL, database: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = await _connect(admin_url, database)
    try:
        return {
            name: [tuple(_comparable(v) for v in r) for r in await conn.fetch(query)]
            for name, query in _CATALOGUE.items()
        }
    finally:
        await conn.close()


def differences(before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]) -> dict[str, Any]:
    """What one catalogue has that the other lacks, per kind of object."""
    found = {}
    for kind in before.keys() | after.keys():
        lost = sorted(set(before.get(kind, [])) - set(after.get(kind, [])), key=repr)
        gained = sorted(set(after.get(kind, [])) - set(before.get(kind, [])), key=repr)
        if lost or gained or before.get(kind) != after.get(kind):
            found[kind] = {"lost": lost, "gained": gained}
    return found


@pytest.fixture
async def new_database(admin_url: URL) -> AsyncIterator[Callable[[], DatabaseUrls]]:
    """Names of databases that do not exist yet, for restores; dropped at the end."""
    names: list[str] = []

    def make() -> DatabaseUrls:
        name = f"rapport_restored_{os.getpid()}_{next(_targets)}"
        names.append(name)
        return provisioning.urls_for(admin_url, database=name, settings=make_settings())

    yield make
    for name in names:
        await drop_database(admin_url, name)


async def test_a_restored_database_is_identical_and_serves_the_app(
    admin_url: URL,
    database: DatabaseUrls,
    new_database: Callable[[], DatabaseUrls],
    settings: Settings,
    app: FastAPI,
    client: httpx.AsyncClient,
    jobs_done: Callable[[], Awaitable[None]],
    alice: Persona,
    bob: Persona,
    carol: Persona,
    mallory: Persona,
    tmp_path: Path,
) -> None:
    await populate(client, alice, bob, carol, mallory)
    # Mail, notifications and the outbox's readers settle first: the source must not change
    # while it is compared.
    await settled(admin_url, str(database.owner.database), app, jobs_done)
    source = str(database.owner.database)
    tables_before = await tables_of(admin_url, source)
    catalogue_before = await catalogue_of(admin_url, source)

    manifest = await service_backup.do_backup(database, tmp_path / "backup")
    target = new_database()
    report = await service_backup.do_restore(target, settings, tmp_path / "backup")

    restored = str(target.owner.database)
    assert report.verified and report.database == restored
    assert await tables_of(admin_url, restored) == tables_before
    changed = differences(catalogue_before, await catalogue_of(admin_url, restored))
    assert not changed, pformat(changed)
    # Not identical by being empty: what populate wrote is there.
    filled = {name for name, (rows, _) in tables_before.items() if rows}
    for table in ("auth.users", "auth.sessions", "social.contacts", "media.files"):
        assert table in filled
    assert any(name.startswith("messaging.messages_p") for name in filled)
    assert manifest.tables.keys() == tables_before.keys()
    assert {name: state.rows for name, state in manifest.tables.items()} == {
        name: rows for name, (rows, _) in tables_before.items()
    }
    assert catalogue_before["policies"] and catalogue_before["relations"]

    # The app over the restored database: alice signs in with her password, her session
    # from before the backup still refreshes, and her conversation reads as it did.
    application = create_app(settings, database_url=target.app, system_database_url=target.worker)
    async with LifespanManager(application, startup_timeout=STARTUP_TIMEOUT_S, shutdown_timeout=STARTUP_TIMEOUT_S):
        transport = httpx.ASGITransport(app=application, client=("203.0.113.9", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://rapport.test") as restored_client:
            refreshed = await restored_client.post("/v1/auth/refresh", json={"refresh_token": alice.refresh_token})
            assert refreshed.status_code == 200, refreshed.text
            signed_in = await login(restored_client, alice.email, PASSWORD)
            assert signed_in.status_code == 200, signed_in.text
            headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
            listed = await restored_client.get("/v1/conversations", headers=headers)
            assert listed.status_code == 200, listed.text
            [weekend] = [c for c in listed.json()["items"] if c["name"] == "Weekend"]
            history = await restored_client.get(f"/v1/conversations/{weekend['id']}/messages", headers=headers)
            assert history.status_code == 200, history.text
            assert {m["content"] for m in history.json()["items"]} >= {"Saturday?", "Yes!", "The garden"}
            # Row-level security came back with the rows: mallory sees none of it.
            spying = await login(restored_client, mallory.email, PASSWORD)
            spy = {"Authorization": f"Bearer {spying.json()['access_token']}"}
            peek = await restored_client.get(f"/v1/conversations/{weekend['id']}/messages", headers=spy)
            assert peek.status_code == 404


async def test_roles_and_database_grants_come_back(
    admin_url: URL, database: DatabaseUrls, new_database: Callable[[], DatabaseUrls], settings: Settings, tmp_path: Path
) -> None:
    """A role of the operator's that the database grants to, missing from the server the
    backup is restored on, is made again with its grants; so are the database's own grants."""
    source = str(database.owner.database)
    reader = f"rapport_test_reader_{os.getpid()}_{next(_targets)}"
    admin = await _connect(admin_url, source)
    try:
        await admin.execute(f"CREATE ROLE {reader} NOLOGIN CONNECTION LIMIT 3")
        await admin.execute(f"ALTER ROLE {reader} SET statement_timeout = '5s'")
        await admin.execute(f"GRANT USAGE ON SCHEMA messaging TO {reader}")
        await admin.execute(f"GRANT SELECT (id, created_at) ON messaging.conversations TO {reader}")
        await admin.execute(f'REVOKE CONNECT, TEMPORARY ON DATABASE "{source}" FROM PUBLIC')
        await admin.execute(f'GRANT CONNECT ON DATABASE "{source}" TO rapport_app, rapport_worker, {reader}')
        await admin.execute(f"ALTER DATABASE \"{source}\" SET work_mem = '8MB'")
        catalogue_before = await catalogue_of(admin_url, source)
        await service_backup.do_backup(database, tmp_path / "backup")
        # The role leaves the server: the restore must make it again.
        await admin.execute(f"DROP OWNED BY {reader}")
        await admin.execute(f'REVOKE CONNECT ON DATABASE "{source}" FROM {reader}')
        await admin.execute(f"DROP ROLE {reader}")
    finally:
        await admin.close()

    target = new_database()
    restored = str(target.owner.database)
    try:
        report = await service_backup.do_restore(target, settings, tmp_path / "backup")
        assert report.notes == []
        catalogue_after = await catalogue_of(admin_url, restored)
        # The database's grants name the restored database's owner as grantor, as the source's did.
        changed = differences(catalogue_before, catalogue_after)
        assert not changed, pformat(changed)
        conn = await _connect(admin_url, restored)
        try:
            role = await conn.fetchrow(
                "SELECT rolcanlogin, rolconnlimit, rolconfig FROM pg_roles WHERE rolname = $1", reader
            )
            settings_in_database = await conn.fetchval(
                "SELECT setconfig FROM pg_db_role_setting WHERE setrole = 0 AND setdatabase = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            reads = await conn.fetchval(
                "SELECT has_column_privilege($1, 'messaging.conversations', 'created_at', 'SELECT')", reader
            )
        finally:
            await conn.close()
        assert role is not None and tuple(role) == (False, 3, ["statement_timeout=5s"])
        assert settings_in_database == ["work_mem=8MB"]
        assert reads is True
    finally:
        await drop_database(admin_url, restored)
        cleanup = await asyncpg.connect(asyncpg_dsn(admin_url))
        try:
            await cleanup.execute(f"DROP ROLE IF EXISTS {reader}")
        finally:
            await cleanup.close()


async def test_a_database_that_is_not_empty_is_refused_unless_clean(
    admin_url: URL, database: DatabaseUrls, new_database: Callable[[], DatabaseUrls], settings: Settings, tmp_path: Path
) -> None:
    await service_backup.do_backup(database, tmp_path / "backup")
    target = new_database()
    restored = str(target.owner.database)
    await service_backup.do_restore(target, settings, tmp_path / "backup")
    conn = await _connect(admin_url, restored)
    try:
        await conn.execute("CREATE TABLE public.stray (id int)")
    finally:
        await conn.close()

    with pytest.raises(BackupError, match="not empty"):
        await service_backup.do_restore(target, settings, tmp_path / "backup")
    # Refused before anything was touched: the stray table is still there.
    assert "public.stray" in await tables_of(admin_url, restored)

    # A replacement that does not come out identical leaves the old database as it was:
    # here the manifest is made to disagree with the dump about one table.
    manifest_file = tmp_path / "backup" / "manifest.json"
    genuine = manifest_file.read_bytes()
    manifest = orjson.loads(genuine)
    manifest["tables"]["auth.users"]["rows"] += 1
    manifest_file.write_bytes(orjson.dumps(manifest))
    with pytest.raises(BackupError, match=re.escape("auth.users has 0 rows, the backup 1")):
        await service_backup.do_restore(target, settings, tmp_path / "backup", clean=True)
    assert "public.stray" in await tables_of(admin_url, restored)
    assert await _databases_like(admin_url, f"{restored}%") == [restored]

    manifest_file.write_bytes(genuine)
    await service_backup.do_restore(target, settings, tmp_path / "backup", clean=True)
    assert await tables_of(admin_url, restored) == await tables_of(admin_url, str(database.owner.database))
    assert await _databases_like(admin_url, f"{restored}%") == [restored]


async def _databases_like(admin_url: URL, pattern: str) -> list[str]:
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        return [
            r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", pattern)
        ]
    finally:
        await conn.close()


async def test_a_backup_never_overwrites(database: DatabaseUrls, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(BackupError, match="exists already"):
        await service_backup.do_backup(database, tmp_path / "taken")
    with pytest.raises(BackupError, match="is not a folder"):
        await service_backup.do_backup(database, tmp_path / "nowhere" / "backup")
    assert os.listdir(tmp_path) == ["taken"]


async def test_a_backup_is_readable_by_its_owner_alone(database: DatabaseUrls, tmp_path: Path) -> None:
    manifest = await service_backup.do_backup(database, tmp_path / "backup")
    folder = tmp_path / "backup"
    assert folder.stat().st_mode & 0o777 == 0o700
    assert {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()} == {
        "rapport.dump": 0o600,
        "manifest.json": 0o600,
    }
    assert service_backup.read_manifest(folder) == manifest


async def test_a_damaged_dump_is_refused(
    admin_url: URL, database: DatabaseUrls, new_database: Callable[[], DatabaseUrls], settings: Settings, tmp_path: Path
) -> None:
    await service_backup.do_backup(database, tmp_path / "backup")
    dump = tmp_path / "backup" / "rapport.dump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    target = new_database()

    with pytest.raises(BackupError, match="damaged"):
        await service_backup.do_restore(target, settings, tmp_path / "backup")
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        assert await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", target.owner.database) is None
    finally:
        await conn.close()


async def test_what_is_not_a_backup_is_refused(
    database: DatabaseUrls, new_database: Callable[[], DatabaseUrls], settings: Settings, tmp_path: Path
) -> None:
    target = new_database()
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackupError, match="not a Rapport backup"):
        await service_backup.do_restore(target, settings, tmp_path / "empty")

    await service_backup.do_backup(database, tmp_path / "backup")
    manifest_file = tmp_path / "backup" / "manifest.json"
    manifest = orjson.loads(manifest_file.read_bytes())
    manifest_file.write_bytes(orjson.dumps({**manifest, "revision": "2099_01_01_9999"}))
    with pytest.raises(BackupError, match="does not know"):
        await service_backup.do_restore(target, settings, tmp_path / "backup")

    manifest_file.write_bytes(orjson.dumps({**manifest, "format_version": 99}))
    with pytest.raises(BackupError, match="newer Rapport"):
        await service_backup.do_restore(target, settings, tmp_path / "backup")

    manifest_file.write_bytes(b"{not json")
    with pytest.raises(BackupError, match="not a readable"):
        await service_backup.do_restore(target, settings, tmp_path / "backup")


def _tools(major: int) -> Tools:
    return Tools(bin_dir=Path(f"/opt/pg{major}/bin"), version=f"{major}.1", major=major)


def test_tools_of_the_server_version_are_chosen_and_older_ones_refused() -> None:
    assert service_backup.choose_tools([_tools(15), _tools(17), _tools(16)], server_major=16).major == 16
    # None of the server's version: the oldest that is newer.
    assert service_backup.choose_tools([_tools(18), _tools(17), _tools(14)], server_major=16).major == 17
    # An archive written by a newer pg_dump needs a pg_restore at least as new.
    assert service_backup.choose_tools([_tools(16), _tools(17)], server_major=16, at_least=17).major == 17
    with pytest.raises(BackupError, match=r"16 or newer.*found: 15\.1 in /opt/pg15/bin.*--pg-bin"):
        service_backup.choose_tools([_tools(15)], server_major=16)
    with pytest.raises(BackupError, match="found: none"):
        service_backup.choose_tools([], server_major=16)


async def test_tools_are_found_for_the_test_server(admin_url: URL) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        major = int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()
    tools = service_backup.find_tools(server_major=major)
    assert tools.major >= major
    with pytest.raises(BackupError, match="holds no pg_dump"):
        service_backup.find_tools(server_major=major, bin_dir=Path("/nonexistent"))


_COMMANDS = (
    "import typer\n"
    "from rapport.compliance import cli_backup\n"
    "app = typer.Typer()\n"
    "app.command('backup')(cli_backup.db_backup)\n"
    "app.command('restore')(cli_backup.db_restore)\n"
    "app()\n"
)


async def test_the_commands_back_up_and_restore(
    admin_url: URL, database: DatabaseUrls, new_database: Callable[[], DatabaseUrls], tmp_path: Path
) -> None:
    def run(urls: DatabaseUrls, *args: str) -> subprocess.CompletedProcess[str]:
        env = rapport_env(admin_url, urls, RAPPORT_DATA_DIR=str(tmp_path))
        return subprocess.run(
            [sys.executable, "-c", _COMMANDS, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )

    source = str(database.owner.database)
    backed_up = await asyncio.to_thread(run, database, "backup", str(tmp_path / "nightly"))
    assert backed_up.returncode == 0, backed_up.stderr
    assert backed_up.stdout.startswith(f"backed up {source} ")

    target = new_database()
    restored = await asyncio.to_thread(run, target, "restore", str(tmp_path / "nightly"))
    assert restored.returncode == 0, restored.stderr
    assert "identical to the backup" in restored.stdout
    assert await tables_of(admin_url, str(target.owner.database)) == await tables_of(admin_url, source)

    again = await asyncio.to_thread(run, target, "restore", str(tmp_path / "nightly"))
    assert again.returncode == 1
    assert "not empty" in again.stderr and "--clean" in again.stderr
    cleaned = await asyncio.to_thread(run, target, "restore", "--clean", str(tmp_path / "nightly"))
    assert cleaned.returncode == 0, cleaned.stderr
