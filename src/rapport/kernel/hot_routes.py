"""The hot routes' own lane: plain ASGI for the few requests Rapport answers thousands of
times a second, with FastAPI behind it for everything else (docs/decisions/0017).

Sending a message spent about half of its server time in FastAPI's routing, dependency
resolution and request objects, more than in its one statement to PostgreSQL. A hot route
here does only what its request needs: match the path, take the bearer token, parse and
validate the body with the route's own Pydantic model, call the service, write the
answer. It sits inside the app's middlewares (client address, request id and metrics, the
catcher of unexpected errors, the body limit), so every answer still passes them.

It answers only what it is sure of. A handler returns `None` when anything is unusual (a
missing token, a body that is not plain valid JSON of the right shape, a query parameter
it does not know, a value it would have to judge): the request then goes to FastAPI with
its body replayed, and FastAPI's route, declared as before, answers it exactly as it
always did, error included. The routes stay declared in FastAPI for the OpenAPI document
and for those requests. Errors the service raises are answered here as problem+json, as
the app's handler answers them.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl
from uuid import UUID

import orjson

from rapport.kernel.errors import RapportError

# The raw ASGI shapes; this module imports no web framework.
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_JSON = b"application/json"
_PROBLEM_JSON = b"application/problem+json"
_PARAMETER = re.compile(r"\{(\w+)\}")
# What a path parameter of a hot route may be: a UUID's characters, nothing to judge.
_SEGMENT = r"(?P<\1>[0-9A-Fa-f-]{32,36})"


@dataclass(frozen=True)
class HotAnswer:
    status: int
    body: bytes


@dataclass
class HotRequest:
    """What a hot handler may read of a request."""

    scope: Scope
    path_params: dict[str, str]
    body: bytes

    @property
    def app_state(self) -> Any:
        return self.scope["app"].state

    def bearer(self) -> str | None:
        """The bearer token, or None when the header is missing or anything but plain."""
        for name, value in self.scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() != b"bearer" or not token or b" " in token:
                    return None
                try:
                    return str(token.decode("ascii"))
                except UnicodeDecodeError:
                    return None
        return None

    def uuid(self, name: str) -> UUID | None:
        try:
            return UUID(self.path_params[name])
        except ValueError:
            return None

    def query(self, *allowed: str) -> dict[str, str] | None:
        """The query parameters, or None unless each is one of `allowed`, given once, in
        printable ASCII (anything else is FastAPI's to judge)."""
        raw = self.scope.get("query_string", b"")
        try:
            pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=bool(raw))
        except (UnicodeDecodeError, ValueError):
            return None
        given = dict(pairs)
        if len(given) != len(pairs) or not set(given) <= set(allowed):
            return None
        if not all(value.isascii() and value.isprintable() for value in given.values()):
            return None
        return given

    def json_object(self) -> dict[str, Any] | None:
        """The body as a JSON object, or None unless it is one, sent as `application/json`."""
        if self._content_type() != _JSON:
            return None
        try:
            parsed = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, dict) else None

    def _content_type(self) -> bytes | None:
        for name, value in self.scope["headers"]:
            if name == b"content-type":
                kind, _, parameters = value.partition(b";")
                if parameters.strip().lower() not in (b"", b"charset=utf-8"):
                    return None
                return bytes(kind.strip().lower())
        return None


HotHandler = Callable[[HotRequest], Awaitable[HotAnswer | None]]


@dataclass(frozen=True)
class HotRoute:
    """`template` is the FastAPI path it stands in for (metrics are labelled with it)."""

    method: str
    template: str
    handler: HotHandler
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", re.compile("^" + _PARAMETER.sub(_SEGMENT, self.template) + "$"))

    @property
    def path(self) -> str:
        # Read by RequestContextMiddleware as a matched route's template.
        return self.template


class HotRoutes:
    """The ASGI middleware that serves `routes` and passes every other request on."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[HotRoute]) -> None:
        self.app = app
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        for route in self.routes:
            if route.method == method:
                found = route.pattern.match(path)
                if found is not None:
                    await self._serve(route, found.groupdict(), scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _serve(self, route: HotRoute, params: dict[str, str], scope: Scope, receive: Receive, send: Send) -> None:
        body, ended = await _read_body(receive)
        request = HotRequest(scope=scope, path_params=params, body=body)
        try:
            answer = await route.handler(request) if ended else None
        except RapportError as error:
            scope["route"] = route
            await _send_problem(send, scope, error)
            return
        if answer is None:
            await self.app(scope, _replay(body, ended, receive), send)
            return
        scope["route"] = route
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(b"content-type", _JSON), (b"content-length", str(len(answer.body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The whole body, and whether it ended (False: the client went away first)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes, ended: bool, receive: Receive) -> Receive:
    """A `receive` that gives the body already read once, then what the client sends next."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": not ended}
        return await receive()

    return replayed


async def _send_problem(send: Send, scope: Scope, error: RapportError) -> None:
    # As kernel.http.problem_response answers it for FastAPI's routes.
    problem = error.to_problem(instance=scope["path"])
    request_id = scope.get("rapport.request_id")
    if request_id:
        problem["request_id"] = request_id
    body = orjson.dumps(problem)
    headers = [(b"content-type", _PROBLEM_JSON), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
