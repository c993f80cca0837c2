"""One database and one running app per test module, the database emptied before each
test, instead of a database clone and an app start per test.

`CREATE DATABASE ... TEMPLATE` costs about a quarter of a second on a durable server,
and starting the app (engine, connections, HTTP client) most of a tenth; across a few
hundred API tests that is most of the run. Emptying the tables costs a millisecond and
isolates tests just as well: no test sees another's rows, sign-in throttle counts or
audit records. The app holds no state of its own between requests.

Use it by importing the fixtures into a test module (pytest finds fixtures by name):

    from tests.module_scope import app, database, module_app, module_database, settings  # noqa: F401

A test that needs other settings overrides `settings` and `app` (see conftest's `app`)
closer to it, in a class or a module of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from rapport.app import create_app
from rapport.config import Settings
from rapport.kernel import provisioning
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from tests.conftest import _drop_database, clone_database, make_settings

# Every schema the migrations fill with rows; alembic's version table is left alone.
# Emptied in full, not through foreign-key cascades: as a replica the superuser skips
# those too, so a schema missing here keeps the last test's rows.
_DATA_SCHEMAS = ("kernel", "auth", "audit", "social")


@pytest.fixture(scope="module")
def settings(smtp_server) -> Settings:
    controller, _ = smtp_server
    return make_settings(smtp_host="127.0.0.1", smtp_port=controller.port)


@pytest.fixture(scope="module")
async def module_database(admin_url, template_database) -> AsyncIterator[DatabaseUrls]:
    name = await clone_database(admin_url, template_database)
    yield provisioning.urls_for(admin_url, database=name, settings=make_settings())
    await _drop_database(admin_url, name)


@pytest.fixture
async def database(module_database: DatabaseUrls) -> DatabaseUrls:
    """The module's database with every data table empty (overrides conftest's)."""
    conn = await asyncpg.connect(asyncpg_dsn(module_database.admin.set(database=module_database.app.database)))
    try:
        tables = await conn.fetch(
            "SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables WHERE schemaname = ANY($1)",
            list(_DATA_SCHEMAS),
        )
        # As a replica the superuser skips triggers (audit, guards): this is no change
        # to record, only a reset.
        statements = ["SET LOCAL session_replication_role = replica"]
        statements += [f"DELETE FROM {row['name']}" for row in tables]
        async with conn.transaction():
            await conn.execute("; ".join(statements))
    finally:
        await conn.close()
    return module_database


@pytest.fixture(scope="module")
async def module_app(settings, module_database: DatabaseUrls) -> AsyncIterator[FastAPI]:
    application = create_app(settings, database_url=module_database.app)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def app(module_app: FastAPI, database: DatabaseUrls) -> FastAPI:
    """The module's app over an emptied database (overrides conftest's)."""
    return module_app
