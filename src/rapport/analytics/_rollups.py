"""The daily rollup: analytics.events, accounts, messages and files of one UTC day become
rows of analytics.daily_metrics and analytics.feature_usage, and the retention cohorts the
day touches are computed again (analytics.rollup_day, migration 2026_11_30_0046).

A run replaces its day whole, in one transaction, under an advisory lock of that day:
running it again, for any day, gives the same rows (idempotent), and two runs of one day
wait for each other. The figures count days by `created_at` (when Rapport received an
event), in UTC.

Metrics (analytics.daily_metrics.metric): `events` (all events), `events_by_name` (per
event name, in `dimension`), `active_users` (distinct people with an event), `sessions`
(distinct session ids), `new_users` (accounts of people made that day), `messages_sent`
(messages other than system ones), `active_senders`, `conversations_created`,
`files_uploaded` and `bytes_uploaded`. Feature usage counts the events named
`feature_used` by their `properties.feature` (trimmed, at most 100 characters)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.analytics import _gate
from rapport.analytics.errors import ReportRangeInvalid
from rapport.analytics.schemas_reports import DailyMetricOut, FeatureUsageOut
from rapport.kernel.db import SystemEngine, system_transaction

_ROLLUP = text("SELECT analytics.rollup_day(CAST(:day AS date))")
_METRICS = text(
    """
    SELECT day, metric, dimension, value FROM analytics.daily_metrics
     WHERE day BETWEEN :first AND :last AND (CAST(:metric AS text) IS NULL OR metric = :metric)
     ORDER BY day, metric, dimension
    """
)
_FEATURES = text(
    """
    SELECT day, feature, uses, users FROM analytics.feature_usage
     WHERE day BETWEEN :first AND :last AND (CAST(:feature AS text) IS NULL OR feature = :feature)
     ORDER BY day, uses DESC, feature
    """
)
# When a day's figures were last computed (NULL: never).
_COMPUTED_AT = text("SELECT max(computed_at) FROM analytics.daily_metrics WHERE day = :day")


@dataclass(frozen=True)
class RolledUp:
    day: date
    metrics_written: int


async def rollup_day(db: AsyncConnection, *, day: date) -> RolledUp:
    """Compute one UTC day's figures again, in `db` (a system transaction)."""
    written = int((await db.execute(_ROLLUP, {"day": day})).scalar_one())
    return RolledUp(day=day, metrics_written=written)


async def rollup_days(engine: SystemEngine, *, first: date, last: date) -> list[RolledUp]:
    """Roll up each day from `first` to `last`, one system transaction per day."""
    done = []
    day = first
    while day <= last:
        async with system_transaction(engine) as db:
            done.append(await rollup_day(db, day=day))
        day += timedelta(days=1)
    return done


async def do_rollup_day(db: AsyncConnection, *, day: date) -> RolledUp:
    """An administrator's request to compute a day again; the rollup itself is system
    work, which the caller runs after this check.

    Raises:
        PlatformAdminRequired: the caller is not a platform administrator.
        ReportRangeInvalid: the day is in the future.
    """
    await _gate.require_platform_admin(db)
    _gate.day_range(day, day)
    if day > _gate.today():
        raise ReportRangeInvalid("The day has not begun yet.")
    return RolledUp(day=day, metrics_written=0)


async def computed_at(db: AsyncConnection, *, day: date) -> datetime | None:
    """When a day's figures were last computed, or None."""
    at: datetime | None = (await db.execute(_COMPUTED_AT, {"day": day})).scalar_one()
    return at


async def list_daily_metrics(
    db: AsyncConnection, *, since: date | None, until: date | None, metric: str | None
) -> list[DailyMetricOut]:
    """The figures of a range of days (30 up to today by default), for an administrator.

    Raises:
        PlatformAdminRequired: the caller is not a platform administrator.
        ReportRangeInvalid: see `_gate.day_range`.
    """
    await _gate.require_platform_admin(db)
    first, last = _gate.day_range(since, until)
    rows = await db.execute(_METRICS, {"first": first, "last": last, "metric": metric})
    return [DailyMetricOut.model_validate(row, from_attributes=True) for row in rows]


async def list_feature_usage(
    db: AsyncConnection, *, since: date | None, until: date | None, feature: str | None
) -> list[FeatureUsageOut]:
    """Each feature's uses and people per day, for an administrator.

    Raises:
        PlatformAdminRequired: the caller is not a platform administrator.
        ReportRangeInvalid: see `_gate.day_range`.
    """
    await _gate.require_platform_admin(db)
    first, last = _gate.day_range(since, until)
    rows = await db.execute(_FEATURES, {"first": first, "last": last, "feature": feature})
    return [FeatureUsageOut.model_validate(row, from_attributes=True) for row in rows]
