"""What the edge offers operators and browsers: `/docs` with no outside host, CORS for
the configured origins only, and `/metrics` for the operator alone."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import httpx
import pytest
from aiosmtpd.controller import Controller
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from rapport.app import create_app
from rapport.config import Settings
from rapport.kernel.provisioning import DatabaseUrls
from tests.support import STARTUP_TIMEOUT_S, make_settings, problem_type

pytestmark = pytest.mark.module_database

SmtpServer = tuple[Controller, Any]

ORIGIN = "https://app.example"
TOKEN = "a-long-random-metrics-token"


def settings_with(smtp_server: SmtpServer, **overrides: Any) -> Settings:
    controller, _ = smtp_server
    return make_settings(smtp_host="127.0.0.1", smtp_port=controller.port, **overrides)


@pytest.fixture(scope="class")
async def class_app(
    request: pytest.FixtureRequest, smtp_server: SmtpServer, module_database: DatabaseUrls
) -> AsyncIterator[FastAPI]:
    """An app started once for a class, with the settings its `overrides` name."""
    settings = settings_with(smtp_server, **request.cls.overrides)
    application = create_app(settings, database_url=module_database.app, system_database_url=module_database.worker)
    async with LifespanManager(application, startup_timeout=STARTUP_TIMEOUT_S, shutdown_timeout=STARTUP_TIMEOUT_S):
        yield application


@pytest.fixture
def app(request: pytest.FixtureRequest, database: DatabaseUrls) -> FastAPI:
    """The module's app, or in a class with `overrides` (settings other than the module's)
    the class's own."""
    chosen = "class_app" if getattr(request.cls, "overrides", None) else "module_app"
    application: FastAPI = request.getfixturevalue(chosen)
    return application


async def _client(app: FastAPI, peer: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(peer, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://rapport.test") as http:
        yield http


@pytest.fixture
async def on_this_machine(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client connected from the server's own machine."""
    async for http in _client(app, "127.0.0.1"):
        yield http


# /docs


async def test_docs_load_their_assets_from_rapport(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)

    assert page.status_code == 200
    assert sorted(assets) == [
        "/docs/assets/favicon-32x32.png",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
    ]
    assert "://" not in page.text


@pytest.mark.parametrize(
    ("path", "kind", "marker"),
    [
        ("/docs/assets/swagger-ui-bundle.js", "javascript", "SwaggerUIBundle"),
        ("/docs/assets/swagger-ui.css", "text/css", ".swagger-ui"),
        ("/docs/assets/favicon-32x32.png", "image/png", ""),
    ],
)
async def test_docs_assets_are_served(client: httpx.AsyncClient, path: str, kind: str, marker: str) -> None:
    response = await client.get(path)

    assert (response.status_code, kind in response.headers["content-type"]) == (200, True)
    assert marker in response.text if marker else response.content.startswith(b"\x89PNG")


async def test_the_docs_oauth2_redirect_page_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs/oauth2-redirect")
    assert response.status_code == 200 and "://" not in response.text


async def test_redoc_is_off(client: httpx.AsyncClient) -> None:
    response = await client.get("/redoc")
    assert (response.status_code, problem_type(response)) == (404, "not-found")


async def test_the_openapi_document_leaves_out_docs_and_metrics(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert [path for path in paths if path.startswith(("/docs", "/metrics"))] == []


# CORS


async def test_no_cors_headers_by_default(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in response.headers


class TestCors:
    overrides: ClassVar[dict[str, Any]] = {"cors_origins": f"{ORIGIN}, https://other.example"}

    async def test_a_configured_origin_may_read_answers_and_their_headers(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"Origin": ORIGIN})

        assert response.headers["access-control-allow-origin"] == ORIGIN
        exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
        assert exposed >= {"x-request-id", "retry-after"}
        assert "access-control-allow-credentials" not in response.headers

    async def test_errors_carry_the_cors_headers_too(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/v1/auth/login", json={}, headers={"Origin": ORIGIN})

        assert response.status_code == 422
        assert response.headers["access-control-allow-origin"] == ORIGIN

    async def test_a_preflight_for_a_configured_origin_is_allowed(self, client: httpx.AsyncClient) -> None:
        response = await client.options(
            "/v1/auth/login",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )

        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in response.headers["access-control-allow-methods"]

    async def test_another_origin_is_not_allowed(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in response.headers

    async def test_a_preflight_for_another_origin_is_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.options(
            "/v1/auth/login", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        )
        assert response.status_code == 400
        assert "access-control-allow-origin" not in response.headers


class TestCorsWithCredentials:
    overrides: ClassVar[dict[str, Any]] = {"cors_origins": ORIGIN, "cors_allow_credentials": True}

    async def test_credentials_are_allowed_when_configured(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"Origin": ORIGIN})
        assert response.headers["access-control-allow-credentials"] == "true"


# /metrics


async def test_metrics_are_not_found_from_another_machine(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert (response.status_code, problem_type(response)) == (404, "not-found")


async def test_metrics_are_served_to_this_machine(on_this_machine: httpx.AsyncClient) -> None:
    response = await on_this_machine.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")


async def test_metrics_count_requests(client: httpx.AsyncClient, on_this_machine: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    response = await on_this_machine.get("/metrics")
    assert "rapport_http_requests_total" in response.text


async def test_metrics_label_by_route_template_not_raw_path(
    client: httpx.AsyncClient, on_this_machine: httpx.AsyncClient
) -> None:
    await client.get("/v1/nothing-here-abc123")
    response = await on_this_machine.get("/metrics")
    assert "nothing-here-abc123" not in response.text


async def test_a_forwarded_request_from_this_machine_is_not_served(on_this_machine: httpx.AsyncClient) -> None:
    """A reverse proxy on the same machine passes the world's requests on from 127.0.0.1."""
    response = await on_this_machine.get("/metrics", headers={"X-Forwarded-For": "198.51.100.1"})
    assert response.status_code == 404


class TestMetricsBehindATrustedProxy:
    overrides: ClassVar[dict[str, Any]] = {"trusted_proxies": "203.0.113.0/24"}

    async def test_a_forwarded_loopback_address_is_not_served(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})
        assert (response.status_code, problem_type(response)) == (404, "not-found")


class TestMetricsWithAToken:
    overrides: ClassVar[dict[str, Any]] = {"metrics_token": TOKEN}

    async def test_the_token_is_served_from_anywhere(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200 and "rapport_http_requests_total" in response.text

    @pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
    async def test_anything_else_is_not_found(self, client: httpx.AsyncClient, authorization: str | None) -> None:
        headers = {"Authorization": authorization} if authorization else {}
        response = await client.get("/metrics", headers=headers)
        assert (response.status_code, problem_type(response)) == (404, "not-found")

    async def test_this_machine_needs_the_token_too(self, on_this_machine: httpx.AsyncClient) -> None:
        response = await on_this_machine.get("/metrics")
        assert response.status_code == 404
