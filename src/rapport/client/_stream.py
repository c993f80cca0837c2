"""The WebSocket stream (`/v1/stream`, docs: the realtime protocol v1).

One background task owns the socket: it connects with the credential in
`Sec-WebSocket-Protocol` (never in the URL), reads frames into a queue the caller
iterates, answers pings, resolves the acknowledgements of frames the caller sent, and
after a dropped connection reconnects with backoff and `since=<last position received>`.
Events at or below that position are dropped, so a server that replays a little too much
cannot make a duplicate; the server's replay from `since` leaves no gap.

Frames the caller sent that were not acknowledged when the connection dropped are sent
again on the next connection: a message carries its `client_message_id` and a read
marker never moves back, so a repeat changes nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHeader, InvalidStatus, NegotiationError, WebSocketException
from websockets.typing import Subprotocol

from rapport.client._bodies import message_body, new_client_message_id
from rapport.client._session import Session
from rapport.client.errors import StreamClosed, error_for
from rapport.client.events import (
    CaughtUp,
    Connected,
    Event,
    Resync,
    ServerProblem,
    StreamEvent,
    parse_presence,
    parse_typing,
)
from rapport.client.models import Message, ReadState

PROTOCOL = Subprotocol("rapport.v1")
CLOSE_SESSION_REVOKED = 4000
CLOSE_UNAUTHORIZED = 4401
# Handshake answers no retry will change.
FATAL_STATUSES = frozenset({400, 403, 404, 405, 410, 426})


@dataclass(frozen=True)
class Backoff:
    """Delays between reconnection attempts: doubling from `initial` up to `maximum`,
    each between half and all of its step, so that many clients dropped together by
    one server do not all come back at the same instant."""

    initial: float = 0.5
    maximum: float = 30.0

    def delay(self, attempt: int) -> float:
        step = min(self.maximum, self.initial * 2.0 ** min(attempt, 30))
        return step / 2 + random.uniform(0, step / 2)


@dataclass(frozen=True)
class _Outcome:
    """How one connection ended."""

    ready: bool
    token: str
    code: int | None = None
    status: int | None = None


class _End:
    """Marks the end of the queue of events."""


class Stream:
    """The stream of one client: iterate it for events, call `send_message`, `mark_read`,
    `typing` and `set_presence` to act over the same socket. Use it as `async with` (or
    call `close()`) to end it; a fatal end (session revoked, credentials refused) is
    raised as StreamClosed from the iteration, after the events received before it."""

    def __init__(
        self,
        session: Session,
        url: str,
        *,
        since: int | None,
        backoff: Backoff,
        heartbeat_timeout: float,
        buffer: int,
        ack_timeout: float,
        on_close: Callable[[Stream], None],
    ) -> None:
        self._session = session
        self._url = url
        self._received = since
        self.position: int | None = since
        """The position of the last event handed to the caller: keep it to resume a later
        stream from here with `since=`."""
        self.connections = 0
        """How many times the socket was opened and authenticated."""
        self._backoff = backoff
        self._heartbeat_timeout = heartbeat_timeout
        self._buffer = buffer
        self._ack_timeout = ack_timeout
        self._on_close = on_close
        self._events: asyncio.Queue[StreamEvent | _End] = asyncio.Queue()
        self._drained = asyncio.Event()
        self._pending: dict[str, tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]] = {}
        self._refs = itertools.count(1)
        self._ws: ClientConnection | None = None
        self._live = False
        self._presence: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._failure: StreamClosed | None = None
        self._closed = False

    # The caller's side.

    async def __aenter__(self) -> Stream:
        self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> StreamEvent:
        self.start()
        item = await self._events.get()
        self._drained.set()
        if isinstance(item, _End):
            self._events.put_nowait(item)  # for any later call
            if self._failure is not None:
                raise self._failure
            raise StopAsyncIteration
        if isinstance(item, Event | Resync) or (isinstance(item, Connected) and self.position is None):
            self.position = item.position if self.position is None else max(self.position, item.position)
        return item

    def start(self) -> None:
        """Open the socket in the background (iterating or sending does it too)."""
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._run(), name="rapport-stream")

    @property
    def connected(self) -> bool:
        """Whether the socket is open and authenticated now."""
        return self._live

    async def close(self) -> None:
        """Close the socket; iteration ends once the events already received are read."""
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._end(None)

    async def send_message(
        self,
        conversation_id: UUID | str,
        content: str,
        *,
        client_message_id: str | None = None,
        type: str = "text",
        reply_to: UUID | str | None = None,
        thread_id: UUID | str | None = None,
        mentions: Iterable[UUID | str] = (),
        content_metadata: Mapping[str, Any] | None = None,
    ) -> Message:
        """Send a message over the socket; the stored message once the server
        acknowledges it. Sent again after a reconnection until acknowledged, never made
        twice (its `client_message_id`, made here unless given, sees to that).

        Raises:
            RapportError: the server refused it (its problem: NotFound, Forbidden, …).
            TimeoutError: no acknowledgement within the stream's `ack_timeout`.
            StreamClosed: the stream ended first.
        """
        body = message_body(
            content,
            client_message_id=client_message_id or new_client_message_id(),
            type=type,
            reply_to=reply_to,
            thread_id=thread_id,
            mentions=mentions,
            content_metadata=content_metadata,
        )
        frame = {"type": "send", "conversation_id": str(conversation_id), "message": body}
        ack = await self._request(frame)
        return Message.model_validate(ack["body"])

    async def mark_read(self, conversation_id: UUID | str, message_id: UUID | str) -> ReadState:
        """Move the read marker over the socket; the read state the server acknowledges."""
        frame = {"type": "read", "conversation_id": str(conversation_id), "message_id": str(message_id)}
        ack = await self._request(frame)
        return ReadState.model_validate(ack["body"])

    async def typing(self, conversation_id: UUID | str, typing: bool = True) -> bool:
        """Say that you are (or stopped) typing. Typing is never stored, so nothing is
        kept for later: False when the socket is not connected and nothing was sent."""
        return await self._send_now({"type": "typing", "conversation_id": str(conversation_id), "typing": typing})

    async def set_presence(self, status: str) -> None:
        """`online`, `away`, `busy` or `invisible`; said again on every reconnection."""
        self._presence = status
        await self._send_now({"type": "presence", "status": status})

    # The background task's side.

    async def _request(self, frame: dict[str, Any]) -> dict[str, Any]:
        if self._closed:
            raise self._failure or StreamClosed("stream-closed", "The stream was closed.")
        ref = f"r{next(self._refs)}"
        framed = {**frame, "ref": ref}
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ref] = (framed, answer)
        self.start()
        try:
            await self._send_now(framed)  # else sent once the socket is back
            async with asyncio.timeout(self._ack_timeout):
                return await answer
        finally:
            self._pending.pop(ref, None)

    async def _send_now(self, frame: dict[str, Any]) -> bool:
        ws = self._ws
        if not self._live or ws is None:
            return False
        try:
            await ws.send(json.dumps(frame))
        except ConnectionClosed:
            return False
        return True

    async def _emit(self, item: StreamEvent) -> None:
        # Bounded: a caller that stops reading stops the reading of the socket, and the
        # server deals with a slow consumer (a resync) instead of this process's memory.
        while self._events.qsize() >= self._buffer:
            self._drained.clear()
            await self._drained.wait()
        self._events.put_nowait(item)

    def _end(self, failure: StreamClosed | None) -> None:
        if self._failure is None:
            self._failure = failure
        error = failure or StreamClosed("stream-closed", "The stream was closed.")
        for _, answer in self._pending.values():
            if not answer.done():
                answer.set_exception(error)
        self._events.put_nowait(_End())
        self._on_close(self)

    async def _run(self) -> None:
        attempt = 0
        refreshed = False  # a refresh already tried since the last good connection
        try:
            while True:
                outcome = await self._follow_once()
                if outcome.ready:
                    attempt, refreshed = 0, False
                if outcome.code == CLOSE_SESSION_REVOKED:
                    raise StreamClosed("session-revoked", "The session was revoked.", code=outcome.code)
                if outcome.code == CLOSE_UNAUTHORIZED or outcome.status == 401:
                    if refreshed or not self._session.can_refresh:
                        raise StreamClosed(
                            "stream-unauthorized", "The server refused the credentials.", code=outcome.code, status=401
                        )
                    await self._session.refresh(stale=outcome.token)
                    refreshed = True
                    continue
                if outcome.status in FATAL_STATUSES:
                    raise StreamClosed(
                        "stream-unavailable", f"The stream handshake got HTTP {outcome.status}.", status=outcome.status
                    )
                await asyncio.sleep(self._backoff.delay(attempt))
                attempt += 1
        except StreamClosed as fatal:
            self._closed = True
            self._end(fatal)
        except Exception as error:  # a refresh refused, a bug: end the stream and say why
            self._closed = True
            closing = StreamClosed("stream-failed", f"{type(error).__name__}: {error}")
            closing.__cause__ = error
            self._end(closing)

    async def _follow_once(self) -> _Outcome:
        """One connection, from the handshake until it ends."""
        token = await self._session.token()
        url = self._url if self._received is None else f"{self._url}?since={self._received}"
        ready = False
        try:
            async with connect(url, subprotocols=[PROTOCOL, Subprotocol(f"rapport.bearer.{token}")]) as ws:
                self._ws = ws
                try:
                    while True:
                        # The server pings every 25 s: silence longer than this is a dead link.
                        async with asyncio.timeout(self._heartbeat_timeout):
                            raw = await ws.recv()
                        ready = await self._handle(ws, raw) or ready
                except ConnectionClosed as closed:
                    return _Outcome(ready, token, code=closed.rcvd.code if closed.rcvd else None)
                except TimeoutError:
                    return _Outcome(ready, token)
                finally:
                    self._ws, self._live = None, False
        except InvalidStatus as refused:
            return _Outcome(ready, token, status=refused.response.status_code)
        except (NegotiationError, InvalidHeader) as mismatch:
            raise StreamClosed("stream-unavailable", f"The server does not speak rapport.v1: {mismatch}") from mismatch
        except (OSError, TimeoutError, WebSocketException):
            return _Outcome(ready, token)

    async def _handle(self, ws: ClientConnection, raw: str | bytes) -> bool:
        """Act on one frame; True when it was `ready`."""
        try:
            frame = json.loads(raw)
            kind = frame["type"]
        except (ValueError, TypeError, KeyError):
            return False  # not a frame of this protocol: nothing to act on
        if kind == "ready":
            await self._on_ready(ws, frame)
            return True
        if kind == "ping":
            await ws.send('{"type":"pong"}')
        elif kind == "event":
            await self._on_event(frame)
        elif kind in ("ack", "error"):
            await self._on_answer(frame)
        elif kind == "resync":
            position = int(frame["position"])
            self._received = position if self._received is None else max(self._received, position)
            await self._emit(Resync(position=position, detail=str(frame.get("detail", ""))))
        elif kind == "caught_up":
            await self._emit(CaughtUp(position=int(frame["position"])))
        elif kind == "typing":
            await self._emit(parse_typing(frame))
        elif kind == "presence":
            await self._emit(parse_presence(frame))
        return False

    async def _on_ready(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        if self._received is None:
            self._received = int(frame["position"])
        self.connections += 1
        self._live = True
        unanswered = [sent for sent, _ in self._pending.values()]
        if self._presence is not None:
            unanswered.insert(0, {"type": "presence", "status": self._presence})
        for sent in unanswered:
            await ws.send(json.dumps(sent))
        await self._emit(Connected(user_id=UUID(frame["user_id"]), position=int(frame["position"])))

    async def _on_event(self, frame: dict[str, Any]) -> None:
        position = int(frame["position"])
        if self._received is not None and position <= self._received:
            return  # already received before the reconnection
        self._received = position
        await self._emit(Event.from_frame(frame))

    async def _on_answer(self, frame: dict[str, Any]) -> None:
        pending = self._pending.get(str(frame.get("ref")))
        if frame["type"] == "ack":
            if pending is not None and not pending[1].done():
                pending[1].set_result(frame)
            return
        problem = frame.get("problem") or {}
        if pending is None:
            await self._emit(ServerProblem(problem=dict(problem)))
        elif not pending[1].done():
            pending[1].set_exception(error_for(problem, status=int(problem.get("status", 400))))
