"""Request and response shapes of subscriptions: a person's tier and what it gives, the
answer to Stripe's webhooks, and the likes a person received."""

from __future__ import annotations

from pydantic import BaseModel, Field

from rapport.kernel.schemas import JsonDateTime, JsonUuid
from rapport.modules.matching.models_subscriptions import EventOutcome, SubscriptionStatus, Tier


class SubscriptionOut(BaseModel):
    """The person's subscription as Stripe last told it."""

    tier: Tier = Field(description="The tier it pays for (free while its plan is not known yet).")
    status: SubscriptionStatus = Field(description="Stripe's status: active, trialing and past_due give the tier.")
    current_period_start: JsonDateTime | None
    current_period_end: JsonDateTime | None
    cancel_at_period_end: bool = Field(description="Canceled by its owner: it ends with the period.")
    updated_at: JsonDateTime


class TierOut(BaseModel):
    """What the person has now, and what it gives."""

    tier: Tier = Field(description="The tier of the live subscription, or free (seed 002 users.subscription_tier).")
    likes_per_day: int | None = Field(description="Likes a day (UTC); null: unlimited.")
    likes_left_today: int | None = Field(description="Likes left until the day (UTC) ends; null: unlimited.")
    sees_who_liked: bool = Field(description="Whether GET /v1/matching/likes/received is open to the person.")
    subscription: SubscriptionOut | None = Field(description="Null when the person never subscribed.")


class StripeWebhookOut(BaseModel):
    """Stripe reads only the status; the body says what became of the event."""

    event_id: str
    replayed: bool = Field(description="The event was handled before: this delivery changed nothing.")
    outcome: EventOutcome = Field(
        description="applied (the subscription changed), ignored (nothing of Rapport's), "
        "stale (older than what is applied)."
    )


class ReceivedLikeOut(BaseModel):
    """Someone who liked the person, and when."""

    id: JsonUuid = Field(description="The match that holds the like.")
    user_id: JsonUuid = Field(description="Who liked.")
    liked_at: JsonDateTime
