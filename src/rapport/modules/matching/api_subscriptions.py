"""Matching routes: subscriptions. A person's tier and what it gives, who liked them
(premium and elite), and the endpoint Stripe's webhooks are sent to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request

from rapport.kernel.db import system_transaction
from rapport.kernel.deps import CallerDep, PageDep, RuntimeDep
from rapport.kernel.pagination import Page
from rapport.modules.matching import schemas_subscriptions as s
from rapport.modules.matching import service

router = APIRouter(prefix="/v1/matching", tags=["matching"])


@router.get("/subscription", response_model=s.TierOut)
async def get_subscription(caller: CallerDep) -> s.TierOut:
    """Your tier (free without a live subscription), what it gives (likes a day, seeing
    who liked you) and your subscription as Stripe last told it."""
    async with caller.transaction() as (db, actor):
        return await service.get_tier(db, actor=actor)


@router.get("/likes/received", response_model=Page[s.ReceivedLikeOut])
async def list_received_likes(caller: CallerDep, page: PageDep) -> Page[s.ReceivedLikeOut]:
    """Who liked you and waits for your answer (like them back from your matches), newest
    first. Premium and elite only: 403 `premium-required` otherwise."""
    async with caller.transaction() as (db, actor):
        return await service.list_received_likes(db, actor=actor, page=page)


@router.post(
    "/webhooks/stripe",
    response_model=s.StripeWebhookOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "description": "A Stripe event."}}},
        }
    },
)
async def receive_stripe_webhook(
    request: Request,
    runtime: RuntimeDep,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature", max_length=4096)] = None,
) -> s.StripeWebhookOut:
    """Stripe's webhook endpoint. Configure it in Stripe with the events
    customer.subscription.created, .updated, .deleted and checkout.session.completed;
    its signing secret is RAPPORT_STRIPE_WEBHOOK_SECRET (unset, this answers 404). Each
    delivery is verified by its `Stripe-Signature` (400 when it does not hold or is over
    five minutes old); an event already handled answers 200 and changes nothing.

    A Checkout Session for a subscription names its person in `client_reference_id`
    (their user id); a subscription may also carry `metadata.rapport_user_id` and its
    tier in `metadata.tier` (or its price's lookup key `premium…`/`elite…`). An event
    about a live subscription no one is linked to yet answers 409, and Stripe delivers
    it again later."""
    secret = runtime.settings.stripe_webhook_secret
    event = service.verified_stripe_event(
        await request.body(),
        signature=stripe_signature,
        secret=None if secret is None else secret.get_secret_value(),
    )
    async with system_transaction(runtime.system_engine) as db:
        return await service.do_receive_stripe_event(db, event=event)
