"""`rapport audit verify` (docs/OPERATIONS.md, "Audit verification"): walk the hash chain of
every audit table and name the first row changed, removed or inserted out of order.
The typer app is registered as `audit` by rapport.cli."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rapport.compliance import service
from rapport.config import get_settings
from rapport.kernel import pooling, provisioning
from rapport.kernel.db import create_system_engine, system_transaction
from rapport.kernel.models import CHAINED_AUDIT_TABLES
from rapport.kernel.provisioning import DatabaseUrls

console = Console(stderr=True)
audit_app = typer.Typer(help="The tamper-evident audit: verify its hash chains.", no_args_is_help=True)

_NAMES = {table.name: table for table in CHAINED_AUDIT_TABLES}


@audit_app.callback()
def audit() -> None:
    """The tamper-evident audit: every audit table is a hash chain; `verify` walks them."""


async def verify(urls: DatabaseUrls, tables: list[str] | None = None) -> list[service.ChainReport]:
    """Each chain checked, as system work (rapport_worker), in one snapshot per chain."""
    chosen = [_NAMES[name] for name in tables] if tables else list(CHAINED_AUDIT_TABLES)
    system = create_system_engine(urls.worker, pool_size=1)
    reports = []
    try:
        for table in chosen:
            with console.status(f"Walking {table.fullname}…"):
                async with system_transaction(system) as db:
                    reports.append(await service.verify_chain(db, table))
    finally:
        await system.dispose()
    return reports


@audit_app.command("verify")
def audit_verify(
    table: Annotated[
        list[str] | None,
        typer.Option(help=f"Only this audit table (repeatable): {', '.join(_NAMES)}. Default: every one."),
    ] = None,
) -> None:
    """Walk each audit table's hash chain from its start (or where retention pruned it) to
    its head; name the first row changed, removed or inserted out of order. Exits 1 when a
    chain is broken. The head hashes printed can be kept elsewhere: a later run that prints
    the same ones proves nothing before them changed."""
    unknown = sorted(set(table or ()) - _NAMES.keys())
    if unknown:
        raise typer.BadParameter(f"no audit table is named {', '.join(unknown)}", param_hint="--table")
    settings = get_settings()
    where = "the configured server" if settings.database_url else "the embedded PostgreSQL"
    with console.status(f"Starting {where}…"):
        urls = pooling.session_urls(provisioning.resolve_database(settings), settings)
    reports = asyncio.run(verify(urls, table))
    summary = Table(title="Audit chains")
    for column in ("table", "rows", "head", "head hash", "state"):
        summary.add_column(column, no_wrap=column != "state")
    for report in reports:
        state = "intact" if report.problem is None else f"[red]{report.problem.kind}[/red]"
        summary.add_row(
            report.table, str(report.rows), str(report.head_position), (report.head_hash or "-")[:16], state
        )
    console.print(summary)
    broken = [report.problem for report in reports if report.problem is not None]
    for problem in broken:
        typer.echo(f"BROKEN {problem.message}")
    if broken:
        raise typer.Exit(1)
    typer.echo(f"intact: {len(reports)} chain{'' if len(reports) == 1 else 's'}, {sum(r.rows for r in reports)} rows")
