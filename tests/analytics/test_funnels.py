"""Funnels: ordered steps by event name, each within the window of the first, counted
per step against a hand count; administrators define, read and remove them."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime
from tests.analytics.reports_support import MONDAY, Event, add_events, at, make_months, people_signed_up
from tests.compliance.admin_support import admin_persona  # noqa: F401 (the admin fixture)
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

DAY = MONDAY + timedelta(days=7)
FUNNEL = {
    "key": "first-message",
    "name": "From opening the app to a first message",
    "steps": ["app_open", "profile_view", "message_sent"],
    "window_seconds": 3600,
}


async def _fixture(database: DatabaseUrls, runtime: Runtime) -> None:
    await make_months(database, DAY)
    before = at(DAY - timedelta(days=2))
    p = await people_signed_up(database, ana=before, ben=before, cal=before, dee=before, eve=before, fay=before)
    await add_events(
        runtime,
        [
            # ana goes all the way, in order, within the hour.
            Event("app_open", at(DAY, 10), p["ana"]),
            Event("profile_view", at(DAY, 10, 10), p["ana"]),
            Event("message_sent", at(DAY, 10, 20), p["ana"]),
            # ben sends before he views a profile, never after: step 2.
            Event("app_open", at(DAY, 10), p["ben"]),
            Event("message_sent", at(DAY, 10, 5), p["ben"]),
            Event("profile_view", at(DAY, 10, 30), p["ben"]),
            # cal's message comes an hour and a half after she entered: step 2.
            Event("app_open", at(DAY, 10), p["cal"]),
            Event("profile_view", at(DAY, 10, 30), p["cal"]),
            Event("message_sent", at(DAY, 11, 30), p["cal"]),
            # dee never opened the app: not in the funnel.
            Event("profile_view", at(DAY, 10), p["dee"]),
            Event("message_sent", at(DAY, 10, 1), p["dee"]),
            # eve entered the day before the range; fay's steps all land at one moment.
            Event("app_open", at(DAY - timedelta(days=1), 23), p["eve"]),
            Event("profile_view", at(DAY, 0, 10), p["eve"]),
            Event("app_open", at(DAY, 12), p["fay"]),
            Event("profile_view", at(DAY, 12), p["fay"]),
            Event("message_sent", at(DAY, 12), p["fay"]),
        ],
    )


async def test_people_per_step_match_the_hand_count(
    client: httpx.AsyncClient, database: DatabaseUrls, runtime: Runtime, admin: Persona
) -> None:
    await _fixture(database, runtime)
    made = await client.post("/v1/admin/analytics/funnels", json=FUNNEL, headers=admin.headers)
    assert made.status_code == 201, made.text
    assert made.json()["steps"] == FUNNEL["steps"]

    report = await client.get(
        "/v1/admin/analytics/funnels/first-message",
        params={"since": at(DAY, 0).isoformat(), "until": at(DAY + timedelta(days=1), 0).isoformat()},
        headers=admin.headers,
    )

    assert report.status_code == 200, report.text
    steps = report.json()["steps"]
    assert [(s["step"], s["event_name"], s["users"]) for s in steps] == [
        (1, "app_open", 4),  # ana, ben, cal, fay
        (2, "profile_view", 4),
        (3, "message_sent", 2),  # ana, fay
    ]
    assert [s["conversion_from_start"] for s in steps] == [1.0, 1.0, 0.5]
    assert [s["conversion_from_previous"] for s in steps] == [1.0, 1.0, 0.5]


async def test_funnels_are_listed_refused_twice_and_removed(client: httpx.AsyncClient, admin: Persona) -> None:
    made = await client.post("/v1/admin/analytics/funnels", json=FUNNEL, headers=admin.headers)
    assert made.status_code == 201, made.text
    again = await client.post("/v1/admin/analytics/funnels", json=FUNNEL, headers=admin.headers)
    assert again.status_code == 409 and problem_type(again) == "analytics-funnel-key-taken"
    listed = await client.get("/v1/admin/analytics/funnels", headers=admin.headers)
    assert [f["key"] for f in listed.json()["items"]] == ["first-message"]

    removed = await client.delete("/v1/admin/analytics/funnels/first-message", headers=admin.headers)
    assert removed.status_code == 204, removed.text
    gone = await client.get("/v1/admin/analytics/funnels/first-message", headers=admin.headers)
    assert gone.status_code == 404 and problem_type(gone) == "analytics-funnel-not-found"


@pytest.mark.parametrize(
    "change",
    [
        {"steps": ["app_open"]},
        {"steps": ["app_open", "Not An Event"]},
        {"window_seconds": 0},
        {"key": "Has Spaces"},
        {"surprise": True},
    ],
)
async def test_a_bad_definition_is_refused(
    client: httpx.AsyncClient, admin: Persona, change: dict[str, object]
) -> None:
    refused = await client.post("/v1/admin/analytics/funnels", json={**FUNNEL, **change}, headers=admin.headers)
    assert refused.status_code == 422 and problem_type(refused) == "validation-error", refused.text


async def test_a_report_range_that_ends_first_is_refused(client: httpx.AsyncClient, admin: Persona) -> None:
    await client.post("/v1/admin/analytics/funnels", json=FUNNEL, headers=admin.headers)
    refused = await client.get(
        "/v1/admin/analytics/funnels/first-message",
        params={"since": at(DAY, 12).isoformat(), "until": at(DAY, 11).isoformat()},
        headers=admin.headers,
    )
    assert refused.status_code == 400 and problem_type(refused) == "analytics-report-range-invalid"
