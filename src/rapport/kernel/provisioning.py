"""Finding a PostgreSQL server and preparing Rapport's roles and database on it.

Three roles, made by Rapport itself, embedded or not:
- `rapport_owner` owns the schemas and runs migrations;
- `rapport_app` is what the server connects as: no superuser, no BYPASSRLS, so every
  row it touches passes row-level security;
- `rapport_worker` runs background jobs.

The role named in `RAPPORT_DATABASE_URL` (or the embedded server's superuser) is used
only here, to create the roles and the database when they are missing.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL, make_url

from rapport.config import Settings

OWNER_ROLE = "rapport_owner"
APP_ROLE = "rapport_app"
WORKER_ROLE = "rapport_worker"


@dataclass(frozen=True)
class DatabaseUrls:
    """SQLAlchemy URLs (asyncpg driver) for each role on one database."""

    admin: URL
    owner: URL
    app: URL
    worker: URL


class ProvisioningError(RuntimeError):
    pass


def start_embedded_server(data_dir: Path) -> URL:
    """Start (or reuse) the embedded PostgreSQL whose data lives under `data_dir`.

    Returns the superuser's URL over the server's Unix socket; the server listens on no
    TCP port. It stops when the last process using it exits.
    """
    # Imported here: a configured external server never needs it. pgserver keeps its
    # lock file in the user's runtime folder and warns when XDG_RUNTIME_DIR is unset
    # (as on servers and in CI); its fallback is fine.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver

    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir / "pgdata", cleanup_mode="stop")
    return make_url(server.get_uri()).set(drivername="postgresql+asyncpg")


def urls_for(admin: URL | str, *, database: str, settings: Settings) -> DatabaseUrls:
    admin_url = make_url(admin) if isinstance(admin, str) else admin
    admin_url = admin_url.set(drivername="postgresql+asyncpg")

    def as_role(role: str, password: str | None) -> URL:
        return admin_url.set(username=role, password=password, database=database)

    owner_pw = settings.owner_password.get_secret_value() if settings.owner_password else None
    app_pw = settings.app_password.get_secret_value() if settings.app_password else None
    return DatabaseUrls(
        admin=admin_url,
        owner=as_role(OWNER_ROLE, owner_pw),
        app=as_role(APP_ROLE, app_pw),
        worker=as_role(WORKER_ROLE, app_pw),
    )


def asyncpg_dsn(url: URL) -> str:
    """The same URL as a plain libpq-style DSN for asyncpg.connect."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def resolve_database(settings: Settings) -> DatabaseUrls:
    """The configured server, or the embedded one started on demand."""
    admin = make_url(settings.database_url) if settings.database_url else None
    if admin is None:
        admin = start_embedded_server(settings.data_dir)
    return urls_for(admin, database=settings.database_name, settings=settings)


async def provision(urls: DatabaseUrls, settings: Settings) -> None:
    """Create the roles and the database if they are missing. Safe to run every start."""
    owner_pw = settings.owner_password.get_secret_value() if settings.owner_password else None
    app_pw = settings.app_password.get_secret_value() if settings.app_password else None
    conn = await asyncpg.connect(asyncpg_dsn(urls.admin))
    try:
        for role, password in ((OWNER_ROLE, owner_pw), (APP_ROLE, app_pw), (WORKER_ROLE, app_pw)):
            await _ensure_role(conn, role, password)
        database = urls.owner.database
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await _run_privileged(conn, f'CREATE DATABASE "{database}" OWNER {OWNER_ROLE}')
    finally:
        await conn.close()


async def _ensure_role(conn: asyncpg.Connection, role: str, password: str | None) -> None:
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
    if not exists:
        await _run_privileged(conn, f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
    if password is not None:
        quoted = password.replace("'", "''")
        await _run_privileged(conn, f"ALTER ROLE {role} PASSWORD '{quoted}'")


async def _run_privileged(conn: asyncpg.Connection, sql: str) -> None:
    try:
        await conn.execute(sql)
    except asyncpg.InsufficientPrivilegeError as exc:
        raise ProvisioningError(
            f"The role in RAPPORT_DATABASE_URL may not run `{sql.split(' PASSWORD')[0]}`. "
            "Use a role with CREATEROLE and CREATEDB, or create Rapport's roles and "
            "database beforehand (see docs/OPERATIONS.md)."
        ) from exc
