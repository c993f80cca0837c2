"""The bus over PostgreSQL LISTEN/NOTIFY: one connection per process, outside every pool
(LISTEN needs a session of its own, which PgBouncer in transaction mode would not keep).

Announcements and signals are NOTIFYed by this connection alone, in statements of their
own, never in a writing transaction: a notifying transaction takes a database-wide lock at
commit (docs/decisions/0015), and here only this connection's short statements queue on it.
What this connection sends comes back to it; its backend pid tells it apart. When the
connection is lost it is opened again, every second until it succeeds; announcements lost
meanwhile only delay delivery until the readers' timer, and presence is refreshed by the
next heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from rapport.realtime._bus import SIGNALS_CHANNEL, WAKEUP_CHANNEL, BaseBus

logger = logging.getLogger(__name__)

RECONNECT_S = 1.0
# Several NOTIFYs in one statement: one round trip, one commit, delivered in order.
_NOTIFY = "SELECT pg_notify($1, payload) FROM unnest($2::text[]) WITH ORDINALITY AS p (payload, n) ORDER BY n"


class NotifyBus(BaseBus):
    def __init__(self, dsn: str) -> None:
        super().__init__()
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None
        self._pid = 0
        # One statement at a time on the connection.
        self._using = asyncio.Lock()
        self._reconnecting: asyncio.Task[None] | None = None

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self._dsn)
        try:
            await conn.add_listener(WAKEUP_CHANNEL, self._notified)
            await conn.add_listener(SIGNALS_CHANNEL, self._notified)
        except BaseException:
            await conn.close()
            raise
        conn.add_termination_listener(self._terminated)
        self._pid = conn.get_server_pid()
        self._conn = conn

    async def _disconnect(self) -> None:
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnecting
            self._reconnecting = None
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.remove_termination_listener(self._terminated)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2.0)

    async def _send_raw(self, channel: str, payloads: list[bytes]) -> None:
        conn = self._conn
        if conn is None or conn.is_closed():
            return
        async with self._using:
            await conn.execute(_NOTIFY, channel, [payload.decode() for payload in payloads])

    def _notified(self, conn: object, pid: int, channel: str, payload: object) -> None:
        if pid == self._pid or not isinstance(payload, str):
            return
        if channel == WAKEUP_CHANNEL:
            self._heard_wakeup(payload)
        elif channel == SIGNALS_CHANNEL:
            self._heard_signals(payload)

    def _terminated(self, conn: object) -> None:
        self._conn = None
        if self._opened and (self._reconnecting is None or self._reconnecting.done()):
            logger.warning("the bus lost its database connection; reconnecting")
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        while self._opened and self._conn is None:
            await asyncio.sleep(RECONNECT_S)
            try:
                await self._connect()
            except (OSError, asyncpg.PostgresError):
                logger.warning("the bus could not reconnect to the database yet")
                continue
            # Announcements may have been lost meanwhile: let the readers look now.
            if self._on_remote is not None:
                self._on_remote()
