"""Funnels: ordered steps, each an event name (analytics.funnels, analytics.funnel_events).

A person enters a funnel with their first event of step 1 in the report's range; they
reach step k+1 with their first event of its name at or after the moment they reached
step k, and no later than `window_seconds` after they entered. Counted by the definer
function analytics.funnel_counts, which answers administrators alone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.analytics import _gate
from rapport.analytics.errors import FunnelKeyTaken, FunnelNotFound, ReportRangeInvalid
from rapport.analytics.schemas_reports import FunnelIn, FunnelOut, FunnelReportOut, FunnelStepOut
from rapport.kernel.ids import uuid7

_INSERT = text(
    """
    INSERT INTO analytics.funnels (id, key, name, window_seconds)
    VALUES (:id, :key, :name, :window_seconds)
    ON CONFLICT (key) DO NOTHING
    """
)
_INSERT_STEPS = text(
    """
    INSERT INTO analytics.funnel_events (funnel_id, step, event_name)
    SELECT :id, s.step, s.event_name
      FROM unnest(CAST(:steps AS text[])) WITH ORDINALITY AS s (event_name, step)
    """
)
_SELECT = """
    SELECT f.id, f.key, f.name, f.window_seconds, f.created_at,
           array(SELECT s.event_name FROM analytics.funnel_events s WHERE s.funnel_id = f.id ORDER BY s.step) AS steps
      FROM analytics.funnels f
"""
_BY_KEY = text(_SELECT + " WHERE f.key = :key")
_BY_ID = text(_SELECT + " WHERE f.id = :id")
_LIST = text(_SELECT + " ORDER BY f.key")
_DELETE = text("DELETE FROM analytics.funnels WHERE key = :key")
_COUNTS = text("SELECT step, event_name, users FROM analytics.funnel_counts(:id, :since, :until)")


def _out(row: Row[tuple[object, ...]]) -> FunnelOut:
    return FunnelOut.model_validate(row, from_attributes=True)


async def do_create_funnel(db: AsyncConnection, *, body: FunnelIn) -> FunnelOut:
    """Define a funnel.

    Raises:
        PlatformAdminRequired: the caller is not a platform administrator.
        FunnelKeyTaken: another funnel has this key.
    """
    await _gate.require_platform_admin(db)
    funnel_id = uuid7()
    params = {"id": funnel_id, "key": body.key, "name": body.name, "window_seconds": body.window_seconds}
    if (await db.execute(_INSERT, params)).rowcount == 0:
        raise FunnelKeyTaken(f"A funnel is already called {body.key}.")
    await db.execute(_INSERT_STEPS, {"id": funnel_id, "steps": body.steps})
    return _out((await db.execute(_BY_ID, {"id": funnel_id})).one())


async def list_funnels(db: AsyncConnection) -> list[FunnelOut]:
    """Every funnel, by key.

    Raises:
        PlatformAdminRequired: the caller is not a platform administrator.
    """
    await _gate.require_platform_admin(db)
    return [_out(row) for row in await db.execute(_LIST)]


async def do_delete_funnel(db: AsyncConnection, *, key: str) -> None:
    """Remove a funnel's definition (its figures are computed on demand: nothing else goes).

    Raises:
        PlatformAdminRequired: the caller is not a platform administrator.
        FunnelNotFound: no funnel has this key.
    """
    await _gate.require_platform_admin(db)
    if (await db.execute(_DELETE, {"key": key})).rowcount == 0:
        raise FunnelNotFound()


def _in_utc(moment: datetime | None) -> datetime | None:
    """A moment in UTC (one without a zone is taken as UTC).

    Raises:
        ReportRangeInvalid: the moment is at the edge of what can be told in UTC.
    """
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ReportRangeInvalid(f"{moment} is out of range.") from None


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


async def funnel_report(
    db: AsyncConnection, *, key: str, since: datetime | None = None, until: datetime | None = None
) -> FunnelReportOut:
    """People per step among those who entered in [since, until) (the last 30 UTC days by
    default), with each step's conversion from the start and from the step before.

    Raises:
        PlatformAdminRequired: the caller is not a platform administrator.
        FunnelNotFound: no funnel has this key.
        ReportRangeInvalid: see `_gate.day_range`.
    """
    await _gate.require_platform_admin(db)
    row = (await db.execute(_BY_KEY, {"key": key})).one_or_none()
    if row is None:
        raise FunnelNotFound()
    funnel = _out(row)
    since, until = _in_utc(since), _in_utc(until)
    first, last = _gate.day_range(since.date() if since else None, until.date() if until else None)
    start = since or datetime.combine(first, time(), tzinfo=UTC)
    end = until or datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC)
    if end <= start:
        raise ReportRangeInvalid("until must come after since.")
    counts = (await db.execute(_COUNTS, {"id": UUID(str(funnel.id)), "since": start, "until": end})).all()
    steps = []
    entered = counts[0].users if counts else 0
    previous = entered
    for count in counts:
        steps.append(
            FunnelStepOut(
                step=count.step,
                event_name=count.event_name,
                users=count.users,
                conversion_from_start=_share(count.users, entered),
                conversion_from_previous=_share(count.users, previous),
            )
        )
        previous = count.users
    return FunnelReportOut(funnel=funnel, since=start, until=end, steps=steps)
