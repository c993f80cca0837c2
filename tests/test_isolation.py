"""The tests' own isolation: the reset between tests of a module (tests/module_scope.py)
empties every schema Rapport owns, including one no list names, so no test sees
another's rows."""

from __future__ import annotations

import asyncpg

from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from tests.module_scope import empty_database


async def _count(conn: asyncpg.Connection, table: str) -> int:
    count: int = await conn.fetchval(f"SELECT count(*) FROM {table}")
    return count


async def test_the_reset_empties_a_schema_added_after_it_was_written(module_database: DatabaseUrls) -> None:
    owner = await asyncpg.connect(asyncpg_dsn(module_database.owner))
    try:
        await owner.execute(
            "CREATE SCHEMA later; CREATE TABLE later.things (id int PRIMARY KEY); INSERT INTO later.things VALUES (1)"
        )
        emptied = await empty_database(module_database)
        left = await _count(owner, "later.things")
    finally:
        await owner.execute("DROP SCHEMA IF EXISTS later CASCADE")
        await owner.close()

    assert ("later.things" in emptied, left) == (True, 0)


async def test_the_reset_leaves_the_migration_history(module_database: DatabaseUrls) -> None:
    await empty_database(module_database)

    owner = await asyncpg.connect(asyncpg_dsn(module_database.owner))
    try:
        assert await _count(owner, "public.alembic_version") == 1
    finally:
        await owner.close()
