"""`rapport bench`: generate a realistic data set at a chosen scale, then measure it
through the real servers beside the same work straight in PostgreSQL (docs/PERFORMANCE.md)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Annotated

import asyncpg
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from sqlalchemy.engine import make_url

from rapport.benchmark import _disk, _embedded
from rapport.benchmark._bench import RunOptions, run_bench
from rapport.benchmark._chunks import BenchDataError
from rapport.benchmark._load import Loaded, generate, hash_password
from rapport.benchmark._plan import Shape
from rapport.benchmark._run import MEASURES
from rapport.benchmark._server import started_server
from rapport.benchmark.report import redact, write
from rapport.config import Settings
from rapport.kernel import migrate, provisioning
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn

bench_app = typer.Typer(
    help="Generate a data set at a chosen scale and measure Rapport on it, beside PostgreSQL alone.",
    no_args_is_help=True,
)
console = Console(stderr=True)

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="PostgreSQL URL of a role that may create roles and databases [RAPPORT_DATABASE_URL; "
        "else the embedded server].",
    ),
]
NameOption = Annotated[str | None, typer.Option("--database-name", help="Database [RAPPORT_DATABASE_NAME].")]


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description:<34}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _urls(settings: Settings, database: str | None, name: str | None) -> DatabaseUrls:
    admin = database or settings.database_url
    database_name = name or settings.database_name
    with console.status("Starting the database…"):
        admin_url = make_url(admin) if admin else provisioning.start_embedded_server(settings.data_dir)
        if not admin:
            _embedded.make_room(admin_url, settings.data_dir)
        urls = provisioning.urls_for(admin_url, database=database_name, settings=settings)
        asyncio.run(provisioning.provision(urls, settings))
    with console.status("Applying migrations…"):
        asyncio.run(migrate.upgrade(urls.owner))
    return urls


def _announce(shape: Shape, disk: _disk.DiskNeed, resumed: bool) -> None:
    verb = "Continuing" if resumed else "Generating"
    console.print(
        f"{verb} {shape.messages:,} messages, {shape.users:,} people, {shape.conversations:,} conversations "
        f"(seed {shape.seed}, {shape.slices} chunks of messages)."
    )
    where = f"{_disk.gib(disk.free_bytes)} free in {disk.where}" if disk.free_bytes is not None else (
        "the free space where the database keeps its files is unknown from here"
    )  # fmt: skip
    console.print(
        f"It needs about {_disk.gib(disk.data_bytes)} on disk, {_disk.gib(disk.needed_bytes)} with room for WAL "
        f"and index builds; {where}."
    )


async def _generate(urls: DatabaseUrls, shape: Shape, password_hash: str) -> Loaded:
    admin = await asyncpg.connect(asyncpg_dsn(urls.admin.set(database=urls.owner.database)))
    owner = await asyncpg.connect(asyncpg_dsn(urls.owner), command_timeout=None)
    try:
        directory: str | None
        try:
            directory = await admin.fetchval("SELECT current_setting('data_directory')")
        except asyncpg.InsufficientPrivilegeError:
            directory = None
        with progress_bar() as progress:
            return await generate(
                owner, shape, progress, announce=_announce, data_directory=directory, password_hash=password_hash
            )
    finally:
        await owner.close()
        await admin.close()


@bench_app.command("generate")
def generate_command(
    messages: Annotated[int, typer.Option(min=100, help="Messages to generate, e.g. 10000000.")],
    users: Annotated[int | None, typer.Option(min=10, help="People (default: one per 200 messages).")] = None,
    seed: Annotated[int, typer.Option(help="The seed everything is drawn from.")] = 20261130,
    chunk: Annotated[
        int | None, typer.Option(min=100, help="Messages per committed chunk (default: a tenth, at most 1M).")
    ] = None,
    database: DatabaseOption = None,
    database_name: NameOption = None,
) -> None:
    """Generate (or finish generating) a data set: people with profiles and settings,
    contacts, conversations of skewed sizes, messages with replies, reactions and read
    state. Loaded with COPY in chunks; run it again after an interruption to continue."""
    settings = Settings()
    urls = _urls(settings, database, database_name)
    shape = Shape.for_messages(messages, users=users, end_ms=int(time.time() * 1000) - 600_000, seed=seed, chunk=chunk)
    try:
        loaded = asyncio.run(_generate(urls, shape, hash_password(settings)))
    except BenchDataError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from error
    rows = ", ".join(f"{count:,} {table}" for table, count in loaded.counts.items())
    console.print(f"Done in {loaded.seconds:,.1f} s: {rows}.")


def _levels(text: str) -> list[int]:
    try:
        levels = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError as error:
        raise typer.BadParameter("a list of numbers, e.g. 1,4,16") from error
    if not levels or levels[0] < 1:
        raise typer.BadParameter("at least one concurrency, each 1 or more")
    return levels


@bench_app.command("run")
def run_command(
    concurrency: Annotated[str, typer.Option(help="Clients at a time, each level in turn.")] = "1,4,16",
    nodes: Annotated[
        str | None, typer.Option(help="Rapport nodes to measure, e.g. http://10.0.0.1:8000,http://10.0.0.2:8000.")
    ] = None,
    duration: Annotated[float, typer.Option(min=0.1, help="Seconds per measure, side and concurrency.")] = 10.0,
    max_requests: Annotated[int | None, typer.Option(min=1, help="Stop a side after this many requests.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Processes of the server the run starts.")] = 2,
    measure: Annotated[list[str] | None, typer.Option(help=f"Only these measures ({', '.join(MEASURES)}).")] = None,
    performance_md: Annotated[Path, typer.Option(help="Where the dated section goes.")] = Path("docs/PERFORMANCE.md"),
    json_dir: Annotated[Path, typer.Option(help="Where the JSON goes.")] = Path("docs/performance"),
    database: DatabaseOption = None,
    database_name: NameOption = None,
) -> None:
    """Measure send, history, search, unread, fan-out and login through the servers (one
    `rapport serve` started here, or --nodes) at each concurrency, each beside the same
    statement straight in PostgreSQL; check seed 004's targets; append a dated section to
    docs/PERFORMANCE.md and write the JSON beside it."""
    levels = _levels(concurrency)
    chosen = tuple(measure or MEASURES)
    unknown = [name for name in chosen if name not in MEASURES]
    if unknown:
        raise typer.BadParameter(f"unknown measures {unknown}; choose from {', '.join(MEASURES)}")
    settings = Settings()
    urls = _urls(settings, database, database_name)
    # The command as typed, for the report; when called from Python, the options that matter.
    typed = sys.argv[1:3] == ["bench", "run"]
    command = (
        "rapport " + " ".join(redact(argument) for argument in sys.argv[1:])
        if typed
        else f"rapport bench run --concurrency {concurrency}"
    )

    def options(node_urls: list[str], started: bool) -> RunOptions:
        return RunOptions(
            concurrency=levels,
            duration=duration,
            max_requests=max_requests,
            nodes=node_urls,
            admin_dsn=asyncpg_dsn(urls.admin.set(database=urls.owner.database)),
            app_dsn=asyncpg_dsn(urls.app),
            worker_dsn=asyncpg_dsn(urls.worker),
            command=command,
            server_started=started,
            measures=chosen,
        )

    with progress_bar() as progress:
        if nodes:
            result = asyncio.run(run_bench(options([n.strip().rstrip("/") for n in nodes.split(",")], False), progress))
        else:
            admin = urls.admin.render_as_string(hide_password=False)
            name = urls.owner.database or settings.database_name
            with started_server(database_url=admin, database_name=name, workers=workers) as url:
                result = asyncio.run(run_bench(options([url], True), progress))
    path = write(result, performance_md=performance_md, json_dir=json_dir)
    console.print(f"Appended to {performance_md}; figures and plans in {path}.")
