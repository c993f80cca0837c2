"""`rapport db check [--fix]` (docs/OPERATIONS.md, "Checks"): the command's function,
registered on the `db` app by rapport.cli; and the database preparation the compliance
commands share."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rapport.compliance import service_db
from rapport.compliance.service_db import CheckResult, UnknownCheck
from rapport.config import Settings, get_settings
from rapport.kernel import commands
from rapport.kernel.db import create_system_engine
from rapport.kernel.provisioning import DatabaseUrls

console = Console(stderr=True)
out = Console()
# Faults listed per check; the count says how many there are.
SHOWN = 20


def prepare_urls(settings: Settings) -> DatabaseUrls:
    """Find (or start) the server and make sure the roles and database exist; the schema is
    left as it is (`rapport db upgrade` migrates). PostgreSQL itself, past any pooler."""
    return commands.prepare_database(settings, console)


async def _check(urls: DatabaseUrls, *, fix: bool, only: list[str] | None) -> list[CheckResult]:
    engine = create_system_engine(urls.worker, pool_size=1)
    try:
        return await service_db.run_checks(engine, fix=fix, only=only)
    finally:
        await engine.dispose()


def _summary(results: list[CheckResult], *, fix: bool) -> Table:
    table = Table(title="Integrity checks")
    for column in ("check", "found", "fixed" if fix else "repair (--fix)", "what"):
        table.add_column(column, overflow="fold")
    for result in results:
        found = f"{len(result.faults)}{'+' if result.truncated else ''}"
        repair = str(result.fixed) if fix else (result.repair or "none: for a person to decide")
        table.add_row(result.name, found, repair if result.faults else "", result.description)
    return table


def db_check(
    fix: Annotated[bool, typer.Option("--fix", help="Repair what is safe to repair.")] = False,
    check: Annotated[
        list[str] | None, typer.Option("--check", help="Run only this check (repeatable); default: all.")
    ] = None,
) -> None:
    """Check that rows agree with each other where no constraint can say so (rows of
    messages that are gone, addresses not normalised, counters against the rows they
    count, partitions missing ahead); with --fix, repair what is safe. Exits with 1 while
    faults remain."""
    settings = get_settings()
    urls = prepare_urls(settings)
    try:
        with console.status("Repairing…" if fix else "Checking…"):
            results = asyncio.run(_check(urls, fix=fix, only=check))
    except UnknownCheck as exc:
        raise typer.BadParameter(str(exc), param_hint="--check") from exc
    out.print(_summary(results, fix=fix))
    unfixed = {id(fault): why for result in results for fault, why in result.unfixed}
    for result in results:
        for fault in result.faults[:SHOWN]:
            note = f"  [red]not fixed: {unfixed[id(fault)]}[/red]" if id(fault) in unfixed else ""
            out.print(f"{result.name}: {fault.subject}: {fault.detail}{note}")
        if len(result.faults) > SHOWN:
            out.print(f"{result.name}: and {len(result.faults) - SHOWN} more")
    remaining = sum(result.remaining for result in results)
    if remaining or any(result.truncated for result in results):
        raise typer.Exit(1)
