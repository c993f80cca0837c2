"""Backups and restores of a whole Rapport database (`rapport db backup PATH`, `rapport db
restore PATH`): a custom-format pg_dump with a manifest beside it (rapport.compliance._backup
says what each holds and why).

A backup is consistent: the row counts and checksums in its manifest are read in the very
snapshot pg_dump dumps, while it dumps. A restore goes into an empty database (or one made
anew with `clean`), in one transaction, then reads every table back and compares it with
the manifest: it either comes out identical or says which tables differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL

from rapport.compliance._backup import (
    DUMP_FILE,
    MANIFEST_FILE,
    Manifest,
    TableState,
    can_read_every_row,
    compare,
    create_roles,
    database_acl,
    database_settings,
    is_empty,
    list_tables,
    quote_ident,
    referenced_roles,
    restore_database_level,
    revision,
    server_version,
    table_states,
)
from rapport.compliance._backup_tools import (
    BackupError,
    Progress,
    Tools,
    choose_tools,
    find_tools,
    libpq_connection,
    no_progress,
    run_tool,
    sha256_of,
)
from rapport.config import Settings
from rapport.kernel import migrate, provisioning
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn

__all__ = [
    "BackupError",
    "Manifest",
    "Progress",
    "RestoreReport",
    "TableState",
    "Tools",
    "choose_tools",
    "do_backup",
    "do_restore",
    "find_tools",
    "no_progress",
    "read_manifest",
    "table_states",
]


async def _connect(url: URL, database: str | None = None) -> asyncpg.Connection:
    target = url if database is None else url.set(database=database)
    return await asyncpg.connect(asyncpg_dsn(target))


async def _database_exists(urls: DatabaseUrls, database: str) -> bool:
    conn = await _connect(urls.admin)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database))
    finally:
        await conn.close()


def _cannot_read_every_row(action: str) -> BackupError:
    return BackupError(
        f"{action} reads and writes every row past row-level security, which needs a superuser or a role "
        "with BYPASSRLS: use such a role in RAPPORT_DATABASE_URL."
    )


def _absolute(path: Path) -> Path:
    # Not resolved: a backup folder reached through a symbolic link keeps the name given.
    return path.expanduser().absolute()


def _fresh_folder(path: Path) -> Path:
    """The folder a backup is written to before it is complete, under a name of its own so
    that a backup cut short never looks like one."""
    if path.exists():
        raise BackupError(f"{path} exists already: a backup never overwrites anything; name a new folder.")
    if not path.parent.is_dir():
        raise BackupError(f"{path.parent} is not a folder.")
    partial = path.with_name(path.name + ".partial")
    if partial.exists():
        if not partial.is_dir() or not set(os.listdir(partial)) <= {DUMP_FILE, MANIFEST_FILE}:
            raise BackupError(f"{partial} is in the way and is not a backup cut short: move it.")
        shutil.rmtree(partial)
    # A backup holds everyone's personal data: readable by its owner alone.
    partial.mkdir(mode=0o700)
    return partial


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def do_backup(
    urls: DatabaseUrls, path: Path, *, bin_dir: Path | None = None, progress: Progress = no_progress
) -> Manifest:
    """Back the database up into a new folder `path`: the dump and its manifest.

    Connects with the admin URL (`RAPPORT_DATABASE_URL`'s role, or the embedded server's
    superuser). The folder appears only once everything in it is written and synced.

    Raises:
        BackupError: `path` exists, the database does not, the role may not read every
            row, no pg_dump fits the server, or pg_dump failed.
    """
    database = str(urls.owner.database)
    path = _absolute(path)
    if not await _database_exists(urls, database):
        raise BackupError(f"There is no database {database!r} on the server to back up.")
    conn = await _connect(urls.admin, database)
    partial: Path | None = None
    try:
        if not await can_read_every_row(conn):
            raise _cannot_read_every_row("A backup")
        version, major = await server_version(conn)
        tools = find_tools(server_major=major, bin_dir=bin_dir)
        partial = _fresh_folder(path)
        dump = partial / DUMP_FILE
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            # pg_dump reads in this transaction's snapshot: the manifest's counts and
            # checksums, read here meanwhile, describe exactly the rows it dumps.
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            tables = len(await list_tables(conn))
            conninfo, env = libpq_connection(urls.admin, database)
            dumping = asyncio.create_task(
                run_tool(
                    [tools.pg_dump, "--format=custom", "--verbose", f"--snapshot={snapshot}",
                     f"--file={dump}", f"--dbname={conninfo}"],
                    env,
                    counts=lambda line: "dumping contents of table" in line,
                    on_line=lambda done: progress("Dumping", min(done, tables), tables),
                )
            )  # fmt: skip
            try:
                states = await table_states(conn, progress, "Checksumming tables")
                roles = await referenced_roles(conn)
                acl = await database_acl(conn)
                own_settings, role_settings = await database_settings(conn)
                at_revision = await revision(conn)
            except BaseException:
                # pg_dump stops with the rest of the backup (run_tool kills it).
                dumping.cancel()
                with contextlib.suppress(BaseException):
                    await dumping
                raise
            await dumping
        _sync(dump)
        manifest = Manifest(
            database=database,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            server_version=version,
            server_major=major,
            tools_version=tools.version,
            tools_major=tools.major,
            revision=at_revision,
            dump_sha256=await asyncio.to_thread(sha256_of, dump, progress, "Hashing the dump"),
            dump_bytes=dump.stat().st_size,
            tables=states,
            roles=roles,
            database_acl=acl,
            database_settings=own_settings,
            role_database_settings=role_settings,
        )
        dump.chmod(0o600)
        (partial / MANIFEST_FILE).write_bytes(manifest.to_json())
        (partial / MANIFEST_FILE).chmod(0o600)
        _sync(partial / MANIFEST_FILE)
        _sync(partial)
        partial.rename(path)
        _sync(path.parent)
        return manifest
    except BaseException:
        if partial is not None and partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        await conn.close()


def read_manifest(path: Path) -> Manifest:
    """The manifest of a backup folder.

    Raises:
        BackupError: the folder is no Rapport backup.
    """
    return Manifest.read(path.expanduser().absolute())


@dataclass
class RestoreReport:
    """What a restore did."""

    manifest: Manifest
    database: str
    verified: bool
    # Whether the database is behind the migrations this Rapport knows: `rapport db
    # upgrade` (or the next `rapport serve`) brings it to head.
    behind: bool
    notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(state.rows for state in self.manifest.tables.values())


# The lines of `pg_restore --verbose` that each stand for one entry of the archive's list.
_RESTORE_STEPS = ("pg_restore: creating ", "pg_restore: processing data ", "pg_restore: executing ")


async def toc_entries(tools: Tools, dump: Path) -> int:
    """How many entries the archive's table of contents lists (what pg_restore works through)."""
    process = await asyncio.create_subprocess_exec(
        tools.pg_restore, "--list", str(dump), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise BackupError(f"pg_restore cannot read {dump}: {err.decode(errors='replace').strip()}")
    return max(1, sum(1 for line in out.decode(errors="replace").splitlines() if line and not line.startswith(";")))


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config(URL.create("postgresql")))
    return {rev.revision for rev in script.walk_revisions()}


async def do_restore(
    urls: DatabaseUrls,
    settings: Settings,
    path: Path,
    *,
    clean: bool = False,
    verify: bool = True,
    bin_dir: Path | None = None,
    progress: Progress = no_progress,
) -> RestoreReport:
    """Restore a backup into the database `urls` name: roles first (Rapport's through
    provisioning, with this deployment's passwords; the others the database names as
    recorded), then the dump in one transaction, then the database's grants and settings,
    then every table read back and compared with the manifest.

    The database must be empty or missing. With `clean`, an existing one is replaced: the
    backup is restored into a database beside it, and only once that one is complete (and
    proven identical, unless `verify` is off) is the old one dropped, every connection to
    it ended, and the new one renamed in its place.

    Raises:
        BackupError: the folder is no backup or is damaged, the backup is of a migration
            this Rapport does not know or of a newer PostgreSQL, the role may not write
            every row, the database is not empty, no pg_restore fits, pg_restore failed
            (nothing of it is left), or the restored tables differ from the backup (the
            database replaced by `clean` is then left as it was).
    """
    folder = _absolute(path)
    manifest = Manifest.read(folder)
    if manifest.revision is not None and manifest.revision not in _known_revisions():
        raise BackupError(
            f"The backup is at migration {manifest.revision}, which this version of Rapport does not know: "
            "restore it with the version that made it, or a later one."
        )
    dump = folder / DUMP_FILE
    digest = await asyncio.to_thread(sha256_of, dump, progress, "Checking the dump")
    if digest != manifest.dump_sha256:
        raise BackupError(f"{dump} is damaged: its SHA-256 is not the one its manifest recorded.")
    database = str(urls.owner.database)
    tools, replacing, present_roles = await _inspect_server(urls, manifest, clean=clean, bin_dir=bin_dir)
    # A database being replaced stays as it is until its successor is complete.
    into = _with_database(urls, f"{database[:50]}_restoring") if replacing else urls
    staging = str(into.owner.database)
    if replacing:
        await _drop_database(urls, staging, missing_ok=True)
    await provisioning.provision(into, settings)
    try:
        notes = await _recreate_roles(urls, manifest, present=present_roles)
        await _restore_dump(into, tools, dump, progress)
        admin = await _connect(urls.admin)
        try:
            await restore_database_level(admin, manifest, staging)
        finally:
            await admin.close()
        if verify:
            await _verify(into, manifest, progress)
        if replacing:
            await _drop_database(urls, database)
            await _rename_database(urls, staging, database)
    except BaseException:
        if replacing:
            await _drop_database(urls, staging, missing_ok=True)
        raise
    behind = manifest.revision != migrate.head_revision()
    return RestoreReport(manifest=manifest, database=database, verified=verify, behind=behind, notes=notes)


async def _inspect_server(
    urls: DatabaseUrls, manifest: Manifest, *, clean: bool, bin_dir: Path | None
) -> tuple[Tools, bool, set[str]]:
    """The tools to restore with, whether an existing database is to be replaced, and the
    roles the server has now.

    Raises:
        BackupError: the restore cannot be made on this server, into this database.
    """
    database = str(urls.owner.database)
    admin = await _connect(urls.admin)
    try:
        if not await can_read_every_row(admin):
            raise _cannot_read_every_row("A restore")
        version, major = await server_version(admin)
        if major < manifest.server_major:
            raise BackupError(
                f"The backup is of PostgreSQL {manifest.server_version}; this server runs {version}. "
                f"Restore into PostgreSQL {manifest.server_major} or newer."
            )
        tools = find_tools(server_major=major, bin_dir=bin_dir, at_least=manifest.tools_major)
        exists = bool(await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database))
        present = {r["rolname"] for r in await admin.fetch("SELECT rolname FROM pg_roles")}
    finally:
        await admin.close()
    if exists and not clean:
        target = await _connect(urls.admin, database)
        try:
            empty = await is_empty(target)
        finally:
            await target.close()
        if not empty:
            raise BackupError(
                f"The database {database!r} is not empty. Restore into an empty or new database "
                "(RAPPORT_DATABASE_NAME), or pass --clean to replace this one."
            )
    return tools, exists and clean, present


def _with_database(urls: DatabaseUrls, database: str) -> DatabaseUrls:
    return DatabaseUrls(
        admin=urls.admin,
        owner=urls.owner.set(database=database),
        app=urls.app.set(database=database),
        worker=urls.worker.set(database=database),
    )


async def _recreate_roles(urls: DatabaseUrls, manifest: Manifest, *, present: set[str]) -> list[str]:
    admin = await _connect(urls.admin)
    try:
        missing = {role.name for role in manifest.roles} - present
        notes = await create_roles(admin, manifest.roles, missing=missing)
        await provisioning.check_role_separation(admin)
        return notes
    finally:
        await admin.close()


async def _restore_dump(urls: DatabaseUrls, tools: Tools, dump: Path, progress: Progress) -> None:
    conninfo, env = libpq_connection(urls.admin, str(urls.owner.database))
    entries = await toc_entries(tools, dump)
    await run_tool(
        [tools.pg_restore, "--single-transaction", "--exit-on-error", "--verbose", f"--dbname={conninfo}", str(dump)],
        env,
        counts=lambda line: line.startswith(_RESTORE_STEPS),
        on_line=lambda done: progress("Restoring", min(done, entries), entries),
    )


async def _verify(urls: DatabaseUrls, manifest: Manifest, progress: Progress) -> None:
    target = await _connect(urls.admin, str(urls.owner.database))
    try:
        found = await table_states(target, progress, "Comparing tables")
    finally:
        await target.close()
    problems = compare(manifest.tables, found)
    if problems:
        raise BackupError("The restored database differs from the backup:\n" + "\n".join(problems))


async def _admin_elsewhere(urls: DatabaseUrls, database: str) -> asyncpg.Connection:
    # RAPPORT_DATABASE_URL may name the very database being dropped or renamed.
    return await _connect(urls.admin, "postgres" if urls.admin.database == database else None)


async def _drop_database(urls: DatabaseUrls, database: str, *, missing_ok: bool = False) -> None:
    conn = await _admin_elsewhere(urls, database)
    try:
        exists = "IF EXISTS " if missing_ok else ""
        await conn.execute(f"DROP DATABASE {exists}{quote_ident(database)} WITH (FORCE)")
    finally:
        await conn.close()


async def _rename_database(urls: DatabaseUrls, database: str, to: str) -> None:
    conn = await _admin_elsewhere(urls, to)
    try:
        await conn.execute(f"ALTER DATABASE {quote_ident(database)} RENAME TO {quote_ident(to)}")
    finally:
        await conn.close()
