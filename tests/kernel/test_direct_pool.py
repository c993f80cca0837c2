"""The hot paths' pool: a statement that only reads waits its turn beyond `readers` at
once (reads are CPU in PostgreSQL, and more at once only queue on the cores), while writes
use the whole pool."""

from __future__ import annotations

import asyncio
import os

from sqlalchemy import text

from rapport.kernel.direct import DirectPool
from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.serving import share_of_pools
from tests.support import make_settings

SLEEP = "SELECT pg_sleep(0.4), 'direct-pool-test'"
RUNNING = text(
    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%direct-pool-test%'"
    " AND query NOT LIKE '%pg_stat_activity%'"
)


async def running_at_once(app_engine, calls) -> int:
    """How many of the calls run in PostgreSQL at once, looked at while they run."""
    started = asyncio.gather(*calls)
    await asyncio.sleep(0.2)
    async with app_engine.connect() as db:
        seen = int((await db.execute(RUNNING)).scalar_one())
    await started
    return seen


async def test_reads_run_at_most_readers_at_once_and_writes_the_whole_pool(database: DatabaseUrls, app_engine):
    pool = DirectPool(database.app, size=4, readers=1)
    try:
        assert await running_at_once(app_engine, [pool.fetchrow_read(SLEEP) for _ in range(3)]) == 1
        assert await running_at_once(app_engine, [pool.fetchrow(SLEEP) for _ in range(3)]) == 3
    finally:
        await pool.close()


def test_the_server_reads_twice_its_cores_at_once_shared_among_its_processes():
    settings = make_settings()
    assert settings.database_hot_readers == 2 * (os.cpu_count() or 1)
    two = share_of_pools(make_settings(database_hot_readers=4), 2)
    assert two.database_hot_readers == 2
    assert share_of_pools(make_settings(database_hot_readers=3), 4).database_hot_readers == 1
