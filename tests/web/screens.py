"""A person in the web client, and the steps they take in it, found the way they find
them: by the accessible names of labels, buttons and links (the names each view lists at
the top of its file in src/rapport/web/app/js/views)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Locator, Page, ViewportSize, expect

from tests.support import PASSWORD, Mailbox

ROOT = Path(__file__).resolve().parent.parent.parent
# Screenshots of the main screens, kept by CI as the run's artifacts (not in git).
ARTIFACTS = ROOT / "test-artifacts" / "web"
DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=360, height=740)
# How long a mailed code may take: mail leaves through the server's job queue.
MAIL_WITHIN_S = 15.0
SERIOUS = ("serious", "critical")
# Everyone a browser was opened for in this process: what their pages showed when a test
# failed is kept beside the screenshots (conftest's `screens_on_failure`).
OPENED: list[Person] = []


@dataclass(frozen=True)
class Served:
    """Where the client and its API answer (conftest's `web_server`)."""

    url: str


@dataclass
class Person:
    """Someone with a browser of their own: `name` is the local part of their address,
    and their display name is the same, capitalised (typed in at registration)."""

    name: str
    context: BrowserContext
    page: Page
    # Uncaught errors of the page's scripts: a working client raises none.
    errors: list[str] = field(default_factory=list)

    @property
    def email(self) -> str:
        return f"{self.name}@example.com"

    @property
    def display_name(self) -> str:
        return self.name.capitalize()


async def open_browser(browser: Browser, base_url: str, name: str, **options: Any) -> Person:
    """A new browser context (storage, tokens and socket of its own) with one page."""
    context = await browser.new_context(base_url=base_url, viewport=DESKTOP, **options)
    # As long as an expectation waits (conftest), not Playwright's 30 s for each action.
    context.set_default_timeout(15_000)
    page = await context.new_page()
    person = Person(name, context, page)
    page.on("pageerror", lambda error: person.errors.append(str(error)))
    OPENED.append(person)
    return person


async def register(person: Person, mailbox: Mailbox) -> None:
    """Create an account, then type the code that came by e-mail: signed in."""
    page = person.page
    earlier = len(mailbox.codes_to(person.email))
    await page.goto("/#/register")
    await page.get_by_label("Name", exact=True).fill(person.display_name)
    await page.get_by_label("Email", exact=True).fill(person.email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    code = await mailbox.code_for(person.email, count=earlier + 1, within=MAIL_WITHIN_S)
    await page.get_by_label("Code", exact=True).fill(code)
    await page.get_by_role("button", name="Verify").click()
    await expect_signed_in(page)


async def sign_in(person: Person) -> None:
    page = person.page
    await page.goto("/#/login")
    await page.get_by_label("Email", exact=True).fill(person.email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect_signed_in(page)


async def sign_out(person: Person) -> None:
    await open_screen(person.page, "Account")
    await person.page.get_by_role("button", name="Sign out").click()
    await expect(person.page.get_by_role("button", name="Sign in")).to_be_visible()


async def expect_signed_in(page: Page) -> None:
    """The main navigation of a signed-in person is there."""
    await expect(main_navigation(page).get_by_role("link", name="Chats")).to_be_visible()


def main_navigation(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Main")


async def open_screen(page: Page, name: str) -> None:
    """Chats, People or Account, from the main navigation (each screen's heading is its
    name)."""
    await main_navigation(page).get_by_role("link", name=name).click()
    await expect(page.get_by_role("heading", level=1, name=name)).to_be_visible()


async def find_person(page: Page, display_name: str) -> None:
    await open_screen(page, "People")
    await page.get_by_label("Find people", exact=True).fill(display_name)
    await page.get_by_role("button", name="Search", exact=True).click()


def entry_of(page: Page, listed_in: str, display_name: str) -> Locator:
    """The item of a list ("Search results", "Received requests", "Contacts", "Blocked
    people") that names this person."""
    return page.get_by_role("list", name=listed_in, exact=True).get_by_role("listitem").filter(has_text=display_name)


async def request_contact(asker: Person, other: Person) -> None:
    await find_person(asker.page, other.display_name)
    found = entry_of(asker.page, "Search results", other.display_name)
    await found.get_by_role("button", name="Add contact").click()
    await expect(found).to_contain_text("Request sent")


async def accept_request(person: Person, asker: Person) -> None:
    await open_screen(person.page, "People")
    await entry_of(person.page, "Received requests", asker.display_name).get_by_role("button", name="Accept").click()
    await expect(entry_of(person.page, "Contacts", asker.display_name)).to_be_visible()


async def start_conversation(person: Person, other: Person) -> None:
    """A direct conversation, started from the chats screen with the contact's name."""
    page = person.page
    await open_screen(page, "Chats")
    await page.get_by_role("button", name="New conversation").click()
    contact = page.get_by_label("Contact", exact=True)
    if await contact.evaluate("element => element.tagName") == "SELECT":
        await contact.select_option(label=other.display_name)
    else:
        await contact.fill(other.display_name)
    await page.get_by_role("button", name="Start").click()
    await expect(composer(page)).to_be_visible()


async def open_conversation(person: Person, other_name: str) -> None:
    await open_screen(person.page, "Chats")
    await person.page.get_by_role("link", name=other_name).first.click()
    await expect(composer(person.page)).to_be_visible()


def composer(page: Page) -> Locator:
    return page.get_by_role("textbox", name="Message", exact=True)


def send_button(page: Page) -> Locator:
    return page.get_by_role("button", name="Send", exact=True)


async def send(page: Page, text: str) -> None:
    """Write and send; done once the message is in the history as sent (no longer shown
    as "Sending…")."""
    await composer(page).fill(text)
    await send_button(page).click()
    await expect(message(page, text)).not_to_contain_text("Sending")


def history(page: Page) -> Locator:
    """The conversation's messages, oldest first, as the page lists them."""
    return page.get_by_role("log", name="History").get_by_role("listitem")


def message(page: Page, text: str) -> Locator:
    return history(page).filter(has_text=text)


def connection_status(page: Page) -> Locator:
    """What the page says of its connection: a live region in the top bar, empty (and
    so hidden) while the stream is live."""
    return page.locator("#connection")


async def snap(page: Page, name: str) -> None:
    """A screenshot of the whole page, kept as test-artifacts/web/<name>.png."""
    await page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


async def serious_violations(page: Page, axe: Path) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now, one line each."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.add_script_tag(path=axe)
    found: list[dict[str, Any]] = await page.evaluate(
        """async () => {
            const result = await axe.run(document, { resultTypes: ["violations"] });
            return result.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.map((node) => node.target.join(" ")),
            }));
        }"""
    )
    return [
        f"{v['impact']} {v['id']} ({v['help']}): {', '.join(v['targets'])}" for v in found if v["impact"] in SERIOUS
    ]


async def tab_to(page: Page, target: Locator, *, presses: int = 40) -> None:
    """Press Tab until the target has the focus, as a person without a mouse would."""
    for _ in range(presses):
        if await target.evaluate("element => element === document.activeElement"):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"{presses} presses of Tab never reached {target}")
