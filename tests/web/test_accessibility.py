"""The web client's main screens pass axe-core's automated check without a serious or
critical finding, and a person using only the keyboard signs in and sends a message.

cleo and dan, contacts with a direct conversation that dan opened, are made through the
API once for the module; cleo uses the client. Pages here skip the client's
Content-Security-Policy (`bypass_csp`), which would refuse axe's injected script."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.realtime.support import send_message
from tests.support import PASSWORD, Mailbox, Persona, befriend, register_persona
from tests.web.screens import (
    Person,
    Served,
    composer,
    entry_of,
    expect_signed_in,
    message,
    open_browser,
    open_conversation,
    open_screen,
    send_button,
    serious_violations,
    sign_in,
    sign_out,
    snap,
    tab_to,
)

GREETING = "Welcome to Rapport, Cleo."

pytestmark = pytest.mark.usefixtures("screens_on_failure")


@dataclass
class World:
    cleo: Person
    dan: Persona
    conversation_id: str


@pytest.fixture(scope="module")
async def world(browser: Browser, web_server: Served, module_mailbox: Mailbox) -> AsyncIterator[World]:
    """cleo signed in in her browser; dan (API only) her contact, who wrote to her."""
    async with httpx.AsyncClient(base_url=web_server.url, timeout=10) as http:
        cleo_account = await register_persona(http, module_mailbox, "cleo")
        dan = await register_persona(http, module_mailbox, "dan")
        await befriend(http, dan, cleo_account)
        started = await http.post(
            "/v1/conversations",
            headers=dan.headers,
            json={"type": "direct", "participant_ids": [cleo_account.user_id]},
        )
        assert started.status_code == 201, started.text
        conversation_id = started.json()["id"]
        await send_message(http, dan, conversation_id, GREETING)
    cleo = await open_browser(browser, web_server.url, "cleo", bypass_csp=True)
    await sign_in(cleo)
    yield World(cleo, dan, conversation_id)
    await cleo.context.close()


@pytest.fixture(scope="module")
async def stranger(browser: Browser, web_server: Served) -> AsyncIterator[Page]:
    """A browser nobody signed in in."""
    person = await open_browser(browser, web_server.url, "nobody", bypass_csp=True)
    yield person.page
    await person.context.close()


@pytest.mark.parametrize("route", ["/login", "/register", "/verify"])
async def test_a_signed_out_screen_has_no_serious_violation(stranger: Page, axe: Path, route: str) -> None:
    await stranger.goto(f"/#{route}")
    await expect(stranger.get_by_role("heading", level=1)).to_be_visible()
    await snap(stranger, route.strip("/"))
    assert await serious_violations(stranger, axe) == []


def loaded(page: Page, screen: str) -> Locator:
    """What shows once the screen has loaded what it lists: axe checks that too."""
    if screen == "Chats":
        return page.get_by_role("list", name="Conversations").get_by_role("link", name="dan")
    if screen == "People":
        return entry_of(page, "Contacts", "dan")
    return page.get_by_role("list", name="Sessions").get_by_role("listitem").first


@pytest.mark.parametrize("screen", ["Chats", "People", "Account"])
async def test_a_signed_in_screen_has_no_serious_violation(world: World, axe: Path, screen: str) -> None:
    await open_screen(world.cleo.page, screen)
    await expect(loaded(world.cleo.page, screen)).to_be_visible()
    await snap(world.cleo.page, screen.lower())
    assert await serious_violations(world.cleo.page, axe) == []


async def test_a_conversation_has_no_serious_violation(world: World, axe: Path) -> None:
    page = world.cleo.page
    await open_conversation(world.cleo, "dan")
    await expect(message(page, GREETING)).to_be_visible()
    await snap(page, "conversation-history")
    assert await serious_violations(page, axe) == []


async def test_the_keyboard_alone_signs_in_and_sends_a_message(web_server: Served, world: World) -> None:
    cleo = world.cleo
    page = cleo.page
    await sign_out(cleo)

    await tab_to(page, page.get_by_label("Email", exact=True))
    await page.keyboard.type(cleo.email)
    await tab_to(page, page.get_by_label("Password", exact=True))
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect_signed_in(page)

    await tab_to(page, page.get_by_role("link", name="dan").first)
    await page.keyboard.press("Enter")
    await tab_to(page, composer(page))
    await page.keyboard.type("Typed without a mouse")
    await tab_to(page, send_button(page))
    await page.keyboard.press("Enter")
    await expect(message(page, "Typed without a mouse")).not_to_contain_text("Sending")

    async with httpx.AsyncClient(base_url=web_server.url, timeout=10) as http:
        listed = await http.get(f"/v1/conversations/{world.conversation_id}/messages", headers=world.dan.headers)
    assert listed.status_code == 200, listed.text
    assert "Typed without a mouse" in [item["content"] for item in listed.json()["items"]]
