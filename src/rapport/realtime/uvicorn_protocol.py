"""The WebSocket protocol `rapport serve` runs under uvicorn (`rapport.cli.server_options`):
uvicorn's own `websockets-sansio` implementation, with two additions.

- A direct writer for the stream (docs/decisions/0019). Through ASGI a frame costs a
  task wake-up, Starlette's `send_text` and a frame serialised per socket; the hub instead
  writes each event's frame, built once, straight to every recipient's transport. The
  writer is offered to the app as an ASGI scope extension, `DIRECT_WRITE_EXTENSION`, so
  an app served any other way (a test client, another server) simply lacks it and uses
  its queue and writer task.
- On shutdown, an open socket is closed with 1001 (going away) and a reason, rather than
  uvicorn's 1012 (service restart), before the app's own shutdown runs: clients reconnect,
  with their last position, to another server or to this one once it is back.

Both rest on uvicorn's protocol attributes (`transport`, `conn`, `close_sent`, ...), which
tests/realtime exercise through a real server, so an upgrade that changes them fails there.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

from rapport.realtime._connection import SHUTTING_DOWN

# The scope extension that carries it: `scope["extensions"][DIRECT_WRITE_EXTENSION]["writer"]`.
DIRECT_WRITE_EXTENSION = "rapport.direct_write"
# How much a socket's send buffer may hold for a direct write to add to it. Past it the frame
# goes to the follower's queue, whose writer waits for the buffer to drain (uvicorn's flow
# control); asyncio pauses writing at 64 KiB, so this keeps within what uvicorn allows.
BUFFER_LIMIT = 64 * 1024

SHUTDOWN_REASON = "server-shutting-down"


class _TransportWriter:
    """Writes whole frames to one socket's transport, beside uvicorn's own writes (each of
    which is a whole frame too, so frames never interleave)."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: StreamProtocol) -> None:
        self._protocol = protocol

    def write(self, frame: bytes) -> bool:
        protocol = self._protocol
        transport = protocol.transport
        if (
            protocol.close_sent
            or protocol.disconnected
            or protocol.conn.state is not State.OPEN
            or not protocol.writable.is_set()
            or transport.is_closing()
            or transport.get_write_buffer_size() > BUFFER_LIMIT
        ):
            return False
        try:
            transport.write(frame)
        except Exception:  # the writer task, through the queue, hears why
            return False
        return True


class StreamProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, with the direct writer and the 1001 shutdown."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # The scope exists once the handshake is accepted; the app's task that reads it has
        # been created but has not run yet.
        scope: dict[str, Any] | None = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][DIRECT_WRITE_EXTENSION] = {"writer": _TransportWriter(self)}

    def shutdown(self) -> None:
        if not self.handshake_complete or self.close_sent or self.disconnected:
            super().shutdown()
            return
        self.stop_keepalive()
        self.queue.put_nowait({"type": "websocket.disconnect", "code": SHUTTING_DOWN, "reason": SHUTDOWN_REASON})
        self.conn.send_close(SHUTTING_DOWN, SHUTDOWN_REASON)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.transport.close()
