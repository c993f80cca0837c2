"""The pipeline tests' app: mail to the test SMTP server, Web Push signed with a VAPID key
of the tests, and no job worker of its own: each test's `pipeline` reads the outbox and
runs the jobs (with quick retries), and waits for both."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI

from rapport.config import Settings
from rapport.kernel.runtime import Runtime
from rapport.notifications._consumer import Consumer, connected_from
from rapport.notifications._deliver import close_providers
from tests.notifications.fakes import PushService, provider_settings
from tests.notifications.pipeline.support import KEYS, Pipeline, make_worker
from tests.support import Mailbox, make_settings


@pytest.fixture
async def push_service() -> AsyncIterator[PushService]:
    async with PushService() as service:
        yield service


@pytest.fixture
def settings(smtp_server: tuple[Controller, Mailbox]) -> Settings:
    """The app's settings: mail to the test's SMTP server, Web Push signed with KEYS, and
    no job worker of its own: the test's `pipeline` runs the jobs."""
    controller, _ = smtp_server
    return make_settings(
        smtp_host="127.0.0.1",
        smtp_port=controller.port,
        worker_in_process=False,
        **provider_settings(vapid_private_key=KEYS.private_key),
    )


@pytest.fixture
async def pipeline(app: FastAPI) -> AsyncIterator[Pipeline]:
    runtime: Runtime = app.state.runtime
    consumer = Consumer(runtime.system_engine, connected=connected_from(app.state.realtime.ephemeral.status_of))
    # The cursor starts here, before the test acts: a first start reads from "now".
    await consumer.consume_available()
    worker = make_worker(runtime)
    worker.start()
    handle = Pipeline(app, runtime, consumer, worker)
    try:
        yield handle
    finally:
        await handle.worker.stop(grace_seconds=2)
        await close_providers(runtime)
