"""Who reads analytics, and over how long a range: what every report checks first.

Only platform administrators read analytics (the database decides who is one:
`access.is_platform_admin()`, the function the analytics tables' policies call), and
a report reads at most MAX_RANGE_DAYS days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.analytics.errors import ReportRangeInvalid
from rapport.analytics.schemas_reports import MAX_RANGE_DAYS
from rapport.kernel.errors import PlatformAdminRequired

_IS_ADMIN = text("SELECT access.is_platform_admin()")


async def require_platform_admin(db: AsyncConnection) -> None:
    """Raises:
    PlatformAdminRequired: the transaction's user is not an active platform administrator.
    """
    if not (await db.execute(_IS_ADMIN)).scalar_one():
        raise PlatformAdminRequired()


def today() -> date:
    """Today's date in UTC, the calendar every report counts days by."""
    return datetime.now(UTC).date()


# The days a report may name: what lies outside is a mistake, not a figure.
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2999, 12, 31)


def check_day(day: date) -> date:
    """Raises:
    ReportRangeInvalid: the day is before 1970 or after 2999.
    """
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ReportRangeInvalid(f"{day} is not a day a report covers ({FIRST_DAY} to {LAST_DAY}).")
    return day


def day_range(since: date | None, until: date | None, *, default_days: int = 30) -> tuple[date, date]:
    """The days a report covers, both included: `until` defaults to today (UTC), `since`
    to `default_days` days before it.

    Raises:
        ReportRangeInvalid: `until` comes before `since`, the range spans more than MAX_RANGE_DAYS,
            or a day is out of `check_day`'s bounds.
    """
    last = check_day(until or today())
    first = check_day(since or max(FIRST_DAY, last - timedelta(days=default_days - 1)))
    if last < first:
        raise ReportRangeInvalid(f"until ({last}) comes before since ({first}).")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise ReportRangeInvalid(f"A report covers at most {MAX_RANGE_DAYS} days; this one asks for more.")
    return first, last
