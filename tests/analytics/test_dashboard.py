"""The analytics dashboard: a page of its own at /admin/analytics, with no script, style
or font from elsewhere, landmarks and labels for assistive technology, and every route
its script calls answering an administrator."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest

from tests.compliance.admin_support import admin_persona  # noqa: F401 (the admin fixture)
from tests.support import Persona

pytestmark = pytest.mark.module_database


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


async def _page(client: httpx.AsyncClient) -> tuple[str, _Page]:
    served = await client.get("/admin/analytics")
    assert served.status_code == 200, served.text
    assert served.headers["content-type"].startswith("text/html")
    parsed = _Page()
    parsed.feed(served.text)
    return served.text, parsed


async def test_the_page_is_served_whole_with_nothing_from_elsewhere(client: httpx.AsyncClient) -> None:
    html, page = await _page(client)
    assert not [attrs for tag, attrs in page.tags if tag in ("script", "img", "iframe") and attrs.get("src")]
    assert not [attrs for tag, attrs in page.tags if tag == "link"]
    assert re.findall(r"https?://(?!www\.w3\.org/2000/svg)", html) == [], "no CDN, no other origin"


async def test_the_page_has_landmarks_and_labelled_fields(client: httpx.AsyncClient) -> None:
    _, page = await _page(client)
    tags = [tag for tag, _ in page.tags]
    assert {"header", "nav", "main", "footer"} <= set(tags)
    assert ("html", {"lang": "en"}) in page.tags
    labelled = {attrs.get("for") for tag, attrs in page.tags if tag == "label"}
    fields = {attrs.get("id") for tag, attrs in page.tags if tag in ("input", "select")}
    assert fields and fields <= labelled, "every field has its label"
    assert all(attrs.get("aria-label") for tag, attrs in page.tags if tag == "nav")


async def test_every_route_the_page_calls_answers_an_administrator(client: httpx.AsyncClient, admin: Persona) -> None:
    html, _ = await _page(client)
    called = sorted(set(re.findall(r'call\("(/[a-z-]+)', html)))
    assert len(called) >= 12
    for path in called:
        answer = await client.get("/v1/admin/analytics" + path, headers=admin.headers)
        assert answer.status_code == 200, (path, answer.text)
    signed_in = await client.post("/v1/auth/login", json={"email": admin.email, "password": admin.password})
    assert signed_in.status_code == 200 and signed_in.json()["access_token"], "the page's sign-in works"
