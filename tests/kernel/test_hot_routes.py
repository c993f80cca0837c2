"""The hot lane answers what its handler is sure of and hands everything else, body
included, to the app behind it; errors its handler raises are problem+json as the app's."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from rapport.kernel.errors import InvalidToken, ValidationFailed
from rapport.kernel.hot_routes import HotAnswer, HotRequest, HotRoute, HotRoutes, Message, Receive, Scope, Send


class Behind:
    """The app behind the lane: records what reaches it, answers 299 with the body it read."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.seen.append((scope["path"], body))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": body})


async def echo(request: HotRequest) -> HotAnswer | None:
    """Answers a plain JSON object with a query it knows; refuses `fail`; passes the rest."""
    payload = request.json_object()
    query = request.query("limit")
    if payload is None or query is None:
        return None
    if payload.get("fail"):
        raise ValidationFailed("asked to fail", errors=[{"loc": ["body", "fail"]}])
    if payload.get("token"):
        error = InvalidToken("bad token")
        error.headers["WWW-Authenticate"] = "Bearer"
        raise error
    answer: dict[str, Any] = {
        "id": str(request.uuid("item_id")),
        "payload": payload,
        "query": query,
        "bearer": request.bearer(),
    }
    return HotAnswer(201, orjson.dumps(answer))


@pytest.fixture
def behind() -> Behind:
    return Behind()


@pytest.fixture
async def client(behind: Behind) -> Any:
    lane = HotRoutes(behind, routes=[HotRoute("POST", "/v1/items/{item_id}", echo)])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["rapport.request_id"] = "req-1"
        await lane(scope, receive, send)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


ITEM = "/v1/items/0190a8f2-0000-7000-8000-000000000001"


async def test_a_plain_request_is_answered_in_the_lane(client, behind):
    response = await client.post(
        ITEM + "?limit=5",
        json={"a": 1},
        headers={"Authorization": "Bearer abc.def", "Content-Type": "application/json"},
    )
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "id": "0190a8f2-0000-7000-8000-000000000001",
        "payload": {"a": 1},
        "query": {"limit": "5"},
        "bearer": "abc.def",
    }
    assert behind.seen == []


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        (ITEM, b"[1, 2]", {"Content-Type": "application/json"}),  # not an object
        (ITEM, b"{not json", {"Content-Type": "application/json"}),
        (ITEM, b'{"a": 1}', {"Content-Type": "text/plain"}),
        (ITEM, b'{"a": 1}', {"Content-Type": "application/json; charset=latin-1"}),
        (ITEM, b'{"a": 1}', {}),
        (ITEM + "?other=1", b'{"a": 1}', {"Content-Type": "application/json"}),
        (ITEM + "?limit=1&limit=2", b'{"a": 1}', {"Content-Type": "application/json"}),
        (ITEM + "?limit", b'{"a": 1}', {"Content-Type": "application/json"}),
        (ITEM + "?limit=%00", b'{"a": 1}', {"Content-Type": "application/json"}),
        (ITEM + "?limit=%C3%A9", b'{"a": 1}', {"Content-Type": "application/json"}),
        ("/v1/items/not-a-uuid-at-all-but-long-enough-x", b'{"a": 1}', {"Content-Type": "application/json"}),
    ],
)
async def test_anything_unusual_goes_behind_with_its_body(client, behind, path, body, headers):
    response = await client.post(path, content=body, headers=headers)
    assert response.status_code == 299
    assert behind.seen == [(path.split("?")[0], body)]
    assert response.content == body


async def test_other_methods_and_paths_go_behind(client, behind):
    assert (await client.get(ITEM)).status_code == 299
    assert (await client.post("/v1/elsewhere", json={})).status_code == 299
    assert [path for path, _ in behind.seen] == [ITEM, "/v1/elsewhere"]


async def test_a_refusal_is_problem_json_with_the_request_id_and_headers(client, behind):
    refused = await client.post(ITEM, json={"fail": True})
    unauthorised = await client.post(ITEM, json={"token": True})

    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json() == {
        "type": "urn:rapport:problem:validation-error",
        "title": "The request has invalid fields",
        "status": 422,
        "detail": "asked to fail",
        "instance": ITEM,
        "errors": [{"loc": ["body", "fail"]}],
        "request_id": "req-1",
    }
    assert unauthorised.status_code == 401
    assert unauthorised.headers["www-authenticate"] == "Bearer"
    assert behind.seen == []


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer a b", "bearer  two-spaces"])
async def test_a_bearer_token_is_read_only_when_plain(header):
    seen: list[str | None] = []

    async def grab(request: HotRequest) -> HotAnswer | None:
        seen.append(request.bearer())
        return HotAnswer(200, b"{}")

    lane = HotRoutes(Behind(), routes=[HotRoute("GET", "/x", grab)])
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [(b"authorization", header.encode())]}
    await lane(scope, receive, send)
    assert seen == [None]
