"""Alice's subscription attacked: through the API by mallory, and through SQL as
`rapport_app` (the server's role), where PostgreSQL itself must refuse. Nobody but
Stripe's signed webhooks (system work) writes a subscription: not mallory, and not alice
granting herself a tier. Nobody reads the handled Stripe events but system work.

Tables: matching.subscriptions, matching.stripe_events."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from uuid import UUID

import asyncpg
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import DBAPIError

from rapport.config import Settings
from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.ids import uuid7
from rapport.modules.matching import models_matches as mm
from rapport.modules.matching import models_subscriptions as m
from tests.matching.test_stripe_webhooks import (
    SECRET,
    deliver,
    event,
    signature,
    stripe_id,
    subscribe,
    subscription,
)
from tests.support import make_settings

pytestmark = pytest.mark.module_database


@pytest.fixture(scope="module")
def module_settings(smtp_server: tuple[Controller, object]) -> Settings:
    controller, _ = smtp_server
    return make_settings(smtp_host="127.0.0.1", smtp_port=controller.port, stripe_webhook_secret=SECRET)


@pytest.fixture
async def alice_premium(client, alice):
    await subscribe(client, alice)
    return alice


def _is_refused(error: DBAPIError) -> bool:
    return isinstance(error.orig.__cause__, asyncpg.exceptions.InsufficientPrivilegeError)


async def test_a_stranger_reads_none_of_alices_subscription(app_engine, alice_premium, mallory):
    async with user_transaction(app_engine, UUID(mallory.user_id)) as db:
        rows = (await db.execute(select(m.subscriptions))).all()
        tier = (await db.execute(text("SELECT matching.tier_of(:id)"), {"id": UUID(alice_premium.user_id)})).scalar()

    assert rows == []
    assert tier == "free", "another's tier reads as free: it says nothing of them"


async def test_alice_reads_her_own_subscription(app_engine, alice_premium):
    async with user_transaction(app_engine, UUID(alice_premium.user_id)) as db:
        rows = (await db.execute(select(m.subscriptions.c.user_id))).scalars().all()

    assert rows == [UUID(alice_premium.user_id)]


async def test_a_transaction_naming_no_one_sees_no_subscription(app_engine, alice_premium):
    async with app_engine.connect() as db:
        rows = (await db.execute(select(m.subscriptions))).all()

    assert rows == []


@pytest.mark.parametrize("who", ["alice", "mallory"])
async def test_no_one_grants_a_tier_through_sql(app_engine, alice, mallory, who):
    actor = {"alice": alice, "mallory": mallory}[who]

    with pytest.raises(DBAPIError) as refused:
        async with user_transaction(app_engine, UUID(actor.user_id)) as db:
            await db.execute(insert(m.subscriptions).values(user_id=UUID(actor.user_id), tier="elite", status="active"))

    assert _is_refused(refused.value)


async def test_no_one_changes_a_subscription_through_sql(app_engine, alice_premium, mallory):
    for actor in (alice_premium, mallory):
        with pytest.raises(DBAPIError) as refused:
            async with user_transaction(app_engine, UUID(actor.user_id)) as db:
                await db.execute(update(m.subscriptions).values(tier="elite", current_period_end=None))
        assert _is_refused(refused.value)


async def test_stripe_events_are_system_work_only(app_engine, client, alice_premium, mallory):
    for actor in (alice_premium, mallory):
        with pytest.raises(DBAPIError) as refused:
            async with user_transaction(app_engine, UUID(actor.user_id)) as db:
                await db.execute(select(m.stripe_events))
        assert _is_refused(refused.value)
        with pytest.raises(DBAPIError) as refused:
            async with user_transaction(app_engine, UUID(actor.user_id)) as db:
                await db.execute(insert(m.stripe_events).values(id="evt_forged", type="x", outcome="applied"))
        assert _is_refused(refused.value)


async def test_the_api_shows_mallory_only_her_own_tier(client, alice_premium, mallory):
    answer = await client.get("/v1/matching/subscription", headers=mallory.headers)

    assert answer.json()["tier"] == "free" and answer.json()["subscription"] is None


async def test_mallory_cannot_make_herself_premium_without_stripes_secret(client, mallory):
    forged = json.dumps(
        event(
            "customer.subscription.created",
            subscription(sub_id=stripe_id("sub"), customer=stripe_id("cus"), user_id=mallory.user_id),
        )
    ).encode()

    unsigned = await deliver(client, forged, sign=False)
    guessed = await deliver(client, forged, header=signature(forged, secret="whsec_guess"))

    assert unsigned.status_code == 400 and guessed.status_code == 400
    assert (await client.get("/v1/matching/subscription", headers=mallory.headers)).json()["tier"] == "free"


async def test_received_likes_show_only_ones_own(client, runtime, alice, bob, mallory):
    await subscribe(client, mallory)
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            insert(mm.matches).values(
                id=uuid7(),
                user_id=UUID(bob.user_id),
                matched_user_id=UUID(alice.user_id),
                score=0.9,
                for_date=date.today(),
                status="liked",
                decided_at=datetime.now(UTC),
            )
        )

    answer = await client.get("/v1/matching/likes/received", headers=mallory.headers)

    assert answer.status_code == 200 and answer.json()["items"] == []
