"""Monthly partitions made ahead by kernel.ensure_partitions() (migration 2026_11_29_0012).

Each test registers a table of its own, `trial.notes`, made as rapport_owner like a domain's
migration makes one: range-partitioned by month on `created_at`, with an index, grants and
a policy for rapport_app, and a default privilege on its schema that would hand every new
table to rapport_app. Months are the database's (UTC), read from it, never from this clock.

The tests share one database (emptied between them); what a test made of the schema
(`trial`, `kernel.not_monthly`) is dropped after it, as emptying drops no table.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.db import SystemEngine, create_system_engine, system_transaction, user_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.partitions import PartitionUpkeep, ensure_partitions, make_partitions_ahead
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from tests.support import rapport_env

pytestmark = pytest.mark.module_database

TRIAL_TABLE = """
CREATE SCHEMA trial;
GRANT USAGE ON SCHEMA trial TO rapport_app, rapport_worker;
-- What an operator might set: every new table of the schema readable by the server.
ALTER DEFAULT PRIVILEGES IN SCHEMA trial GRANT SELECT, INSERT ON TABLES TO rapport_app;
CREATE TABLE trial.notes (
    id uuid NOT NULL,
    author_id uuid NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_notes PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX ix_notes_author ON trial.notes (author_id, created_at DESC);
ALTER TABLE trial.notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE trial.notes FORCE ROW LEVEL SECURITY;
CREATE POLICY notes_own ON trial.notes TO rapport_app
    USING (author_id = auth.current_user_id()) WITH CHECK (author_id = auth.current_user_id());
GRANT SELECT, INSERT ON trial.notes TO rapport_app;
"""

# Every partition of the registered tables, with what the tests check of it.
PARTITIONS = """
SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bounds,
       c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
       has_table_privilege('rapport_app', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
           AS app_may,
       has_table_privilege('rapport_worker', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
           AS worker_may,
       (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid) AS indexes,
       obj_description(c.oid, 'pg_class') AS comment
  FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
 WHERE h.inhparent = $1::regclass
 ORDER BY c.relname
"""


@pytest.fixture
async def owner(database: DatabaseUrls) -> AsyncIterator[asyncpg.Connection]:
    """rapport_owner, as a migration connects."""
    conn = await asyncpg.connect(asyncpg_dsn(database.owner))
    yield conn
    await conn.close()


@pytest.fixture(autouse=True)
async def _drops_what_it_made(database: DatabaseUrls) -> AsyncIterator[None]:
    """The schema and tables a test made go with it."""
    yield
    conn = await asyncpg.connect(asyncpg_dsn(database.owner))
    try:
        await conn.execute("DROP SCHEMA IF EXISTS trial CASCADE; DROP TABLE IF EXISTS kernel.not_monthly")
    finally:
        await conn.close()


@pytest.fixture
async def system(database: DatabaseUrls) -> AsyncIterator[SystemEngine]:
    engine = create_system_engine(database.worker, pool_size=1)
    yield engine
    await engine.dispose()


@pytest.fixture
async def trial(owner: asyncpg.Connection) -> str:
    """trial.notes, made and registered (three months ahead, the default)."""
    await owner.execute(TRIAL_TABLE)
    await owner.execute("INSERT INTO kernel.monthly_partitions (parent) VALUES ('trial.notes')")
    return "trial.notes"


async def this_month(owner: asyncpg.Connection) -> date:
    month: date = await owner.fetchval("SELECT date_trunc('month', now() AT TIME ZONE 'UTC')::date")
    return month


def months_after(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def bounds(month: date) -> str:
    following = months_after(month, 1)
    return f"FOR VALUES FROM ('{month:%Y-%m-%d} 00:00:00+00') TO ('{following:%Y-%m-%d} 00:00:00+00')"


async def all_partitions(owner: asyncpg.Connection) -> int:
    """Partitions of every registered table: other domains' tables (messages) are
    registered too, and a call makes theirs when their month has come."""
    return int(
        await owner.fetchval(
            "SELECT count(*) FROM pg_inherits h JOIN kernel.monthly_partitions mp ON h.inhparent = mp.parent"
        )
    )


async def test_partitions_are_made_from_this_month_through_months_ahead(
    owner: asyncpg.Connection, system: SystemEngine, trial: str
) -> None:
    before = await all_partitions(owner)

    made = await make_partitions_ahead(system)

    month = await this_month(owner)
    expected = [(f"notes_p{months_after(month, n):%Y%m}", bounds(months_after(month, n))) for n in range(4)]
    rows = await owner.fetch(PARTITIONS, trial)
    assert [(row["name"], row["bounds"]) for row in rows] == expected
    assert made == await all_partitions(owner) - before
    assert made >= len(expected)


async def test_each_partition_forces_row_level_security_and_grants_nothing(
    owner: asyncpg.Connection, system: SystemEngine, trial: str
) -> None:
    """Rows are reached through the parent alone, whose grants and policies apply; the
    schema's default privilege does not reach the partitions. The parent's index does."""
    await make_partitions_ahead(system)

    rows = await owner.fetch(PARTITIONS, trial)
    assert rows
    assert {(row["enabled"], row["forced"], row["app_may"], row["worker_may"]) for row in rows} == {
        (True, True, False, False)
    }
    # The primary key's index and ix_notes_author, on every partition.
    assert {row["indexes"] for row in rows} == {2}
    assert all("kernel.ensure_partitions()" in row["comment"] for row in rows)


async def test_a_second_call_makes_nothing(system: SystemEngine, trial: str) -> None:
    await make_partitions_ahead(system)

    assert await make_partitions_ahead(system) == 0


async def test_two_callers_at_once_both_succeed(
    owner: asyncpg.Connection, system: SystemEngine, database: DatabaseUrls, trial: str
) -> None:
    """Server processes starting together: the advisory lock queues the second caller,
    which then finds nothing missing, instead of failing on a partition just made."""
    other = create_system_engine(database.worker, pool_size=1)
    try:
        made = await asyncio.gather(make_partitions_ahead(system), make_partitions_ahead(other))
    finally:
        await other.dispose()

    assert sorted(made)[0] == 0
    assert len(await owner.fetch(PARTITIONS, trial)) == 4


async def test_only_system_work_and_migrations_may_call_it(
    owner: asyncpg.Connection, system: SystemEngine, app_engine: AsyncEngine, trial: str
) -> None:
    refusals = []
    # The server's role has no EXECUTE; the worker's role without a system transaction is
    # turned away by the function itself.
    for engine in (app_engine, system.engine):
        with pytest.raises(DBAPIError) as refused:
            async with engine.begin() as db:
                await ensure_partitions(db)
        cause = refused.value.orig.__cause__ if refused.value.orig is not None else None
        refusals.append((type(cause).__name__, "permission denied" in str(cause)))

    assert refusals == [("InsufficientPrivilegeError", True), ("InsufficientPrivilegeError", False)]
    assert await owner.fetch(PARTITIONS, trial) == []
    # A migration, as rapport_owner, registers its table and calls it.
    assert await owner.fetchval("SELECT kernel.ensure_partitions()") >= 4


async def test_a_row_of_next_month_goes_through_the_parent(
    owner: asyncpg.Connection, system: SystemEngine, app_engine: AsyncEngine, trial: str
) -> None:
    await make_partitions_ahead(system)
    month = await this_month(owner)
    author = uuid7()
    next_month = datetime.combine(months_after(month, 1), datetime.min.time(), tzinfo=UTC)

    async with user_transaction(app_engine, author) as db:
        await db.execute(
            text("INSERT INTO trial.notes (id, author_id, body, created_at) VALUES (:id, :author, 'hello', :at)"),
            {"id": uuid7(), "author": author, "at": next_month},
        )
    async with user_transaction(app_engine, author) as db:
        seen = (await db.execute(text("SELECT author_id, created_at FROM trial.notes"))).all()
    with pytest.raises(DBAPIError, match="permission denied"):
        async with user_transaction(app_engine, author) as db:
            await db.execute(text(f"SELECT count(*) FROM trial.notes_p{next_month:%Y%m}"))

    assert [(UUID(str(row.author_id)), row.created_at) for row in seen] == [(author, next_month)]


async def test_a_row_past_months_ahead_has_no_partition(
    owner: asyncpg.Connection, system: SystemEngine, app_engine: AsyncEngine, trial: str
) -> None:
    await make_partitions_ahead(system)
    author = uuid7()
    too_far = datetime.combine(months_after(await this_month(owner), 4), datetime.min.time(), tzinfo=UTC)

    with pytest.raises(DBAPIError, match="no partition of relation"):
        async with user_transaction(app_engine, author) as db:
            await db.execute(
                text("INSERT INTO trial.notes (id, author_id, body, created_at) VALUES (:id, :author, 'x', :at)"),
                {"id": uuid7(), "author": author, "at": too_far},
            )


async def test_months_ahead_is_each_tables_own(owner: asyncpg.Connection, system: SystemEngine, trial: str) -> None:
    await owner.execute("UPDATE kernel.monthly_partitions SET months_ahead = 1 WHERE parent = 'trial.notes'::regclass")
    await make_partitions_ahead(system)

    assert len(await owner.fetch(PARTITIONS, trial)) == 2
    for refused in (0, 25):
        with pytest.raises(asyncpg.CheckViolationError):
            await owner.execute(
                "UPDATE kernel.monthly_partitions SET months_ahead = $1 WHERE parent = 'trial.notes'::regclass", refused
            )


async def test_months_behind_makes_the_months_before_this_one(
    owner: asyncpg.Connection, system: SystemEngine, trial: str
) -> None:
    await owner.execute("UPDATE kernel.monthly_partitions SET months_behind = 2 WHERE parent = 'trial.notes'::regclass")

    await make_partitions_ahead(system)

    month = await this_month(owner)
    names = [row["name"] for row in await owner.fetch(PARTITIONS, trial)]
    assert names == [f"notes_p{months_after(month, n):%Y%m}" for n in range(-2, 4)]
    for refused in (-1, 13):
        with pytest.raises(asyncpg.CheckViolationError):
            await owner.execute(
                "UPDATE kernel.monthly_partitions SET months_behind = $1 WHERE parent = 'trial.notes'::regclass",
                refused,
            )


async def test_analytics_events_keep_last_month_for_events_sent_late(owner: asyncpg.Connection) -> None:
    # A client's event may arrive up to 30 days after it happened, into its own month's
    # partition: in a database made this month, last month's must exist too.
    last_month = months_after(await this_month(owner), -1)

    names = [row["name"] for row in await owner.fetch(PARTITIONS, "analytics.events")]

    assert f"events_p{last_month:%Y%m}" in names


@pytest.mark.parametrize(
    "definition",
    [
        "(id uuid, created_at timestamptz)",
        "(id uuid, created_at timestamptz) PARTITION BY LIST (created_at)",
        "(id uuid, created_on date) PARTITION BY RANGE (created_on)",
        "(id uuid, created_at timestamptz) PARTITION BY RANGE (id, created_at)",
    ],
)
async def test_a_table_not_partitioned_by_month_is_refused(
    owner: asyncpg.Connection, system: SystemEngine, definition: str
) -> None:
    await owner.execute(f"CREATE TABLE kernel.not_monthly {definition}")
    await owner.execute("INSERT INTO kernel.monthly_partitions (parent) VALUES ('kernel.not_monthly')")

    with pytest.raises(DBAPIError) as refused:
        await make_partitions_ahead(system)

    assert refused.value.orig is not None
    assert isinstance(refused.value.orig.__cause__, asyncpg.WrongObjectTypeError)


async def test_a_dropped_table_is_forgotten(owner: asyncpg.Connection, system: SystemEngine, trial: str) -> None:
    await make_partitions_ahead(system)
    await owner.execute("DROP TABLE trial.notes")

    await make_partitions_ahead(system)

    registered = await owner.fetchval(
        "SELECT count(*) FROM kernel.monthly_partitions WHERE parent::text LIKE 'trial.%'"
    )
    assert registered == 0


async def test_the_worker_role_reads_the_register_and_writes_nothing(system: SystemEngine, trial: str) -> None:
    async with system_transaction(system) as db:
        registered = (await db.execute(text("SELECT parent::text FROM kernel.monthly_partitions"))).scalars().all()
    with pytest.raises(DBAPIError, match="permission denied"):
        async with system_transaction(system) as db:
            await db.execute(text("DELETE FROM kernel.monthly_partitions"))

    assert trial in registered


async def test_the_upkeep_makes_partitions_again_while_it_runs(owner: asyncpg.Connection, system: SystemEngine) -> None:
    """What a server process runs: partitions at start, then again every period (a day;
    here a tenth of a second), so a table registered later gets its partitions too."""
    upkeep = await PartitionUpkeep.start(system, every_seconds=0.1)
    try:
        await owner.execute(TRIAL_TABLE)
        await owner.execute("INSERT INTO kernel.monthly_partitions (parent) VALUES ('trial.notes')")
        for _ in range(200):
            if len(await owner.fetch(PARTITIONS, "trial.notes")) == 4:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the upkeep made no partitions for a table registered after it started")
    finally:
        await upkeep.stop()


async def test_the_upkeep_outlives_a_failure(owner: asyncpg.Connection, system: SystemEngine) -> None:
    """A registered table the function refuses stops neither the server's start nor the
    upkeep: once it is mended, the next attempt makes the partitions."""
    await owner.execute("CREATE TABLE kernel.not_monthly (id uuid, created_at timestamptz)")
    await owner.execute("INSERT INTO kernel.monthly_partitions (parent) VALUES ('kernel.not_monthly')")
    upkeep = await PartitionUpkeep.start(system, every_seconds=0.1)
    try:
        await owner.execute("DELETE FROM kernel.monthly_partitions WHERE parent = 'kernel.not_monthly'::regclass")
        await owner.execute(TRIAL_TABLE)
        await owner.execute("INSERT INTO kernel.monthly_partitions (parent) VALUES ('trial.notes')")
        for _ in range(200):
            if len(await owner.fetch(PARTITIONS, "trial.notes")) == 4:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the upkeep stopped after a failed attempt")
    finally:
        await upkeep.stop()


async def test_rapport_db_maintain_says_how_many_it_made(
    admin_url: URL, database: DatabaseUrls, trial: str, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "rapport", "db", "maintain"]
    env = rapport_env(admin_url, database, RAPPORT_DATA_DIR=str(tmp_path))

    runs = []
    for _ in range(2):
        # In a thread: the command runs its own event loop, and this test's keeps running.
        done = await asyncio.to_thread(
            subprocess.run, command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        runs.append(done.stdout.strip())

    first, second = runs
    assert first.startswith("made ") and int(first.split()[1]) >= 4
    assert second == "made 0 partitions"
