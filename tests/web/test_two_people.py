"""Two people, ada and ben, each in a browser of their own, use the web client against a
real Rapport: they register (with the code from their e-mail), become contacts, talk in a
direct conversation and see each other's messages, typing and read receipts live; ada
drops off the network and catches up with everything ben wrote meanwhile; a reload
resumes; a phone-sized screen still sends; and once ada blocks ben, ben can no longer
write to her.

One world for the module, built once (registered, contacts, the conversation open on
both screens); each test then writes what it looks for. Blocking comes last: pytest runs
a module's tests in file order."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect

from tests.support import Mailbox
from tests.web.screens import (
    DESKTOP,
    PHONE,
    Person,
    Served,
    accept_request,
    composer,
    connection_status,
    entry_of,
    history,
    message,
    open_browser,
    open_conversation,
    open_screen,
    register,
    request_contact,
    send,
    send_button,
    snap,
    start_conversation,
)

OFFLINE = re.compile(r"offline", re.IGNORECASE)

pytestmark = pytest.mark.usefixtures("screens_on_failure")


@pytest.fixture(scope="module")
async def people(browser: Browser, web_server: Served, module_mailbox: Mailbox) -> AsyncIterator[tuple[Person, Person]]:
    """ada and ben, registered and signed in, contacts (ben asked, ada accepted), with
    their direct conversation open on both screens."""
    ada, ben = [await open_browser(browser, web_server.url, name) for name in ("ada", "ben")]
    await asyncio.gather(register(ada, module_mailbox), register(ben, module_mailbox))
    await request_contact(ben, ada)
    await accept_request(ada, ben)
    await start_conversation(ada, ben)
    await open_conversation(ben, ada.display_name)
    yield ada, ben
    for person in (ada, ben):
        await person.context.close()


async def test_each_sees_the_others_message_live(people: tuple[Person, Person]) -> None:
    ada, ben = people
    await send(ada.page, "Hello Ben, are you coming on Sunday?")
    await expect(message(ben.page, "Hello Ben, are you coming on Sunday?")).to_be_visible()
    await send(ben.page, "Yes, with a cake.")
    await expect(message(ada.page, "Yes, with a cake.")).to_be_visible()
    await snap(ada.page, "conversation")


async def test_each_sees_the_other_typing_live(people: tuple[Person, Person]) -> None:
    ada, ben = people
    await composer(ben.page).press_sequentially("Which cake do you")
    await expect(ada.page.get_by_text("is typing")).to_be_visible()
    await send_button(ben.page).click()
    await expect(message(ada.page, "Which cake do you")).to_be_visible()
    # A message ends its writer's typing.
    await expect(ada.page.get_by_text("is typing")).to_be_hidden()


async def test_the_writer_sees_the_read_receipt_live(people: tuple[Person, Person]) -> None:
    ada, ben = people
    await send(ada.page, "Chocolate, please.")
    # ben has the conversation open: he reads it as it comes, and ada sees that he did.
    await expect(message(ben.page, "Chocolate, please.")).to_be_visible()
    await expect(message(ada.page, "Chocolate, please.").get_by_text("Read", exact=True)).to_be_visible()


async def test_a_person_back_online_catches_up_with_everything_in_order(people: tuple[Person, Person]) -> None:
    ada, ben = people
    await ada.context.set_offline(True)
    await expect(connection_status(ada.page)).to_have_text(OFFLINE)
    written = [f"While you were away, part {n}" for n in range(1, 6)]
    for text in written:
        await send(ben.page, text)
    await snap(ada.page, "offline")
    await ada.context.set_offline(False)
    await expect(connection_status(ada.page)).not_to_have_text(OFFLINE)
    # Every one of them, in the order written, none twice.
    await expect(history(ada.page).filter(has_text="While you were away")).to_have_text(
        [re.compile(re.escape(text)) for text in written]
    )


async def test_a_reload_resumes_the_conversation_with_its_history(people: tuple[Person, Person]) -> None:
    ada, ben = people
    before = ["Before the reload: one", "Before the reload: two"]
    for text in before:
        await send(ada.page, text)
    await expect(message(ben.page, before[-1])).to_be_visible()
    await ben.page.reload()
    await expect(composer(ben.page)).to_be_visible()
    await expect(history(ben.page).filter(has_text="Before the reload")).to_have_text(
        [re.compile(re.escape(text)) for text in before]
    )
    # And the stream is live again.
    await send(ada.page, "Still there after the reload?")
    await expect(message(ben.page, "Still there after the reload?")).to_be_visible()


async def test_a_phone_sized_screen_still_sends(people: tuple[Person, Person]) -> None:
    ada, ben = people
    await ben.page.set_viewport_size(PHONE)
    try:
        await expect(composer(ben.page)).to_be_in_viewport()
        await expect(send_button(ben.page)).to_be_in_viewport()
        await snap(ben.page, "conversation-phone")
        await send(ben.page, "Sent from my phone")
        await expect(message(ada.page, "Sent from my phone")).to_be_visible()
    finally:
        await ben.page.set_viewport_size(DESKTOP)


async def test_a_blocked_person_can_no_longer_write(people: tuple[Person, Person]) -> None:
    ada, ben = people
    await open_screen(ada.page, "People")
    await entry_of(ada.page, "Contacts", ben.display_name).get_by_role("button", name="Block").click()
    await expect(entry_of(ada.page, "Blocked people", ben.display_name)).to_be_visible()
    await snap(ada.page, "people-blocking")

    text = "Why can I not write to you?"
    await composer(ben.page).fill(text)
    async with ben.page.expect_response(
        lambda answer: answer.request.method == "POST" and answer.url.endswith("/messages")
    ) as answered:
        await send_button(ben.page).click()
    refusal = await answered.value
    assert 400 <= refusal.status < 500, await refusal.text()
    problem = await refusal.json()
    # The API's own words, and what ben wrote is still there to send later.
    await expect(ben.page.get_by_role("alert")).to_contain_text(problem.get("detail") or problem["title"])
    await expect(composer(ben.page)).to_have_value(text)
    await snap(ben.page, "blocked")


async def test_the_pages_raised_no_script_errors(people: tuple[Person, Person]) -> None:
    for person in people:
        assert person.errors == [], person.name
