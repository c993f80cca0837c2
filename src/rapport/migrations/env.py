"""Alembic environment: runs migrations as `rapport_owner` over asyncpg.

The URL comes from the caller (`rapport.kernel.migrate`), never from a file, so the same
history runs against the embedded server, a configured one and each test database.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def _run(connection: Connection) -> None:
    context.configure(connection=connection, transactional_ddl=True, version_table_schema="public")
    with context.begin_transaction():
        # Migrations that move rows act as the system: every table with user data has
        # FORCE'd row-level security, which binds the owner too.
        connection.exec_driver_sql("SELECT set_config('rapport.system', 'on', true)")
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(context.config.attributes["url"], poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Rapport's migrations run online only: use `rapport db upgrade`.")
asyncio.run(_run_async())
