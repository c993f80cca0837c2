"""`/v1/events`: the stream as Server-Sent Events, for clients that cannot hold a
WebSocket. The same follower, catch-up and hub as the WebSocket; each event carries its
position as its `id`, so a browser's `EventSource` resumes by itself (`Last-Event-ID`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson

from rapport.kernel.actor import Credential
from rapport.kernel.errors import RapportError
from rapport.kernel.runtime import Runtime
from rapport.realtime._connection import Behind, Close, Connection, Delivery, Frame, Item
from rapport.realtime._follow import Ready, follow
from rapport.realtime._hub import Hub

HEARTBEAT_S = 15.0
BEHIND_DETAIL = "This stream fell too far behind: follow again from `position`."
_HEARTBEAT = ": ping\n\n"
# Frames that are the WebSocket's own business: the SSE stream leaves them out.
_SOCKET_ONLY = frozenset({"caught_up", "ping", "ack", "error"})


def _message(item: Ready | Item, connection: Connection) -> str | None:
    if isinstance(item, Delivery):
        return item.server_sent
    if isinstance(item, Behind):
        data = orjson.dumps({"position": connection.sent, "detail": BEHIND_DETAIL}).decode()
        return f"event: resync\ndata: {data}\n\n"
    if isinstance(item, Frame) and item.type not in _SOCKET_ONLY:
        if item.type == "resync":
            body = orjson.loads(item.text)
            data = orjson.dumps({"position": body["position"], "detail": body["detail"]}).decode()
            return f"event: resync\ndata: {data}\n\n"
        return f"event: {item.type}\ndata: {item.text}\n\n"
    return None


async def server_sent_events(
    *, runtime: Runtime, hub: Hub, credential: Credential, since: int | None
) -> AsyncIterator[str]:
    """The messages of one Server-Sent Events response, until the client goes, the session
    ends, or the follower falls behind."""
    connection = Connection(await credential.actor())
    try:
        try:
            async for item in follow(connection, credential=credential, runtime=runtime, hub=hub, since=since):
                message = _message(item, connection)
                if message is not None:
                    yield message
        except RapportError:  # the session or key ended meanwhile
            return
        while True:
            try:
                queued = await asyncio.wait_for(connection.next_item(), HEARTBEAT_S)
            except TimeoutError:
                yield _HEARTBEAT
                continue
            if isinstance(queued, Close):
                return
            message = _message(queued, connection)
            if message is not None:
                yield message
            if isinstance(queued, Delivery):
                connection.sent = max(connection.sent, queued.position)
    finally:
        hub.leave(connection)
