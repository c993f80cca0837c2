"""`/v1/stream`: one WebSocket per device, in the protocol of docs/REALTIME.md.

The router accepts the socket and hands it here as a `Channel`, so that nothing below the
routers knows the web framework. A session is: authenticate (the bearer subprotocol, or
an `auth` first frame within `AUTH_TIMEOUT_S`), follow (catch up, then live), and then
three loops until one ends: the writer drains the follower's queue into the socket, the
reader answers client frames, the heartbeat pings and closes a socket that went silent.
Once live, a channel with a direct writer lets the hub write frames without the writer task
whenever its queue is empty (`Connection.offer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Protocol

import orjson
import structlog

from rapport.kernel.actor import Credential
from rapport.kernel.errors import RapportError
from rapport.kernel.runtime import Runtime
from rapport.realtime._connection import Behind, Close, Connection, Delivery, Frame, Item, SocketWriter
from rapport.realtime._follow import Ready, follow, parse_position
from rapport.realtime._frames import AuthFrame, Refused, answer, error_frame, parse
from rapport.realtime._hub import Hub
from rapport.realtime._signals import Signals

log = structlog.get_logger(__name__)

SUBPROTOCOL = "rapport.v1"
BEARER_SUBPROTOCOL = "rapport.bearer."
AUTH_TIMEOUT_S = 10.0
PING_S = 25.0
# Nothing heard from the client for this long (two pings unanswered): it is gone.
SILENCE_S = 2 * PING_S + 10.0

AUTH_FAILED = 4401
AUTH_TIMEOUT = 4408
MALFORMED = 4400

BEHIND_DETAIL = "This connection fell too far behind: follow again from `position`."
_PING = Frame.of({"type": "ping"})


class Disconnected(Exception):
    """The client is gone."""


class Channel(Protocol):
    """A WebSocket as the stream uses it (the router adapts the framework's)."""

    async def receive(self) -> str | bytes:
        """The next frame. Raises Disconnected."""
        ...

    async def send(self, text: str) -> None:
        """Raises Disconnected."""
        ...

    async def close(self, code: int, reason: str) -> None: ...

    def direct_writer(self) -> SocketWriter | None:
        """A way to write whole frames to the socket without awaiting, if the server
        offers one (`rapport.realtime.uvicorn_protocol`)."""
        ...


def offered_token(subprotocols: Sequence[str]) -> str | None:
    """The token of a `rapport.bearer.<token>` subprotocol, if the client offered one."""
    for offered in subprotocols:
        if offered.startswith(BEARER_SUBPROTOCOL):
            return offered[len(BEARER_SUBPROTOCOL) :]
    return None


def _text(item: Ready | Delivery | Frame | Behind, connection: Connection) -> str:
    if isinstance(item, Delivery):
        return item.frame
    if isinstance(item, Frame):
        return item.text
    if isinstance(item, Ready):
        return orjson.dumps({"type": "ready", "user_id": str(connection.user_id), "position": item.position}).decode()
    return orjson.dumps({"type": "resync", "position": connection.sent, "detail": BEHIND_DETAIL}).decode()


async def serve_stream(
    channel: Channel,
    *,
    runtime: Runtime,
    hub: Hub,
    signals: Signals,
    since: str | None,
    token: str | None,
) -> None:
    """Serve one accepted WebSocket until it closes."""
    with contextlib.suppress(Disconnected):
        await _serve(channel, runtime=runtime, hub=hub, signals=signals, since=since, token=token)


async def _serve(
    channel: Channel, *, runtime: Runtime, hub: Hub, signals: Signals, since: str | None, token: str | None
) -> None:
    try:
        position = parse_position(since)
    except RapportError as error:
        await channel.send(error_frame(error, None).text)
        await channel.close(MALFORMED, "invalid-position")
        return
    if token is None:
        token = await _first_frame_token(channel)
        if token is None:
            return
    try:
        credential = runtime.authenticate(runtime, token)
        actor = await credential.actor()
    except RapportError:
        await channel.close(AUTH_FAILED, "invalid-token")
        return
    connection = Connection(actor)
    try:
        try:
            async for item in follow(connection, credential=credential, runtime=runtime, hub=hub, since=position):
                await channel.send(_text(item, connection))
        except RapportError:  # the session or key ended before or while catching up
            await channel.close(AUTH_FAILED, "invalid-token")
            return
        await signals.connected(actor, connection_id=connection.id)
        try:
            live = _Live(channel, connection, runtime=runtime, hub=hub, signals=signals, credential=credential)
            await live.run()
        finally:
            await signals.disconnected(actor, connection_id=connection.id)
    finally:
        hub.leave(connection)


async def _first_frame_token(channel: Channel) -> str | None:
    try:
        text = await asyncio.wait_for(channel.receive(), AUTH_TIMEOUT_S)
    except TimeoutError:
        await channel.close(AUTH_TIMEOUT, "auth-timeout")
        return None
    try:
        frame, _ = parse(text)
    except Refused as refused:
        await channel.send(refused.error.text)
        await channel.close(AUTH_FAILED, "auth-required")
        return None
    if not isinstance(frame, AuthFrame):
        await channel.close(AUTH_FAILED, "auth-required")
        return None
    return frame.token


class _Live:
    """A follower that caught up: its writer, reader and heartbeat, until one ends."""

    def __init__(
        self,
        channel: Channel,
        connection: Connection,
        *,
        runtime: Runtime,
        hub: Hub,
        signals: Signals,
        credential: Credential,
    ) -> None:
        self.channel = channel
        self.connection = connection
        self.runtime = runtime
        self.hub = hub
        self.signals = signals
        self.credential = credential
        self.heard = time.monotonic()

    async def run(self) -> None:
        # From here the hub may write to the socket itself whenever the writer is idle:
        # what the catch-up sent is out, and what go_live queued is drained first.
        self.connection.direct = self.channel.direct_writer()
        tasks = [asyncio.create_task(self.write()), asyncio.create_task(self.read()), asyncio.create_task(self.beat())]
        try:
            await asyncio.wait(tasks[:2], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, Exception) and not isinstance(outcome, Disconnected):
                log.error("realtime.stream_failed", exc_info=outcome)

    async def write(self) -> None:
        connection = self.connection
        while True:
            item: Item = await connection.next_item()
            if isinstance(item, Close):
                await self.channel.close(item.code, item.reason)
                return
            await self.channel.send(_text(item, connection))
            if isinstance(item, Delivery):
                connection.sent = max(connection.sent, item.position)

    async def read(self) -> None:
        while True:
            text = await self.channel.receive()
            self.heard = time.monotonic()
            try:
                frame, ref = parse(text)
            except Refused as refused:
                self.hub.offer(self.connection, refused.error)
                continue
            reply = await answer(
                frame,
                ref,
                runtime=self.runtime,
                credential=self.credential,
                signals=self.signals,
                connection_id=self.connection.id,
            )
            if reply is not None:
                self.hub.offer(self.connection, reply)

    async def beat(self) -> None:
        while True:
            await asyncio.sleep(PING_S)
            if time.monotonic() - self.heard > SILENCE_S:
                self.connection.close(AUTH_TIMEOUT, "silent")
                self.hub.leave(self.connection)
                return
            self.hub.offer(self.connection, _PING)
