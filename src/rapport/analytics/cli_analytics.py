"""`rapport analytics`: compute the daily figures of any day again (docs/OPERATIONS.md,
"Analytics rollup"). The `analytics` queue's worker does it every hour by itself; this is
for backfills, and after a fix. A typer app of its own, added to `rapport` by rapport.cli."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from rapport.analytics import service_reports
from rapport.config import get_settings
from rapport.kernel.commands import as_system, prepare_database
from rapport.kernel.provisioning import DatabaseUrls

analytics_app = typer.Typer(help="Analytics: the daily rollup of events into figures.", no_args_is_help=True)
console = Console(stderr=True)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a day (YYYY-MM-DD)") from None


async def _rollup(urls: DatabaseUrls, days: list[date]) -> list[service_reports.RolledUp]:
    done = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("Rolling up", total=len(days))
        for day in days:
            done.append(await as_system(urls, partial(service_reports.rollup_day, day=day)))
            progress.advance(task)
    return done


@analytics_app.command("rollup")
def rollup(
    day: Annotated[str | None, typer.Option(help="The UTC day, YYYY-MM-DD (default: yesterday).")] = None,
    until: Annotated[
        str | None, typer.Option(help="With --day: every day from --day to this one, included (YYYY-MM-DD).")
    ] = None,
) -> None:
    """Compute the figures of a UTC day again (daily metrics, feature usage, the retention
    cohorts it touches). Idempotent: a day rolled up twice holds the same rows."""
    first = _day(day) if day else datetime.now(UTC).date() - timedelta(days=1)
    last = _day(until) if until else first
    if last < first:
        raise typer.BadParameter("--until comes before --day")
    if (last - first).days >= 3660:
        raise typer.BadParameter("at most ten years at once")
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    urls = prepare_database(get_settings(), console)
    for done in asyncio.run(_rollup(urls, days)):
        typer.echo(f"{done.day.isoformat()}: {done.metrics_written} figures")
