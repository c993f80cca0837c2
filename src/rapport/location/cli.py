"""`rapport location`: importing an IP geolocation database. A typer app of its own, added
to the `rapport` command by rapport.cli."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from rapport.config import get_settings
from rapport.kernel.commands import as_system, prepare_database
from rapport.location import service

location_app = typer.Typer(help="Location: the IP geolocation database.", no_args_is_help=True)
console = Console(stderr=True)
out = Console()


@location_app.callback()
def location() -> None:
    """Location: the IP geolocation database."""


@location_app.command("import")
def import_database(
    files: Annotated[
        list[Path],
        typer.Argument(exists=True, dir_okay=False, readable=True, help="The files of one or more databases."),
    ],
) -> None:
    """Import IP geolocation into location.ip_addresses: MaxMind GeoLite2/GeoIP2 CSV
    (City or Country blocks with their Locations-en file, which is found beside them when
    not given; ASN or ISP blocks; Anonymous IP blocks), DB-IP lite CSV (City, Country,
    ASN) or MMDB files. One transaction; running it again changes nothing."""
    urls = prepare_database(get_settings(), console)
    try:
        records = list(service.read_geo_files(files))
    except service.GeoDatabaseUnreadable as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    with Progress(TextColumn("Importing networks"), BarColumn(), TextColumn("{task.completed}/{task.total}")) as bar:
        task = bar.add_task("import", total=len(records))
        report = asyncio.run(
            as_system(
                urls,
                lambda db: service.do_import_networks(
                    db, records=records, progress=lambda done: bar.advance(task, done)
                ),
            )
        )
    out.print(f"networks read {report.records}, rows written {report.written}")
