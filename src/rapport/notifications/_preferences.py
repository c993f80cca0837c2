"""Who wants to hear about what, how and when: a person's notification settings (time
zone, quiet hours, the e-mail digest) and their choices per type, category and channel.

The rule, shared by the routes and the pipeline: for a notification of type T and
category C, a channel is on according to the person's row for T, else their row for C,
else their channel-wide row (neither named), else the defaults below. A person without
a settings row has the default settings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time
from typing import get_args
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Scope, publish
from rapport.notifications.models import Category, Channel, NotificationType, preferences, settings
from rapport.notifications.schemas import ChannelPreference, PreferencesIn, PreferencesOut, QuietHours

CHANNELS: tuple[Channel, ...] = get_args(Channel)
TYPES: tuple[NotificationType, ...] = get_args(NotificationType)

# The category a notification of each type has unless its maker says otherwise: the
# column the effective matrix of GET /v1/notification-preferences is computed for.
TYPE_CATEGORY: dict[NotificationType, Category] = {
    "message": "social",
    "mention": "social",
    "reaction": "social",
    "call": "social",
    "contact_request": "social",
    "security": "security",
    "system": "system",
    "match": "social",
}

# Pushed unless the person says otherwise: what someone waits for (reactions and system
# notices wait in the app).
_PUSHED_BY_DEFAULT: frozenset[str] = frozenset({"message", "mention", "call", "contact_request", "security", "match"})


@dataclass(frozen=True)
class NotificationSettings:
    """A person's settings, or the defaults when they have saved none."""

    time_zone: str = "UTC"
    quiet_start: time | None = None
    quiet_end: time | None = None
    digest_delay_minutes: int = 60
    email_digest: bool = True


DEFAULT_SETTINGS = NotificationSettings()


@dataclass(frozen=True)
class Preference:
    """One choice: a channel on or off for a type, a category, or (neither) everything."""

    type: NotificationType | None
    category: Category | None
    channel: Channel
    enabled: bool


def default_enabled(type: NotificationType, category: Category, channel: Channel) -> bool:
    """Whether a channel is on for a person who chose nothing: in-app always; push for
    what someone waits for; e-mail for security alone (the digest is its own setting);
    SMS never; marketing nowhere but in the app, until the person turns it on."""
    if channel == "in_app":
        return True
    if channel == "sms" or category == "marketing":
        return False
    if channel == "push":
        return type in _PUSHED_BY_DEFAULT
    return type == "security" or category == "security"


def effective_channels(prefs: Iterable[Preference], type: NotificationType, category: Category) -> set[Channel]:
    """The channels on for a notification of this type and category, by the person's
    choices (`prefs`, all of theirs) and the defaults: the most specific choice wins."""
    by_type: dict[Channel, bool] = {}
    by_category: dict[Channel, bool] = {}
    channel_wide: dict[Channel, bool] = {}
    for pref in prefs:
        if pref.type is not None:
            if pref.type == type:
                by_type[pref.channel] = pref.enabled
        elif pref.category is not None:
            if pref.category == category:
                by_category[pref.channel] = pref.enabled
        else:
            channel_wide[pref.channel] = pref.enabled
    chosen: set[Channel] = set()
    for channel in CHANNELS:
        enabled = by_type.get(
            channel, by_category.get(channel, channel_wide.get(channel, default_enabled(type, category, channel)))
        )
        if enabled:
            chosen.add(channel)
    return chosen


def in_quiet_hours(settings: NotificationSettings, at: datetime) -> bool:
    """Whether `at` (an aware datetime) falls in the person's quiet hours, in their time
    zone: from quiet_start up to quiet_end, over midnight when the end is earlier."""
    start, end = settings.quiet_start, settings.quiet_end
    if start is None or end is None or start == end:
        return False
    try:
        zone = ZoneInfo(settings.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = at.astimezone(zone).time().replace(tzinfo=None)
    if start < end:
        return start <= local < end
    return local >= start or local < end


async def get_notification_settings(db: AsyncConnection, *, user_id: UUID) -> NotificationSettings:
    """A person's settings, or the defaults: their own (as themself) or anyone's (system work)."""
    row = (await db.execute(select(settings).where(settings.c.user_id == user_id))).one_or_none()
    if row is None:
        return DEFAULT_SETTINGS
    return NotificationSettings(
        time_zone=row.time_zone,
        quiet_start=row.quiet_start,
        quiet_end=row.quiet_end,
        digest_delay_minutes=row.digest_delay_minutes,
        email_digest=row.email_digest,
    )


async def list_preferences(db: AsyncConnection, *, user_id: UUID) -> list[Preference]:
    """Every choice a person made: their own (as themself) or anyone's (system work)."""
    query = select(preferences).where(preferences.c.user_id == user_id).order_by(preferences.c.id)
    return [
        Preference(type=row.type, category=row.category, channel=row.channel, enabled=row.enabled)
        for row in (await db.execute(query)).all()
    ]


async def channels_for(
    db: AsyncConnection, *, user_id: UUID, type: NotificationType, category: Category
) -> set[Channel]:
    """The channels on for a person and a notification of this type and category (system
    work for anyone, or a person for themself)."""
    return effective_channels(await list_preferences(db, user_id=user_id), type, category)


async def get_preferences(db: AsyncConnection, *, actor: Actor) -> PreferencesOut:
    """The actor's settings and choices, with what they come to for each type."""
    return _out(
        await get_notification_settings(db, user_id=actor.user_id),
        await list_preferences(db, user_id=actor.user_id),
    )


async def do_put_preferences(db: AsyncConnection, *, actor: Actor, wanted: PreferencesIn) -> PreferencesOut:
    """Replace the actor's settings and every choice with these, and tell their other
    devices (`notification_preferences.updated`)."""
    quiet = wanted.quiet_hours
    values = {
        "time_zone": wanted.time_zone,
        "quiet_start": quiet.start if quiet else None,
        "quiet_end": quiet.end if quiet else None,
        "digest_delay_minutes": wanted.digest_delay_minutes,
        "email_digest": wanted.email_digest,
    }
    upsert = insert(settings).values(user_id=actor.user_id, **values)
    await db.execute(upsert.on_conflict_do_update(index_elements=[settings.c.user_id], set_=values))
    await db.execute(delete(preferences).where(preferences.c.user_id == actor.user_id))
    if wanted.channels:
        await db.execute(
            insert(preferences),
            [
                {
                    "id": uuid7(),
                    "user_id": actor.user_id,
                    "type": choice.type,
                    "category": choice.category,
                    "channel": choice.channel,
                    "enabled": choice.enabled,
                }
                for choice in wanted.channels
            ],
        )
    await publish(
        db,
        scope=Scope.user(actor.user_id),
        type="notification_preferences.updated",
        payload={},
        actor_id=actor.user_id,
    )
    return await get_preferences(db, actor=actor)


def _out(saved: NotificationSettings, prefs: list[Preference]) -> PreferencesOut:
    quiet = None
    if saved.quiet_start is not None and saved.quiet_end is not None:
        quiet = QuietHours(start=saved.quiet_start, end=saved.quiet_end)
    return PreferencesOut(
        time_zone=saved.time_zone,
        quiet_hours=quiet,
        digest_delay_minutes=saved.digest_delay_minutes,
        email_digest=saved.email_digest,
        channels=[
            ChannelPreference(type=p.type, category=p.category, channel=p.channel, enabled=p.enabled) for p in prefs
        ],
        effective={
            kind: {channel: channel in effective_channels(prefs, kind, TYPE_CATEGORY[kind]) for channel in CHANNELS}
            for kind in TYPES
        },
    )
