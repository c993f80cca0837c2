"""The bots tests' app runs no job worker nor dispatcher of its own: each test's
`deliveries` runs the dispatcher's rounds and a worker with quick retries, and waits for
both. The webhook receiver is one real HTTP server for the module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI

from rapport.config import Settings
from rapport.kernel.runtime import Runtime
from tests.bots.support import Deliveries, WebhookReceiver, make_developer, make_worker
from tests.compliance.admin_support import make_admin
from tests.support import Persona, make_settings


@pytest.fixture(scope="module")
def module_settings(smtp_server: tuple[Controller, object]) -> Settings:
    controller, _ = smtp_server
    return make_settings(smtp_host="127.0.0.1", smtp_port=controller.port, worker_in_process=False)


@pytest.fixture(scope="module")
async def module_receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def receiver(module_receiver: WebhookReceiver) -> WebhookReceiver:
    module_receiver.reset()
    return module_receiver


@pytest.fixture(autouse=True)
async def deliveries(app: FastAPI) -> AsyncIterator[Deliveries]:
    """Set up before the test's client, so torn down after it: the jobs its requests
    queued (mail, notifications) still run while the client waits for them."""
    runtime: Runtime = app.state.runtime
    worker = make_worker(runtime)
    worker.start()
    driven = Deliveries(app, runtime, worker)
    try:
        yield driven
    finally:
        await driven.worker.stop(grace_seconds=2)


@pytest.fixture
async def developer(alice: Persona, runtime: Runtime) -> Persona:
    """Alice, who may make bots (the bot-developer role)."""
    return await make_developer(runtime, alice)


@pytest.fixture
async def admin(make_persona, runtime: Runtime) -> Persona:
    """Ada, a platform administrator."""
    return await make_admin(runtime, await make_persona("ada"))
