"""Retention cohorts (analytics.user_retention, computed by the daily rollup): people who
signed up on one UTC day, or in one ISO week (from Monday), and how many of them had any
event on their day 1, 7 and 30 after signing up (each counted from the person's own
sign-up day). A day's figure stays null until that day is over for the cohort's last
member."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.analytics import _gate
from rapport.analytics.models_reports import CohortPeriod
from rapport.analytics.schemas_reports import CohortOut

_COHORTS = text(
    """
    SELECT cohort_period, cohort_start, cohort_size, retained_day_1, retained_day_7, retained_day_30
      FROM analytics.user_retention
     WHERE cohort_period = :period AND cohort_start BETWEEN :first AND :last
     ORDER BY cohort_start
    """
)


def _rate(retained: int | None, size: int) -> float | None:
    return None if retained is None or size == 0 else round(retained / size, 4)


async def list_cohorts(
    db: AsyncConnection, *, period: CohortPeriod, since: date | None, until: date | None
) -> list[CohortOut]:
    """The cohorts starting in a range (the last 12 weeks by default), for an administrator.

    Raises:
        PlatformAdminRequired: the caller is not a platform administrator.
        ReportRangeInvalid: see `_gate.day_range`.
    """
    await _gate.require_platform_admin(db)
    first, last = _gate.day_range(since, until, default_days=84)
    if period == "week":
        first -= timedelta(days=first.weekday())
    rows = (await db.execute(_COHORTS, {"period": period, "first": first, "last": last})).all()
    return [
        CohortOut(
            cohort_period=row.cohort_period,
            cohort_start=row.cohort_start,
            cohort_size=row.cohort_size,
            retained_day_1=row.retained_day_1,
            retained_day_7=row.retained_day_7,
            retained_day_30=row.retained_day_30,
            rate_day_1=_rate(row.retained_day_1, row.cohort_size),
            rate_day_7=_rate(row.retained_day_7, row.cohort_size),
            rate_day_30=_rate(row.retained_day_30, row.cohort_size),
        )
        for row in rows
    ]
