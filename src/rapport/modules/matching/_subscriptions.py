"""What a person's tier gives (seed 002 users.subscription_tier): likes a day, and seeing
who liked them. The tier is the database's answer (matching.tier_of): the tier of the
person's live subscription, or free."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.modules.matching import models_matches as mm
from rapport.modules.matching import models_subscriptions as m
from rapport.modules.matching import schemas_subscriptions as s
from rapport.modules.matching.errors import DailyLikesSpent, PremiumRequired

# Likes a day (UTC) by tier; None: unlimited.
LIKES_PER_DAY: dict[m.Tier, int | None] = {"free": 10, "premium": None, "elite": None}
# The tiers that see who liked them.
SEES_WHO_LIKED: frozenset[m.Tier] = frozenset({"premium", "elite"})
_LIKES = ("liked", "mutual")


async def current_tier(db: AsyncConnection, user_id: UUID) -> m.Tier:
    """The person's tier now: their live subscription's, or free. In a user transaction,
    only the actor's own is known (anyone else's reads as free); system work sees all."""
    tier: m.Tier = (await db.execute(text("SELECT matching.tier_of(:user_id)"), {"user_id": user_id})).scalar_one()
    return tier


def _day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


async def _likes_today(db: AsyncConnection, user_id: UUID, now: datetime) -> int:
    t = mm.matches
    counted = select(func.count()).where(
        t.c.user_id == user_id, t.c.status.in_(_LIKES), t.c.decided_at >= _day_start(now)
    )
    return int((await db.execute(counted)).scalar_one())


async def likes_left_today(db: AsyncConnection, user_id: UUID, *, now: datetime | None = None) -> int | None:
    """Likes the person may still give until the day (UTC) ends; None: unlimited."""
    limit = LIKES_PER_DAY[await current_tier(db, user_id)]
    if limit is None:
        return None
    return max(0, limit - await _likes_today(db, user_id, now or datetime.now(UTC)))


async def likes_allowed_today(db: AsyncConnection, user_id: UUID) -> bool:
    """Whether the person may like once more today."""
    left = await likes_left_today(db, user_id)
    return left is None or left > 0


async def ensure_like_allowed(db: AsyncConnection, user_id: UUID) -> None:
    """Call before a like, in its transaction: refuses a like past the day's limit. Two
    likes of one person at once take turns, so the tenth and eleventh cannot both pass.

    Raises:
        DailyLikesSpent: the person's tier allows no more likes today (Retry-After: the
            seconds until the day, UTC, ends).
    """
    await db.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('matching.likes:' || :user_id, 0))"),
        {"user_id": str(user_id)},
    )
    now = datetime.now(UTC)
    tier = await current_tier(db, user_id)
    limit = LIKES_PER_DAY[tier]
    if limit is not None and await _likes_today(db, user_id, now) >= limit:
        retry_after = int((_day_start(now) + timedelta(days=1) - now).total_seconds()) + 1
        raise DailyLikesSpent(
            f"The {tier} tier gives {limit} likes a day (UTC).", retry_after=retry_after, limit=limit, tier=tier
        )


def _subscription_out(row: Any) -> s.SubscriptionOut:
    return s.SubscriptionOut.model_validate(row, from_attributes=True)


async def get_tier(db: AsyncConnection, *, actor: Actor) -> s.TierOut:
    """The actor's tier, what it gives, and their subscription as Stripe last told it."""
    t = m.subscriptions
    row = (await db.execute(select(t).where(t.c.user_id == actor.user_id))).one_or_none()
    tier = await current_tier(db, actor.user_id)
    return s.TierOut(
        tier=tier,
        likes_per_day=LIKES_PER_DAY[tier],
        likes_left_today=await likes_left_today(db, actor.user_id),
        sees_who_liked=tier in SEES_WHO_LIKED,
        subscription=None if row is None else _subscription_out(row),
    )


async def list_received_likes(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[s.ReceivedLikeOut]:
    """Who liked the actor and waits for an answer, newest proposal first.

    Raises:
        PremiumRequired: the actor's tier does not see who liked them.
    """
    if await current_tier(db, actor.user_id) not in SEES_WHO_LIKED:
        raise PremiumRequired()
    t = mm.matches
    query = select(t.c.id, t.c.user_id, t.c.decided_at.label("liked_at")).where(
        t.c.matched_user_id == actor.user_id, t.c.status == "liked"
    )
    rows = (await db.execute(keyset(query, t.c.id, page))).all()
    likes = [s.ReceivedLikeOut.model_validate(row, from_attributes=True) for row in rows]
    return make_page(likes, page)
