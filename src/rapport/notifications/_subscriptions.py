"""Push subscriptions: where a person's pushes go. A browser's Web Push subscription
(its endpoint and keys) or a native app's FCM or APNs device token, several per person.

Registering is idempotent per endpoint or token, and the endpoint belongs to whoever
registered it last (a browser signed in to another account now receives that account's
pushes): the definer function notifications.register_push_subscription does both, since
nobody may see another's row. System work deactivates a subscription the push service
says is gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit
from uuid import UUID

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.config import Settings
from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow, delete_owned
from rapport.kernel.ids import uuid7
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.notifications import vapid
from rapport.notifications.errors import (
    PushEndpointRefused,
    PushSubscriptionNotFound,
    TooManyPushSubscriptions,
    WebPushNotConfigured,
)
from rapport.notifications.models import push_subscriptions
from rapport.notifications.schemas import DeviceTokenIn, PushSubscriptionOut, WebPushSubscriptionIn
from rapport.social import service as social_service

# Far more than anyone's browsers and devices; a bound keeps a script from filling the table.
MAX_SUBSCRIPTIONS = 100


@dataclass(frozen=True)
class EndpointRule:
    """Which Web Push endpoints the server accepts. In production: https, on a host of
    RAPPORT_WEBPUSH_HOSTS (or under one), since the server POSTs to whatever endpoint a
    person registers and must not be sent to a host of their choosing (an empty list
    admits any https host). Elsewhere: any, http too (a development machine's local push
    service)."""

    hosts: tuple[str, ...] | None

    @classmethod
    def for_settings(cls, settings: Settings) -> EndpointRule:
        if settings.environment != "production":
            return cls(None)
        return cls(tuple(host.lower().strip(".") for host in settings.webpush_hosts))

    def admits(self, endpoint: str) -> bool:
        if self.hosts is None:
            return True
        url = urlsplit(endpoint)
        host = (url.hostname or "").lower()
        known = not self.hosts or any(host == name or host.endswith("." + name) for name in self.hosts)
        return url.scheme == "https" and known


# What notifications.push_subscriptions keeps of a User-Agent header (the request may carry more).
MAX_USER_AGENT = 500

_REGISTER = text(
    "SELECT id, created FROM notifications.register_push_subscription("
    ":new_id, :kind, :url, :public_key, :secret, :token, :device, :agent)"
)


async def do_register_subscription(
    db: AsyncConnection,
    *,
    actor: Actor,
    subscription: WebPushSubscriptionIn | DeviceTokenIn,
    user_agent: str | None,
    endpoints: EndpointRule,
) -> tuple[PushSubscriptionOut, bool]:
    """Register a push subscription for the actor, or take over the one of the same
    endpoint or token (fresh keys, active again). Returns it and whether it is new to the
    actor. `user_agent` stands in when the body names none; `endpoints` says which Web
    Push endpoints this server accepts.

    Raises:
        PushEndpointRefused: an endpoint `endpoints` does not admit.
        DeviceNotFound: `device_id` is not one of the actor's devices.
        TooManyPushSubscriptions: the actor has MAX_SUBSCRIPTIONS and this one is new.
    """
    if isinstance(subscription, WebPushSubscriptionIn):
        if not endpoints.admits(subscription.endpoint):
            raise PushEndpointRefused
        target = {
            "kind": "webpush",
            "url": subscription.endpoint,
            "public_key": subscription.keys.p256dh,
            "secret": subscription.keys.auth,
            "token": None,
        }
        same = push_subscriptions.c.endpoint == subscription.endpoint
    else:
        target = {"kind": subscription.provider, "url": None, "public_key": None, "secret": None}
        target["token"] = subscription.token
        same = (push_subscriptions.c.provider == subscription.provider) & (
            push_subscriptions.c.token == subscription.token
        )
    if subscription.device_id is not None:
        await social_service.access_device(db, actor=actor, device_id=subscription.device_id)
    others = (
        await db.execute(
            select(func.count())
            .select_from(push_subscriptions)
            .where(push_subscriptions.c.user_id == actor.user_id, ~same)
        )
    ).scalar_one()
    if others >= MAX_SUBSCRIPTIONS:
        raise TooManyPushSubscriptions(f"An account may have at most {MAX_SUBSCRIPTIONS} push subscriptions.")
    registered = (
        await db.execute(
            _REGISTER,
            {
                "new_id": uuid7(),
                **target,
                "device": subscription.device_id,
                "agent": subscription.user_agent or (user_agent[:MAX_USER_AGENT] if user_agent else None),
            },
        )
    ).one()
    return await access_subscription(db, actor=actor, subscription_id=registered.id), bool(registered.created)


async def list_subscriptions(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[PushSubscriptionOut]:
    """The actor's push subscriptions, newest first, inactive ones too."""
    query = keyset(
        select(push_subscriptions).where(push_subscriptions.c.user_id == actor.user_id), push_subscriptions.c.id, page
    )
    return make_page([_out(row) for row in (await db.execute(query)).all()], page)


async def access_subscription(db: AsyncConnection, *, actor: Actor, subscription_id: UUID) -> PushSubscriptionOut:
    """One of the actor's push subscriptions.

    Raises:
        PushSubscriptionNotFound: no subscription with this id is the actor's.
    """
    row = (
        await db.execute(
            select(push_subscriptions).where(
                push_subscriptions.c.id == subscription_id, push_subscriptions.c.user_id == actor.user_id
            )
        )
    ).one_or_none()
    if row is None:
        raise PushSubscriptionNotFound
    return _out(row)


async def do_delete_subscription(db: AsyncConnection, *, actor: Actor, subscription_id: UUID) -> None:
    """Forget one of the actor's push subscriptions: nothing more is pushed to it.

    Raises:
        PushSubscriptionNotFound: no subscription with this id is the actor's.
    """
    if not await delete_owned(db, push_subscriptions, row_id=subscription_id, user_id=actor.user_id):
        raise PushSubscriptionNotFound


async def deactivate(db: AsyncConnection, *, subscription_id: UUID) -> bool:
    """System work: stop pushing to a subscription its push service says is gone (404 or
    410, FCM's UNREGISTERED, APNs' 410). Returns whether it was active until now; the
    person registering it again makes it active again."""
    statement = (
        update(push_subscriptions)
        .where(push_subscriptions.c.id == subscription_id, push_subscriptions.c.is_active)
        .values(is_active=False)
        .returning(push_subscriptions.c.id)
    )
    return (await db.execute(statement)).one_or_none() is not None


def application_server_key(settings: Settings) -> str:
    """The VAPID public key browsers subscribe with (`applicationServerKey`): the one
    configured, or the one of the configured private key.

    Raises:
        WebPushNotConfigured: no VAPID key is configured.
    """
    if settings.vapid_public_key:
        return settings.vapid_public_key
    if settings.vapid_private_key is None:
        raise WebPushNotConfigured
    return vapid.public_key_of(vapid.load_private_key(settings.vapid_private_key.get_secret_value()))


def _out(row: AnyRow) -> PushSubscriptionOut:
    return PushSubscriptionOut(
        id=row.id,
        provider=row.provider,
        endpoint=row.endpoint,
        token=row.token,
        device_id=row.device_id,
        user_agent=row.user_agent,
        is_active=row.is_active,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_used_at=row.last_used_at,
    )
