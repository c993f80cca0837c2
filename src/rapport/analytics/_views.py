"""The seed's reporting views (schema `views`, migration 2026_11_30_0046), read for the
administrators' routes through the definer functions under them, with a range or a day.

Each function answers platform administrators and system work, and nobody else: a view
read by anyone else is empty. Days are UTC days.

Engagement levels, by the days a person had any event in the 30 days to the day asked:
power_user 20 or more, active_user 8 to 19, casual_user 1 to 7, inactive_user none
(accounts of people, active, made by then)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.analytics import _gate
from rapport.analytics.schemas_reports import (
    ActiveUsersOut,
    ConversationStatsOut,
    EngagementLevelOut,
    EngagementOut,
    MessagingDayOut,
    SlowQueriesOut,
    SlowQueryOut,
    StorageRowOut,
    UserGrowthOut,
)

ENGAGEMENT_THRESHOLDS = {
    "power_user": "active on 20 or more of the last 30 days",
    "active_user": "active on 8 to 19 of the last 30 days",
    "casual_user": "active on 1 to 7 of the last 30 days",
    "inactive_user": "no event in the last 30 days",
}
LEVELS = tuple(ENGAGEMENT_THRESHOLDS)

_GROWTH = text("SELECT day, new_users, total_users FROM views.user_growth_between(:first, :last)")
_ACTIVE = text("SELECT day, dau, wau, mau, stickiness FROM views.active_users_at(:day)")
_ENGAGEMENT = text(
    """
    SELECT engagement_level, count(*) AS users FROM views.user_engagement_at(:day) GROUP BY engagement_level
    """
)
_MESSAGING = text(
    """
    SELECT day, messages, messages_with_media, active_senders, conversations_created
      FROM views.messaging_stats_between(:first, :last)
    """
)
_CONVERSATIONS = text(
    """
    SELECT conversation_id, type, member_count, message_count, messages_7d, senders_7d, created_at, last_message_at
      FROM views.conversation_analytics_top(:limit)
    """
)
_STORAGE = text(
    """
    SELECT grouped_by, key, files, bytes FROM views.media_storage()
     WHERE CAST(:grouped_by AS text) IS NULL OR grouped_by = :grouped_by
     ORDER BY grouped_by, bytes DESC, key
     LIMIT :limit
    """
)
_SLOW_MISSING = text("SELECT views.slow_queries_missing()")
_SLOW = text("SELECT query, calls, total_ms, mean_ms, rows FROM views.slow_queries_top(:limit)")


async def user_growth(db: AsyncConnection, *, since: date | None, until: date | None) -> list[UserGrowthOut]:
    """Sign-ups per day with the running total of accounts.

    Raises:
        PlatformAdminRequired: the caller is not a platform administrator.
        ReportRangeInvalid: see `_gate.day_range`.
    """
    await _gate.require_platform_admin(db)
    first, last = _gate.day_range(since, until)
    rows = await db.execute(_GROWTH, {"first": first, "last": last})
    return [UserGrowthOut.model_validate(row, from_attributes=True) for row in rows]


async def active_users(db: AsyncConnection, *, day: date | None) -> ActiveUsersOut:
    """DAU, WAU, MAU and stickiness (DAU / MAU) of a day (today by default).

    Raises:
        PlatformAdminRequired: the caller is not a platform administrator.
        ReportRangeInvalid: the day is out of bounds (`_gate.check_day`).
    """
    await _gate.require_platform_admin(db)
    row = (await db.execute(_ACTIVE, {"day": _gate.check_day(day or _gate.today())})).one()
    return ActiveUsersOut(
        day=row.day,
        dau=row.dau,
        wau=row.wau,
        mau=row.mau,
        stickiness=None if row.stickiness is None else float(row.stickiness),
    )


async def engagement(db: AsyncConnection, *, day: date | None) -> EngagementOut:
    """How many people are at each engagement level on a day (today by default).

    Raises:
        PlatformAdminRequired: the caller is not a platform administrator.
        ReportRangeInvalid: the day is out of bounds (`_gate.check_day`).
    """
    await _gate.require_platform_admin(db)
    on = _gate.check_day(day or _gate.today())
    counts = {row.engagement_level: row.users for row in await db.execute(_ENGAGEMENT, {"day": on})}
    total = sum(counts.values())
    levels = [
        EngagementLevelOut(
            engagement_level=level,
            users=counts.get(level, 0),
            percentage=round(100 * counts.get(level, 0) / total, 2) if total else 0.0,
        )
        for level in LEVELS
    ]
    return EngagementOut(day=on, thresholds=ENGAGEMENT_THRESHOLDS, levels=levels)


async def messaging_stats(db: AsyncConnection, *, since: date | None, until: date | None) -> list[MessagingDayOut]:
    """Messaging per day: messages, those with files, senders, new conversations.

    Raises:
        PlatformAdminRequired: the caller is not a platform administrator.
        ReportRangeInvalid: see `_gate.day_range`.
    """
    await _gate.require_platform_admin(db)
    first, last = _gate.day_range(since, until)
    rows = await db.execute(_MESSAGING, {"first": first, "last": last})
    return [MessagingDayOut.model_validate(row, from_attributes=True) for row in rows]


async def conversation_analytics(db: AsyncConnection, *, limit: int) -> list[ConversationStatsOut]:
    """The busiest conversations of the last 7 days, with their members and messages.

    Raises:
        PlatformAdminRequired: the caller is not a platform administrator.
    """
    await _gate.require_platform_admin(db)
    rows = await db.execute(_CONVERSATIONS, {"limit": limit})
    return [ConversationStatsOut.model_validate(row, from_attributes=True) for row in rows]


async def media_storage(db: AsyncConnection, *, grouped_by: str | None, limit: int) -> list[StorageRowOut]:
    """Live files and their bytes by owner, kind, month and in all, the largest first.

    Raises:
        PlatformAdminRequired: the caller is not a platform administrator.
    """
    await _gate.require_platform_admin(db)
    rows = await db.execute(_STORAGE, {"grouped_by": grouped_by, "limit": limit})
    return [
        StorageRowOut(grouped_by=row.grouped_by, key=row.key, files=row.files, bytes=int(row.bytes)) for row in rows
    ]


async def slow_queries(db: AsyncConnection, *, limit: int) -> SlowQueriesOut:
    """The slowest statements on average, from pg_stat_statements; where the server does
    not have it, an empty list and the reason.

    Raises:
        PlatformAdminRequired: the caller is not a platform administrator.
    """
    await _gate.require_platform_admin(db)
    missing = (await db.execute(_SLOW_MISSING)).scalar_one()
    if missing is not None:
        return SlowQueriesOut(available=False, reason=missing, items=[])
    rows = await db.execute(_SLOW, {"limit": limit})
    return SlowQueriesOut(
        available=True, reason=None, items=[SlowQueryOut.model_validate(row, from_attributes=True) for row in rows]
    )
