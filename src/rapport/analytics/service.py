"""Analytics' public interface: what its routers, the app and the CLI call. Ingestion
(client events, crash reports, server events) is here; reports are in service_reports."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.analytics import _crashes, _ingest, _sessions
from rapport.analytics._server_events import ServerEventRecorder as ServerEventRecorder
from rapport.analytics._server_events import record_all as record_server_events
from rapport.analytics.errors import CrashNotFound, SessionNotFound
from rapport.analytics.schemas import (
    CrashAccepted,
    CrashIn,
    CrashOut,
    EventBatch,
    EventOut,
    EventsAccepted,
    UsageSessionOut,
)
from rapport.compliance import service as compliance_service
from rapport.config import Settings
from rapport.kernel.actor import Actor
from rapport.kernel.pagination import Page, PageRequest
from rapport.kernel.runtime import Runtime

__all__ = [
    "ServerEventRecorder",
    "authorise_crash_report",
    "do_record_crash",
    "get_crash",
    "get_session",
    "ingest_events",
    "list_crashes",
    "list_events_of",
    "list_sessions",
    "record_server_events",
]


async def ingest_events(runtime: Runtime, actor: Actor, *, batch: EventBatch) -> EventsAccepted:
    """Keep a batch of the actor's events, in one statement (rapport.analytics._ingest).

    Raises:
        InvalidToken: the session or key has ended.
        TooManyEvents: the person's hourly budget of events is spent; nothing was kept.
    """
    return EventsAccepted(accepted=await _ingest.ingest(runtime, actor, batch=batch))


async def authorise_crash_report(db: AsyncConnection, *, settings: Settings, actor: Actor) -> UUID | None:
    """In the caller's transaction: spend a unit of their analytics budget; who reports,
    or None when their `privacy_policy` consent is not given (the crash is counted without
    them: rapport.analytics._crashes).

    Raises:
        TooManyEvents: the budget is spent.
    """
    await _ingest.take_one(db, settings=settings, actor=actor)
    if not await compliance_service.has_consent(db, user_id=actor.user_id, consent_type="privacy_policy"):
        return None
    return actor.user_id


async def do_record_crash(db: AsyncConnection, *, reporter: UUID | None, crash: CrashIn) -> CrashAccepted:
    """As system work: count the report under its crash and link the reporter, if any."""
    return await _crashes.record_crash(db, user_id=reporter, crash=crash)


async def list_crashes(db: AsyncConnection, *, page: PageRequest) -> Page[CrashOut]:
    """Raises:
    PlatformAdminRequired: the caller is not a platform administrator.
    """
    await _sessions.require_platform_admin(db)
    return await _crashes.list_crashes(db, page=page)


async def get_crash(db: AsyncConnection, *, crash_id: UUID) -> CrashOut:
    """Raises:
    PlatformAdminRequired: the caller is not a platform administrator.
    CrashNotFound: no such crash.
    """
    await _sessions.require_platform_admin(db)
    found = await _crashes.get_crash(db, crash_id=crash_id)
    if found is None:
        raise CrashNotFound()
    return found


async def list_sessions(db: AsyncConnection, *, user_id: UUID | None, page: PageRequest) -> Page[UsageSessionOut]:
    """Raises:
    PlatformAdminRequired: the caller is not a platform administrator.
    """
    await _sessions.require_platform_admin(db)
    return await _sessions.list_sessions(db, user_id=user_id, page=page)


async def get_session(db: AsyncConnection, *, session_id: UUID) -> UsageSessionOut:
    """Raises:
    PlatformAdminRequired: the caller is not a platform administrator.
    SessionNotFound: no such session.
    """
    await _sessions.require_platform_admin(db)
    found = await _sessions.get_session(db, session_id=session_id)
    if found is None:
        raise SessionNotFound()
    return found


async def list_events_of(db: AsyncConnection, *, user_id: UUID, page: PageRequest) -> Page[EventOut]:
    """Raises:
    PlatformAdminRequired: the caller is not a platform administrator.
    """
    await _sessions.require_platform_admin(db)
    return await _sessions.list_events_of(db, user_id=user_id, page=page)
