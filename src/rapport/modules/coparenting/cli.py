"""`rapport coparenting`: the co-parenting module's administration: importing seed 000's
legacy invitations into pairing sessions, and expiring invitations past their time. A
typer app of its own, added to the `rapport` command by rapport.cli."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from rapport.config import get_settings
from rapport.kernel.commands import as_system, prepare_database
from rapport.kernel.db import create_engine
from rapport.kernel.provisioning import DatabaseUrls
from rapport.modules.coparenting import service

T = TypeVar("T")

coparenting_app = typer.Typer(help="Co-parenting: legacy invitations and pairing upkeep.", no_args_is_help=True)
console = Console(stderr=True)
out = Console()


async def _read_table(urls: DatabaseUrls, table: str) -> list[service.LegacyInvitation]:
    # The legacy table is not Rapport's: its owner's role reads it, as it reads any table
    # restored into this database.
    engine = create_engine(urls.owner, pool_size=1)
    try:
        async with engine.connect() as db:
            return await service.read_invitations_table(db, table=table)
    finally:
        await engine.dispose()


@coparenting_app.command("import-invitations")
def import_invitations(
    csv_file: Annotated[
        Path | None,
        typer.Option("--csv", exists=True, dir_okay=False, readable=True, help="A CSV file of legacy invitations."),
    ] = None,
    table: Annotated[
        str | None, typer.Option("--table", help="A legacy table in Rapport's database, e.g. public.invitations.")
    ] = None,
) -> None:
    """Import seed 000's legacy `invitations` rows (a CSV file with a header, or a table)
    into pairing sessions. Columns: id, inviter_id (a Rapport user id) or inviter_email,
    invitee_email, token, status, created_at, expires_at, accepted_at. An accepted one's
    shared room is opened by a job, once a worker runs the `coparenting` queue. Running it
    again imports nothing twice and opens no second room."""
    if (csv_file is None) == (table is None):
        console.print("[red]Give exactly one of --csv and --table.[/red]")
        raise typer.Exit(2)
    urls = prepare_database(get_settings(), console)
    try:
        rows = (
            service.read_invitations_csv(csv_file)
            if csv_file is not None
            else asyncio.run(_read_table(urls, table or ""))
        )
    except (ValueError, OSError) as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    with console.status(f"Importing {len(rows)} invitations…"):
        report = asyncio.run(as_system(urls, lambda db: service.do_import_invitations(db, rows=rows)))
    out.print(f"imported {report.imported}, already imported {report.already}, skipped {len(report.skipped)}")
    if report.skipped:
        skipped = Table(title="Skipped")
        skipped.add_column("legacy id")
        skipped.add_column("why", overflow="fold")
        for legacy_id, reason in report.skipped:
            skipped.add_row(str(legacy_id), reason)
        out.print(skipped)


@coparenting_app.command("expire-pairings")
def expire_pairings() -> None:
    """Mark pending invitations past their time expired, telling their initiators."""
    urls = prepare_database(get_settings(), console)
    count = asyncio.run(as_system(urls, service.do_expire_pairings))
    out.print(f"expired {count}")
