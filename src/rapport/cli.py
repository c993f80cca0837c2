"""The `rapport` command: serve, db, demo and admin tasks."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rapport.config import Settings, get_settings
from rapport.kernel import migrate, provisioning
from rapport.kernel.provisioning import DatabaseUrls

app = typer.Typer(help="Rapport: a PostgreSQL-native backend for people-to-people applications.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema (Alembic migrations).", no_args_is_help=True)
admin_app = typer.Typer(help="Administrative tasks.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")
console = Console(stderr=True)

DEMO_PASSWORD = "rapport-demo-password"
DEMO_USERS = ("alice@example.com", "bob@example.com", "carol@example.com")


def prepare_database(settings: Settings, *, upgrade: bool = True) -> DatabaseUrls:
    """Find (or start) the server, make sure roles and database exist, migrate to head."""
    where = "the configured server" if settings.database_url else "the embedded PostgreSQL"
    with console.status(f"Starting {where}…"):
        urls = provisioning.resolve_database(settings)
    with console.status("Preparing roles and database…"):
        asyncio.run(provisioning.provision(urls, settings))
    if upgrade:
        with console.status("Applying migrations…"):
            asyncio.run(migrate.upgrade(urls.owner))
    return urls


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [RAPPORT_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [RAPPORT_PORT].")] = None,
    demo: Annotated[bool, typer.Option(help="Create the demo accounts when missing (not in production).")] = True,
) -> None:
    """Start the database if needed, apply migrations and serve the API."""
    import uvicorn

    from rapport.app import create_app

    settings = get_settings()
    urls = prepare_database(settings)
    if demo and settings.environment != "production":
        _print_accounts(asyncio.run(_ensure_demo_users(settings, urls)))
    host = host or settings.host
    port = port or settings.port
    console.print(f"Rapport on http://{host}:{port}  (docs at http://{host}:{port}/docs)")
    # uvicorn shuts down gracefully on SIGTERM and then re-raises it under the handler it
    # found; exiting through Python then lets the embedded PostgreSQL stop with us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        create_app(settings, database_url=urls.app),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        proxy_headers=True,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


@app.command()
def demo() -> None:
    """Create the demo accounts (when missing) and print their credentials."""
    settings = get_settings()
    urls = prepare_database(settings)
    _print_accounts(asyncio.run(_ensure_demo_users(settings, urls)))


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply migrations up to a revision (default: the newest)."""
    settings = get_settings()
    urls = prepare_database(settings, upgrade=False)
    asyncio.run(migrate.upgrade(urls.owner, revision))
    console.print(f"At revision {asyncio.run(migrate.current_revision(urls.owner))}.")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision, `-1` or `base`.")]) -> None:
    """Undo migrations down to a revision."""
    settings = get_settings()
    urls = prepare_database(settings, upgrade=False)
    asyncio.run(migrate.downgrade(urls.owner, revision))
    console.print(f"At revision {asyncio.run(migrate.current_revision(urls.owner)) or 'base'}.")


@db_app.command("current")
def db_current() -> None:
    """Print the database's revision and the newest one this code knows."""
    settings = get_settings()
    urls = prepare_database(settings, upgrade=False)
    current = asyncio.run(migrate.current_revision(urls.owner))
    head = migrate.head_revision()
    typer.echo(f"current: {current or 'base'}")
    typer.echo(f"head:    {head}")


@admin_app.command("create-user")
def admin_create_user(
    email: Annotated[str, typer.Option(help="The account's e-mail address.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    admin: Annotated[bool, typer.Option("--admin", help="Make the account an administrator.")] = False,
) -> None:
    """Create an active, verified account."""
    from rapport.identity.errors import EmailTaken, WeakPassword
    from rapport.identity.schemas import normalise_email

    settings = get_settings()
    urls = prepare_database(settings)
    try:
        address = normalise_email(email)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--email") from exc
    try:
        user_id = asyncio.run(_create_user(settings, urls, address, password, is_admin=admin))
    except (EmailTaken, WeakPassword) as exc:
        console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from exc
    typer.echo(f"created {address} ({'admin, ' if admin else ''}id {user_id})")


async def _with_runtime(settings: Settings, urls: DatabaseUrls, work):
    from rapport.kernel.db import create_engine, system_transaction
    from rapport.kernel.runtime import Runtime

    runtime = Runtime.build(settings, create_engine(urls.app, pool_size=1))
    try:
        async with system_transaction(runtime.engine) as db:
            return await work(db, runtime)
    finally:
        await runtime.close()


async def _create_user(settings: Settings, urls: DatabaseUrls, email: str, password: str, *, is_admin: bool):
    from rapport.identity import service
    from rapport.identity._accounts import check_password_strength

    async def work(db, runtime):
        check_password_strength(password, rt=runtime, email=email)
        return await service.do_create_user(
            db, rt=runtime, email=email, password=password, verified=True, is_admin=is_admin
        )

    return await _with_runtime(settings, urls, work)


async def _ensure_demo_users(settings: Settings, urls: DatabaseUrls) -> list[tuple[str, str, str]]:
    from rapport.identity import service

    async def work(db, runtime):
        rows = []
        for email in DEMO_USERS:
            if await service.get_user_by_email(db, email=email) is None:
                await service.do_create_user(db, rt=runtime, email=email, password=DEMO_PASSWORD, verified=True)
                rows.append((email, DEMO_PASSWORD, "created"))
            else:
                rows.append((email, DEMO_PASSWORD, "exists"))
        return rows

    return await _with_runtime(settings, urls, work)


def _print_accounts(rows: list[tuple[str, str, str]]) -> None:
    table = Table(title="Demo accounts (POST /v1/auth/login)")
    for column in ("e-mail", "password", ""):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)
