"""Fixtures of the browser tests: a real Rapport server per module (over the module's
database, mailing the suite's SMTP server), and one headless Chromium per module in which
each person has a browser context of their own (their own storage, tokens and socket).

Playwright's async API runs on the suite's one event loop (pytest-asyncio, session scope),
beside the SMTP server's mailbox the verification codes are read from."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from playwright.async_api import Browser, Error, async_playwright, expect

from rapport.config import Settings
from tests.kernel.live_server import live_server
from tests.support import Mailbox
from tests.web import tools
from tests.web.screens import ARTIFACTS, OPENED, Served

# A loaded machine (several test processes, two browsers' worth of pages) can take longer
# than Playwright's default of 5 s to show what a live event changes.
expect.set_options(timeout=15_000)

FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[FAILED] = True
    return report


@pytest.fixture
async def screens_on_failure(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """When the test fails, a screenshot of every page still open, named after the test
    and the person: what they saw is the first thing to look at."""
    yield
    if not request.node.stash.get(FAILED, False):
        return
    test = re.sub(r"[^\w.-]+", "_", request.node.name)
    for person in OPENED:
        if not person.page.is_closed():
            await person.page.screenshot(path=ARTIFACTS / f"failed-{test}-{person.name}.png")


@pytest.fixture(scope="module")
async def web_server(module_app: FastAPI, module_settings: Settings) -> AsyncIterator[Served]:
    """Rapport serving the web client and its API on a port of its own, over the module's
    database; the codes it mails reach the suite's SMTP server (module_settings).

    uvicorn in the test's process, as `rapport serve` configures it: a real socket the
    browser connects to, started in a fraction of a second where a `rapport serve`
    subprocess takes several (it imports everything again)."""
    async with live_server(module_app, module_settings) as url:
        yield Served(url)


@pytest.fixture(scope="module")
def module_mailbox(smtp_server: tuple[Controller, Mailbox]) -> Mailbox:
    """What the SMTP server received (codes are told apart by address and count, not by
    emptying the box, which the module's tests share)."""
    _, box = smtp_server
    return box


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = tools.chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        try:
            launched = await playwright.chromium.launch(
                executable_path=executable, headless=True, args=tools.CHROMIUM_ARGS
            )
        except Error as error:
            pytest.fail(f"Chromium at {executable} did not start: {error}")
        yield launched
        await launched.close()


@pytest.fixture(scope="module")
def axe() -> Path:
    return tools.axe_script()
