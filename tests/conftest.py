"""Every test runs against a real PostgreSQL: the embedded one by default, or the server
in RAPPORT_TEST_DATABASE_URL. The schema is migrated once into a template database;
each test gets its own database cloned from it (or, in a module marked
`module_database`, the module's one emptied: see tests/module_scope.py), and a real SMTP
server (aiosmtpd) receives the mail.

The personas (alice, bob, carol, mallory) are verified accounts with an open session
(tests.support.open_persona; tests of signing in sign in through the API); the plain
helpers the tests share live in tests/support.py."""

from __future__ import annotations

import asyncio
import collections
import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiosmtpd.controller import Controller
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.app import create_app
from rapport.config import Settings
from rapport.kernel import migrate, provisioning
from rapport.kernel.db import create_engine
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from rapport.kernel.runtime import Runtime
from tests.support import (
    PASSWORD,
    STARTUP_TIMEOUT_S,
    Mailbox,
    Persona,
    create_verified_user,
    free_port,
    make_settings,
    open_persona,
    sign_in,
)

pytest_plugins = ("tests.module_scope",)

ROOT = Path(__file__).resolve().parent.parent
_counter = itertools.count()


def pytest_report_header(config: pytest.Config) -> str:
    url = os.environ.get("RAPPORT_TEST_DATABASE_URL")
    return f"rapport database: {url or 'embedded PostgreSQL (pgserver)'}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "module_database: the module's tests share one database, emptied before each test, and one running app",
    )
    config.addinivalue_line(
        "markers",
        "personas_sign_in: the personas sign in through the API (a sign-in's history, throttles and events), "
        "for tests of what a sign-in leaves",
    )


# Files that take long for their few tests (servers of their own, browsers, command-line
# subprocesses, sweeps of the whole API), run first. pytest-xdist hands files out in
# collection order; its default reorders them by their number of tests, which put exactly
# these last, one worker finishing them while the others idled (`make test` turns that
# off). The rest follow, most tests first.
SLOW_FIRST = (
    "tests/kernel/test_no_server_errors.py",
    "tests/support_desk/test_cli_grants.py",
    "tests/compliance/test_erase_proof.py",
    "tests/web/",
    "tests/realtime/",
    "tests/compliance/test_backup.py",
    "tests/kernel/test_serving.py",
    "tests/security/test_realtime_stream.py",
    "tests/identity/test_enumeration_timing.py",
    "tests/identity/test_phone_enumeration_timing.py",
    "tests/compliance/",
    "tests/client/",
    "tests/notifications/pipeline/",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests_per_file = collections.Counter(item.nodeid.split("::")[0] for item in items)

    def rank(item: pytest.Item) -> tuple[int, int, str]:
        path = item.nodeid.split("::")[0]
        slow = next((i for i, prefix in enumerate(SLOW_FIRST) if path.startswith(prefix)), len(SLOW_FIRST))
        return slow, -tests_per_file[path], path

    # A stable sort: each file's tests keep their order.
    items.sort(key=rank)


@pytest.fixture(scope="session")
def admin_url() -> URL:
    url = os.environ.get("RAPPORT_TEST_DATABASE_URL")
    if url:
        return make_url(url).set(drivername="postgresql+asyncpg")
    return provisioning.start_embedded_server(ROOT / ".rapport" / "test")


@pytest.fixture(scope="session")
async def template_database(admin_url: URL) -> AsyncIterator[str]:
    """A database migrated to head, cloned by each test."""
    name = f"rapport_tpl_{os.getpid()}"
    urls = provisioning.urls_for(admin_url, database=name, settings=make_settings())
    await provisioning.provision(urls, make_settings())
    await migrate.upgrade(urls.owner)
    yield name
    await drop_database(admin_url, name)


async def drop_database(admin_url: URL, name: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def clone_database(admin_url: URL, template: str) -> str:
    name = f"rapport_t_{os.getpid()}_{next(_counter)}"
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" OWNER rapport_owner')
    finally:
        await conn.close()
    return name


def _shares_a_database(request: pytest.FixtureRequest) -> bool:
    return request.node.get_closest_marker("module_database") is not None


@pytest.fixture
async def fresh_database(admin_url: URL, template_database: str) -> AsyncIterator[DatabaseUrls]:
    """A migrated database cloned for this test alone."""
    name = await clone_database(admin_url, template_database)
    yield provisioning.urls_for(admin_url, database=name, settings=make_settings())
    await drop_database(admin_url, name)


@pytest.fixture
def database(request: pytest.FixtureRequest) -> DatabaseUrls:
    """A migrated database holding no other test's rows: a clone of the template, or the
    module's one emptied in a module marked `module_database`."""
    chosen = "emptied_module_database" if _shares_a_database(request) else "fresh_database"
    urls: DatabaseUrls = request.getfixturevalue(chosen)
    return urls


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[Controller, Mailbox]]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, mailbox
    controller.stop()


@pytest.fixture
def mailbox(smtp_server: tuple[Controller, Mailbox]) -> Mailbox:
    _, box = smtp_server
    box.messages.clear()
    return box


@pytest.fixture
def settings(smtp_server: tuple[Controller, Mailbox]) -> Settings:
    controller, _ = smtp_server
    return make_settings(smtp_host="127.0.0.1", smtp_port=controller.port)


@pytest.fixture
async def fresh_app(settings: Settings, database: DatabaseUrls) -> AsyncIterator[FastAPI]:
    """The app started for this test alone, over its database."""
    application = create_app(settings, database_url=database.app, system_database_url=database.worker)
    async with LifespanManager(application, startup_timeout=STARTUP_TIMEOUT_S, shutdown_timeout=STARTUP_TIMEOUT_S):
        yield application


@pytest.fixture
def app(request: pytest.FixtureRequest, database: DatabaseUrls) -> FastAPI:
    """The running app over the test's database: started for the test, or the module's
    in a module marked `module_database`."""
    # A plain fixture on purpose: an async one could not start the async fixture it
    # picks (pytest-asyncio runs a fixture's setup on the loop, which is then busy).
    application: FastAPI = request.getfixturevalue("module_app" if _shares_a_database(request) else "fresh_app")
    return application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://rapport.test") as http:
        yield http
    # Mail a test asked for leaves through the job queue, and notifications (security
    # e-mails among them) are read from the outbox first: let both arrive now, not in the
    # next test's mailbox.
    async with asyncio.timeout(10):
        await app.state.notifications.catch_up()
        await app.state.worker.wait_idle()


@pytest.fixture
async def app_engine(database: DatabaseUrls) -> AsyncIterator[AsyncEngine]:
    """A pool of its own, connected as rapport_app like the server: for SQL a test runs
    as the server would, under row-level security."""
    engine = create_engine(database.app, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


@pytest.fixture
def jobs_done(app: FastAPI) -> Callable[[], Awaitable[None]]:
    """Waits until the app's job worker has run every job that is due: mail leaves through
    the queue, so a test asserting that nothing was sent waits for this first."""

    async def wait() -> None:
        async with asyncio.timeout(10):
            await app.state.notifications.catch_up()
            await app.state.worker.wait_idle()

    return wait


@pytest.fixture
def make_persona(
    request: pytest.FixtureRequest, client: httpx.AsyncClient, runtime: Runtime
) -> Callable[[str], Awaitable[Persona]]:
    """Personas with an open session; signed in through `client` where the test is marked
    `personas_sign_in`. (`client` either way: a test with personas talks to the app through
    it, and its teardown waits for the work the test's requests left.)"""
    through_the_api = request.node.get_closest_marker("personas_sign_in") is not None

    async def make(name: str) -> Persona:
        if not through_the_api:
            return await open_persona(runtime, name)
        persona = Persona(name=name, email=f"{name}@example.com", password=PASSWORD)
        await create_verified_user(runtime, persona.email)
        return await sign_in(client, persona)

    return make


@pytest.fixture
async def alice(make_persona: Callable[[str], Awaitable[Persona]]) -> Persona:
    return await make_persona("alice")


@pytest.fixture
async def bob(make_persona: Callable[[str], Awaitable[Persona]]) -> Persona:
    return await make_persona("bob")


@pytest.fixture
async def carol(make_persona: Callable[[str], Awaitable[Persona]]) -> Persona:
    return await make_persona("carol")


@pytest.fixture
async def mallory(make_persona: Callable[[str], Awaitable[Persona]]) -> Persona:
    return await make_persona("mallory")


@pytest.fixture
async def alice_phone(client: httpx.AsyncClient, alice: Persona) -> Persona:
    """Alice signed in a second time, on her phone."""
    phone = Persona(name="alice", email=alice.email, password=alice.password)
    return await sign_in(client, phone, device_type="mobile", device_name="Alice's phone")
