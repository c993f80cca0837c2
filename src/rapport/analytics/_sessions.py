"""Sessions and events as administrators read them. Sessions are folded from events as they
are inserted, by the trigger analytics.track_sessions (migration 2026_11_30_0045): one
upsert per batch, so a session's figures are exact whatever the order its batches come in
(earliest and latest event time, counts added). Every read here is in the caller's own
transaction: the policies admit platform administrators only, and the service checks first
so that anyone else is told so instead of shown nothing."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.analytics.schemas import EventOut, UsageSessionOut
from rapport.kernel.db import AnyRow
from rapport.kernel.errors import PlatformAdminRequired
from rapport.kernel.pagination import Page, PageRequest, make_page

_IS_ADMIN = text("SELECT access.is_platform_admin()")

_SESSIONS = text(
    """
    SELECT s.session_id, s.user_id, s.started_at, s.ended_at, s.duration_ms, s.event_count, s.screens_viewed,
           s.platform, s.app_version, s.device_type, s.country
      FROM analytics.user_sessions s
     WHERE (CAST(:user_id AS uuid) IS NULL OR s.user_id = CAST(:user_id AS uuid))
       AND (CAST(:after_started AS timestamptz) IS NULL
            OR (s.started_at, s.session_id) < (CAST(:after_started AS timestamptz), CAST(:after_id AS uuid)))
     ORDER BY s.started_at DESC, s.session_id DESC
     LIMIT :limit
    """
)
_STARTED_OF = text("SELECT started_at FROM analytics.user_sessions WHERE session_id = :session_id")
_ONE_SESSION = text(
    """
    SELECT s.session_id, s.user_id, s.started_at, s.ended_at, s.duration_ms, s.event_count, s.screens_viewed,
           s.platform, s.app_version, s.device_type, s.country
      FROM analytics.user_sessions s WHERE s.session_id = :session_id
    """
)
_EVENTS_OF = text(
    """
    SELECT e.id, e.created_at, e.event_timestamp, e.user_id, e.session_id, e.event_name, e.event_category,
           e.source, e.properties, e.platform, e.device_type, e.app_version, e.country, e.duration_ms,
           e.load_time_ms
      FROM analytics.events e
     WHERE e.user_id = :user_id
       AND (CAST(:after_created AS timestamptz) IS NULL
            OR (e.created_at, e.id) < (CAST(:after_created AS timestamptz), CAST(:after_id AS uuid)))
     ORDER BY e.created_at DESC, e.id DESC
     LIMIT :limit
    """
)
_CREATED_OF = text("SELECT created_at FROM analytics.events WHERE user_id = :user_id AND id = :event_id")


async def require_platform_admin(db: AsyncConnection) -> None:
    """Raises:
    PlatformAdminRequired: the transaction's user is not an active platform administrator.
    """
    if not (await db.execute(_IS_ADMIN)).scalar_one():
        raise PlatformAdminRequired("Only the platform's administrators read analytics.")


def _session(row: AnyRow) -> UsageSessionOut:
    return UsageSessionOut.model_validate(row._asdict())


async def list_sessions(db: AsyncConnection, *, user_id: UUID | None, page: PageRequest) -> Page[UsageSessionOut]:
    """Sessions, latest started first; one person's when `user_id` is given."""
    after_started: datetime | None = None
    if page.after_id is not None:
        after_started = (await db.execute(_STARTED_OF, {"session_id": page.after_id})).scalar_one_or_none()
    params = {"user_id": user_id, "after_started": after_started, "after_id": page.after_id, "limit": page.limit + 1}
    rows = (await db.execute(_SESSIONS, params)).all()
    return make_page([_session(row) for row in rows], page, id_of=lambda session: session.session_id)


async def get_session(db: AsyncConnection, *, session_id: UUID) -> UsageSessionOut | None:
    row = (await db.execute(_ONE_SESSION, {"session_id": session_id})).one_or_none()
    return _session(row) if row is not None else None


async def list_events_of(db: AsyncConnection, *, user_id: UUID, page: PageRequest) -> Page[EventOut]:
    """A person's events, latest received first."""
    after_created: datetime | None = None
    if page.after_id is not None:
        after_created = (
            await db.execute(_CREATED_OF, {"user_id": user_id, "event_id": page.after_id})
        ).scalar_one_or_none()
    params = {"user_id": user_id, "after_created": after_created, "after_id": page.after_id, "limit": page.limit + 1}
    rows = (await db.execute(_EVENTS_OF, params)).all()
    return make_page([EventOut.model_validate(row._asdict()) for row in rows], page)
