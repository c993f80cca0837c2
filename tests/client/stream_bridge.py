"""A WebSocket server that speaks the realtime protocol v1 (notes: realtime_protocol.md)
over a real Rapport server's HTTP API, for testing the client's stream.

Authentication asks the server (`GET /v1/auth/me` with the token); events and their
positions are the server's own outbox, read with `GET /v1/sync` (replay from `since`,
then polled for live events); `send` and `read` frames are the server's POSTs, their
answers sent back as `ack` or `error` frames. What a test needs to provoke, it can:
connections dropped without a close frame, closes with a code, handshakes refused for a
while, a retention horizon (a `resync`), a send made but never acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

PROTOCOL = Subprotocol("rapport.v1")
BEARER = "rapport.bearer."


@dataclass(frozen=True)
class Handshake:
    path: str
    subprotocols: tuple[str, ...]
    since: int | None


class StreamBridge:
    def __init__(self, api_url: str, *, ping_every: float = 25.0, poll_every: float = 0.02) -> None:
        self.api = httpx.AsyncClient(base_url=api_url)
        self.ping_every = ping_every
        self.poll_every = poll_every
        self.horizon = 0  # events at or below are "no longer kept"
        self.refusing = False
        self.swallow_next_send = False
        self.handshakes: list[Handshake] = []
        self.pongs = 0
        self.sends: list[dict[str, Any]] = []
        self.connections: dict[ServerConnection, str] = {}  # each live socket and its user id
        self._server: Server | None = None
        self.url = ""

    async def __aenter__(self) -> StreamBridge:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            select_subprotocol=lambda _, offered: PROTOCOL if PROTOCOL in offered else None,
        )
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/v1/stream"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        await self.api.aclose()

    # What tests do to the connections.

    def drop(self) -> None:
        """Cut every connection as a network failure would: no close frame."""
        for ws in list(self.connections):
            ws.transport.abort()

    async def close_all(self, code: int, reason: str = "") -> None:
        for ws in list(self.connections):
            await ws.close(code, reason)

    # The protocol.

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        offered = tuple(p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip())
        query = parse_qs(urlsplit(request.path).query)
        since = int(query["since"][0]) if "since" in query else None
        self.handshakes.append(Handshake(path=request.path, subprotocols=offered, since=since))
        if self.refusing:
            return Response(503, "Service Unavailable", Headers(), b"restarting")
        if urlsplit(request.path).path != "/v1/stream":
            return Response(404, "Not Found", Headers(), b"")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        token = await self._token(ws)
        if token is None:
            return
        me = await self.api.get("/v1/auth/me", headers=_bearer(token))
        if me.status_code != 200:
            await ws.close(4401, "authentication failed")
            return
        user_id = me.json()["id"]
        assert ws.request is not None
        query = parse_qs(urlsplit(ws.request.path).query)
        since = int(query["since"][0]) if "since" in query else None
        position = since if since is not None else await self._head(token)
        self.connections[ws] = user_id
        tasks: list[asyncio.Task[None]] = []
        try:
            await _send(ws, {"type": "ready", "user_id": user_id, "position": position})
            if since is not None and since < self.horizon:
                position = self.horizon
                await _send(ws, {"type": "resync", "position": position, "detail": "retention passed `since`"})
            position = await self._deliver(ws, token, position)
            await _send(ws, {"type": "caught_up", "position": position})
            tasks = [
                asyncio.create_task(self._follow(ws, token, position)),
                asyncio.create_task(self._ping(ws)),
            ]
            await self._read(ws, token, user_id)
        except ConnectionClosed:
            pass
        finally:
            self.connections.pop(ws, None)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _token(self, ws: ServerConnection) -> str | None:
        assert ws.request is not None
        offered = [p.strip() for p in ws.request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        for protocol in offered:
            if protocol.startswith(BEARER):
                return protocol[len(BEARER) :]
        try:
            async with asyncio.timeout(10):
                frame = json.loads(await ws.recv())
        except TimeoutError:
            await ws.close(4408, "no auth frame in time")
            return None
        if frame.get("type") != "auth":
            await ws.close(4401, "the first frame must be auth")
            return None
        return str(frame["token"])

    async def _head(self, token: str) -> int:
        position = 0
        while True:
            page = (
                await self.api.get("/v1/sync", params={"since": position, "limit": 1000}, headers=_bearer(token))
            ).json()
            position = page["position"]
            if not page["more"]:
                return int(position)

    async def _deliver(self, ws: ServerConnection, token: str, position: int) -> int:
        """Send every event after `position` the server has now; the new position."""
        while True:
            answer = await self.api.get("/v1/sync", params={"since": position, "limit": 100}, headers=_bearer(token))
            page = answer.json()
            for event in page["events"]:
                frame_event = {key: event[key] for key in ("type", "scope", "payload", "actor_id", "created_at")}
                await _send(ws, {"type": "event", "position": event["position"], "event": frame_event})
            position = int(page["position"])
            if not page["more"]:
                return position

    async def _follow(self, ws: ServerConnection, token: str, position: int) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self.poll_every)
                position = await self._deliver(ws, token, position)

    async def _ping(self, ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self.ping_every)
                await _send(ws, {"type": "ping"})

    async def _read(self, ws: ServerConnection, token: str, user_id: str) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "pong":
                self.pongs += 1
            elif kind == "send":
                await self._post(
                    ws, token, frame, f"/v1/conversations/{frame['conversation_id']}/messages", frame["message"]
                )
            elif kind == "read":
                body = {"message_id": frame["message_id"]}
                await self._post(ws, token, frame, f"/v1/conversations/{frame['conversation_id']}/read", body)
            elif kind == "typing":
                typing = {"type": "typing", **_pick(frame, "conversation_id", "typing"), "user_id": user_id}
                await self._to_others(ws, {**typing, "expires_in_ms": 6000})
            elif kind == "presence":
                shown = "offline" if frame["status"] == "invisible" else frame["status"]
                await self._to_others(
                    ws, {"type": "presence", "user_id": user_id, "status": shown, "last_seen_at": None}
                )

    async def _post(self, ws: ServerConnection, token: str, frame: dict[str, Any], path: str, body: Any) -> None:
        answer = await self.api.post(path, json=body, headers=_bearer(token))
        if frame["type"] == "send":
            self.sends.append(frame)
            if self.swallow_next_send:
                # Made on the server, but the connection dies before the ack leaves.
                self.swallow_next_send = False
                ws.transport.abort()
                return
        if answer.status_code < 300:
            await _send(
                ws, {"type": "ack", "ref": frame.get("ref"), "status": answer.status_code, "body": answer.json()}
            )
        else:
            await _send(ws, {"type": "error", "ref": frame.get("ref"), "problem": answer.json()})

    async def _to_others(self, sender: ServerConnection, frame: dict[str, Any]) -> None:
        for ws in list(self.connections):
            if ws is not sender:
                with contextlib.suppress(ConnectionClosed):
                    await _send(ws, frame)


def _pick(frame: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: frame[key] for key in keys}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _send(ws: ServerConnection, frame: dict[str, Any]) -> None:
    await ws.send(json.dumps(frame))
