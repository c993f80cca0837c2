"""asyncpg's own pool, for the hot paths that do a whole request in one statement.

Sending a message, reading history and the conversation list run thousands of times a
second. Each is one SQL function that sets who acts, checks their session and does the
work (the functions start with `auth.act_for_request`), called here with a prepared
statement on a plain asyncpg connection: no explicit BEGIN and COMMIT (the statement is
its own transaction, so the `set_config(..., true)` it makes ends with it) and none of
SQLAlchemy's per-statement work, which costs more CPU than the statement itself there
(docs/decisions/0013). Everything else uses the SQLAlchemy engine.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from sqlalchemy.engine import URL, make_url

from rapport.kernel.provisioning import asyncpg_dsn


async def _nothing_to_reset(connection: asyncpg.Connection) -> None:
    return None


class DirectPool:
    """A pool of `rapport_app` connections made on first use (so that building an app
    costs no connection), sized like the request pool.

    Connections are kept: a pool that closes and reopens connections under load (as an
    overflow does) pays a PostgreSQL backend start per request.
    """

    def __init__(
        self,
        url: URL | str,
        *,
        size: int,
        readers: int | None = None,
        pgbouncer: bool = False,
        connect_timeout: float = 60.0,
    ) -> None:
        self._dsn = asyncpg_dsn(make_url(url))
        self._size = size
        self._connect_timeout = connect_timeout
        # Behind PgBouncer in transaction pooling a named statement stays on a server
        # connection the next statement may not get: each statement is prepared unnamed,
        # in the same exchange that runs it.
        self._statement_cache_size = 0 if pgbouncer else 100
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        # Reads are CPU in PostgreSQL from start to end: beyond about twice the cores,
        # more of them at once only take turns on the cores and wait longer each (the
        # conversation list at 16 clients on two cores and two processes: p99 52-55 ms with
        # 4 at once per process, 39-40 ms with 2; docs/PERFORMANCE.md). Writes wait on
        # their commit's flush and gain from more at once (sends at 16 clients: 1,520/s
        # with 5 connections per process, 1,150/s with 2), so they keep the whole pool.
        self._readers = asyncio.Semaphore(readers or size)

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self._dsn,
                        min_size=0,
                        max_size=self._size,
                        # Idle connections beyond a burst are let go after a while, not per request.
                        max_inactive_connection_lifetime=300,
                        # The hot functions' plans depend on their arguments little; a prepared
                        # statement per connection is kept for each.
                        statement_cache_size=self._statement_cache_size,
                        timeout=self._connect_timeout,
                        # Nothing to reset: the hot functions set only transaction-local
                        # values, gone with their statement. asyncpg's default reset is a
                        # second round trip on every release.
                        reset=_nothing_to_reset,
                    )
        return self._pool

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        """Run one statement as its own transaction and return its first row."""
        pool = await self.pool()
        async with pool.acquire() as connection:
            return await connection.fetchrow(query, *args)

    async def fetchrow_read(self, query: str, *args: Any) -> asyncpg.Record | None:
        """As `fetchrow`, for a statement that only reads: at most `readers` at once."""
        async with self._readers:
            return await self.fetchrow(query, *args)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
