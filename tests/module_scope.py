"""One database and one running app per test module, the database emptied before each
test, instead of a database clone and an app start per test.

`CREATE DATABASE ... TEMPLATE` costs about a quarter of a second on a durable server,
and starting the app (engine, connections, HTTP client) most of a tenth; across a few
hundred API tests that is most of the run. Emptying the tables costs a millisecond and
isolates tests just as well: no test sees another's rows, sign-in throttle counts or
audit records. The app holds no state of its own between requests.

A test module asks for it with a marker; conftest's `database` and `app` then resolve to
the fixtures here:

    pytestmark = pytest.mark.module_database

A test that needs other settings overrides `settings` and `app` (see conftest's
`fresh_app`) closer to it, in a class or a module of its own. This module is loaded as a
plugin by conftest.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from aiosmtpd.controller import Controller
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.app import create_app
from rapport.config import Settings
from rapport.kernel import provisioning
from rapport.kernel.db import create_engine
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from rapport.kernel.runtime import Runtime
from tests.conftest import clone_database, drop_database
from tests.support import STARTUP_TIMEOUT_S, Persona, make_settings, open_persona

# Every table of every schema Rapport's owner role owns, found in the catalogue rather
# than listed: a schema added by a later migration is emptied too, without anyone
# remembering to add it here. Partitions go with their parent; alembic's version table
# (in `public`, which Rapport does not own) is left alone. Emptied in full, not through
# foreign-key cascades: as a replica the superuser skips those too.
_DATA_TABLES = """
SELECT format('%I.%I', n.nspname, c.relname) AS name, n.nspname AS schema, c.relname AS table,
       c.relkind = 'p' AS partitioned
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspowner = $1::text::regrole AND c.relkind IN ('r', 'p') AND NOT c.relispartition
 ORDER BY 1
"""

_DEADLOCK_ATTEMPTS = 5

# The columns a row is written with (not generated ones), per table.
_COLUMNS = """
SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)
  FROM pg_attribute
 WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
"""

# What the migrations seed (configuration rows such as the notification templates, the
# partitioned tables' registry and messaging.moderation's one row), per database, as the
# statements that write it back: the reset puts it back after emptying, so a test starts
# from the database as migrated.
_SEEDS: dict[str, list[str]] = {}
# One superuser connection per module database, kept for its resets: a reset is then two
# round trips (the catalogue, then one script), not a connection and one per table.
_CONNECTIONS: dict[str, asyncpg.Connection] = {}


async def _rows_as_statements(conn: asyncpg.Connection) -> list[str]:
    """The statements that write back every row the tables hold now."""
    statements = []
    for row in await conn.fetch(_DATA_TABLES, provisioning.OWNER_ROLE):
        name = row["name"]
        # Read and written through the parent, for a partitioned table.
        rows = await conn.fetchval(f"SELECT jsonb_agg(to_jsonb(t))::text FROM {name} t")
        if rows is None:
            continue
        columns = await conn.fetchval(_COLUMNS, name)
        literal = rows.replace("'", "''")
        statements.append(
            f"INSERT INTO {name} ({columns}) OVERRIDING SYSTEM VALUE"
            f" SELECT {columns} FROM jsonb_populate_recordset(NULL::{name}, '{literal}')"
        )
    return statements


async def _remember_seeds(conn: asyncpg.Connection, database: str) -> None:
    _SEEDS[database] = await _rows_as_statements(conn)


async def start_from_here(urls: DatabaseUrls) -> None:
    """From now on the module's resets put back every row its database holds now, not only
    what the migrations seeded: for a module whose tests all start from one world, built
    once (through the module's app) instead of before each test. What a test changes of it
    is undone by the next reset, like any other row."""
    await _remember_seeds(await _connection(urls), str(urls.app.database))


async def module_personas(app: FastAPI, *names: str) -> list[Persona]:
    """Verified accounts with an open session, made through the module's app's runtime as
    conftest's personas are for one test: for a world built once per module."""
    return [await open_persona(app.state.runtime, name) for name in names]


@dataclass
class Builder:
    """What a world built once per module is built with: the module's app through the ASGI
    transport, its runtime, and a pool of its own connected as rapport_app (as conftest's
    `client`, `runtime` and `app_engine` are for one test)."""

    app: FastAPI
    client: httpx.AsyncClient
    runtime: Runtime
    app_engine: AsyncEngine

    async def personas(self, *names: str) -> list[Persona]:
        return await module_personas(self.app, *names)


@asynccontextmanager
async def build_once(app: FastAPI, urls: DatabaseUrls) -> AsyncIterator[Builder]:
    """Build the module's world: on an emptied database, and once the app has done the
    work it asked for (notifications, jobs), each test's reset puts back what it built
    (`start_from_here`). Every later test of the module starts from that world, whether
    it asks for it or not."""
    await empty_database(urls)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("203.0.113.7", 50000))
    app_engine = create_engine(urls.app, pool_size=2)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://rapport.test") as client:
            yield Builder(app, client, app.state.runtime, app_engine)
        async with asyncio.timeout(10):
            await app.state.notifications.catch_up()
            await app.state.worker.wait_idle()
    finally:
        await app_engine.dispose()
    await start_from_here(urls)


async def _connection(urls: DatabaseUrls) -> asyncpg.Connection:
    database = str(urls.app.database)
    conn = _CONNECTIONS.get(database)
    if conn is None or conn.is_closed():
        conn = await asyncpg.connect(asyncpg_dsn(urls.admin.set(database=database)))
        # As a replica the superuser skips triggers (audit, guards): this is no change
        # to record, only a reset.
        await conn.execute("SET session_replication_role = replica; SET row_security = off")
        _CONNECTIONS[database] = conn
    elif conn.is_in_transaction():  # a reset interrupted half way
        await conn.execute("ROLLBACK")
    return conn


async def _forget_connection(database: str) -> None:
    conn = _CONNECTIONS.pop(database, None)
    if conn is not None:
        conn.terminate()


async def empty_database(urls: DatabaseUrls) -> list[str]:
    """Delete every row of every table Rapport's schemas hold, then put back what the
    migrations seeded; the tables emptied."""
    database = str(urls.app.database)
    try:
        return await _reset(await _connection(urls), database)
    except asyncpg.ConnectionDoesNotExistError:
        # A test ended the kept connection's server process (pg_terminate_backend): a new one.
        await _forget_connection(database)
        return await _reset(await _connection(urls), database)


async def _reset(conn: asyncpg.Connection, database: str) -> list[str]:
    if database not in _SEEDS:
        await _remember_seeds(conn, database)
    tables = [row["name"] for row in await conn.fetch(_DATA_TABLES, provisioning.OWNER_ROLE)]
    # One script, sent at once: the deletes and the seeds' rows, in one transaction.
    script = "; ".join(["BEGIN", *(f"DELETE FROM {name}" for name in tables), *_SEEDS[database], "COMMIT"])
    # The module's app keeps working between tests (the outbox relay, jobs, rounds
    # finishing the last test's work): a transaction of theirs that locks rows in
    # another order than these deletes can deadlock with them. PostgreSQL then
    # cancels one side; when it is this one, the reset is simply done again.
    for attempt in range(_DEADLOCK_ATTEMPTS):
        try:
            await conn.execute(script)
            break
        except asyncpg.PostgresError as error:
            await conn.execute("ROLLBACK")
            if not isinstance(error, asyncpg.DeadlockDetectedError) or attempt == _DEADLOCK_ATTEMPTS - 1:
                raise
    return tables


@pytest.fixture(scope="module")
def module_settings(smtp_server: tuple[Controller, object]) -> Settings:
    controller, _ = smtp_server
    return make_settings(smtp_host="127.0.0.1", smtp_port=controller.port)


@pytest.fixture(scope="module")
async def module_database(admin_url: URL, template_database: str) -> AsyncIterator[DatabaseUrls]:
    name = await clone_database(admin_url, template_database)
    urls = provisioning.urls_for(admin_url, database=name, settings=make_settings())
    # The seeds are read now, while the clone is as migrated.
    await _remember_seeds(await _connection(urls), name)
    yield urls
    _SEEDS.pop(name, None)
    await _forget_connection(name)
    await drop_database(admin_url, name)


@pytest.fixture
async def emptied_module_database(module_database: DatabaseUrls) -> DatabaseUrls:
    """The module's database with every data table empty."""
    await empty_database(module_database)
    return module_database


@pytest.fixture(scope="module")
async def module_app(module_settings: Settings, module_database: DatabaseUrls) -> AsyncIterator[FastAPI]:
    application = create_app(
        module_settings, database_url=module_database.app, system_database_url=module_database.worker
    )
    async with LifespanManager(application, startup_timeout=STARTUP_TIMEOUT_S, shutdown_timeout=STARTUP_TIMEOUT_S):
        yield application
