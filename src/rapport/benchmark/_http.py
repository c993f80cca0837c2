"""A lean HTTP/1.1 client for measuring: one keep-alive connection per client.

Why not httpx for the measured requests: an httpx request costs about a millisecond of the
client's CPU on a 2-core machine, so at a few hundred requests a second the load generator
takes a third of a core from the server it measures, and adds that millisecond to every
latency. Here a client is one connection (an asyncio protocol) that writes the whole
request at once and parses the answer with httptools (uvicorn's parser): tens of
microseconds a request. httpx still signs the clients in and sets the run up.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any, cast
from urllib.parse import urlsplit

import httptools


def http_request(method: str, path: str, *, host: str, token: str | None = None, body: bytes | None = None) -> bytes:
    """One HTTP/1.1 request, keep-alive, with a JSON body when given."""
    lines = [f"{method} {path} HTTP/1.1", f"host: {host}", "user-agent: rapport-bench"]
    if token is not None:
        lines.append(f"authorization: Bearer {token}")
    if body is not None:
        lines += ["content-type: application/json", f"content-length: {len(body)}"]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return head + body if body is not None else head


class Connection(asyncio.Protocol):
    """One keep-alive connection: send a request, wait for its whole answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []
        self.lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not registered as such
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(error)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionResetError("the server closed the connection")
        self._fail(self.lost)

    def _fail(self, error: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.parser.get_status_code(), b"".join(self.body)))
        self.body = []

    async def send(self, request: bytes) -> tuple[int, bytes]:
        if self.lost is not None or self.transport is None:
            raise ConnectionResetError("connection lost")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(host: str, port: int) -> Connection:
    _, protocol = await asyncio.get_running_loop().create_connection(Connection, host, port)
    return protocol


# As long as httpx waited in the bench before: a request that outlasts it is a stall to see.
ANSWER_WITHIN_S = 60.0


class Client:
    """One node's keep-alive connection for one measuring client, opened on first use and
    again after the server closed it (its keep-alive timeout), as a real client would."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.authority = parts.netloc
        self.connection: Connection | None = None

    async def request(
        self, method: str, path: str, *, token: str | None = None, payload: Any = None
    ) -> tuple[int, bytes]:
        """The answer's status and body.

        Raises:
            TimeoutError: no whole answer within ANSWER_WITHIN_S; the connection is closed,
                since a late answer would be taken for the next request's.
        """
        body = None if payload is None else json.dumps(payload).encode()
        raw = http_request(method, path, host=self.authority, token=token, body=body)
        if self.connection is None or self.connection.lost is not None:
            self.connection = await connect(self.host, self.port)
        try:
            async with asyncio.timeout(ANSWER_WITHIN_S):
                return await self.connection.send(raw)
        except TimeoutError:
            self.close()
            raise

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
