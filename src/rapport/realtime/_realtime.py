"""What one process runs for realtime: the hub, the feed that fills it, and presence and
typing (`Ephemeral`, over the bus between processes), which the stream's client frames
and followers go to."""

from __future__ import annotations

from rapport.kernel.outbox import wakeup
from rapport.kernel.pooling import listen_url
from rapport.kernel.provisioning import asyncpg_dsn
from rapport.kernel.runtime import Runtime
from rapport.realtime._bus import Bus, bus_for
from rapport.realtime._connection import SHUTTING_DOWN
from rapport.realtime._ephemeral import Ephemeral, StreamSignals
from rapport.realtime._feed import Feed
from rapport.realtime._hub import Hub
from rapport.realtime._signals import Signals


class Realtime:
    """Started with the app, stopped with it (`app.state.realtime`)."""

    def __init__(self, runtime: Runtime, *, bus: Bus | None = None) -> None:
        self.runtime = runtime
        self.hub = Hub()
        self.feed = Feed(runtime.system_engine, self.hub)
        # LISTEN keeps a session: straight to PostgreSQL, past any pooler.
        direct = asyncpg_dsn(listen_url(runtime.engine.url, runtime.settings))
        self.bus = bus if bus is not None else bus_for(runtime.settings, direct)
        self.ephemeral = Ephemeral(runtime, self.bus)
        self.signals: Signals = StreamSignals(self.ephemeral, self.hub)

    async def start(self) -> None:
        await self.ephemeral.start()
        # The bus also carries the announcements that events committed, both ways:
        # this process's commits wake the other processes' feeds, and theirs wake this one.
        await wakeup.attach(self.bus)
        await self.feed.start()

    async def stop(self) -> None:
        """Close every follower with 1001 (they resume from their last position
        elsewhere or later), then stop reading."""
        self.hub.close_all(SHUTTING_DOWN, "server-shutting-down")
        await self.feed.stop()
        await self.ephemeral.close()
        await wakeup.detach(self.bus)  # closes the bus
