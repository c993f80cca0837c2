"""The subscription tables of the `matching` schema as SQLAlchemy Core sees them,
mirroring migration 2026_11_30_0033 (its CHECKs, policies and the function
matching.tier_of live there only; tests/kernel/test_catalogue.py compares the two)."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Boolean, Column, Table, Text, false

from rapport.kernel.models import NOW, metadata, timestamp, user_column

# The values the CHECK constraints allow.
Tier = Literal["free", "premium", "elite"]
# Stripe's statuses of a subscription.
SubscriptionStatus = Literal[
    "incomplete", "incomplete_expired", "trialing", "active", "past_due", "canceled", "unpaid", "paused"
]
EventOutcome = Literal["applied", "ignored", "stale"]

# The statuses that give a subscription's tier (matching.tier_of says the same).
LIVE_STATUSES: frozenset[SubscriptionStatus] = frozenset({"active", "trialing", "past_due"})

subscriptions = Table(
    "subscriptions",
    metadata,
    user_column("user_id", primary_key=True),
    Column("tier", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("stripe_customer_id", Text),
    Column("stripe_subscription_id", Text),
    timestamp("current_period_start"),
    timestamp("current_period_end"),
    Column("cancel_at_period_end", Boolean, nullable=False, server_default=false()),
    timestamp("stripe_event_at"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="matching",
)

# Ids of the Stripe events handled: nothing of the payload, nobody named.
stripe_events = Table(
    "stripe_events",
    metadata,
    Column("id", Text, primary_key=True),
    Column("type", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    timestamp("received_at", nullable=False, server_default=NOW),
    schema="matching",
)
