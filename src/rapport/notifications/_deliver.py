"""Delivering one notification by push or SMS, from a job (docs/decisions/0018).

Every attempt is a row: `push_delivery_log` holds one per (notification, subscription),
`sms_notifications` one per notification. A row moves pending -> sending -> sent (or
failed, or gone), and the job reads it before acting, so a job that runs twice sends
once: what is `sent` is never sent again, and what another job is `sending` is left to
it. Only a job that runs again after dying mid-run (its attempt is past the first) takes
back the rows it left `sending`: whether the push service got those is unknown, so they
are sent again, with the same Topic / collapse id, which makes the push service replace
the first copy rather than show two ("at least once" for the provider, once on screen).

A push service that answers 5xx, 429 or not at all is tried again by the job queue's
backoff; after the job's last attempt the rows are `failed` and the job is dead, listed
by `rapport jobs dead`. A subscription answered 404/410 (or its provider's "unregistered")
is deactivated and its row `gone`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from email.utils import parseaddr
from uuid import UUID

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity import service as identity_service
from rapport.kernel.db import AnyRow, SystemEngine, system_transaction
from rapport.kernel.runtime import Runtime
from rapport.notifications import _compose
from rapport.notifications._providers import Outcome, Providers, PushMessage, PushTarget, Urgency, providers_from
from rapport.notifications.models import PushStatus, SmsStatus

log = structlog.get_logger(__name__)


class DeliveryIncomplete(Exception):
    """Some deliveries are worth another try: the job fails, and the queue retries it."""


# -- the providers of a process ------------------------------------------------------------------

# One Providers per runtime (so per process, and per app in tests), built at first use.
_providers: dict[int, tuple[Runtime, Providers]] = {}


def providers_for(runtime: Runtime) -> Providers:
    held = _providers.get(id(runtime))
    if held is None or held[0] is not runtime:
        held = (runtime, providers_from(runtime.settings, runtime.http))
        _providers[id(runtime)] = held
    return held[1]


def use_providers(runtime: Runtime, providers: Providers) -> None:
    """Deliver this runtime's notifications through these providers (the process sets
    them up once; tests put their fakes' here)."""
    _providers[id(runtime)] = (runtime, providers)


def _identity_sms(runtime: Runtime) -> identity_service.SmsSender | None:
    return providers_for(runtime).sms


# Identity's codes and notices by SMS leave through this runtime's provider too.
identity_service.use_sms_gateway(_identity_sms)


async def close_providers(runtime: Runtime) -> None:
    held = _providers.pop(id(runtime), None)
    if held is not None and held[0] is runtime:
        await held[1].aclose()


def app_name(runtime: Runtime) -> str:
    """The name mail and pushes sign with: the display name of RAPPORT_MAIL_FROM."""
    name, address = parseaddr(runtime.settings.mail_from)
    return name or address or "Rapport"


# -- push -----------------------------------------------------------------------------------------

_NOTIFICATION = text(
    """
    SELECT id, user_id, type, priority, title, body, action_url, group_key, bundle_count, data,
           is_read, read_at > created_at AS read_since, created_at
      FROM notifications.notifications WHERE id = :id
    """
)
# Every active subscription gets a row once; a row exists before anything is sent to it.
_PLAN_PUSH = text(
    """
    INSERT INTO notifications.push_delivery_log (id, notification_id, user_id, subscription_id, provider, status)
    SELECT kernel.uuid7_like(), :notification_id, s.user_id, s.id, s.provider, 'pending'
      FROM notifications.push_subscriptions s
     WHERE s.user_id = :user_id AND s.is_active
    ON CONFLICT (notification_id, subscription_id) DO NOTHING
    """
)
# Taken for sending in the transaction that commits before any request leaves. Rows left
# `sending` are taken back only by a job that ran before (its earlier run died).
_CLAIM_PUSH = text(
    """
    UPDATE notifications.push_delivery_log AS l
       SET status = 'sending', attempts = l.attempts + 1
      FROM notifications.push_subscriptions s
     WHERE l.notification_id = :notification_id AND s.id = l.subscription_id AND s.is_active
       AND (l.status = 'pending' OR (l.status = 'sending' AND :rerun))
    RETURNING l.id, l.subscription_id, s.provider, s.endpoint, s.p256dh, s.auth, s.token
    """
)
_PUSH_SENT = text(
    """
    UPDATE notifications.push_delivery_log
       SET status = 'sent', http_status = :http_status, error = NULL, sent_at = now(),
           time_to_deliver_ms = greatest(0, (extract(epoch FROM now() - :since) * 1000)::int)
     WHERE id = :id AND status = 'sending'
    """
)
_PUSH_NOT_SENT = text(
    """
    UPDATE notifications.push_delivery_log SET status = :status, http_status = :http_status, error = :error
     WHERE id = :id AND status = 'sending'
    """
)
_USED = text("UPDATE notifications.push_subscriptions SET last_used_at = now() WHERE id = :id")
_GONE = text("UPDATE notifications.push_subscriptions SET is_active = false WHERE id = :id")
_SKIP_PENDING = text(
    "UPDATE notifications.push_delivery_log SET status = 'failed', error = :error "
    " WHERE notification_id = :notification_id AND status = 'pending'"
)

_URGENCY: dict[str, Urgency] = {"low": "low", "normal": "normal", "high": "high", "urgent": "high"}


@dataclass(frozen=True)
class _Claimed:
    id: UUID
    subscription_id: UUID
    target: PushTarget


async def deliver_push(
    runtime: Runtime, *, notification_id: UUID, attempt: int, max_attempts: int, providers: Providers | None = None
) -> int:
    """Push a notification to every active subscription of its recipient that has not
    had it; how many pushes the services accepted now.

    Raises:
        DeliveryIncomplete: some pushes are worth another try. On the job's last attempt
            their rows are `failed`, and it is raised all the same, so that the job ends
            dead and visible.
    """
    providers = providers or providers_for(runtime)
    engine = runtime.system_engine
    async with system_transaction(engine) as db:
        row = (await db.execute(_NOTIFICATION, {"id": notification_id})).one_or_none()
        if row is None:
            return 0
        if row.read_since:
            # Read in-app while the push waited (quiet hours, retries): it has done its work.
            await db.execute(_SKIP_PENDING, {"notification_id": notification_id, "error": "read before it was sent"})
            return 0
        await db.execute(_PLAN_PUSH, {"notification_id": notification_id, "user_id": row.user_id})
        claimed = [
            _Claimed(
                c.id,
                c.subscription_id,
                PushTarget(provider=c.provider, endpoint=c.endpoint, p256dh=c.p256dh, auth=c.auth, token=c.token),
            )
            for c in await db.execute(_CLAIM_PUSH, {"notification_id": notification_id, "rerun": attempt > 1})
        ]
    if not claimed:
        return 0
    message = push_message(runtime, row)
    last = attempt >= max_attempts
    recorded: set[UUID] = set()

    async def deliver(item: _Claimed) -> tuple[bool, str | None]:
        outcome = await _send(providers, item.target, message)
        async with system_transaction(engine) as db:
            await _record_push(db, item, outcome, since=row.created_at, last=last)
        recorded.add(item.id)
        again = None
        if not outcome.delivered and outcome.retry:
            again = f"{item.target.provider} {outcome.http_status or 'no answer'}: {outcome.detail}"
        return outcome.delivered, again

    try:
        results = await asyncio.gather(*(deliver(item) for item in claimed))
    except asyncio.CancelledError:
        # Stopped (the worker shuts down, or the job ran past its timeout): what was not
        # recorded goes back to pending for the job's next run. A push in flight at this
        # moment may have reached its service: it is sent again, under the same Topic.
        unrecorded = [item.id for item in claimed if item.id not in recorded]
        await asyncio.shield(_hand_back(engine, unrecorded))
        raise
    sent = sum(1 for delivered, _ in results if delivered)
    retry = [again for _, again in results if again is not None]
    log.info("notifications.pushed", notification_id=str(notification_id), sent=sent, retry=len(retry))
    if retry:
        raise DeliveryIncomplete(f"{len(retry)} of {len(claimed)} pushes to try again: {'; '.join(retry)[:1500]}")
    return sent


_HAND_BACK = text(
    "UPDATE notifications.push_delivery_log SET status = 'pending', attempts = greatest(attempts - 1, 0) "
    " WHERE id = ANY(CAST(:ids AS uuid[])) AND status = 'sending'"
)


async def _hand_back(engine: SystemEngine, ids: list[UUID]) -> None:
    if ids:
        async with system_transaction(engine) as db:
            await db.execute(_HAND_BACK, {"ids": ids})


def push_status(outcome: Outcome, *, last: bool) -> PushStatus:
    """Where a delivery record goes after an attempt: sent; gone (the subscription
    ended); pending again when worth another try and attempts remain; else failed.
    (`delivered` is for a receipt from the device, which no provider gives here.)"""
    if outcome.delivered:
        return "sent"
    if outcome.gone:
        return "gone"
    return "pending" if outcome.retry and not last else "failed"


def sms_status(outcome: Outcome, *, last: bool) -> SmsStatus:
    """Where an SMS record goes after an attempt."""
    if outcome.delivered:
        return "sent"
    return "pending" if outcome.retry and not last else "failed"


async def _record_push(db: AsyncConnection, item: _Claimed, outcome: Outcome, *, since: object, last: bool) -> None:
    """One delivery's outcome: sent; gone (and the subscription with it); pending again
    when worth another try and attempts remain; else failed."""
    status = push_status(outcome, last=last)
    if status == "sent":
        await db.execute(_PUSH_SENT, {"id": item.id, "http_status": outcome.http_status, "since": since})
        await db.execute(_USED, {"id": item.subscription_id})
        return
    if status == "gone":
        await db.execute(_GONE, {"id": item.subscription_id})
    await db.execute(
        _PUSH_NOT_SENT,
        {"id": item.id, "status": status, "http_status": outcome.http_status, "error": outcome.detail[:2000]},
    )


async def _send(providers: Providers, target: PushTarget, message: PushMessage) -> Outcome:
    try:
        return await providers.push.send(target, message)
    except Exception as exc:  # a provider's bug is one failed delivery, not a lost job
        log.exception("notifications.push_crashed", provider=target.provider)
        return Outcome(delivered=False, http_status=None, gone=False, retry=True, detail=f"{type(exc).__name__}: {exc}")


def push_message(runtime: Runtime, row: AnyRow) -> PushMessage:
    """What the push carries: the notification as it stands (a bundle's latest title and
    count), tagged with its group so that the device shows one per group."""
    data = {
        "notification_id": str(row.id),
        "type": str(row.type),
        "count": str(row.bundle_count),
    }
    group_key = row.group_key
    return PushMessage(
        title=str(row.title),
        body=str(row.body),
        url=row.action_url,
        tag=group_key or f"n:{row.id}",
        data=data,
        urgency=_URGENCY.get(str(row.priority), "normal"),
    )


# -- SMS -------------------------------------------------------------------------------------------

_SMS_ROW = text(
    "SELECT id, status, phone, body, created_at FROM notifications.sms_notifications WHERE notification_id = :id"
)
_SMS_CLAIM = text(
    """
    UPDATE notifications.sms_notifications SET status = 'sending', attempts = attempts + 1, provider = :provider
     WHERE id = :id AND (status = 'pending' OR (status = 'sending' AND :rerun))
    RETURNING id
    """
)
_SMS_NEW = text(
    """
    INSERT INTO notifications.sms_notifications (id, user_id, notification_id, phone, body, status)
    VALUES (kernel.uuid7_like(), :user_id, :notification_id, :phone, :body, 'pending')
    ON CONFLICT (notification_id) DO NOTHING
    """
)
_SMS_DONE = text(
    """
    UPDATE notifications.sms_notifications
       SET status = :status, error = :error, provider_message_id = :provider_id,
           sent_at = CASE WHEN :status = 'sent' THEN now() END,
           time_to_deliver_ms = CASE WHEN :status = 'sent'
                                     THEN greatest(0, (extract(epoch FROM now() - :since) * 1000)::int) END
     WHERE id = :id AND status = 'sending'
    """
)


async def deliver_sms(
    runtime: Runtime,
    *,
    notification_id: UUID,
    phone: str | None,
    attempt: int,
    max_attempts: int,
    providers: Providers | None = None,
) -> bool:
    """Send a notification by SMS once, to `phone` or else the recipient's verified number
    (none, none sent: an account without one, or whose number was removed since); whether
    it was accepted now.

    Raises:
        DeliveryIncomplete: the provider may take it later.
    """
    providers = providers or providers_for(runtime)
    if providers.sms is None:
        return False
    engine: SystemEngine = runtime.system_engine
    async with system_transaction(engine) as db:
        row = (await db.execute(_NOTIFICATION, {"id": notification_id})).one_or_none()
        if row is None:
            return False
        phone = phone or await identity_service.get_verified_phone(db, user_id=row.user_id)
        if phone is None:
            return False
        rendered = await _compose.compose(
            db,
            type=row.type,
            channel="sms",
            language=_compose.language_of(row.data.get("language") if isinstance(row.data, dict) else None),
            context=delivery_context(runtime, row),
        )
        await db.execute(
            _SMS_NEW,
            {
                "user_id": row.user_id,
                "notification_id": notification_id,
                "phone": phone,
                "body": _compose.sms_text(rendered),
            },
        )
        sms = (await db.execute(_SMS_ROW, {"id": notification_id})).one()
        if (await db.execute(_SMS_CLAIM, {"id": sms.id, "provider": "sms", "rerun": attempt > 1})).first() is None:
            return False
    try:
        outcome = await providers.sms.send(sms.phone, sms.body, idempotency_key=str(notification_id))
    except Exception as exc:
        log.exception("notifications.sms_crashed")
        outcome = Outcome(delivered=False, http_status=None, gone=False, retry=True, detail=f"{type(exc).__name__}")
    status = sms_status(outcome, last=attempt >= max_attempts)
    async with system_transaction(engine) as db:
        await db.execute(
            _SMS_DONE,
            {
                "id": sms.id,
                "status": status,
                "error": None if outcome.delivered else outcome.detail[:2000],
                "provider_id": outcome.provider_id,
                "since": row.created_at,
            },
        )
    if outcome.retry and not outcome.delivered:
        raise DeliveryIncomplete(f"SMS {outcome.http_status}: {outcome.detail[:500]}")
    return outcome.delivered


def delivery_context(runtime: Runtime, row: AnyRow) -> dict[str, object]:
    return {
        "title": row.title,
        "body": row.body,
        "action_url": row.action_url or "",
        "count": row.bundle_count,
        "app_name": app_name(runtime),
    }
