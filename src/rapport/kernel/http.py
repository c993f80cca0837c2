"""The HTTP edge every domain shares: problem+json errors, request ids, body limits,
request metrics, the client's address behind trusted proxies, and who may read `/metrics`."""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any, Literal

import asyncpg
import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import Counter, Histogram
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rapport.kernel.errors import (
    MalformedJson,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RapportError,
    ServiceUnavailable,
    ValidationFailed,
    problem_type,
)
from rapport.kernel.ids import uuid7

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

REQUESTS = Counter("rapport_http_requests_total", "HTTP requests answered.", ["method", "route", "status"])
LATENCY = Histogram(
    "rapport_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def problem_response(error: RapportError, request: Request | None = None) -> Response:
    body = error.to_problem(instance=str(request.url.path) if request else None)
    request_id = request.scope.get("rapport.request_id") if request else None
    if request_id:
        body["request_id"] = request_id
    return Response(orjson.dumps(body), status_code=error.status, media_type=PROBLEM_JSON, headers=error.headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # The offending input is left out on purpose: it may be a password.
    return [
        {"loc": [str(part) for part in err.get("loc", ())], "msg": err.get("msg"), "type": err.get("type")}
        for err in exc.errors()
    ]


async def _on_rapport_error(request: Request, exc: RapportError) -> Response:
    return problem_response(exc, request)


async def _on_validation_error(request: Request, exc: RequestValidationError) -> Response:
    errors = _validation_errors(exc)
    if any(err["type"] == "json_invalid" for err in errors):
        return problem_response(MalformedJson("The request body could not be parsed as JSON."), request)
    summary = "; ".join(f"{'.'.join(err['loc'])}: {err['msg']}" for err in errors[:5])
    return problem_response(ValidationFailed(summary, errors=errors), request)


async def _on_http_exception(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI wraps a body it cannot decode as text in a bare 400.
        error: RapportError = MalformedJson("The request body could not be parsed as JSON.")
    elif exc.status_code == 413:
        error = PayloadTooLarge(str(exc.detail))
    elif exc.status_code == 404:
        error = NotFound(f"No resource at {request.url.path}.")
    elif exc.status_code == 405:
        error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}.")
        error.headers.update(exc.headers or {})
    else:
        error = RapportError(str(exc.detail))
        error.status = exc.status_code  # type: ignore[misc]
    return problem_response(error, request)


def install_error_handlers(app: FastAPI) -> None:
    """The handlers of expected errors. Unexpected ones are UnexpectedErrorMiddleware's:
    an `Exception` handler here would go to Starlette's outermost middleware, which
    answers and then re-raises, and the server then drops the keep-alive connection."""
    app.add_exception_handler(RapportError, _on_rapport_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)  # type: ignore[arg-type]


class UnexpectedErrorMiddleware:
    """Answers an exception no handler expected (a bug) with a 500 problem+json, logs it
    with the request id, and does not re-raise: the answer is complete and well formed,
    so the connection stays usable for the client's next request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = finished = False

        async def watched_send(message: Message) -> None:
            nonlocal started, finished
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as error:
            request_id = scope.get("rapport.request_id")
            unavailable = _database_unavailable(error)
            if unavailable:
                log.warning("request.database_unavailable", path=scope.get("path"), request_id=request_id,
                            reason=unavailable)  # fmt: skip
            else:
                log.exception("request.failed", path=scope.get("path"), request_id=request_id)
            if started and not finished:
                # Half an answer is out: only closing the connection tells the client.
                raise
            if not started:
                await _send_internal_error(send, request_id, unavailable=unavailable)
            # Finished (a task after the answer failed): the client has what it asked for.


# Why the database would not take a connection: not a fault of the request, nor a bug,
# but a moment to wait (the server full, starting or stopping, the pool exhausted).
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    ConnectionRefusedError,
    PoolTimeout,
)


def _database_unavailable(error: BaseException) -> str | None:
    """What kept the database from answering, when that is why `error` happened: found
    along its causes, since SQLAlchemy wraps the driver's exception."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _UNAVAILABLE):
            return type(current).__name__
        current = current.__cause__ or current.__context__
    return None


async def _send_internal_error(send: Send, request_id: str | None, *, unavailable: str | None = None) -> None:
    headers = [(b"content-type", PROBLEM_JSON.encode())]
    if unavailable:
        status, slug, title = ServiceUnavailable.status, ServiceUnavailable.slug, ServiceUnavailable.title
        detail = "The database cannot take the request now; try again in a moment."
        headers.append((b"retry-after", b"1"))
    else:
        status, slug, title = 500, "internal-error", "Internal server error"
        detail = "Something went wrong on our side. The request id identifies it in the logs."
    problem = {"type": problem_type(slug), "title": title, "status": status, "detail": detail, "request_id": request_id}
    body = orjson.dumps(problem)
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address


def _parse_address(text: str) -> Address | None:
    """An address as proxies write it: bare, `[v6]`, with a port, or quoted (Forwarded)."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None  # `unknown`, an obfuscated name (RFC 7239), or garbage
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _forwarded_for(values: Iterable[str], header: str) -> list[Address | None]:
    """The addresses of the chain, client first, from every line of the header."""
    chain: list[Address | None] = []
    for value in values:
        for element in value.split(","):
            if header == "x-forwarded-for":
                chain.append(_parse_address(element))
                continue
            pairs = (pair.partition("=") for pair in element.split(";"))
            found = [_parse_address(v) for k, _, v in pairs if k.strip().lower() == "for"]
            chain.append(found[0] if found else None)
    return chain


def resolve_client(
    peer: str, forwarded: Sequence[str], *, trusted: Sequence[Network], header: str = "x-forwarded-for"
) -> str:
    """The client's address: the direct peer unless it is a trusted proxy; then, walking
    the forwarded chain from the right (the entries trusted proxies appended), the first
    address that is not itself a trusted proxy. Entries further left are whatever the
    client sent and are never read."""
    last_trusted = _parse_address(peer)
    if last_trusted is None or not _within(last_trusted, trusted):
        return peer
    for address in reversed(_forwarded_for(forwarded, header)):
        if address is None:
            # A trusted proxy could not name its peer: the nearest hop known is that proxy.
            return str(last_trusted)
        if not _within(address, trusted):
            return str(address)
        last_trusted = address
    return str(last_trusted)


def _within(address: Address, networks: Sequence[Network]) -> bool:
    return any(address in network for network in networks)


class ClientAddressMiddleware:
    """Puts the client's address in `scope["client"]`, where every reader finds it
    (throttles, sessions, sign-in history), and keeps the direct peer in
    `scope["rapport.peer"]`. Forwarded headers count only from RAPPORT_TRUSTED_PROXIES;
    the server's own proxy-header handling is off (`rapport serve`), so this is the one
    place that decides."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        trusted: Sequence[Network],
        header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for",
    ) -> None:
        self.app = app
        self.trusted = tuple(trusted)
        self.header = header.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            peer = scope.get("client")
            scope["rapport.peer"] = peer
            if peer and self.trusted:
                values = [value.decode("latin-1") for name, value in scope["headers"] if name == self.header]
                if values:
                    client = resolve_client(peer[0], values, trusted=self.trusted, header=self.header.decode())
                    if client != peer[0]:
                        scope["client"] = (client, 0)
        await self.app(scope, receive, send)


def direct_peer(request: Request) -> str | None:
    """The address of the connection itself, whatever forwarded headers say."""
    peer = request.scope.get("rapport.peer", request.scope.get("client"))
    return str(peer[0]) if peer else None


# Headers a reverse proxy adds when it passes a request on.
_PROXIED = ("x-forwarded-for", "forwarded", "x-real-ip")


def may_read_metrics(request: Request, token: str | None) -> bool:
    """With a token: only `Authorization: Bearer <token>`. Without: only a direct
    connection from this machine (a scraper on the host, or through an SSH tunnel), and
    not one a reverse proxy on this machine passed on from elsewhere."""
    if token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
    if any(name in request.headers for name in _PROXIED):
        return False
    peer = direct_peer(request)
    address = _parse_address(peer) if peer else None
    return address is not None and address.is_loopback


class RequestContextMiddleware:
    """Gives each request an id (kept from `X-Request-ID` when well formed), binds it to
    every log line, returns it in the answer and records the request's metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else str(uuid7())
        scope["rapport.request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            LATENCY.labels(scope["method"], template).observe(time.perf_counter() - started)
            REQUESTS.labels(scope["method"], template, str(status)).inc()
            structlog.contextvars.unbind_contextvars("request_id")


class BodyLimitMiddleware:
    """Refuses bodies over the limit with 413 before the app reads them whole.

    `streamed` names the routes, as (method, path pattern), that read their body as a
    stream and bound it themselves (uploads of files, to limits of their own): the limit
    of bodies read whole does not apply to them."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, streamed: Iterable[tuple[str, str]] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self._streamed = [(method.upper(), re.compile(pattern)) for method, pattern in streamed]

    def _is_streamed(self, scope: Scope) -> bool:
        method, path = scope.get("method", ""), scope.get("path", "")
        return any(method == wanted and pattern.fullmatch(path) for wanted, pattern in self._streamed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_streamed(scope):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, counted_receive, send)
        except _BodyTooLarge:
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        error = PayloadTooLarge(f"Request bodies are limited to {self.max_bytes} bytes.")
        body = orjson.dumps(error.to_problem(instance=scope.get("path")))
        await send(
            {
                "type": "http.response.start",
                "status": error.status,
                "headers": [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(StarletteHTTPException):
    """Raised from `receive`. An HTTPException because FastAPI re-raises those while it
    reads the body (any other error there becomes a bare 400); the error handlers then
    answer 413 inside the app."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"Request bodies are limited to {max_bytes} bytes.")
