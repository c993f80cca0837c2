"""One follower of the stream (a WebSocket or a Server-Sent Events response): who it acts
for, its windows of each conversation, and the bounded queue of what it is to be sent.

The hub fills the queue synchronously, once per event, from the feed; the follower's
writer drains it. A follower that lets the queue fill is behind: its queue is dropped and
replaced by a resync and a close, so a slow reader never holds more than `QUEUE_LIMIT`
items of the process's memory.

A WebSocket served by `rapport serve` also has a `SocketWriter`: the hub then writes each
item's frame, built once for every recipient, straight to the socket's transport, when
nothing is queued before it and the writer is idle, instead of queueing it and waking
the writer (docs/decisions/0019). What the socket cannot take at once (the socket's send
buffer is full, or it is closing) is queued as before, so the order, the queue's bound
and the slow-consumer rule are the queue's.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol
from uuid import UUID

import orjson

from rapport.kernel.actor import Actor
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import ORDINAL_BITS, Event

# Items a follower may have waiting; past it, it is told to resync and is closed.
QUEUE_LIMIT = 1000

# Close codes of the protocol (docs/REALTIME.md).
SESSION_REVOKED = 4000
SLOW_CONSUMER = 4429
SHUTTING_DOWN = 1001


def transaction_of(position: int) -> int:
    """The transaction part of a position: events of one transaction share it."""
    return position >> ORDINAL_BITS


def transaction_start(position: int) -> int:
    """The first position the transaction of `position` may number: the position
    `messaging.current_position()` records as a join or a leave."""
    return transaction_of(position) << ORDINAL_BITS


def text_frame(payload: bytes) -> bytes:
    """A whole server-to-client WebSocket text frame (RFC 6455, section 5.2): FIN and the
    text opcode, the length, the payload. A server never masks, so the same bytes suit
    every socket; RSV1 is unset, so it is valid whether or not the client negotiated
    permessage-deflate (RFC 7692, section 6: an uncompressed message)."""
    length = len(payload)
    if length < 126:
        return bytes((0x81, length)) + payload
    if length < 1 << 16:
        return bytes((0x81, 126)) + length.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + length.to_bytes(8, "big") + payload


class SocketWriter(Protocol):
    """A WebSocket's transport, as the hub writes whole frames to it."""

    def write(self, frame: bytes) -> bool:
        """Write the frame now if the socket is open and its send buffer has room; False,
        having written nothing, otherwise. Never raises, never waits."""
        ...


@dataclass
class Span:
    """A follower's window of one conversation (docs/decisions/0014): every event from the
    transaction that (re)joined them through the one that ended their participation. A
    guest's leaves out the events of messages hidden from guests."""

    joined: int
    left: int | None = None
    guest: bool = False

    def holds(self, position: int) -> bool:
        return self.joined <= position and (self.left is None or transaction_of(position) <= transaction_of(self.left))

    def ended_by(self, position: int) -> bool:
        """Whether nothing at or after `position` is theirs any more."""
        return self.left is not None and transaction_of(position) > transaction_of(self.left)


class Delivery:
    """One event as every follower receives it, serialised once however many receive it."""

    def __init__(self, event: Event) -> None:
        self.event = event

    @property
    def position(self) -> int:
        return self.event.position

    def _body(self) -> dict[str, Any]:
        event = self.event
        return {
            "type": event.type,
            "scope": {"kind": event.scope_kind, "id": str(event.scope_id)},
            "payload": event.payload,
            "actor_id": str(event.actor_id) if event.actor_id is not None else None,
            "created_at": event.created_at,
        }

    @cached_property
    def _json(self) -> bytes:
        body = {"type": "event", "position": self.event.position, "event": self._body()}
        return orjson.dumps(body, option=orjson.OPT_UTC_Z)

    @cached_property
    def frame(self) -> str:
        """The WebSocket frame's text."""
        return self._json.decode()

    @cached_property
    def wire(self) -> bytes:
        """The whole WebSocket frame, for a `SocketWriter`."""
        return text_frame(self._json)

    @cached_property
    def server_sent(self) -> str:
        """The Server-Sent Events message."""
        data = orjson.dumps({**self._body(), "position": self.event.position}, option=orjson.OPT_UTC_Z).decode()
        return f"id: {self.event.position}\nevent: {self.event.type}\ndata: {data}\n\n"


@dataclass(frozen=True)
class Frame:
    """A frame that is not an event (an acknowledgement, an error, typing, presence, a
    ping), serialised once: its `type` and its JSON text."""

    type: str
    text: str

    @classmethod
    def of(cls, body: dict[str, Any]) -> Frame:
        return cls(str(body["type"]), orjson.dumps(body, option=orjson.OPT_UTC_Z).decode())

    @cached_property
    def wire(self) -> bytes:
        """The whole WebSocket frame, for a `SocketWriter`."""
        return text_frame(self.text.encode())


@dataclass(frozen=True)
class Behind:
    """The follower fell behind: tell it where to resume from (its last position sent)."""


@dataclass(frozen=True)
class Close:
    code: int
    reason: str


Item = Delivery | Frame | Behind | Close


class Connection:
    """A follower of the stream, as the hub and its writer see it."""

    def __init__(self, actor: Actor) -> None:
        self.id = uuid7()
        self.actor = actor
        # Membership changes below it are already in `spans` (read from the database).
        self.known_below = 0
        self.spans: dict[UUID, Span] = {}
        # Every event the feed dispatches while the follower catches up from the database.
        self.pending: list[Event] | None = None
        self.pending_overflowed = False
        # The position through which the follower has been sent every event it may receive.
        self.sent = 0
        # The position its catch-up read the database through. The feed of the process may
        # be behind it (it starts, and skips ahead while no one follows, at the safe
        # position, which a long transaction anywhere holds back), and then dispatches
        # events the follower already had from the database: they are not sent again.
        self.read_through = 0
        self.closed = False
        # Set by the WebSocket's writer when it can write frames without a task.
        self.direct: SocketWriter | None = None
        self._items: deque[Item] = deque()
        self._waiting: asyncio.Event | None = None
        # True only while the writer waits on an empty queue: nothing is queued or being
        # sent, so a frame written directly now comes after everything before it.
        self._idle = False

    @property
    def user_id(self) -> UUID:
        return self.actor.user_id

    def offer(self, item: Delivery | Frame) -> bool:
        """Queue an item; False (and the follower is told to resync and closed) when the
        queue is full."""
        if self.closed:
            return False
        if self._idle and self.direct is not None and self.direct.write(item.wire):
            if isinstance(item, Delivery):
                self.sent = max(self.sent, item.position)
            return True
        if len(self._items) >= QUEUE_LIMIT:
            self._items.clear()
            self._push(Behind())
            self.close(SLOW_CONSUMER, "slow-consumer")
            return False
        self._push(item)
        return True

    def close(self, code: int, reason: str) -> None:
        """Close once what is queued is sent; nothing more is queued."""
        if self.closed:
            return
        self._push(Close(code, reason))
        self.closed = True

    async def next_item(self) -> Item:
        while not self._items:
            if self._waiting is None:
                self._waiting = asyncio.Event()
            self._waiting.clear()
            self._idle = True
            try:
                await self._waiting.wait()
            finally:
                self._idle = False
        return self._items.popleft()

    def _push(self, item: Item) -> None:
        # Whatever comes next queues behind this item until the writer has sent it.
        self._idle = False
        self._items.append(item)
        if self._waiting is not None:
            self._waiting.set()
