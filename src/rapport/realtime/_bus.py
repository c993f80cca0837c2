"""The bus between the server processes of one node and between nodes.

It carries two things, both small and both disposable:

- announcements that events committed (the `WakeupTransport` of
  `rapport.kernel.outbox.wakeup`): they carry nothing; readers read the outbox;
- signals: typing and presence, JSON objects of ids and states, never message content.
  A lost signal costs little (typing expires by itself, presence is refreshed by a
  heartbeat), so nothing here is stored or retried.

A process never hears its own announcements or signals. Signals are sent in batches: what
is published while one batch is on its way leaves with the next, so a burst of typing costs
a few round trips, not one per signal, and each payload stays under PostgreSQL's NOTIFY
limit (8000 bytes).

Three transports: PostgreSQL NOTIFY on one connection of each process's own (the default,
`_bus_notify`), NATS (`RAPPORT_NATS_URL`, `_bus_nats`) or Redis pub/sub
(`RAPPORT_REDIS_URL`, `_bus_redis`); `bus_for` picks one. The one who attaches the bus to
the wakeup (`await wakeup.attach(bus)`) owns it: `wakeup.detach()` closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Protocol

import orjson

from rapport.config import Settings

logger = logging.getLogger(__name__)

WAKEUP_CHANNEL = "rapport_wakeup"
SIGNALS_CHANNEL = "rapport_signals"
# Under NOTIFY's 8000-byte payload limit, with room for the envelope.
MAX_PAYLOAD_BYTES = 7000

Signal = dict[str, Any]
SignalListener = Callable[[Signal], None]


class Bus(Protocol):
    """Announcements and signals between processes. Also a `WakeupTransport`."""

    # This process's name on the bus: what it sends carries it, and it ignores what does.
    token: str

    async def open(self) -> None:
        """Connect, if not connected yet (`start` does it too)."""

    async def start(self, on_remote: Callable[[], None]) -> None:
        """Connect and call `on_remote` for each announcement another process sends."""

    async def send(self) -> None:
        """Announce to the other processes that events committed."""

    def listen(self, listener: SignalListener) -> None:
        """Call `listener` (in the event loop) with each signal another process publishes."""

    def publish(self, signal: Signal) -> None:
        """Send a signal to the other processes, soon (it is queued, never awaited)."""

    async def flush(self) -> None:
        """Wait until the signals published so far have left."""

    async def close(self) -> None: ...


def bus_for(settings: Settings, dsn: str) -> Bus:
    """The bus the settings name: NATS, else Redis, else NOTIFY on the database at `dsn`
    (an asyncpg DSN: the server's own role is enough to LISTEN and NOTIFY)."""
    if settings.nats_url:
        from rapport.realtime._bus_nats import NatsBus

        return NatsBus(settings.nats_url)
    if settings.redis_url:
        from rapport.realtime._bus_redis import RedisBus

        return RedisBus(settings.redis_url)
    from rapport.realtime._bus_notify import NotifyBus

    return NotifyBus(dsn)


def pack(signals: list[Signal], *, sender: str) -> list[bytes]:
    """Signals as payloads of at most MAX_PAYLOAD_BYTES, each `{"from": ..., "signals": [...]}`.
    A signal too large to travel alone is dropped (none is: they hold ids and states)."""
    payloads: list[bytes] = []
    batch: list[bytes] = []
    size = 0
    for signal in signals:
        encoded = orjson.dumps(signal)
        if len(encoded) > MAX_PAYLOAD_BYTES - 100:
            logger.warning("dropped a signal of %d bytes", len(encoded))
            continue
        if batch and size + len(encoded) + 1 > MAX_PAYLOAD_BYTES - 100:
            payloads.append(_envelope(batch, sender))
            batch, size = [], 0
        batch.append(encoded)
        size += len(encoded) + 1
    if batch:
        payloads.append(_envelope(batch, sender))
    return payloads


def _envelope(batch: list[bytes], sender: str) -> bytes:
    return b'{"from":' + orjson.dumps(sender) + b',"signals":[' + b",".join(batch) + b"]}"


class BaseBus(ABC):
    """What every transport shares: the token, the listeners, the batching of signals.
    A transport connects, sends raw payloads, and hands what it receives to
    `_heard_wakeup` and `_heard_signals`."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(8)
        self._on_remote: Callable[[], None] | None = None
        self._listeners: list[SignalListener] = []
        self._queue: list[Signal] = []
        self._sender: asyncio.Task[None] | None = None
        self._opened = False
        self._opening = asyncio.Lock()

    async def open(self) -> None:
        async with self._opening:
            if not self._opened:
                await self._connect()
                self._opened = True

    async def start(self, on_remote: Callable[[], None]) -> None:
        self._on_remote = on_remote
        await self.open()

    async def send(self) -> None:
        if self._opened:
            await self._send_raw(WAKEUP_CHANNEL, [self.token.encode()])

    def listen(self, listener: SignalListener) -> None:
        self._listeners.append(listener)

    def publish(self, signal: Signal) -> None:
        self._queue.append(signal)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_queued())

    async def flush(self) -> None:
        while self._sender is not None and not self._sender.done():
            await asyncio.shield(self._sender)

    async def close(self) -> None:
        if self._sender is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._sender), 1.0)
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sender
            self._sender = None
        self._on_remote = None
        self._listeners.clear()
        if self._opened:
            self._opened = False
            await self._disconnect()

    async def _send_queued(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            if not self._opened:
                continue
            try:
                await self._send_raw(SIGNALS_CHANNEL, pack(batch, sender=self.token))
            except Exception:  # a lost signal is refreshed or expires: never worth failing for
                logger.warning("could not send %d signals to other processes", len(batch), exc_info=True)

    def _heard_wakeup(self, payload: bytes | str) -> None:
        sender = payload.decode() if isinstance(payload, bytes) else payload
        if sender != self.token and self._on_remote is not None:
            self._on_remote()

    def _heard_signals(self, payload: bytes | str) -> None:
        try:
            message = orjson.loads(payload)
            if message["from"] == self.token:
                return
            signals: list[Signal] = [s for s in message["signals"] if isinstance(s, dict)]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            logger.warning("ignored a malformed message on the bus")
            return
        for signal in signals:
            for listener in list(self._listeners):
                try:
                    listener(signal)
                except Exception:  # one listener's bug must not deafen the others
                    logger.exception("a bus listener failed")

    @abstractmethod
    async def _connect(self) -> None: ...

    @abstractmethod
    async def _disconnect(self) -> None: ...

    @abstractmethod
    async def _send_raw(self, channel: str, payloads: list[bytes]) -> None:
        """Send each payload on the channel, in order."""
