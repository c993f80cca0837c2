"""Who the client is: the direct peer, unless that peer is one of RAPPORT_TRUSTED_PROXIES;
only then does a forwarded header name the client, read from the right. A client that
rotates X-Forwarded-For stays the one address it connects from, so the per-address
sign-in cap holds."""

from __future__ import annotations

from ipaddress import ip_network
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from rapport.config import Settings
from rapport.kernel.http import ClientAddressMiddleware, resolve_client
from rapport.kernel.runtime import Runtime
from tests.kernel.live_server import live_server
from tests.support import create_verified_user, login, make_settings, problem_type

CAP = 3
WRONG = "not the right password"
CAROL = "carol@example.com"
SmtpServer = tuple[Controller, Any]


@pytest.fixture
def settings(smtp_server: SmtpServer) -> Settings:
    controller, _ = smtp_server
    return make_settings(smtp_host="127.0.0.1", smtp_port=controller.port, login_ip_max_failures=CAP)


@pytest.fixture
async def carol(runtime: Runtime) -> str:
    await create_verified_user(runtime, CAROL)
    return CAROL


async def spray(client: httpx.AsyncClient, *, forwarded: list[str]) -> None:
    """One failed sign-in per address typed, each with its own forwarded header."""
    for n, value in enumerate(forwarded):
        response = await client.post(
            "/v1/auth/login",
            json={"email": f"target{n}@example.com", "password": WRONG},
            headers={"X-Forwarded-For": value},
        )
        assert response.status_code == 401, response.text


async def test_rotating_forwarded_for_from_an_untrusted_peer_stays_capped(
    app: FastAPI, settings: Settings, carol: str
) -> None:
    # A real server as `rapport serve` runs it, reached from 127.0.0.1: the peer a
    # server's own proxy handling trusts by default.
    async with live_server(app, settings) as url, httpx.AsyncClient(base_url=url) as client:
        await spray(client, forwarded=[f"198.51.100.{n}" for n in range(1, CAP + 1)])
        response = await client.post(
            "/v1/auth/login",
            json={"email": carol, "password": "correct horse battery staple"},
            headers={"X-Forwarded-For": "198.51.100.200"},
        )

    assert (response.status_code, problem_type(response)) == (429, "login-throttled")


async def test_forwarded_for_from_an_untrusted_peer_is_ignored_in_process(
    client: httpx.AsyncClient, carol: str
) -> None:
    await spray(client, forwarded=[f"198.51.100.{n}" for n in range(1, CAP + 1)])
    response = await client.post(
        "/v1/auth/login",
        json={"email": carol, "password": "correct horse battery staple"},
        headers={"X-Forwarded-For": "198.51.100.200", "Forwarded": "for=198.51.100.201"},
    )

    assert (response.status_code, problem_type(response)) == (429, "login-throttled")


class TestBehindATrustedProxy:
    """The tests' client connects from 203.0.113.7, made a trusted proxy here."""

    @pytest.fixture
    def settings(self, smtp_server: SmtpServer) -> Settings:
        controller, _ = smtp_server
        return make_settings(
            smtp_host="127.0.0.1",
            smtp_port=controller.port,
            login_ip_max_failures=CAP,
            trusted_proxies="203.0.113.0/24",
        )

    async def test_the_forwarded_client_is_capped(self, client: httpx.AsyncClient, carol: str) -> None:
        await spray(client, forwarded=["198.51.100.1"] * CAP)
        response = await login(client, carol)  # no header: the proxy itself, not capped
        capped = await client.post(
            "/v1/auth/login",
            json={"email": carol, "password": "correct horse battery staple"},
            headers={"X-Forwarded-For": "198.51.100.1"},
        )

        assert response.status_code == 200
        assert (capped.status_code, problem_type(capped)) == (429, "login-throttled")

    async def test_another_forwarded_client_is_not_capped(self, client: httpx.AsyncClient, carol: str) -> None:
        await spray(client, forwarded=["198.51.100.1"] * CAP)
        response = await client.post(
            "/v1/auth/login",
            json={"email": carol, "password": "correct horse battery staple"},
            headers={"X-Forwarded-For": "198.51.100.2"},
        )

        assert response.status_code == 200

    async def test_addresses_the_client_put_in_front_are_not_read(self, client: httpx.AsyncClient, carol: str) -> None:
        await spray(client, forwarded=["198.51.100.1"] * CAP)
        response = await client.post(
            "/v1/auth/login",
            json={"email": carol, "password": "correct horse battery staple"},
            headers={"X-Forwarded-For": "192.0.2.99, 198.51.100.1"},
        )

        assert (response.status_code, problem_type(response)) == (429, "login-throttled")


TRUSTED = [ip_network("10.0.0.0/8"), ip_network("2001:db8::/32")]


@pytest.mark.parametrize(
    ("peer", "headers", "header", "client"),
    [
        # Not from a trusted proxy: the header is whatever the client wrote.
        ("192.0.2.1", ["198.51.100.1"], "x-forwarded-for", "192.0.2.1"),
        # From a trusted proxy: the right-most address that is not a proxy.
        ("10.0.0.1", ["198.51.100.1"], "x-forwarded-for", "198.51.100.1"),
        ("10.0.0.1", ["192.0.2.66, 198.51.100.1, 10.0.0.2"], "x-forwarded-for", "198.51.100.1"),
        ("10.0.0.1", ["192.0.2.66", "198.51.100.1"], "x-forwarded-for", "198.51.100.1"),
        ("10.0.0.1", ["198.51.100.1:4711"], "x-forwarded-for", "198.51.100.1"),
        ("10.0.0.1", ["[2001:db9::1]:4711"], "x-forwarded-for", "2001:db9::1"),
        ("2001:db8::5", ["::ffff:198.51.100.1"], "x-forwarded-for", "198.51.100.1"),
        # Every hop trusted: the first one.
        ("10.0.0.1", ["10.0.0.3, 10.0.0.2"], "x-forwarded-for", "10.0.0.3"),
        # A hop the proxy could not name: the nearest known one, the proxy.
        ("10.0.0.1", ["198.51.100.1, unknown"], "x-forwarded-for", "10.0.0.1"),
        # RFC 7239, and only when it is the configured header.
        ("10.0.0.1", ['for=192.0.2.66, for="[2001:db9::2]:80";proto=https'], "forwarded", "2001:db9::2"),
        ("10.0.0.1", ["for=198.51.100.1;by=10.0.0.1"], "forwarded", "198.51.100.1"),
        ("10.0.0.1", ["for=_hidden"], "forwarded", "10.0.0.1"),
    ],
)
def test_resolve_client(peer: str, headers: list[str], header: str, client: str) -> None:
    assert resolve_client(peer, headers, trusted=TRUSTED, header=header) == client


@pytest.mark.parametrize(
    ("name", "value", "client"),
    [
        (b"forwarded", b"for=198.51.100.1", ("198.51.100.1", 0)),
        (b"x-forwarded-for", b"198.51.100.1", ("10.0.0.1", 5000)),
    ],
)
async def test_only_the_configured_header_is_read(name: bytes, value: bytes, client: tuple[str, int]) -> None:
    seen: dict[str, Any] = {}

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.update(client=scope["client"], peer=scope["rapport.peer"])

    middleware = ClientAddressMiddleware(inner, trusted=TRUSTED, header="forwarded")
    scope: Scope = {"type": "http", "client": ("10.0.0.1", 5000), "headers": [(name, value)]}
    await middleware(scope, _never, _never)

    assert seen == {"client": client, "peer": ("10.0.0.1", 5000)}


async def _never(*_: Any) -> Any:
    raise AssertionError("not called")
