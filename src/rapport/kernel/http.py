"""The HTTP edge every domain shares: problem+json errors, request ids, body limits and
request metrics."""

from __future__ import annotations

import re
import time
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rapport.kernel.errors import (
    MalformedJson,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RapportError,
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


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    request_id = request.scope.get("rapport.request_id")
    log.exception("request.failed", path=request.url.path, request_id=request_id)
    body = {
        "type": problem_type("internal-error"),
        "title": "Internal server error",
        "status": 500,
        "detail": "Something went wrong on our side. The request id identifies it in the logs.",
        "request_id": request_id,
    }
    return JSONResponse(body, status_code=500, media_type=PROBLEM_JSON)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RapportError, _on_rapport_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _on_unexpected)


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
    """Refuses bodies over the limit with 413 before the app reads them whole."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
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
