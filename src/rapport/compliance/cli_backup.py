"""`rapport db backup PATH` and `rapport db restore PATH` (docs/OPERATIONS.md, "Backups"
and "Restores"): the commands' functions, registered on the `db` app by rapport.cli."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn

from rapport.compliance import service_backup
from rapport.compliance.service_backup import BackupError
from rapport.config import get_settings
from rapport.kernel import pooling, provisioning
from rapport.kernel.provisioning import DatabaseUrls, ProvisioningError

console = Console(stderr=True)

PgBin = Annotated[
    Path | None,
    typer.Option(
        "--pg-bin",
        help="The folder of the pg_dump and pg_restore to use (default: the best found for the server's version: "
        "the PATH's, /usr/lib/postgresql/N/bin, or the embedded server's own).",
        file_okay=False,
    ),
]


@contextmanager
def _progress() -> Iterator[service_backup.Progress]:
    """A bar per step, fed by the service's reports."""
    tasks: dict[str, TaskID] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bars:

        def report(step: str, done: int, total: int | None) -> None:
            if step not in tasks:
                tasks[step] = bars.add_task(step, total=total)
            bars.update(tasks[step], completed=done, total=total)

        yield report


def _resolve() -> tuple[DatabaseUrls, str]:
    settings = get_settings()
    where = "the configured server" if settings.database_url else "the embedded PostgreSQL"
    with console.status(f"Starting {where}…"):
        # Straight to PostgreSQL, past any pooler: a backup or a restore spans a session.
        return pooling.session_urls(provisioning.resolve_database(settings), settings), where


def _size(count: int) -> str:
    amount = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "bytes" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{count} bytes"  # pragma: no cover - the loop always returns


def db_backup(
    path: Annotated[Path, typer.Argument(help="A new folder to write the backup into (refused if it exists).")],
    pg_bin: PgBin = None,
) -> None:
    """Back the whole database up: a custom-format pg_dump (schemas, rows, functions,
    policies, owners, grants) with a manifest of the roles, the database's grants and a
    checksum of every table. Uploaded files' bytes are not in it: back them up beside it
    (docs/OPERATIONS.md, "Backups")."""
    urls, where = _resolve()
    try:
        with _progress() as report:
            manifest = asyncio.run(service_backup.do_backup(urls, path, bin_dir=pg_bin, progress=report))
    except (BackupError, ProvisioningError) as exc:
        console.print(str(exc), style="red", markup=False)
        raise typer.Exit(1) from exc
    rows = sum(state.rows for state in manifest.tables.values())
    typer.echo(
        f"backed up {manifest.database} from {where} (PostgreSQL {manifest.server_version}, migration "
        f"{manifest.revision or 'none'}): {len(manifest.tables)} tables, {rows} rows, "
        f"{_size(manifest.dump_bytes)} in {path}"
    )


def db_restore(
    path: Annotated[Path, typer.Argument(help="A folder `rapport db backup` wrote.")],
    clean: Annotated[
        bool,
        typer.Option(
            "--clean",
            help="Replace a database that is not empty (refused without it): the backup is restored beside it, "
            "and the old one dropped, every connection to it ended, only once the new one is complete.",
        ),
    ] = False,
    verify: Annotated[
        bool, typer.Option(help="Read every restored table back and compare it with the backup's checksums.")
    ] = True,
    pg_bin: PgBin = None,
) -> None:
    """Restore a backup into the configured database (RAPPORT_DATABASE_NAME on the embedded
    or configured server): its roles (Rapport's with this deployment's passwords), then
    everything in one transaction, then a check that every table is identical to the
    backup. Stop the servers and workers first."""
    settings = get_settings()
    urls, where = _resolve()
    try:
        with _progress() as report:
            result = asyncio.run(
                service_backup.do_restore(
                    urls, settings, path, clean=clean, verify=verify, bin_dir=pg_bin, progress=report
                )
            )
    except (BackupError, ProvisioningError) as exc:
        console.print(str(exc), style="red", markup=False)
        raise typer.Exit(1) from exc
    manifest = result.manifest
    checked = "identical to the backup" if result.verified else "not compared with the backup (--no-verify)"
    typer.echo(
        f"restored {path} (made {manifest.created_at}) into {result.database} on {where}: "
        f"{len(manifest.tables)} tables, {result.rows} rows, {checked}"
    )
    for note in result.notes:
        console.print(note, style="yellow", markup=False)
    if result.behind:
        console.print(
            f"The backup is at migration {manifest.revision or 'none'}: `rapport db upgrade` (or the next "
            "`rapport serve`) brings it to this version's."
        )
