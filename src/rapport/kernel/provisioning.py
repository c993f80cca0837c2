"""Finding a PostgreSQL server and preparing Rapport's roles and database on it.

Three roles, made by Rapport itself, embedded or not:
- `rapport_owner` owns the schemas and runs migrations;
- `rapport_app` is what the server connects as: no superuser, no BYPASSRLS, so every
  row it touches passes row-level security;
- `rapport_worker` does system work (sign-in before the user is known, token lookups,
  background jobs) on a small pool of its own: `auth.is_system()` is true only for it.
  `rapport_app` must not be able to become it (no membership, so no SET ROLE), which
  `provision` checks.

The role named in `RAPPORT_DATABASE_URL` (or the embedded server's superuser) is used
only here, to create the roles and the database when they are missing.
"""

from __future__ import annotations

import fcntl
import warnings
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog
from sqlalchemy.engine import URL, make_url

from rapport.config import Settings

log = structlog.get_logger(__name__)

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
    # Processes starting at once (parallel test workers, a server beside `rapport worker`)
    # would each initialise a missing cluster in the same folder: they take turns, and
    # the later ones find it made and running.
    with (data_dir / "start.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        server = pgserver.get_server(data_dir / "pgdata", cleanup_mode="stop")
    return make_url(server.get_uri()).set(drivername="postgresql+asyncpg")


def urls_for(admin: URL | str, *, database: str, settings: Settings) -> DatabaseUrls:
    admin_url = make_url(admin) if isinstance(admin, str) else admin
    admin_url = admin_url.set(drivername="postgresql+asyncpg")

    def as_role(role: str, password: str | None) -> URL:
        return admin_url.set(username=role, password=password, database=database)

    owner_pw, app_pw, worker_pw = _passwords(settings)
    return DatabaseUrls(
        admin=admin_url,
        owner=as_role(OWNER_ROLE, owner_pw),
        app=as_role(APP_ROLE, app_pw),
        worker=as_role(WORKER_ROLE, worker_pw),
    )


def _passwords(settings: Settings) -> tuple[str | None, str | None, str | None]:
    owner_pw = settings.owner_password.get_secret_value() if settings.owner_password else None
    app_pw = settings.app_password.get_secret_value() if settings.app_password else None
    worker_pw = settings.worker_password.get_secret_value() if settings.worker_password else app_pw
    return owner_pw, app_pw, worker_pw


def asyncpg_dsn(url: URL) -> str:
    """The same URL as a plain libpq-style DSN for asyncpg.connect."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def resolve_database(settings: Settings) -> DatabaseUrls:
    """The configured server, or the embedded one started on demand."""
    admin = make_url(settings.database_url) if settings.database_url else None
    if admin is None:
        admin = start_embedded_server(settings.data_dir)
    return urls_for(admin, database=settings.database_name, settings=settings)


# pg_advisory_lock's key for "provisioning roles and databases" ("rprov" in ASCII).
_PROVISIONING_LOCK = 0x7270726F76


async def provision(urls: DatabaseUrls, settings: Settings) -> None:
    """Create the roles and the database if they are missing. Safe to run every start.

    It holds a session lock, which a pooler in transaction mode would leave held on a
    server connection: it connects to PostgreSQL itself (RAPPORT_DATABASE_LISTEN_URL).
    """
    # Imported here: rapport.kernel.pooling builds on this module's URLs.
    from rapport.kernel.pooling import session_urls

    urls = session_urls(urls, settings)
    owner_pw, app_pw, worker_pw = _passwords(settings)
    conn = await asyncpg.connect(asyncpg_dsn(urls.admin))
    try:
        # Processes starting at once (nodes of one deployment, test workers) would each
        # find a role missing and each create it: they take turns. The lock goes with the
        # connection; every provisioner connects to the same admin database, where the
        # key is shared.
        await conn.execute("SELECT pg_advisory_lock($1)", _PROVISIONING_LOCK)
        for role, password in ((OWNER_ROLE, owner_pw), (APP_ROLE, app_pw), (WORKER_ROLE, worker_pw)):
            await _ensure_role(conn, role, password)
        await check_role_separation(conn)
        database = urls.owner.database
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await _run_privileged(conn, f'CREATE DATABASE "{database}" OWNER {OWNER_ROLE}')
    finally:
        await conn.close()
    await _install_extensions(urls)


# Extensions Rapport uses where the server has them, which its owner role may not create
# (not "trusted"): pgvector, for matching's similarity search (migration 0031 adds its
# column and index when the extension is there, and an exact search stands in otherwise).
_OPTIONAL_EXTENSIONS = ("vector",)


async def _install_extensions(urls: DatabaseUrls) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(urls.admin.set(database=urls.owner.database)))
    try:
        for name in _OPTIONAL_EXTENSIONS:
            if await conn.fetchval("SELECT 1 FROM pg_available_extensions WHERE name = $1", name):
                try:
                    await conn.execute(f"CREATE EXTENSION IF NOT EXISTS {name} WITH SCHEMA public")
                except asyncpg.InsufficientPrivilegeError:
                    # A managed server's administrator without the right: the fallback serves.
                    log.warning("provisioning.extension_not_installed", extension=name)
    finally:
        await conn.close()


# Row-level security holds only if neither role that serves requests can step around it:
# not superuser, not BYPASSRLS, and rapport_app able to become neither rapport_worker
# (whose system context sees every row) nor rapport_owner (who owns the tables).
_ROLE_SEPARATION = f"""
SELECT r.rolname, r.rolsuper, r.rolbypassrls,
       pg_has_role(r.oid, '{WORKER_ROLE}', 'MEMBER') AND r.rolname <> '{WORKER_ROLE}' AS becomes_worker,
       pg_has_role(r.oid, '{OWNER_ROLE}', 'MEMBER') AS becomes_owner
  FROM pg_roles r
 WHERE r.rolname IN ('{APP_ROLE}', '{WORKER_ROLE}')
"""


async def check_role_separation(conn: asyncpg.Connection) -> None:
    """Refuse to go on with roles that would let one user reach another's rows.

    Raises:
        ProvisioningError: a serving role is superuser or BYPASSRLS, rapport_app can
            become rapport_worker, or either can become rapport_owner.
    """
    problems: list[str] = []
    for row in await conn.fetch(_ROLE_SEPARATION):
        role = row["rolname"]
        if row["rolsuper"] or row["rolbypassrls"]:
            problems.append(f"{role} is a superuser or has BYPASSRLS")
        if row["becomes_worker"]:
            problems.append(f"{role} is a member of {WORKER_ROLE}")
        if row["becomes_owner"]:
            problems.append(f"{role} is a member of {OWNER_ROLE}")
    if problems:
        raise ProvisioningError(
            "Row-level security would not hold: " + "; ".join(problems) + ". Change these roles "
            "(ALTER ROLE ... NOSUPERUSER NOBYPASSRLS, REVOKE ... FROM ...; see docs/OPERATIONS.md)."
        )


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
