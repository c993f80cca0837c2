"""A sign-in the server holds as unusual, in the web client: gus has no two-factor, and
signs in from an address the IP database calls a Tor exit (the browser's own, put there
as an operator's import would, in this module's database alone). The client asks for the
code the server e-mailed, and the code signs him in."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, expect

from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from tests.support import PASSWORD, Mailbox, register_persona
from tests.web.screens import MAIL_WITHIN_S, Served, expect_signed_in, open_browser

pytestmark = pytest.mark.usefixtures("screens_on_failure")


async def _tor_exit(urls: DatabaseUrls, network: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(urls.admin.set(database=urls.app.database)))
    try:
        await conn.execute(
            "INSERT INTO location.ip_addresses (id, network, ip_version, source, latitude, longitude, is_tor,"
            " risk_score) VALUES (gen_random_uuid(), $1, 4, 'mmdb', 40.7128, -74.006, true, 90)",
            network,
        )
    finally:
        await conn.close()


async def test_an_unusual_sign_in_is_completed_with_the_mailed_code(
    browser: Browser, web_server: Served, module_mailbox: Mailbox, module_database: DatabaseUrls
) -> None:
    async with httpx.AsyncClient(base_url=web_server.url, timeout=10) as http:
        await register_persona(http, module_mailbox, "gus")
    await _tor_exit(module_database, "127.0.0.1/32")
    gus = await open_browser(browser, web_server.url, "gus")
    page = gus.page
    mailed = len(module_mailbox.codes_to(gus.email))

    await page.goto("/#/login")
    await page.get_by_label("Email", exact=True).fill(gus.email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()

    await expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    code = await module_mailbox.code_for(gus.email, count=mailed + 1, within=MAIL_WITHIN_S)
    await page.get_by_label("Sign-in code", exact=True).fill(code)
    await page.get_by_role("button", name="Continue").click()
    await expect_signed_in(page)
    assert gus.errors == []
