"""schemathesis over the whole OpenAPI document, against a real server (uvicorn on a free
port, over a database of its own that the personas live in): every operation, signed
out and signed in, answers no 5xx, no status the document does not declare, and nothing
that breaks its declared response schema.

Bounded and reproducible: a few examples per operation, derandomized, the coverage and
stateful phases off (the sweep in test_no_server_errors.py fills ids of real rows)."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from aiosmtpd.controller import Controller
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from rapport.app import create_app
from rapport.cli import server_options
from rapport.config import Settings
from rapport.kernel.provisioning import DatabaseUrls
from tests.support import Mailbox, Persona, free_port, make_settings, populate, register_persona

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 8
PERSONAS = ("alice", "bob", "carol", "mallory")
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261129,
        "generation": {"max-examples": EXAMPLES_PER_OPERATION, "deterministic": True},
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    }
)


@pytest.fixture(scope="module")
def server(module_settings: Settings, module_database: DatabaseUrls) -> Iterator[str]:
    """The app served by uvicorn as `rapport serve` runs it, in a thread with its own
    event loop (hypothesis drives these tests synchronously, so the tests' loop is idle
    while they run: tests.kernel.live_server cannot serve them); its base URL."""
    app = create_app(module_settings, database_url=module_database.app, system_database_url=module_database.worker)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="on", loop="asyncio", **server_options(module_settings)
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, name="rapport-under-schemathesis", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
async def signed_in(server: str, smtp_server: tuple[Controller, Mailbox]) -> AsyncIterator[Persona]:
    """Alice, signed in, her database lived in by bob, carol and mallory too."""
    _, mailbox = smtp_server
    async with httpx.AsyncClient(base_url=server) as client:
        alice, bob, carol, mallory = [await register_persona(client, mailbox, name) for name in PERSONAS]
        await populate(client, alice, bob, carol, mallory)
        yield alice


def _document() -> dict[str, Any]:
    """The OpenAPI document, as the server will serve it: built from the routes alone, so
    the operations are known when the tests are collected."""
    app = create_app(make_settings(), database_url="postgresql+asyncpg://rapport_app@127.0.0.1/openapi")
    return app.openapi()


schema = schemathesis.openapi.from_dict(_document(), config=CONFIG)

# Answers that last as long as the client listens (Server-Sent Events): only their status
# and headers are checked, then the client hangs up.
EVENT_STREAMS = {
    path
    for path, item in _document()["paths"].items()
    for operation in item.values()
    if "text/event-stream" in operation.get("responses", {}).get("200", {}).get("content", {})
}


def _call_and_validate(case: schemathesis.Case, server: str, headers: dict[str, str] | None = None) -> Any:
    if case.operation.path not in EVENT_STREAMS:
        return case.call_and_validate(base_url=server, checks=CHECKS, headers=headers)
    # The generated request, sent by a client that reads only the status and headers.
    request = {"params": case.query, "headers": {**(case.headers or {}), **(headers or {})}}
    try:
        with httpx.stream(case.method, server + case.formatted_path, **request) as response:
            assert response.status_code < 500, response.status_code
            documented = case.operation.definition.raw["responses"]
            assert str(response.status_code) in documented or "4XX" in documented, response.status_code
            expected = "text/event-stream" if response.status_code == 200 else "application/problem+json"
            assert response.headers["content-type"].startswith(expected)
    except httpx.LocalProtocolError:
        return None  # a header no HTTP client may send (`Bearer ` with nothing after it)
    return response


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_anonymous_requests_keep_to_the_document(case: schemathesis.Case, server: str) -> None:
    _call_and_validate(case, server)


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_signed_in_requests_keep_to_the_document(case: schemathesis.Case, server: str, signed_in: Persona) -> None:
    response = _call_and_validate(case, server, signed_in.headers)
    if response is not None and response.status_code == 401:
        # The case may have ended alice's session (logout, deleting it): sign in again.
        tokens = httpx.post(f"{server}/v1/auth/login", json={"email": signed_in.email, "password": signed_in.password})
        if tokens.status_code == 200:
            signed_in.access_token = tokens.json()["access_token"]


def test_every_operation_documents_its_errors_as_problems() -> None:
    document = _document()
    operations = [op for item in document["paths"].values() for op in item.values()]

    undocumented = [
        op["operationId"]
        for op in operations
        for status in ("4XX", *(code for code in op["responses"] if code.startswith("4")))
        if set(op["responses"].get(status, {}).get("content", {})) != {"application/problem+json"}
    ]
    assert undocumented == []
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_every_schema_keeps_its_own_name() -> None:
    # Two models of one name in different domains are published under their module paths
    # (`rapport__messaging__schemas__MarkRead`): a client generator would then name them so.
    names = list(_document()["components"]["schemas"])
    assert [name for name in names if "__" in name] == []
