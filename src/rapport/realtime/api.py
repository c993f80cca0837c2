"""The realtime routes: `/v1/stream` (WebSocket) and `/v1/events` (Server-Sent Events).

The protocol is docs/REALTIME.md; this module only adapts the framework's WebSocket and
streaming response to the service, which knows neither."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, WebSocket
from fastapi.responses import StreamingResponse
from starlette.websockets import WebSocketDisconnect

from rapport.kernel.deps import CallerDep
from rapport.realtime import service
from rapport.realtime.uvicorn_protocol import DIRECT_WRITE_EXTENSION

router = APIRouter(prefix="/v1", tags=["realtime"])


class _Socket:
    """The framework's WebSocket as the service's `Channel`."""

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket

    async def receive(self) -> str | bytes:
        try:
            message = await self._websocket.receive()
        except (WebSocketDisconnect, RuntimeError) as gone:
            raise service.Disconnected() from gone
        if message["type"] == "websocket.disconnect":
            raise service.Disconnected()
        text: str | None = message.get("text")
        if text is not None:
            return text
        data: bytes = message.get("bytes") or b""
        return data

    async def send(self, text: str) -> None:
        try:
            await self._websocket.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError) as gone:
            raise service.Disconnected() from gone

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self._websocket.close(code, reason)

    def direct_writer(self) -> Any:
        # Offered by `rapport serve`'s WebSocket protocol; absent under any other server.
        extension = (self._websocket.scope.get("extensions") or {}).get(DIRECT_WRITE_EXTENSION)
        return extension.get("writer") if extension else None


async def stream(websocket: WebSocket) -> None:
    """Every event the person may receive, live, in position order (docs/REALTIME.md)."""
    offered = list(websocket.scope.get("subprotocols") or [])
    token = service.offered_token(offered)
    await websocket.accept(subprotocol=service.SUBPROTOCOL if service.SUBPROTOCOL in offered else None)
    realtime: service.Realtime = websocket.app.state.realtime
    await service.serve_stream(
        _Socket(websocket),
        runtime=realtime.runtime,
        hub=realtime.hub,
        signals=realtime.signals,
        since=websocket.query_params.get("since"),
        token=token,
    )


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "The stream, as Server-Sent Events."}},
)
async def events(
    request: Request,
    caller: CallerDep,
    since: Annotated[
        str | None, Query(max_length=20, description="The last position received; absent: from now.")
    ] = None,
    last_event_id: Annotated[
        str | None, Header(max_length=20, description="Set by `EventSource` on reconnecting; wins over `since`.")
    ] = None,
) -> StreamingResponse:
    """The stream for clients that cannot hold a WebSocket: each event is `id: <position>`,
    `event: <type>`, `data: <the event, with its position>`; `event: resync` when the
    events after the asked position are no longer all there; a `: ping` comment every 15 s.
    Resume with `Last-Event-ID` (browsers send it by themselves) or `since`."""
    position = service.parse_position(last_event_id if last_event_id else since)
    # Refused now, with a problem, rather than after the stream has begun.
    async with caller.transaction():
        pass
    realtime: service.Realtime = request.app.state.realtime
    return StreamingResponse(
        service.server_sent_events(
            runtime=realtime.runtime, hub=realtime.hub, credential=caller.credential, since=position
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# A plain WebSocket route, outside FastAPI's dependency injection: the app-wide
# dependencies are written for HTTP requests, and the one query parameter here (`since`)
# is parsed strictly by the service, which refuses anything but a position.
router.add_websocket_route("/v1/stream", stream)
