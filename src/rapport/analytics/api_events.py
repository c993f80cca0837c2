"""Routes of analytics' ingestion, under /v1/analytics: clients send events in batches and
report crashes; platform administrators read sessions, crashes and a person's events.

Sending events is a hot path: rapport.analytics.api_hot answers plainly well-formed
batches before FastAPI's routing, with the same model and service; the route here answers
every other request (its refusals included) and declares the route for the OpenAPI
document."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, status

from rapport.analytics import schemas as s
from rapport.analytics import service
from rapport.kernel.db import system_transaction
from rapport.kernel.deps import CallerDep, PageDep
from rapport.kernel.errors import PayloadTooLarge
from rapport.kernel.pagination import Page

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

SessionPath = Annotated[UUID, Path(description="The session, as its client named it.")]
CrashPath = Annotated[UUID, Path(description="The crash.")]
UserPath = Annotated[UUID, Path(description="The person.")]


@router.post("/events", response_model=s.EventsAccepted, status_code=status.HTTP_202_ACCEPTED)
async def send_events(body: s.EventBatch, request: Request, caller: CallerDep) -> s.EventsAccepted:
    """Send 1 to 100 events of the caller's (at most 256 KiB of body), kept in one statement.
    The batch is refused whole when any event is wrong: the problem's `errors` name the
    event's index and field (`["body", "events", "3", "event_name"]`). Events are kept only
    while the caller's `privacy_policy` consent is given; without it the batch is accepted
    and dropped (`accepted: 0`).

    Errors: `validation-error` (422); `payload-too-large` (413);
    `analytics-too-many-events` (429, with Retry-After) past the hourly budget of events.
    """
    if len(await request.body()) > s.MAX_BATCH_BYTES:
        raise PayloadTooLarge(f"A batch of events is at most {s.MAX_BATCH_BYTES} bytes.")
    return await service.ingest_events(caller.runtime, await caller.actor(), batch=body)


@router.post("/crashes", response_model=s.CrashAccepted, status_code=status.HTTP_202_ACCEPTED)
async def report_crash(body: s.CrashIn, caller: CallerDep) -> s.CrashAccepted:
    """Report a crash. Reports of one fault (the same platform, exception type and stack once
    addresses, line numbers and values are taken out) are counted under one crash; the
    message is kept with the reporter only, and only while the caller's `privacy_policy`
    consent is given: without it the crash is counted with nothing of the caller (no link,
    no message). Each report spends a unit of the caller's analytics budget.

    Errors: `validation-error` (422); `analytics-too-many-events` (429).
    """
    async with caller.transaction() as (db, actor):
        reporter = await service.authorise_crash_report(db, settings=caller.runtime.settings, actor=actor)
    async with system_transaction(caller.runtime.system_engine) as db:
        return await service.do_record_crash(db, reporter=reporter, crash=body)


@router.get("/crashes", response_model=Page[s.CrashOut])
async def list_crashes(caller: CallerDep, page: PageDep) -> Page[s.CrashOut]:
    """Crashes, most recently seen first, with how often and how many people they hit
    (platform administrators).

    Errors: `platform-admin-required` (403).
    """
    async with caller.transaction() as (db, _):
        return await service.list_crashes(db, page=page)


@router.get("/crashes/{crash_id}", response_model=s.CrashOut)
async def get_crash(crash_id: CrashPath, caller: CallerDep) -> s.CrashOut:
    """One crash (platform administrators).

    Errors: `platform-admin-required` (403); `analytics-crash-not-found` (404).
    """
    async with caller.transaction() as (db, _):
        return await service.get_crash(db, crash_id=crash_id)


@router.get("/sessions", response_model=Page[s.UsageSessionOut])
async def list_sessions(
    caller: CallerDep,
    page: PageDep,
    user_id: Annotated[UUID | None, Query(description="Only this person's sessions.")] = None,
) -> Page[s.UsageSessionOut]:
    """Sessions, latest started first, with their span, event count and screens viewed
    (platform administrators).

    Errors: `platform-admin-required` (403).
    """
    async with caller.transaction() as (db, _):
        return await service.list_sessions(db, user_id=user_id, page=page)


@router.get("/sessions/{session_id}", response_model=s.UsageSessionOut)
async def get_session(session_id: SessionPath, caller: CallerDep) -> s.UsageSessionOut:
    """One session (platform administrators).

    Errors: `platform-admin-required` (403); `analytics-session-not-found` (404).
    """
    async with caller.transaction() as (db, _):
        return await service.get_session(db, session_id=session_id)


@router.get("/users/{user_id}/events", response_model=Page[s.EventOut])
async def list_events_of(user_id: UserPath, caller: CallerDep, page: PageDep) -> Page[s.EventOut]:
    """A person's events, latest received first (platform administrators).

    Errors: `platform-admin-required` (403).
    """
    async with caller.transaction() as (db, _):
        return await service.list_events_of(db, user_id=user_id, page=page)
