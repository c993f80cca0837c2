"""What a tier gives (GET /v1/matching/subscription): free people like ten times a day
(UTC), premium and elite without limit, and only premium and elite see who liked them
(GET /v1/matching/likes/received)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import insert

from rapport.config import Settings
from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.ids import uuid7
from rapport.modules.matching import models_matches as mm
from rapport.modules.matching import service
from tests.matching.test_stripe_webhooks import SECRET, deliver, event, stripe_id, subscribe, subscription
from tests.support import Persona, make_settings, problem_type

pytestmark = pytest.mark.module_database

_people = itertools.count()


@pytest.fixture(scope="module")
def module_settings(smtp_server: tuple[Controller, object]) -> Settings:
    controller, _ = smtp_server
    return make_settings(smtp_host="127.0.0.1", smtp_port=controller.port, stripe_webhook_secret=SECRET)


async def add_match(
    runtime: Any, person: Persona, other: Persona, *, status: str = "liked", decided_at: datetime | None = None
) -> UUID:
    """A daily match of `person`'s, decided as `status` (the daily job and the like route
    are the matches' own business)."""
    match_id = uuid7()
    decided = None if status == "proposed" else (decided_at or datetime.now(UTC))
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            insert(mm.matches).values(
                id=match_id,
                user_id=UUID(person.user_id),
                matched_user_id=UUID(other.user_id),
                score=0.5,
                for_date=date.today(),
                status=status,
                decided_at=decided,
            )
        )
    return match_id


async def like_many(runtime: Any, person: Persona, make_persona: Any, count: int, **options: Any) -> None:
    for _ in range(count):
        await add_match(runtime, person, await make_persona(f"someone{next(_people)}"), **options)


async def test_without_a_subscription_a_person_is_free(client, alice):
    answer = await client.get("/v1/matching/subscription", headers=alice.headers)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "tier": "free",
        "likes_per_day": 10,
        "likes_left_today": 10,
        "sees_who_liked": False,
        "subscription": None,
    }


async def test_the_subscription_needs_a_signed_in_caller(client):
    answer = await client.get("/v1/matching/subscription")

    assert answer.status_code == 401


async def test_current_tier_is_the_live_subscriptions(client, app_engine, alice):
    await subscribe(client, alice, lookup_key="elite_monthly")

    async with user_transaction(app_engine, UUID(alice.user_id)) as db:
        assert await service.current_tier(db, UUID(alice.user_id)) == "elite"


async def test_a_free_persons_likes_of_today_are_counted(client, runtime, make_persona, alice, bob, carol):
    await like_many(runtime, alice, make_persona, 3)
    await add_match(runtime, alice, bob, status="passed")
    await add_match(runtime, alice, carol, status="proposed")

    body = (await client.get("/v1/matching/subscription", headers=alice.headers)).json()

    assert body["likes_left_today"] == 7


async def test_the_tenth_like_is_allowed_and_the_eleventh_refused(runtime, app_engine, make_persona, alice):
    await like_many(runtime, alice, make_persona, 9)
    async with user_transaction(app_engine, UUID(alice.user_id)) as db:
        assert await service.likes_allowed_today(db, UUID(alice.user_id)) is True
        await service.ensure_like_allowed(db, UUID(alice.user_id))
    await like_many(runtime, alice, make_persona, 1)

    async with user_transaction(app_engine, UUID(alice.user_id)) as db:
        assert await service.likes_allowed_today(db, UUID(alice.user_id)) is False
        with pytest.raises(service.DailyLikesSpent) as refused:
            await service.ensure_like_allowed(db, UUID(alice.user_id))

    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    assert refused.value.status == 429 and refused.value.extra["limit"] == 10
    assert 0 < int(refused.value.headers["Retry-After"]) <= (midnight - datetime.now(UTC)).total_seconds() + 2


async def test_yesterdays_likes_do_not_count(runtime, app_engine, make_persona, alice):
    yesterday = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(minutes=1)
    await like_many(runtime, alice, make_persona, 10, decided_at=yesterday)

    async with user_transaction(app_engine, UUID(alice.user_id)) as db:
        assert await service.likes_left_today(db, UUID(alice.user_id)) == 10


async def test_a_mutual_match_counts_as_a_like(runtime, app_engine, make_persona, alice):
    await like_many(runtime, alice, make_persona, 10, status="mutual")

    async with user_transaction(app_engine, UUID(alice.user_id)) as db:
        assert await service.likes_allowed_today(db, UUID(alice.user_id)) is False


async def test_premium_likes_without_limit(client, runtime, app_engine, make_persona, alice):
    await subscribe(client, alice)
    await like_many(runtime, alice, make_persona, 12)

    async with user_transaction(app_engine, UUID(alice.user_id)) as db:
        await service.ensure_like_allowed(db, UUID(alice.user_id))
        assert await service.likes_left_today(db, UUID(alice.user_id)) is None
    body = (await client.get("/v1/matching/subscription", headers=alice.headers)).json()
    assert body["likes_per_day"] is None and body["likes_left_today"] is None


async def test_the_limit_returns_when_the_subscription_ends(client, runtime, app_engine, make_persona, alice):
    sub_id, customer = await subscribe(client, alice)
    await like_many(runtime, alice, make_persona, 10)

    await deliver(
        client,
        event("customer.subscription.deleted", subscription(sub_id=sub_id, customer=customer, status="canceled")),
    )

    async with user_transaction(app_engine, UUID(alice.user_id)) as db:
        assert await service.likes_allowed_today(db, UUID(alice.user_id)) is False


# Who liked me


async def test_a_free_person_may_not_see_who_liked_them(client, runtime, alice, bob):
    await add_match(runtime, bob, alice, status="liked")

    answer = await client.get("/v1/matching/likes/received", headers=alice.headers)

    assert answer.status_code == 403 and problem_type(answer) == "premium-required"


async def test_premium_sees_who_liked_them_and_waits_for_an_answer(client, runtime, alice, bob, carol, mallory):
    await subscribe(client, alice)
    liked = await add_match(runtime, bob, alice, status="liked")
    await add_match(runtime, carol, alice, status="passed")
    await add_match(runtime, mallory, alice, status="proposed")
    await add_match(runtime, alice, bob, status="proposed")

    answer = await client.get("/v1/matching/likes/received", headers=alice.headers)

    assert answer.status_code == 200, answer.text
    [like] = answer.json()["items"]
    assert like["id"] == str(liked) and like["user_id"] == bob.user_id and like["liked_at"] is not None


async def test_received_likes_are_paged_newest_first(client, runtime, make_persona, alice):
    await subscribe(client, alice)
    likers = [await make_persona(f"liker{n}") for n in range(3)]
    for liker in likers:
        await add_match(runtime, liker, alice, status="liked")

    first = await client.get("/v1/matching/likes/received", headers=alice.headers, params={"limit": 2})
    rest = await client.get(
        "/v1/matching/likes/received", headers=alice.headers, params={"limit": 2, "cursor": first.json()["next"]}
    )

    seen = [like["user_id"] for like in first.json()["items"] + rest.json()["items"]]
    assert seen == [liker.user_id for liker in reversed(likers)] and rest.json()["next"] is None


async def test_a_cursor_not_issued_by_the_server_is_refused(client, alice):
    await subscribe(client, alice)

    answer = await client.get("/v1/matching/likes/received", headers=alice.headers, params={"cursor": "%%%"})

    assert answer.status_code == 400 and problem_type(answer) == "invalid-cursor"


async def test_a_subscription_not_yet_known_to_be_paid_gives_nothing(client, alice):
    await deliver(
        client,
        event(
            "customer.subscription.created",
            subscription(
                sub_id=stripe_id("sub"), customer=stripe_id("cus"), user_id=alice.user_id, status="incomplete"
            ),
        ),
    )

    answer = await client.get("/v1/matching/likes/received", headers=alice.headers)

    assert answer.status_code == 403
