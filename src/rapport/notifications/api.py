"""The notifications API: the in-app inbox, notification preferences and push subscriptions."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Query, Response, status

from rapport.kernel.deps import NO_CONTENT, CallerDep, PageDep, RuntimeDep
from rapport.kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from rapport.notifications import schemas as s
from rapport.notifications import service

router = APIRouter(prefix="/v1", tags=["notifications"])


@router.get("/notifications", response_model=s.NotificationPage)
async def list_notifications(
    caller: CallerDep,
    unread: Annotated[bool | None, Query(description="true: only unread; false: only read; absent: all.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=64, description="The `next` value of the previous page.")] = None,
) -> s.NotificationPage:
    """Your notifications, newest first: a bundle (several of one group, `bundle_count`)
    stands where its newest member arrived. The answer carries your exact unread count."""
    async with caller.transaction() as (db, actor):
        return await service.list_notifications(db, actor=actor, unread=unread, cursor=cursor, limit=limit)


@router.get("/notifications/unread-count", response_model=s.UnreadCount)
async def unread_count(caller: CallerDep) -> s.UnreadCount:
    """How many of your notifications are unread, exactly."""
    async with caller.transaction() as (db, actor):
        return s.UnreadCount(unread_count=await service.count_unread(db, actor=actor))


@router.post("/notifications/read", response_model=s.UnreadCount)
async def mark_read(body: s.NotificationsRead, caller: CallerDep) -> s.UnreadCount:
    """Mark some of your notifications read (`{"ids": [...]}`: ids that are not yours are
    ignored), or all of them (`{"all": true}`). Answers your unread count after it; your
    other devices hear `notification.read`."""
    async with caller.transaction() as (db, actor):
        unread = await service.do_mark_read(db, actor=actor, ids=body.ids)
    return s.UnreadCount(unread_count=unread)


@router.get("/notification-preferences", response_model=s.PreferencesOut)
async def get_preferences(caller: CallerDep) -> s.PreferencesOut:
    """Your time zone, quiet hours, digest and channel choices, and what they come to for
    each type of notification (`effective`)."""
    async with caller.transaction() as (db, actor):
        return await service.get_preferences(db, actor=actor)


@router.put("/notification-preferences", response_model=s.PreferencesOut)
async def put_preferences(body: s.PreferencesIn, caller: CallerDep) -> s.PreferencesOut:
    """Replace your notification preferences: a field left out takes its default, and
    `channels` replaces every choice made before. In quiet hours nothing is pushed or
    texted (it waits in the app); the most specific channel choice wins: type over
    category over a channel-wide choice over the defaults (in-app on; push on for
    messages, mentions, calls, contact requests and security; e-mail for security; SMS off)."""
    async with caller.transaction() as (db, actor):
        return await service.do_put_preferences(db, actor=actor, wanted=body)


@router.post(
    "/push-subscriptions",
    status_code=status.HTTP_201_CREATED,
    response_model=s.PushSubscriptionOut,
    responses={200: {"model": s.PushSubscriptionOut, "description": "You had registered it already."}},
)
async def register_push_subscription(
    body: Annotated[s.PushSubscriptionIn, Body()], caller: CallerDep, response: Response
) -> s.PushSubscriptionOut:
    """Register where your pushes go: a browser's `PushSubscription.toJSON()` (after
    `pushManager.subscribe` with `GET /v1/push/vapid-public-key`), or a native app's
    `{"provider": "fcm"|"apns", "token"}`. 201 when new to you, 200 when you had it (its
    keys are refreshed and it is active again)."""
    endpoints = service.EndpointRule.for_settings(caller.runtime.settings)
    async with caller.transaction() as (db, actor):
        subscription, created = await service.do_register_subscription(
            db, actor=actor, subscription=body, user_agent=caller.client.user_agent, endpoints=endpoints
        )
    if not created:
        response.status_code = status.HTTP_200_OK
    return subscription


@router.get("/push-subscriptions", response_model=Page[s.PushSubscriptionOut])
async def list_push_subscriptions(caller: CallerDep, page: PageDep) -> Page[s.PushSubscriptionOut]:
    """Your push subscriptions, newest first; `is_active` is false for one its push
    service said is gone."""
    async with caller.transaction() as (db, actor):
        return await service.list_subscriptions(db, actor=actor, page=page)


@router.get("/push-subscriptions/{subscription_id}", response_model=s.PushSubscriptionOut)
async def get_push_subscription(subscription_id: UUID, caller: CallerDep) -> s.PushSubscriptionOut:
    """One of your push subscriptions."""
    async with caller.transaction() as (db, actor):
        return await service.access_subscription(db, actor=actor, subscription_id=subscription_id)


@router.delete("/push-subscriptions/{subscription_id}", **NO_CONTENT)
async def delete_push_subscription(subscription_id: UUID, caller: CallerDep) -> None:
    """Forget one of your push subscriptions: nothing more is pushed to it."""
    async with caller.transaction() as (db, actor):
        await service.do_delete_subscription(db, actor=actor, subscription_id=subscription_id)


@router.get("/push/vapid-public-key", response_model=s.VapidPublicKey)
async def vapid_public_key(runtime: RuntimeDep) -> s.VapidPublicKey:
    """The application server key for `pushManager.subscribe({applicationServerKey})`
    (RFC 8292). Public by nature: no token needed. 404 when the server has no VAPID key."""
    return s.VapidPublicKey(public_key=service.application_server_key(runtime.settings))
