"""Every test runs against a real PostgreSQL: the embedded one by default, or the server
in RAPPORT_TEST_DATABASE_URL. The schema is migrated once into a template database;
each test gets its own database cloned from it, and a real SMTP server (aiosmtpd)
receives the mail."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiosmtpd.controller import Controller
from asgi_lifespan import LifespanManager
from sqlalchemy.engine import make_url

from rapport.app import create_app
from rapport.config import Settings
from rapport.kernel import migrate, provisioning
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"
_counter = itertools.count()


def pytest_report_header(config: pytest.Config) -> str:
    url = os.environ.get("RAPPORT_TEST_DATABASE_URL")
    return f"rapport database: {url or 'embedded PostgreSQL (pgserver)'}"


@pytest.fixture(scope="session")
def admin_url():
    url = os.environ.get("RAPPORT_TEST_DATABASE_URL")
    if url:
        return make_url(url).set(drivername="postgresql+asyncpg")
    return provisioning.start_embedded_server(ROOT / ".rapport" / "test")


def make_settings(**overrides) -> Settings:
    values = {
        "environment": "test",
        "secret_key": "test-secret-key-that-is-long-enough-for-hmac",
        # Cheap argon2id: the tests exercise the flows, not the cost.
        "password_time_cost": 1,
        "password_memory_cost_kib": 1024,
        "password_parallelism": 1,
        "log_json": True,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture(scope="session")
async def template_database(admin_url) -> str:
    """A database migrated to head, cloned by each test."""
    name = f"rapport_tpl_{os.getpid()}"
    urls = provisioning.urls_for(admin_url, database=name, settings=make_settings())
    await provisioning.provision(urls, make_settings())
    await migrate.upgrade(urls.owner)
    yield name
    await _drop_database(admin_url, name)


async def _drop_database(admin_url, name: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def clone_database(admin_url, template: str) -> str:
    name = f"rapport_t_{os.getpid()}_{next(_counter)}"
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" OWNER rapport_owner')
    finally:
        await conn.close()
    return name


@pytest.fixture
async def database(admin_url, template_database) -> AsyncIterator[DatabaseUrls]:
    """A fresh, migrated database for one test."""
    name = await clone_database(admin_url, template_database)
    yield provisioning.urls_for(admin_url, database=name, settings=make_settings())
    await _drop_database(admin_url, name)


@dataclass
class Mailbox:
    """What the SMTP server received."""

    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler protocol
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]

    async def wait_for(self, address: str, *, count: int = 1, timeout: float = 5.0) -> list[Message]:
        """The messages to this address, once at least `count` have arrived: mail leaves
        through the job queue, a moment after the request that asked for it."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.to(address)) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{len(self.to(address))} of {count} messages reached {address}")
            await asyncio.sleep(0.02)
        return self.to(address)

    async def code_for(self, address: str, *, count: int = 1) -> str:
        """The six-digit code in the newest message to this address, waiting for the
        `count`-th message to arrive."""
        await self.wait_for(address, count=count)
        return self.last_code(address)

    def last_code(self, address: str) -> str:
        """The six-digit code in the newest message to this address."""
        for message in reversed(self.to(address)):
            match = re.search(r"\b(\d{6})\b", message.get_payload(decode=True).decode())
            if match:
                return match.group(1)
        raise AssertionError(f"no code was mailed to {address}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def smtp_server():
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller, mailbox
    controller.stop()


@pytest.fixture
def mailbox(smtp_server) -> Mailbox:
    _, box = smtp_server
    box.messages.clear()
    return box


@pytest.fixture
def settings(smtp_server) -> Settings:
    controller, _ = smtp_server
    return make_settings(smtp_host="127.0.0.1", smtp_port=controller.port)


@pytest.fixture
async def app(settings, database):
    application = create_app(settings, database_url=database.app)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://rapport.test") as http:
        yield http


@pytest.fixture
def runtime(app):
    return app.state.runtime


@dataclass
class Persona:
    """A named user with a verified account, signed in through the API."""

    name: str
    email: str
    password: str
    user_id: str = ""
    access_token: str = ""
    refresh_token: str = ""
    session_id: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def create_verified_user(runtime, email: str, password: str = PASSWORD) -> str:
    from rapport.identity import service
    from rapport.kernel.db import system_transaction

    async with system_transaction(runtime.engine) as db:
        return str(await service.do_create_user(db, rt=runtime, email=email, password=password, verified=True))


async def sign_in(client: httpx.AsyncClient, persona: Persona, **device) -> Persona:
    response = await client.post(
        "/v1/auth/login", json={"email": persona.email, "password": persona.password, **device}
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    persona.access_token = tokens["access_token"]
    persona.refresh_token = tokens["refresh_token"]
    persona.session_id = tokens["session_id"]
    persona.user_id = tokens["user_id"]
    return persona


@pytest.fixture
def make_persona(client, runtime):
    async def make(name: str) -> Persona:
        persona = Persona(name=name, email=f"{name}@example.com", password=PASSWORD)
        await create_verified_user(runtime, persona.email)
        return await sign_in(client, persona)

    return make


@pytest.fixture
async def alice(make_persona) -> Persona:
    return await make_persona("alice")


@pytest.fixture
async def bob(make_persona) -> Persona:
    return await make_persona("bob")


@pytest.fixture
async def mallory(make_persona) -> Persona:
    return await make_persona("mallory")


def problem_type(response: httpx.Response) -> str:
    """The stable problem type slug of an error answer."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return response.json()["type"].rsplit(":", 1)[-1]
