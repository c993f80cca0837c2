"""The moderation API: reporting a message; a conversation's moderation queue (flagged
messages and reports) and what its moderators do about it; and, for platform
administrators, every open report and the blocked terms that flag messages."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, status

from rapport.kernel.deps import NO_CONTENT, CallerDep, PageDep
from rapport.kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from rapport.messaging import schemas_moderation as s
from rapport.messaging import service
from rapport.messaging.schemas import MessageOut

router = APIRouter(tags=["moderation"])

MODERATION = "/conversations/{conversation_id}/moderation"
BLOCKED_TERMS = "/admin/moderation/blocked-terms"


@router.post(
    "/conversations/{conversation_id}/messages/{message_id}/report",
    status_code=status.HTTP_201_CREATED,
    response_model=s.ReportOut,
)
async def report_message(
    conversation_id: UUID, message_id: UUID, body: s.ReportMessage, caller: CallerDep
) -> s.ReportOut:
    """Report a message to the conversation's moderators and the platform's
    administrators. The report keeps the message as it is now. One open report per
    person and message (409 `already-reported`)."""
    async with caller.transaction() as (db, actor):
        return await service.do_report_message(
            db,
            actor=actor,
            conversation_id=conversation_id,
            message_id=message_id,
            reason=body.reason,
            details=body.details,
        )


@router.get(MODERATION, response_model=s.ModerationQueue)
async def moderation_queue(
    conversation_id: UUID,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per list.")] = DEFAULT_LIMIT,
) -> s.ModerationQueue:
    """What the conversation's moderators have to look at: its flagged messages and its
    open reports, newest first. Moderators, admins and owners only (403 for others who
    take part)."""
    async with caller.transaction() as (db, actor):
        return await service.get_moderation_queue(db, actor=actor, conversation_id=conversation_id, limit=limit)


@router.get(MODERATION + "/flagged", response_model=Page[MessageOut])
async def flagged_messages(conversation_id: UUID, caller: CallerDep, page: PageDep) -> Page[MessageOut]:
    """The conversation's flagged messages that are still there, newest first."""
    async with caller.transaction() as (db, actor):
        return await service.list_flagged_messages(db, actor=actor, conversation_id=conversation_id, page=page)


@router.get(MODERATION + "/reports", response_model=Page[s.ReportOut])
async def conversation_reports(
    conversation_id: UUID,
    caller: CallerDep,
    page: PageDep,
    report_status: Annotated[s.ReportStatus, Query(alias="status")] = "open",
) -> Page[s.ReportOut]:
    """The conversation's reports of one status (open by default), newest first."""
    async with caller.transaction() as (db, actor):
        return await service.list_conversation_reports(
            db, actor=actor, conversation_id=conversation_id, status=report_status, page=page
        )


@router.post(MODERATION + "/reports/{report_id}", response_model=s.ReportOut)
async def resolve_report(
    conversation_id: UUID, report_id: UUID, body: s.ResolveReport, caller: CallerDep
) -> s.ReportOut:
    """Resolve an open report: `dismiss` it, or `delete_message` for everyone, which
    resolves every open report of that message. The conversation's moderators, admins
    and owners, and platform administrators, resolve reports (409 `report-not-open` once
    resolved)."""
    async with caller.transaction() as (db, actor):
        return await service.do_resolve_report(
            db,
            actor=actor,
            conversation_id=conversation_id,
            report_id=report_id,
            action=body.action,
            note=body.note,
        )


@router.patch("/conversations/{conversation_id}/messages/{message_id}/moderation", response_model=MessageOut)
async def flag_message(conversation_id: UUID, message_id: UUID, body: s.FlagMessage, caller: CallerDep) -> MessageOut:
    """Flag a message for moderators, or clear its flag (moderators, admins and owners)."""
    async with caller.transaction() as (db, actor):
        return await service.do_flag_message(
            db, actor=actor, conversation_id=conversation_id, message_id=message_id, flagged=body.moderation_flagged
        )


@router.get("/admin/moderation/reports", response_model=Page[s.ReportOut])
async def open_reports(caller: CallerDep, page: PageDep) -> Page[s.ReportOut]:
    """Every open report on the platform, newest first, with the message as it was
    reported (platform administrators)."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.list_open_reports(db, actor=actor, page=page)


@router.get(BLOCKED_TERMS, response_model=Page[s.BlockedTermOut])
async def list_blocked_terms(caller: CallerDep, page: PageDep) -> Page[s.BlockedTermOut]:
    """The terms that flag a message for moderators, newest first (platform administrators)."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.list_blocked_terms(db, actor=actor, page=page)


@router.post(BLOCKED_TERMS, status_code=status.HTTP_201_CREATED, response_model=s.BlockedTermOut)
async def add_blocked_term(body: s.BlockedTermCreate, caller: CallerDep) -> s.BlockedTermOut:
    """Block a term (stored lower-cased): a message sent from now on containing it, in any
    case, is flagged (`moderation_flagged`). 409 `blocked-term-exists` for a term blocked
    already (platform administrators)."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.do_add_blocked_term(db, actor=actor, term=body.term)


@router.delete(BLOCKED_TERMS + "/{term_id}", **NO_CONTENT)
async def remove_blocked_term(term_id: UUID, caller: CallerDep) -> None:
    """Unblock a term; messages it flagged stay flagged (platform administrators)."""
    async with caller.transaction(session_required=True) as (db, actor):
        await service.do_remove_blocked_term(db, actor=actor, term_id=term_id)
