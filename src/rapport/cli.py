"""The `rapport` command: serve, db, demo, access and admin tasks."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table

from rapport.access.cli import access_app
from rapport.analytics.cli_analytics import analytics_app
from rapport.benchmark.cli import bench_app
from rapport.compliance import cli_backup, cli_db
from rapport.compliance.cli_audit import audit_app
from rapport.compliance.cli_retention import retention_app
from rapport.config import Settings, get_settings
from rapport.kernel import migrate, pooling, provisioning
from rapport.kernel.provisioning import DatabaseUrls
from rapport.location.cli import location_app
from rapport.modules.coparenting.cli import coparenting_app

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from rapport.kernel.runtime import Runtime

T = TypeVar("T")

app = typer.Typer(help="Rapport: a PostgreSQL-native backend for people-to-people applications.", no_args_is_help=True)
db_app = typer.Typer(help="The database: migrations, partitions, backups and restores, checks.", no_args_is_help=True)
admin_app = typer.Typer(help="Administrative tasks.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")
jobs_app = typer.Typer(help="Background jobs: the dead ones, and queueing them again.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
app.add_typer(retention_app, name="retention")
app.add_typer(audit_app, name="audit")
app.add_typer(coparenting_app, name="coparenting")
app.add_typer(access_app, name="access")
app.add_typer(location_app, name="location")
app.add_typer(analytics_app, name="analytics")
app.add_typer(bench_app, name="bench")
console = Console(stderr=True)


def prepare_database(settings: Settings, *, upgrade: bool = True, direct: bool = False) -> DatabaseUrls:
    """Find (or start) the server, make sure roles and database exist, migrate to head.
    `direct`: the URLs name PostgreSQL itself, past any pooler, for a one-off command whose
    work may span a session; a server's pools keep the pooler's."""
    where = "the configured server" if settings.database_url else "the embedded PostgreSQL"
    with console.status(f"Starting {where}…"):
        urls = provisioning.resolve_database(settings)
    with console.status("Preparing roles and database…"):
        asyncio.run(provisioning.provision(urls, settings))
    if upgrade:
        # Straight to PostgreSQL, past any pooler, as provisioning (rapport.kernel.pooling).
        with console.status("Applying migrations…"):
            asyncio.run(migrate.upgrade(pooling.session_urls(urls, settings).owner))
    return pooling.session_urls(urls, settings) if direct else urls


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [RAPPORT_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [RAPPORT_PORT].")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Server processes, each with its own socket [RAPPORT_WORKERS].")
    ] = None,
    demo: Annotated[bool, typer.Option(help="Seed the demo accounts when missing (not in production).")] = True,
) -> None:
    """Start the database if needed, apply migrations and serve the API from several
    processes (docs/OPERATIONS.md, "Worker processes")."""
    from functools import partial

    from rapport.app import create_app
    from rapport.kernel import serving
    from rapport.kernel.logging import configure_logging

    settings = get_settings()
    urls = prepare_database(settings)
    if demo and settings.environment != "production":
        _show_demo(settings, urls)
    # Made (or read) once here: workers starting together would each generate a different
    # key when none exists yet, and sign tokens the others refuse.
    settings.resolved_secret_key()
    host = host or settings.host
    port = port or settings.port
    count = workers or settings.workers
    spec = serving.ServeSpec(
        partial(
            create_app, serving.share_of_pools(settings, count), database_url=urls.app, system_database_url=urls.worker
        ),
        host=host,
        port=port,
        options=server_options(settings),
    )
    processes = "1 process" if count == 1 else f"{count} processes"
    console.print(f"Rapport on http://{host}:{port} with {processes}  (docs at http://{host}:{port}/docs)")
    # Stopping ends with SystemExit rather than death by the signal, so that the embedded
    # PostgreSQL stops with us: uvicorn (one process) stops gracefully on SIGTERM and then
    # raises it again under this handler; several processes return from run_workers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if count == 1:
            serving.serve(spec)
            return
        configure_logging(settings)
        status = serving.run_workers(spec, count)
    except OSError as exc:
        console.print(f"[red]Cannot listen on {host}:{port}: {exc.strerror or exc}[/red]")
        raise typer.Exit(1) from exc
    if status:
        raise typer.Exit(status)


def server_options(settings: Settings) -> dict[str, Any]:
    """How `rapport serve` configures uvicorn; the tests start real servers with the same."""
    return {
        "http": "httptools",
        # Rapport reads forwarded headers itself, from RAPPORT_TRUSTED_PROXIES only
        # (kernel.http.ClientAddressMiddleware): uvicorn's own handling would trust any
        # X-Forwarded-For from 127.0.0.1, where a local reverse proxy passes it through.
        "proxy_headers": False,
        "server_header": False,
        "log_level": settings.log_level.lower(),
        "access_log": False,
        # uvicorn's websockets-sansio protocol, plus the stream's direct frame writes and a
        # 1001 close of open sockets on shutdown (docs/decisions/0019).
        "ws": "rapport.realtime.uvicorn_protocol:StreamProtocol",
        # No permessage-deflate, which browsers always ask for: compressing each frame for
        # each socket cost 20-30 us of CPU a frame, twice the whole direct write, and its
        # zlib state 38 KiB a socket, nearly doubling an idle socket's memory.
        "ws_per_message_deflate": False,
    }


@app.command()
def demo() -> None:
    """Create what is missing of the demo (three accounts with profiles, contacts, a
    pending request, a group; a support desk with two agents, rooms, an escalation and a
    bot) and print the credentials that sign in."""
    settings = get_settings()
    urls = prepare_database(settings)
    _show_demo(settings, urls)


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Jobs run at a time [RAPPORT_WORKER_CONCURRENCY].")] = None,
    queue: Annotated[list[str] | None, typer.Option(help="Run only this queue (repeatable); default: all.")] = None,
) -> None:
    """Run background jobs (docs/decisions/0010), beside servers started with
    RAPPORT_WORKER_IN_PROCESS=false. SIGTERM or Ctrl-C stops it; running jobs get ten
    seconds to finish, then go back to the queue."""
    settings = get_settings()
    urls = prepare_database(settings)
    asyncio.run(_run_worker(settings, urls, concurrency=concurrency or settings.worker_concurrency, queues=queue))


async def _run_worker(settings: Settings, urls: DatabaseUrls, *, concurrency: int, queues: list[str] | None) -> None:
    # The app's modules register every domain's tasks: the worker runs what the server queues.
    from rapport.app import background_rounds, start_rounds, stop_rounds
    from rapport.identity import service
    from rapport.kernel.db import create_engine, create_system_engine
    from rapport.kernel.jobs import Worker
    from rapport.kernel.outbox import wakeup
    from rapport.kernel.pooling import listen_url
    from rapport.kernel.provisioning import asyncpg_dsn
    from rapport.kernel.runtime import Runtime
    from rapport.notifications import tasks as notification_tasks
    from rapport.realtime import service as realtime_service

    runtime = Runtime.build(
        settings,
        create_engine(urls.app, pool_size=1, pgbouncer=settings.database_pgbouncer),
        system_engine=create_system_engine(
            urls.worker, pool_size=settings.database_system_pool_size, pgbouncer=settings.database_pgbouncer
        ),
        authenticate=service.authenticate,
    )
    job_worker = Worker(runtime, queues=queues or None, concurrency=concurrency)
    # Where the notifications' jobs run, the outbox is read into notifications: presence
    # (who is connected, heard from the servers on the bus) and the servers' announcements
    # of new events come over the bus (docs/decisions/0018).
    notifications = None
    if notification_tasks.QUEUE in job_worker.queues:
        bus = realtime_service.bus_for(settings, asyncpg_dsn(listen_url(runtime.engine.url, settings)))
        presence = realtime_service.Ephemeral(runtime, bus)
        await presence.start()
        await wakeup.attach(bus)
        notifications = notification_tasks.Pipeline(runtime, status_of=presence.status_of)
        await notifications.start()
    # Each domain's rounds and outbox readers, where its jobs run (rapport.app.background_rounds).
    running = [each for queue, each in background_rounds(runtime) if queue is None or queue in job_worker.queues]
    start_rounds(running)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, job_worker.request_stop)
    console.print(f"Rapport worker {job_worker.name} on queues {', '.join(job_worker.queues)}; Ctrl-C stops it.")
    try:
        await job_worker.run()
    finally:
        await stop_rounds(running)
        if notifications is not None:
            await notifications.stop()
            await presence.close()
            await wakeup.detach(bus)  # closes the bus
        await runtime.close()


@jobs_app.command("dead")
def jobs_dead(limit: Annotated[int, typer.Option(help="How many, the most recent first.")] = 50) -> None:
    """List the jobs whose attempts are spent, with their last error (payloads stay hidden:
    they may hold codes)."""
    from rapport.kernel import jobs

    settings = get_settings()
    urls = prepare_database(settings, direct=True)
    dead = asyncio.run(_as_worker(urls, lambda db: jobs.list_dead_jobs(db, limit=limit)))
    table = Table(title=f"Dead jobs ({len(dead)})")
    for column in ("id", "task", "attempts", "died at", "last error"):
        table.add_column(column, no_wrap=column == "id")
    for job in dead:
        died = f"{job.died_at:%Y-%m-%d %H:%M:%S}"
        table.add_row(str(job.id), job.task, str(job.attempts), died, job.last_error or "")
    console.print(table)


@jobs_app.command("retry")
def jobs_retry(job_id: Annotated[UUID, typer.Argument(help="A dead job's id (`rapport jobs dead`).")]) -> None:
    """Queue a dead job again, with fresh attempts."""
    from rapport.kernel import jobs

    settings = get_settings()
    urls = prepare_database(settings, direct=True)
    if not asyncio.run(_as_worker(urls, lambda db: jobs.retry_dead_job(db, job_id=job_id))):
        console.print(f"[red]No dead job has the id {job_id}.[/red]")
        raise typer.Exit(1)
    typer.echo(f"queued {job_id} again")


async def _as_worker(urls: DatabaseUrls, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """One transaction as rapport_worker, the only role that may read the job queue."""
    from rapport.kernel.db import create_system_engine

    system = create_system_engine(urls.worker, pool_size=1)
    try:
        async with system.engine.begin() as db:
            return await work(db)
    finally:
        await system.dispose()


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply migrations up to a revision (default: the newest)."""
    settings = get_settings()
    urls = prepare_database(settings, upgrade=False, direct=True)
    asyncio.run(migrate.upgrade(urls.owner, revision))
    console.print(f"At revision {asyncio.run(migrate.current_revision(urls.owner))}.")


@db_app.command("maintain")
def db_maintain() -> None:
    """Make the monthly partitions that are missing ahead (the server also does this at
    every start and once a day); prints how many it made."""
    from rapport.kernel.db import create_system_engine
    from rapport.kernel.partitions import make_partitions_ahead

    settings = get_settings()
    urls = prepare_database(settings, upgrade=False, direct=True)

    async def maintain() -> int:
        system = create_system_engine(urls.worker, pool_size=1)
        try:
            return await make_partitions_ahead(system)
        finally:
            await system.dispose()

    made = asyncio.run(maintain())
    typer.echo(f"made {made} partition{'' if made == 1 else 's'}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision, `-1` or `base`.")]) -> None:
    """Undo migrations down to a revision."""
    settings = get_settings()
    urls = prepare_database(settings, upgrade=False, direct=True)
    asyncio.run(migrate.downgrade(urls.owner, revision))
    console.print(f"At revision {asyncio.run(migrate.current_revision(urls.owner)) or 'base'}.")


@db_app.command("current")
def db_current() -> None:
    """Print the database's revision and the newest one this code knows."""
    settings = get_settings()
    urls = prepare_database(settings, upgrade=False, direct=True)
    current = asyncio.run(migrate.current_revision(urls.owner))
    head = migrate.head_revision()
    typer.echo(f"current: {current or 'base'}")
    typer.echo(f"head:    {head}")


db_app.command("check")(cli_db.db_check)
db_app.command("backup")(cli_backup.db_backup)
db_app.command("restore")(cli_backup.db_restore)


@admin_app.command("create-user")
def admin_create_user(
    email: Annotated[str, typer.Option(help="The account's e-mail address.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    admin: Annotated[bool, typer.Option("--admin", help="Make the account an administrator.")] = False,
    phone: Annotated[
        str | None,
        typer.Option(help="A mobile number in international format (+33 6 12 34 56 78), taken as verified."),
    ] = None,
) -> None:
    """Create an active, verified account."""
    from rapport.identity.errors import EmailTaken, PhoneTaken, WeakPassword
    from rapport.identity.schemas import normalise_email
    from rapport.identity.schemas_phones import parse_phone

    settings = get_settings()
    urls = prepare_database(settings, direct=True)
    try:
        address = normalise_email(email)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--email") from exc
    try:
        number = parse_phone(phone) if phone is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--phone") from exc
    try:
        user_id = asyncio.run(_create_user(settings, urls, address, password, is_admin=admin, phone=number))
    except (EmailTaken, PhoneTaken, WeakPassword) as exc:
        console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from exc
    with_phone = f", {number}" if number else ""
    typer.echo(f"created {address}{with_phone} ({'admin, ' if admin else ''}id {user_id})")


@admin_app.command("vapid-keys")
def admin_vapid_keys() -> None:
    """Print a new VAPID key pair for Web Push, as the two settings to put in the
    environment. Browsers subscribe with its public key: a new pair orphans every
    existing subscription."""
    from rapport.notifications.vapid import new_key_pair

    typer.echo(new_key_pair().environment())


async def _with_runtime(
    settings: Settings, urls: DatabaseUrls, work: Callable[[AsyncConnection, Runtime], Awaitable[T]]
) -> T:
    from rapport.identity import service
    from rapport.kernel.db import system_transaction
    from rapport.kernel.runtime import one_off_runtime

    async with (
        one_off_runtime(settings, urls, authenticate=service.authenticate) as runtime,
        system_transaction(runtime.system_engine) as db,
    ):
        return await work(db, runtime)


async def _create_user(
    settings: Settings, urls: DatabaseUrls, email: str, password: str, *, is_admin: bool, phone: str | None
) -> UUID:
    from rapport.identity import service

    async def work(db: AsyncConnection, runtime: Runtime) -> UUID:
        service.check_password_strength(password, rt=runtime, email=email)
        return await service.do_create_user(
            db, rt=runtime, email=email, password=password, verified=True, is_admin=is_admin, phone=phone
        )

    return await _with_runtime(settings, urls, work)


def _show_demo(settings: Settings, urls: DatabaseUrls) -> None:
    """Seed what is missing of the demo (rapport.demo) and print the credentials that work."""
    from rapport.demo import print_accounts, run_demo

    with console.status("Seeding the demo accounts…"):
        accounts = asyncio.run(run_demo(settings, urls))
    print_accounts(accounts, console)
