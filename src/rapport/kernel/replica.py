"""Reads that tolerate lag, and where they go: the replica when it has caught up, else the
primary (docs/decisions/0029).

Message history, message search, people search and analytics reports may be served by a
streaming replica (RAPPORT_DATABASE_REPLICA_URL). A person must still read their own
writes, on whichever node the write and the read land: nodes keep no state of their own.
So a read first asks the primary how far its WAL has gone (`pg_current_wal_insert_lsn()`,
a statement that touches no table), and uses the replica only once the replica has
replayed that far: everything committed before the read began, the reader's own writes
among them, is then there. A replica further behind than RAPPORT_DATABASE_REPLICA_WAIT_MS
allows, or one that does not answer, leaves the read to the primary; a replica that failed
is left alone for RAPPORT_DATABASE_REPLICA_RETRY_SECONDS.

Every lag-tolerant read goes through `LagTolerantReads`: `fetchrow` for the hot paths'
one statement (rapport.kernel.direct), `transaction` for a read in a user transaction.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rapport.config import Settings
from rapport.kernel.db import create_engine, user_transaction
from rapport.kernel.direct import DirectPool
from rapport.kernel.pooling import replica_url

log = structlog.get_logger(__name__)

# Positions as numbers of bytes, compared in Python (asyncpg has no codec for pg_lsn).
_PRIMARY_POSITION = "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint"
# NULL once the server is no longer in recovery (promoted): its replay position then stays
# where it was, and a read would wait for it in vain.
_REPLAYED = "SELECT CASE WHEN pg_is_in_recovery() THEN (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint END"
# A replica that cannot be reached soon is as good as down: the primary answers instead.
_CONNECT_TIMEOUT_S = 2.0
# The first looks come quickly (a replica on the same network replays within a
# millisecond or two); then less often, up to the wait's end.
_FIRST_POLL_S = 0.001
_LONGEST_POLL_S = 0.02


class NotAReplica(Exception):
    """The server at the replica's URL is not in recovery (it was promoted, or is another
    primary): what it holds is not known to follow the primary."""


# What a replica that is down, starting, restarting or cancelling a read for a conflict
# with recovery raises (a refusal from the read itself is none of these and goes on up).
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    NotAReplica,
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TransactionRollbackError,
)

# SQLAlchemy wraps the driver's errors while it connects and sets who acts.
_UNAVAILABLE_OR_WRAPPED: tuple[type[BaseException], ...] = (*_UNAVAILABLE, DBAPIError)


class Replica:
    """The replica's pools, and what this process knows of how far it has replayed."""

    def __init__(self, settings: Settings, direct: DirectPool, engine: AsyncEngine) -> None:
        self.direct = direct
        self.engine = engine
        self._wait_s = settings.database_replica_wait_ms / 1000
        self._retry_s = settings.database_replica_retry_seconds
        self._down_until = 0.0
        # A lower bound: replay only moves forward, so a position seen replayed once needs
        # no new look (a replica replaced by an older one is caught by its first refusal).
        self._replayed = -1

    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def failed(self, error: BaseException) -> None:
        if self.available():
            log.warning("replica.unavailable", error=repr(error), retry_seconds=self._retry_s)
        self._down_until = time.monotonic() + self._retry_s

    async def reached(self, position: int) -> bool:
        """Whether the replica has replayed up to `position`, waiting for it at most the
        configured time.

        Raises:
            NotAReplica: the server is not in recovery.
            The replica's connection errors (see `_UNAVAILABLE`).
        """
        if position <= self._replayed:
            return True
        deadline = time.monotonic() + self._wait_s
        pause = _FIRST_POLL_S
        pool = await self.direct.pool()
        while True:
            replayed = await pool.fetchval(_REPLAYED, timeout=_CONNECT_TIMEOUT_S)
            if replayed is None:
                raise NotAReplica("The server at RAPPORT_DATABASE_REPLICA_URL is not in recovery.")
            self._replayed = max(self._replayed, int(replayed))
            if self._replayed >= position:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, _LONGEST_POLL_S)

    async def close(self) -> None:
        await self.direct.close()
        await self.engine.dispose()


class LagTolerantReads:
    """Where the reads that tolerate lag run: the one place that decides."""

    def __init__(self, primary: DirectPool, primary_engine: AsyncEngine, replica: Replica | None) -> None:
        self._primary = primary
        self._primary_engine = primary_engine
        self.replica = replica

    @classmethod
    def build(cls, settings: Settings, primary: DirectPool, primary_engine: AsyncEngine) -> LagTolerantReads:
        url = replica_url(primary_engine.url, settings)
        if url is None:
            return cls(primary, primary_engine, None)
        replica = Replica(
            settings,
            DirectPool(
                url,
                size=settings.database_pool_size,
                readers=settings.database_hot_readers,
                pgbouncer=settings.database_pgbouncer,
                connect_timeout=_CONNECT_TIMEOUT_S,
            ),
            create_engine(
                url,
                pool_size=settings.database_pool_size,
                pgbouncer=settings.database_pgbouncer,
                connect_timeout=_CONNECT_TIMEOUT_S,
            ),
        )
        return cls(primary, primary_engine, replica)

    async def _replica_ready(self) -> Replica | None:
        """The replica, when it is up and has everything the primary had when asked."""
        replica = self.replica
        if replica is None or not replica.available():
            return None
        row = await self._primary.fetchrow(_PRIMARY_POSITION)
        assert row is not None
        try:
            if await replica.reached(int(row[0])):
                return replica
        except _UNAVAILABLE as error:
            replica.failed(error)
        return None

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        """Run one statement that only reads, as its own transaction (as
        `DirectPool.fetchrow_read`), on the replica when it may."""
        replica = await self._replica_ready()
        if replica is not None:
            try:
                return await replica.direct.fetchrow_read(query, *args)
            except _UNAVAILABLE as error:
                replica.failed(error)
        return await self._primary.fetchrow_read(query, *args)

    @asynccontextmanager
    async def transaction(self, user_id: UUID, *, tolerate_lag: bool = True) -> AsyncIterator[AsyncConnection]:
        """A user transaction (as `rapport.kernel.db.user_transaction`): with
        `tolerate_lag`, for work that only reads, on the replica when it may; without, on
        the primary. A replica lost once the work has begun fails the work: it is not run
        twice."""
        async with AsyncExitStack() as stack:
            replica = await self._replica_ready() if tolerate_lag else None
            conn: AsyncConnection | None = None
            if replica is not None:
                try:
                    conn = await stack.enter_async_context(user_transaction(replica.engine, user_id))
                except _UNAVAILABLE_OR_WRAPPED as error:
                    replica.failed(error)
            if conn is None:
                conn = await stack.enter_async_context(user_transaction(self._primary_engine, user_id))
            yield conn

    async def close(self) -> None:
        if self.replica is not None:
            await self.replica.close()
