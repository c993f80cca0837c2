"""The analytics dashboard (/admin/analytics) in a real browser: with rows in the
analytics tables, a platform administrator who signs in on it sees its charts drawn from
them; the web client's account screen links to it for administrators alone.

ada is made an administrator as an operator would (SQL as the superuser); eli is not.
Their events are written as system work and rolled up, as the hourly job would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, Page, expect

from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from tests.analytics.reports_support import Event, add_events, rollup
from tests.support import PASSWORD, Mailbox, register_persona
from tests.web.screens import Served, open_browser, open_screen, sign_in

pytestmark = pytest.mark.usefixtures("screens_on_failure")

# Events of the day before and of today: app_open the most, then feature_used. (Rapport
# records its own server events besides, signed_up and logged_in among them.)
EVENTS = {"app_open": 3, "feature_used": 2, "screen_view": 1}


async def _make_admin(urls: DatabaseUrls, user_id: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(urls.admin.set(database=urls.app.database)))
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("UPDATE auth.users SET is_admin = true WHERE id = $1", UUID(user_id))
    finally:
        await conn.close()


async def _bars(page: Page, chart: str) -> dict[str, float]:
    """A bar chart's bars, name to drawn width: each row is its name, its bar, its value."""
    pairs: list[list[str | float]] = await page.locator(f"#{chart} svg").first.evaluate(
        """svg => {
            const names = [...svg.querySelectorAll("text")].filter((_, i) => i % 2 === 0).map((t) => t.textContent);
            const widths = [...svg.querySelectorAll("rect")].map((r) => Number(r.getAttribute("width")));
            return names.map((name, i) => [name, widths[i]]);
        }"""
    )
    return {str(name): float(width) for name, width in pairs}


async def test_the_dashboard_draws_its_charts_for_an_administrator(
    browser: Browser, web_server: Served, module_app: FastAPI, module_mailbox: Mailbox, module_database: DatabaseUrls
) -> None:
    async with httpx.AsyncClient(base_url=web_server.url, timeout=10) as http:
        ada = await register_persona(http, module_mailbox, "ada")
    await _make_admin(module_database, ada.user_id)
    today = datetime.now(UTC)
    yesterday = today - timedelta(days=1)
    runtime = module_app.state.runtime
    await add_events(
        runtime,
        [
            Event(name, when, UUID(ada.user_id), properties={"feature": "search"} if name == "feature_used" else {})
            for name, count in EVENTS.items()
            for when in [yesterday, today][:count] + [today] * max(0, count - 2)
        ],
    )
    await rollup(runtime, yesterday.date(), today.date())
    person = await open_browser(browser, web_server.url, "ada")
    page = person.page

    await page.goto("/admin/analytics")
    await page.get_by_label("E-mail address", exact=True).fill(ada.email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()

    await expect(page.locator("#status")).to_have_text("Up to date.")
    assert person.errors == []
    # Events by name: one bar each, longest for app_open, in proportion to the counts.
    events = page.get_by_role("img", name="Events by name over the range")
    await expect(events).to_be_visible()
    bars = await _bars(page, "events-chart")
    assert bars["app_open"] > bars["feature_used"] > bars["screen_view"] > 0
    assert bars["app_open"] / bars["screen_view"] == pytest.approx(3.0)
    assert (await _bars(page, "feature-table")).keys() == {"search"}
    # Accounts per day: a line over the range's days (the default 30), ending at one account.
    growth = page.get_by_role("img", name="Accounts and sign-ups per day")
    await expect(growth).to_be_visible()
    points = await growth.locator("polyline").first.get_attribute("points")
    assert points is not None and len(points.split()) == 30
    levels = await _bars(page, "engagement")
    assert levels and any(width > 0 for width in levels.values())
    await expect(page.locator("#active-cards")).to_contain_text("DAU")


async def test_the_account_screen_links_the_dashboard_for_administrators_only(
    browser: Browser, web_server: Served, module_mailbox: Mailbox, module_database: DatabaseUrls
) -> None:
    async with httpx.AsyncClient(base_url=web_server.url, timeout=10) as http:
        fay = await register_persona(http, module_mailbox, "fay")
        await register_persona(http, module_mailbox, "eli")
    await _make_admin(module_database, fay.user_id)
    admin = await open_browser(browser, web_server.url, "fay")
    other = await open_browser(browser, web_server.url, "eli")

    for person in (admin, other):
        await sign_in(person)
        await open_screen(person.page, "Account")

    link = admin.page.get_by_role("link", name="Analytics dashboard")
    await expect(link).to_have_attribute("href", "/admin/analytics")
    await expect(other.page.get_by_role("button", name="Sign out")).to_be_visible()
    await expect(other.page.get_by_role("link", name="Analytics dashboard")).to_have_count(0)
