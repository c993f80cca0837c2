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

import io
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiosmtpd.controller import Controller
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.engine import URL

from rapport.app import create_app
from rapport.config import Settings
from rapport.kernel import provisioning
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from tests.conftest import clone_database, drop_database, make_settings
from tests.support import STARTUP_TIMEOUT_S

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

# What the migrations seed (configuration rows such as the notification templates, the
# partitioned tables' registry and messaging.moderation's one row), per database: the
# reset puts it back after emptying, so a test starts from the database as migrated.
_SEEDS: dict[str, dict[tuple[str, str], bytes]] = {}


async def _remember_seeds(conn: asyncpg.Connection, database: str) -> None:
    seeds = {}
    for row in await conn.fetch(_DATA_TABLES, provisioning.OWNER_ROLE):
        if row["partitioned"] or not await conn.fetchval(f"SELECT EXISTS (SELECT FROM {row['name']})"):
            continue
        copied = io.BytesIO()
        await conn.copy_from_table(row["table"], schema_name=row["schema"], output=copied, format="binary")
        seeds[(row["schema"], row["table"])] = copied.getvalue()
    _SEEDS[database] = seeds


async def empty_database(urls: DatabaseUrls) -> list[str]:
    """Delete every row of every table Rapport's schemas hold, then put back what the
    migrations seeded; the tables emptied."""
    database = str(urls.app.database)
    conn = await asyncpg.connect(asyncpg_dsn(urls.admin.set(database=database)))
    try:
        # As a replica the superuser skips triggers (audit, guards): this is no change
        # to record, only a reset.
        await conn.execute("SET session_replication_role = replica; SET row_security = off")
        if database not in _SEEDS:
            await _remember_seeds(conn, database)
        tables = [row["name"] for row in await conn.fetch(_DATA_TABLES, provisioning.OWNER_ROLE)]
        # The module's app keeps working between tests (the outbox relay, jobs, rounds
        # finishing the last test's work): a transaction of theirs that locks rows in
        # another order than these deletes can deadlock with them. PostgreSQL then
        # cancels one side; when it is this one, the reset is simply done again.
        for attempt in range(_DEADLOCK_ATTEMPTS):
            try:
                async with conn.transaction():
                    await conn.execute("; ".join(f"DELETE FROM {name}" for name in tables))
                    for (schema, table), rows in _SEEDS[database].items():
                        await conn.copy_to_table(table, schema_name=schema, source=io.BytesIO(rows), format="binary")
                break
            except asyncpg.DeadlockDetectedError:
                if attempt == _DEADLOCK_ATTEMPTS - 1:
                    raise
    finally:
        await conn.close()
    return tables


@pytest.fixture(scope="module")
def module_settings(smtp_server: tuple[Controller, object]) -> Settings:
    controller, _ = smtp_server
    return make_settings(smtp_host="127.0.0.1", smtp_port=controller.port)


@pytest.fixture(scope="module")
async def module_database(admin_url: URL, template_database: str) -> AsyncIterator[DatabaseUrls]:
    name = await clone_database(admin_url, template_database)
    # The seeds are read now, while the clone is as migrated.
    conn = await asyncpg.connect(asyncpg_dsn(admin_url.set(database=name)))
    try:
        await _remember_seeds(conn, name)
    finally:
        await conn.close()
    yield provisioning.urls_for(admin_url, database=name, settings=make_settings())
    _SEEDS.pop(name, None)
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
