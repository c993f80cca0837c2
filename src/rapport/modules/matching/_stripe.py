"""Stripe's webhooks, which drive subscriptions (seed 002 subscriptions).

Stripe signs each delivery: the `Stripe-Signature` header carries `t=<unix time>` and one
`v1=<hex>` per signing secret of the endpoint (two while a secret is rolled), each the
HMAC-SHA256 of `"<t>.<raw body>"` under that secret. A delivery is accepted when one v1
matches and `t` is at most five minutes old, exactly as Stripe's own libraries check it;
a replayed delivery of an event already handled (by its id) changes nothing.

Stripe does not deliver in order, so a subscription keeps the creation time of the last
event applied to it, and an older event is recorded as stale. Which person a subscription
is theirs: the subscription already linked, its metadata `rapport_user_id` (or `user_id`),
its customer's earlier subscription, or the Checkout Session that made it
(`client_reference_id`). An event about a live subscription no one is linked to yet is
refused (409), and Stripe delivers it again later, once its Checkout Session has linked it.

The plan's tier comes from the subscription's metadata `tier`, else from its price's
lookup key (`premium…`, `elite…`) or its price's metadata `tier`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID

import orjson
import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.errors import constraint_of
from rapport.kernel.outbox import Scope, publish
from rapport.modules.matching import models_subscriptions as m
from rapport.modules.matching import schemas_subscriptions as s
from rapport.modules.matching.errors import (
    StripeEventMalformed,
    StripeEventUnusable,
    StripeSignatureExpired,
    StripeSignatureInvalid,
    StripeSignatureMissing,
    StripeSubscriptionUnlinked,
    StripeWebhookNotConfigured,
)

log = structlog.get_logger(__name__)

# Stripe's default tolerance (stripe.Webhook.DEFAULT_TOLERANCE).
TOLERANCE_S = 300
SUBSCRIPTION_CHANGED_EVENT = "matching.subscription.changed"
_SUBSCRIPTION_EVENTS = frozenset(
    {"customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted"}
)
_PAID_TIER = re.compile(r"^(premium|elite)(?![a-z])", re.IGNORECASE)


# Signature


def sign(payload: bytes, *, secret: str, timestamp: int) -> str:
    """The v1 signature Stripe computes for a payload sent at `timestamp`."""
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify_signature(payload: bytes, header: str | None, *, secret: str, now: float | None = None) -> int:
    """Check a delivery as Stripe's libraries do; returns its timestamp.

    Raises:
        StripeSignatureMissing: no header.
        StripeSignatureInvalid: no timestamp, no v1 signature, or none that matches.
        StripeSignatureExpired: signed more than TOLERANCE_S seconds ago.
    """
    if not header:
        raise StripeSignatureMissing()
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise StripeSignatureInvalid("Expected t=<timestamp> and at least one v1=<signature>.")
    expected = sign(payload, secret=secret, timestamp=timestamp)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures if candidate.isascii()):
        raise StripeSignatureInvalid()
    if timestamp < (time.time() if now is None else now) - TOLERANCE_S:
        raise StripeSignatureExpired()
    return timestamp


# The parts of Stripe's objects Rapport reads; the rest is left alone.


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


# Unix times up to the end of year 9999, what a datetime holds.
UnixTime = Annotated[int, Field(ge=0, le=253_402_300_799)]
CustomerId = Annotated[str, Field(pattern=r"^cus_[A-Za-z0-9]{1,250}$")]
SubscriptionId = Annotated[str, Field(pattern=r"^sub_[A-Za-z0-9]{1,250}$")]


class _Price(_Loose):
    lookup_key: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class _Item(_Loose):
    price: _Price | None = None
    current_period_start: UnixTime | None = None
    current_period_end: UnixTime | None = None


class _Items(_Loose):
    data: list[_Item] = Field(default_factory=list)


class _Customer(_Loose):
    id: CustomerId


class _Subscription(_Loose):
    id: SubscriptionId


class StripeSubscription(_Loose):
    id: SubscriptionId
    customer: CustomerId | _Customer
    status: m.SubscriptionStatus
    cancel_at_period_end: bool = False
    # Top-level before Stripe's API version 2025-03-31, on each item since.
    current_period_start: UnixTime | None = None
    current_period_end: UnixTime | None = None
    items: _Items = Field(default_factory=_Items)
    metadata: dict[str, Any] = Field(default_factory=dict)


class CheckoutSession(_Loose):
    id: str
    mode: str
    client_reference_id: str | None = None
    customer: CustomerId | _Customer | None = None
    subscription: SubscriptionId | _Subscription | None = None
    payment_status: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


_Object = TypeVar("_Object", bound=BaseModel)


class _Data(_Loose):
    object: dict[str, Any]


class StripeEvent(_Loose):
    id: str = Field(pattern=r"^evt_[A-Za-z0-9]{1,250}$")
    type: str = Field(pattern=r"^[a-z0-9_.]{1,100}$")
    created: UnixTime
    data: _Data


def parse_event(payload: bytes) -> StripeEvent:
    """Raises StripeEventMalformed: not JSON, or not shaped like a Stripe event."""
    try:
        return StripeEvent.model_validate(orjson.loads(payload))
    except (orjson.JSONDecodeError, ValidationError) as error:
        raise StripeEventMalformed(str(error).splitlines()[0]) from error


def _object_of(model: type[_Object], event: StripeEvent) -> _Object:
    try:
        return model.model_validate(event.data.object)
    except ValidationError as error:
        raise StripeEventMalformed(f"data.object of {event.type}: {str(error).splitlines()[0]}") from error


def _id_of(value: str | _Customer | _Subscription | None) -> str | None:
    return value.id if isinstance(value, _Customer | _Subscription) else value


def _when(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _paid_tier(value: Any) -> m.Tier | None:
    if isinstance(value, str) and (found := _PAID_TIER.match(value.strip())):
        tier: m.Tier = "premium" if found.group(1).lower() == "premium" else "elite"
        return tier
    return None


def tier_of_plan(subscription: StripeSubscription) -> m.Tier | None:
    """The paid tier the subscription's metadata or prices name, or None."""
    candidates: list[Any] = [subscription.metadata.get("tier")]
    for item in subscription.items.data:
        if item.price is not None:
            candidates += [item.price.lookup_key, item.price.metadata.get("tier")]
    return next((tier for tier in map(_paid_tier, candidates) if tier is not None), None)


def _period(subscription: StripeSubscription) -> tuple[datetime | None, datetime | None]:
    starts = [item.current_period_start for item in subscription.items.data if item.current_period_start]
    ends = [item.current_period_end for item in subscription.items.data if item.current_period_end]
    start = subscription.current_period_start or (min(starts) if starts else None)
    end = subscription.current_period_end or (max(ends) if ends else None)
    return _when(start), _when(end)


def _user_id(value: Any) -> UUID | None:
    try:
        return UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None


# Applying


async def _lock_person(db: AsyncConnection, user_id: UUID) -> None:
    # Two events about one person (the Checkout Session and its subscription arrive
    # together) take turns: each reads the row the other wrote.
    await db.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('matching.subscriptions:' || :user_id, 0))"),
        {"user_id": str(user_id)},
    )


async def _current(db: AsyncConnection, user_id: UUID) -> Any:
    t = m.subscriptions
    return (await db.execute(select(t).where(t.c.user_id == user_id).with_for_update())).one_or_none()


async def _owner_by(db: AsyncConnection, column: Any, value: str | None) -> UUID | None:
    if value is None:
        return None
    owners = (await db.execute(select(m.subscriptions.c.user_id).where(column == value).limit(2))).scalars().all()
    return owners[0] if len(owners) == 1 else None


async def _store(db: AsyncConnection, *, user_id: UUID, exists: bool, values: dict[str, Any]) -> Any:
    """Write the person's row; a person who does not exist is refused (StripeEventUnusable)."""
    t = m.subscriptions
    try:
        async with db.begin_nested():
            if exists:
                changed = update(t).where(t.c.user_id == user_id).values(**values).returning(t)
                row = (await db.execute(changed)).one()
            else:
                row = (await db.execute(insert(t).values(user_id=user_id, **values).returning(t))).one()
    except IntegrityError as error:
        if constraint_of(error) == "fk_subscriptions_user_id_users":
            raise StripeEventUnusable(f"No person {user_id} here.") from error
        raise StripeEventUnusable("This subscription is another person's.") from error
    await publish(
        db,
        scope=Scope.user(user_id),
        type=SUBSCRIPTION_CHANGED_EVENT,
        payload={"tier": row.tier, "status": row.status},
        actor_id=None,
    )
    return row


async def apply_subscription_event(db: AsyncConnection, event: StripeEvent) -> m.EventOutcome:
    """customer.subscription.created, .updated and .deleted: the subscription's state
    becomes its person's, unless an event made later is applied already.

    Raises:
        StripeEventMalformed: the object is not a subscription.
        StripeSubscriptionUnlinked: live, and no person is linked to it yet.
        StripeEventUnusable: its metadata names no person of this server.
    """
    subscription = _object_of(StripeSubscription, event)
    customer = _id_of(subscription.customer)
    t = m.subscriptions
    user_id = (
        await _owner_by(db, t.c.stripe_subscription_id, subscription.id)
        or _user_id(subscription.metadata.get("rapport_user_id"))
        or _user_id(subscription.metadata.get("user_id"))
        or await _owner_by(db, t.c.stripe_customer_id, customer)
    )
    if user_id is None:
        # Nobody to grant anything to: only a live subscription is worth Stripe's retry.
        if event.type == "customer.subscription.deleted" or subscription.status not in m.LIVE_STATUSES:
            return "ignored"
        raise StripeSubscriptionUnlinked(f"{subscription.id} is linked to nobody yet.")
    await _lock_person(db, user_id)
    current = await _current(db, user_id)
    made_at = _when(event.created)
    same = current is not None and current.stripe_subscription_id == subscription.id
    if same and current.stripe_event_at is not None and current.stripe_event_at > made_at:
        return "stale"
    if (
        current is not None
        and not same
        and current.status in m.LIVE_STATUSES
        and subscription.status not in m.LIVE_STATUSES
    ):
        # An earlier subscription of theirs ending says nothing of the one they have now.
        return "ignored"
    tier = tier_of_plan(subscription) or (current.tier if same else None)
    if tier is None:
        log.warning("stripe.subscription.tier_unknown", subscription=subscription.id)
    start, end = _period(subscription)
    values = {
        "tier": tier or "free",
        "status": subscription.status,
        "stripe_customer_id": customer,
        "stripe_subscription_id": subscription.id,
        "current_period_start": start,
        "current_period_end": end if end is None or start is None or end >= start else start,
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "stripe_event_at": made_at,
    }
    await _store(db, user_id=user_id, exists=current is not None, values=values)
    return "applied"


async def apply_checkout_completed(db: AsyncConnection, event: StripeEvent) -> m.EventOutcome:
    """checkout.session.completed in subscription mode: links the person named by
    `client_reference_id` to the customer and subscription, active once paid, until the
    subscription's own events tell its plan and period.

    Raises:
        StripeEventMalformed: the object is not a Checkout Session.
        StripeEventUnusable: no person of this server is named, or the subscription is another's.
    """
    session = _object_of(CheckoutSession, event)
    if session.mode != "subscription":
        return "ignored"
    user_id = _user_id(session.client_reference_id)
    subscription_id = _id_of(session.subscription)
    customer = _id_of(session.customer)
    if user_id is None or subscription_id is None:
        raise StripeEventUnusable("A subscription's Checkout Session names its person in client_reference_id.")
    holder = await _owner_by(db, m.subscriptions.c.stripe_subscription_id, subscription_id)
    if holder is not None and holder != user_id:
        raise StripeEventUnusable(f"{subscription_id} is another person's.")
    await _lock_person(db, user_id)
    current = await _current(db, user_id)
    if current is not None and current.stripe_subscription_id == subscription_id:
        if current.stripe_customer_id is None and customer is not None:
            await _store(db, user_id=user_id, exists=True, values={"stripe_customer_id": customer})
        return "applied"
    paid = session.payment_status in ("paid", "no_payment_required")
    values = {
        "tier": _paid_tier(session.metadata.get("tier")) or "free",
        "status": "active" if paid else "incomplete",
        "stripe_customer_id": customer,
        "stripe_subscription_id": subscription_id,
        "current_period_start": None,
        "current_period_end": None,
        "cancel_at_period_end": False,
        "stripe_event_at": None,
    }
    await _store(db, user_id=user_id, exists=current is not None, values=values)
    return "applied"


def verified_stripe_event(
    payload: bytes, *, signature: str | None, secret: str | None, now: float | None = None
) -> StripeEvent:
    """A webhook delivery checked as Stripe's, read as an event; no database needed, so
    a forged delivery costs the server no connection.

    Raises:
        StripeWebhookNotConfigured: no signing secret is set.
        StripeSignatureMissing, StripeSignatureInvalid, StripeSignatureExpired: not Stripe's, or too old.
        StripeEventMalformed: not a Stripe event.
    """
    if not secret:
        raise StripeWebhookNotConfigured()
    verify_signature(payload, signature, secret=secret, now=now)
    return parse_event(payload)


async def do_receive_stripe_event(db: AsyncConnection, *, event: StripeEvent) -> s.StripeWebhookOut:
    """Apply a verified event, once per event id: a delivery of an event handled before
    changes nothing. Runs as system work (Stripe is nobody's session).

    Raises:
        StripeEventMalformed: its object is not what its type says.
        StripeEventUnusable: it names no person of this server.
        StripeSubscriptionUnlinked: about a subscription no one is linked to yet.
    """
    e = m.stripe_events
    claimed = (
        await db.execute(
            insert(e)
            .values(id=event.id, type=event.type, outcome="ignored")
            .on_conflict_do_nothing(index_elements=[e.c.id])
            .returning(e.c.id)
        )
    ).one_or_none()
    if claimed is None:
        outcome: m.EventOutcome = (await db.execute(select(e.c.outcome).where(e.c.id == event.id))).scalar_one()
        return s.StripeWebhookOut(event_id=event.id, replayed=True, outcome=outcome)
    outcome = "ignored"
    if event.type in _SUBSCRIPTION_EVENTS:
        outcome = await apply_subscription_event(db, event)
    elif event.type == "checkout.session.completed":
        outcome = await apply_checkout_completed(db, event)
    if outcome != "ignored":
        await db.execute(update(e).where(e.c.id == event.id).values(outcome=outcome))
    return s.StripeWebhookOut(event_id=event.id, replayed=False, outcome=outcome)
