"""`rapport retention`: run the retention policies now (or say what they would remove),
and show or set this deployment's horizons (docs/OPERATIONS.md, "Retention"). A typer app
of its own, added to the `rapport` command by rapport.cli."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.compliance import service_retention
from rapport.compliance.cli_db import prepare_urls
from rapport.compliance.service_retention import PolicySetting, RetentionReport, RetentionSettingRefused
from rapport.config import Settings, get_settings
from rapport.kernel.db import SystemEngine, create_system_engine, system_transaction
from rapport.kernel.provisioning import DatabaseUrls

T = TypeVar("T")

retention_app = typer.Typer(
    help="Retention: what Rapport keeps only for a while, removed once a day by the `compliance` queue's worker.",
    no_args_is_help=True,
)
console = Console(stderr=True)
out = Console()

# What `set` takes besides a duration.
FOREVER = "forever"
DEFAULT = "default"


async def _with_engine(urls: DatabaseUrls, work: Callable[[SystemEngine], Awaitable[T]]) -> T:
    engine = create_system_engine(urls.worker, pool_size=1)
    try:
        return await work(engine)
    finally:
        await engine.dispose()


async def _in_transaction(urls: DatabaseUrls, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    async def run(engine: SystemEngine) -> T:
        async with system_transaction(engine) as db:
            return await work(db)

    return await _with_engine(urls, run)


def _keep(value: str | None) -> str:
    return FOREVER if value is None else value


def _report_table(report: RetentionReport) -> Table:
    verb = "would remove" if report.dry_run else "removed"
    table = Table(title=f"Retention as of {report.now:%Y-%m-%d %H:%M:%S %Z}{' (dry run)' if report.dry_run else ''}")
    for column in ("policy", "keeps", "before", verb, "details"):
        table.add_column(column, overflow="fold")
    for outcome in report.outcomes:
        before = f"{outcome.cutoff:%Y-%m-%d %H:%M}" if outcome.cutoff is not None else ""
        details = "\n".join(outcome.details)
        if outcome.error is not None:
            details = f"[red]failed: {outcome.error}[/red]" + (f"\n{details}" if details else "")
        table.add_row(outcome.policy, _keep(outcome.keep), before, str(outcome.count), details)
    return table


@retention_app.command("run")
def retention_run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be removed; remove nothing.")] = False,
    policy: Annotated[
        list[str] | None, typer.Option("--policy", help="Apply only this policy (repeatable); default: all.")
    ] = None,
) -> None:
    """Apply the retention policies now (the worker also does, once a day), and list what
    each removed; with --dry-run, what each would remove."""
    settings = get_settings()
    urls = prepare_urls(settings)
    now = datetime.now(UTC)

    async def run(engine: SystemEngine) -> RetentionReport:
        return await service_retention.run_retention(engine, settings=settings, now=now, dry_run=dry_run, only=policy)

    try:
        with console.status("Applying the retention policies…" if not dry_run else "Counting what would go…"):
            report = asyncio.run(_with_engine(urls, run))
    except RetentionSettingRefused as exc:
        raise typer.BadParameter(str(exc), param_hint="--policy") from exc
    out.print(_report_table(report))
    if report.failed:
        raise typer.Exit(1)


def _settings_table(policies: list[PolicySetting]) -> Table:
    table = Table(title="Retention policies")
    for column in ("policy", "keeps", "default", "minimum", "removes"):
        table.add_column(column, overflow="fold")
    for setting in policies:
        keeps = _keep(setting.keep) + (" (set here)" if setting.configured else "")
        table.add_row(setting.name, keeps, _keep(setting.default), setting.minimum, setting.removes)
    return table


@retention_app.command("show")
def retention_show() -> None:
    """List the policies with the horizon this deployment applies, and the last run."""
    settings = get_settings()
    urls = prepare_urls(settings)

    async def read(db: AsyncConnection) -> tuple[list[PolicySetting], service_retention.RunRecord | None]:
        return (
            await service_retention.list_policy_settings(db, settings=settings),
            await service_retention.get_last_run(db),
        )

    policies, last = asyncio.run(_in_transaction(urls, read))
    out.print(_settings_table(policies))
    if last is None:
        out.print("No run yet.")
        return
    ended = f"ended {last.finished_at:%Y-%m-%d %H:%M:%S}" if last.finished_at else "did not end"
    removed = ", ".join(f"{name} {count}" for name, count in last.removed.items() if count) or "nothing"
    out.print(f"Last run: started {last.started_at:%Y-%m-%d %H:%M:%S}, {ended}; removed {removed}.")
    if last.error:
        out.print(f"[red]Errors: {last.error}[/red]")


def _apply_setting(db: AsyncConnection, settings: Settings, name: str, keep: str) -> Awaitable[PolicySetting]:
    if keep.strip().lower() == DEFAULT:
        return service_retention.do_reset_policy(db, name=name, settings=settings)
    value = None if keep.strip().lower() == FOREVER else keep
    return service_retention.do_set_policy(db, name=name, keep=value, settings=settings)


@retention_app.command("set")
def retention_set(
    name: Annotated[str, typer.Argument(help="The policy (`rapport retention show` lists them).")],
    keep: Annotated[
        str,
        typer.Argument(
            help=f"How long to keep: a duration as PostgreSQL reads it ('90 days', '2 years'), "
            f"'{FOREVER}', or '{DEFAULT}' for the policy's default."
        ),
    ],
) -> None:
    """Set how long one policy keeps rows, for this deployment."""
    settings = get_settings()
    urls = prepare_urls(settings)
    try:
        setting = asyncio.run(_in_transaction(urls, lambda db: _apply_setting(db, settings, name, keep)))
    except RetentionSettingRefused as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(f"{setting.name} keeps {_keep(setting.keep)}{'' if setting.configured else ' (its default)'}")
