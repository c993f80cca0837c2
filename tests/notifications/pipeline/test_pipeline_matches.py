"""Match alerts from the outbox: a day's proposals and a mutual match become `match`
notifications, in-app and pushed by default, weighed against preferences like the
others; a like alone notifies no one.

Alice (a woman) and bob (a man) want each other, in Paris; the daily job proposes them to
each other, and they like through the routes."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from aiosmtpd.controller import Controller

from rapport.config import Settings
from tests.matching.test_daily import daily, plant_profile, propose
from tests.notifications.fakes import provider_settings
from tests.notifications.pipeline.support import KEYS, Pipeline, notifications_of, set_preference, subscribe
from tests.support import Mailbox, Persona, make_settings

pytestmark = pytest.mark.module_database


@pytest.fixture(scope="module")
def module_settings(smtp_server: tuple[Controller, Mailbox]) -> Settings:
    """No job worker or outbox reader of the app's own: each test's `pipeline` runs them."""
    controller, _ = smtp_server
    return make_settings(
        smtp_host="127.0.0.1",
        smtp_port=controller.port,
        worker_in_process=False,
        **provider_settings(vapid_private_key=KEYS.private_key),
    )


async def proposed(client: Any, pipeline: Pipeline, alice: Persona, bob: Persona) -> tuple[dict[str, Any], ...]:
    await plant_profile(pipeline.runtime, alice, gender="woman", pref_genders=["man"])
    await plant_profile(pipeline.runtime, bob, gender="man", pref_genders=["woman"])
    await propose(pipeline.runtime)
    [hers], [his] = await daily(client, alice), await daily(client, bob)
    return hers, his


async def like(client: Any, who: Persona, match: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/v1/matching/matches/{match['id']}/like", headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_days_proposals_are_a_notification_in_app_and_pushed(
    client, alice, bob, pipeline: Pipeline, push_service
):
    browser = push_service.subscribe(application_server_key=None)
    await subscribe(pipeline.runtime, alice, browser)

    await proposed(client, pipeline, alice, bob)
    await pipeline.settle()

    [note] = await notifications_of(pipeline.runtime, alice)
    assert (note.type, note.category, note.priority, note.is_read) == ("match", "social", "normal", False)
    assert note.title == "Your matches for today" and note.body == "1 new person to meet today."
    [push] = push_service.received_by(browser.endpoint)
    assert push.json()["title"] == "Your matches for today"
    assert [n.type for n in await notifications_of(pipeline.runtime, bob)] == ["match"]


async def test_a_mutual_match_is_a_notification_to_each_naming_the_other(
    client, alice, bob, pipeline: Pipeline, push_service
):
    hers, his = await proposed(client, pipeline, alice, bob)
    await pipeline.settle()
    browser = push_service.subscribe(application_server_key=None)
    await subscribe(pipeline.runtime, bob, browser)

    await like(client, alice, hers)
    mutual = await like(client, bob, his)
    await pipeline.settle()

    conversation = UUID(mutual["conversation_id"])
    for who, other in ((alice, bob), (bob, alice)):
        newest, *_ = await notifications_of(pipeline.runtime, who)
        assert (newest.type, newest.priority, newest.is_read) == ("match", "high", False)
        assert newest.title == "It's a match"
        assert newest.body == f"You and {other.name} like each other: say hello."
        assert (newest.actor_id, newest.conversation_id) == (UUID(other.user_id), conversation)
    [push] = push_service.received_by(browser.endpoint)
    assert push.json()["title"] == "It's a match"


async def test_a_like_alone_notifies_no_one(client, alice, bob, pipeline: Pipeline, push_service):
    hers, _ = await proposed(client, pipeline, alice, bob)
    await pipeline.settle()
    before = {who.name: len(await notifications_of(pipeline.runtime, who)) for who in (alice, bob)}

    await like(client, alice, hers)
    await pipeline.settle()

    assert {who.name: len(await notifications_of(pipeline.runtime, who)) for who in (alice, bob)} == before


async def test_match_alerts_follow_the_persons_preferences(client, alice, bob, pipeline: Pipeline, push_service):
    browser = push_service.subscribe(application_server_key=None)
    await subscribe(pipeline.runtime, alice, browser)
    await set_preference(pipeline.runtime, alice, channel="push", enabled=False, type="match")

    await proposed(client, pipeline, alice, bob)
    await pipeline.settle()

    [note] = await notifications_of(pipeline.runtime, alice)
    assert (note.type, note.is_read) == ("match", False)
    assert push_service.received_by(browser.endpoint) == []
