"""Telling readers that events have committed, without NOTIFY in the writing transaction
(docs/decisions/0015).

A NOTIFY makes its transaction take a database-wide lock at commit and hold it through
the WAL flush, so that notifications queue in commit order: every transaction that
notifies commits one after the other. Sending a message used to notify, which capped the
whole server's send rate at one commit flush at a time. Now the process that committed
events says so after the commit (`wakeup.announce()`, a few nanoseconds), and a
`Wakeup` passes that on: at once to the readers of this process, and, coalesced to at
most one per `COALESCE_S`, to every other process through its transport (one NOTIFY on a
connection of its own by default). Readers also read on a timer, so events written by
anything that does not announce (a script, a process that died between its commit and
its announcement) are seen within that period: an announcement only makes delivery
sooner, its loss never loses an event, which the outbox keeps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)

# At most one announcement to other processes per this many seconds from one process:
# under load, one NOTIFY stands for every commit of the window.
COALESCE_S = 0.002


class WakeupTransport(Protocol):
    """Carries announcements between processes (PostgreSQL NOTIFY, NATS or Redis)."""

    async def start(self, on_remote: Callable[[], None]) -> None:
        """Start listening; call `on_remote` (in the event loop) for each announcement
        another process sends."""

    async def send(self) -> None:
        """Announce to the other processes that events have committed."""

    async def close(self) -> None: ...


class Wakeup:
    """A generation counter that grows with every announcement, local or remote.

    Readers keep the generation they last saw and wait for a newer one:
    `seen = await wakeup.changed(seen, timeout=1.0)`; a reader that was busy reading
    when announcements came sees a newer generation at once, so none is missed.
    """

    def __init__(self) -> None:
        self.generation = 0
        self._changed: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transport: WakeupTransport | None = None
        self._pending = False
        self._sender: asyncio.Task[None] | None = None

    def announce(self) -> None:
        """Events committed in this process: wake its readers and, soon, the others'.
        Call it after the commit, never inside the transaction."""
        self._bump()
        if self._transport is not None and not self._pending:
            self._pending = True
            with contextlib.suppress(RuntimeError):  # no running loop: a command's last commit
                self._sender = asyncio.get_running_loop().create_task(self._send_soon())

    async def changed(self, seen: int, *, timeout: float) -> int:  # noqa: ASYNC109 (a wait that may end empty)
        """The generation, once it is past `seen` or `timeout` seconds have passed."""
        if self.generation != seen:
            return self.generation
        event = self._event()
        event.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        return self.generation

    async def attach(self, transport: WakeupTransport) -> None:
        """Send this process's announcements through `transport` and hear the others'."""
        await transport.start(self._bump)
        self._transport = transport

    async def detach(self, transport: WakeupTransport | None = None) -> None:
        """Stop sending through the transport attached (or through `transport`, only if it
        is the one attached: two apps in one process, as in tests, each detach their own)."""
        if transport is not None and transport is not self._transport:
            await transport.close()
            return
        transport, self._transport = self._transport, None
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None
        self._pending = False
        if transport is not None:
            await transport.close()

    def _bump(self) -> None:
        self.generation += 1
        if self._changed is not None:
            self._changed.set()

    def _event(self) -> asyncio.Event:
        # Made inside the loop that waits (an asyncio.Event belongs to one loop; tests and
        # commands may run several loops one after the other in a process).
        loop = asyncio.get_running_loop()
        if self._changed is None or self._loop is not loop:
            self._changed = asyncio.Event()
            self._loop = loop
        return self._changed

    async def _send_soon(self) -> None:
        await asyncio.sleep(COALESCE_S)
        self._pending = False
        transport = self._transport
        if transport is None:
            return
        try:
            await transport.send()
        except Exception:  # a lost announcement only delays delivery until the readers' timer
            log.warning("outbox.announce_failed", exc_info=True)


# One per process: every writer announces to it, every reader waits on it.
wakeup = Wakeup()

# Set in a connection's `info` by `publish`, read by the transaction that commits it.
_PUBLISHED = "rapport.outbox.published"


def mark_published(info: dict[object, object]) -> None:
    """The transaction on this connection has published events (`publish` calls it)."""
    info[_PUBLISHED] = True


def transaction_ended(info: dict[object, object], *, committed: bool) -> None:
    """Call when a transaction on this connection has committed or rolled back: announces
    its events if it published and committed."""
    if info.pop(_PUBLISHED, False) and committed:
        wakeup.announce()
