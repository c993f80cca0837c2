"""The platform administrators' routes under /v1/admin: suspend, ban and restore accounts,
read the audit, the compliance logs and a person's consents, list export and deletion
requests, record breaches and the notifications sent about them.

Only platform administrators may, through a signed-in session (not an API key). Every
route takes a `reason`, recorded with who did what in `audit.admin_actions`; a read of
someone's data is also recorded where that person sees it."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, status

from rapport.compliance import schemas as s
from rapport.compliance import service
from rapport.kernel.db import system_transaction
from rapport.kernel.deps import CallerDep, PageDep
from rapport.kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT
from rapport.kernel.schemas import Text

router = APIRouter(prefix="/v1/admin", tags=["compliance administration"])

ReasonQuery = Annotated[str, Text(2000), Query(description="Why you read this: recorded with your read.")]
PersonQuery = Annotated[UUID | None, Query(description="Only what concerns this account.")]
UserPath = Annotated[UUID, Path(description="The account.")]


async def _change(
    caller: CallerDep, user_id: UUID, body: s.AccountActionIn, change: service.AccountChange
) -> s.AccountStatusOut:
    # The caller's session is checked live, and their being a platform administrator, in
    # their own transaction; the change itself is system work (another person's account),
    # which checks them again and records the action in the same transaction.
    async with caller.transaction(session_required=True) as (db, actor):
        await service.require_platform_admin(db)
    async with system_transaction(caller.runtime.system_engine) as db:
        return await service.do_change_account_status(
            db, admin_id=actor.user_id, user_id=user_id, change=change, reason=body.reason
        )


@router.post("/users/{user_id}/suspend", response_model=s.AccountStatusOut)
async def suspend_account(user_id: UserPath, body: s.AccountActionIn, caller: CallerDep) -> s.AccountStatusOut:
    """Suspend an account: it can no longer sign in or use its API keys, every session it
    had ends and its open streams close at once. `restore` undoes it."""
    return await _change(caller, user_id, body, "suspend")


@router.post("/users/{user_id}/ban", response_model=s.AccountStatusOut)
async def ban_account(user_id: UserPath, body: s.AccountActionIn, caller: CallerDep) -> s.AccountStatusOut:
    """Ban an account (active or suspended): as a suspension, for good unless restored."""
    return await _change(caller, user_id, body, "ban")


@router.post("/users/{user_id}/restore", response_model=s.AccountStatusOut)
async def restore_account(user_id: UserPath, body: s.AccountActionIn, caller: CallerDep) -> s.AccountStatusOut:
    """Restore a suspended or banned account: active again (pending if its address was
    never verified). Its sessions stay ended: the person signs in again."""
    return await _change(caller, user_id, body, "restore")


@router.get("/users/{user_id}/consents", response_model=s.AdminConsentsOut)
async def get_user_consents(
    user_id: UserPath, reason: ReasonQuery, caller: CallerDep, page: PageDep
) -> s.AdminConsentsOut:
    """A person's consents now and their history (newest first, paged)."""
    async with caller.transaction(session_required=True) as (db, actor):
        state, history = await service.read_consents(
            db, admin_id=actor.user_id, user_id=user_id, reason=reason, page=page
        )
    return s.AdminConsentsOut(current=state, history=history)


@router.get("/audit/{table}", response_model=s.AuditPage)
async def get_audit(
    table: Annotated[s.AuditTable, Path(description="Which audit table.")],
    reason: ReasonQuery,
    caller: CallerDep,
    user_id: PersonQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=64, description="The `next` value of the previous page.")] = None,
) -> s.AuditPage:
    """One audit table, newest first, with each row's place in the table's hash chain
    (`rapport audit verify` checks the chains): record_changes, sensitive_data_access,
    admin_actions, auth_events, data_exports or redactions."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.list_audit(
            db, admin_id=actor.user_id, table=table, reason=reason, limit=limit, cursor=cursor, person=user_id
        )


@router.get("/compliance-logs", response_model=s.ComplianceLogPage)
async def get_compliance_logs(
    reason: ReasonQuery,
    caller: CallerDep,
    page: PageDep,
    user_id: PersonQuery = None,
    event_type: Annotated[service.EventType | None, Query(description="Only events of this type.")] = None,
) -> s.ComplianceLogPage:
    """Compliance events of everyone, newest first."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.list_compliance_logs(
            db, admin_id=actor.user_id, reason=reason, page=page, person=user_id, event_type=event_type
        )


@router.get("/export-requests", response_model=s.ExportRequestPage)
async def get_export_requests(
    reason: ReasonQuery, caller: CallerDep, page: PageDep, user_id: PersonQuery = None
) -> s.ExportRequestPage:
    """Every export asked for, newest first: who, when, how it stands (never the archive)."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.list_export_requests(db, admin_id=actor.user_id, reason=reason, page=page, person=user_id)


@router.get("/deletion-requests", response_model=s.DeletionRequestPage)
async def get_deletion_requests(
    reason: ReasonQuery, caller: CallerDep, page: PageDep, user_id: PersonQuery = None
) -> s.DeletionRequestPage:
    """Every account waiting for its erasure, and when it will be erased."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.list_deletion_requests(
            db, admin_id=actor.user_id, reason=reason, page=page, person=user_id
        )


@router.post("/breaches", status_code=status.HTTP_201_CREATED, response_model=s.BreachOut)
async def post_breach(body: s.BreachIn, caller: CallerDep) -> s.BreachOut:
    """Record a detected personal data breach (breach_detected in the compliance log)."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.do_record_breach(db, admin_id=actor.user_id, wanted=body)


@router.post(
    "/breaches/{breach_id}/notifications", status_code=status.HTTP_201_CREATED, response_model=s.BreachNotificationOut
)
async def post_breach_notification(
    breach_id: Annotated[UUID, Path(description="The breach.")], body: s.BreachNotificationIn, caller: CallerDep
) -> s.BreachNotificationOut:
    """Record a notification sent about a breach (breach_notified): to the supervisory
    authority, the people affected or the public. Each person named in `user_ids` finds it
    in their own compliance log."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.do_record_notification(db, admin_id=actor.user_id, breach_id=breach_id, wanted=body)


@router.get("/breaches", response_model=s.BreachPage)
async def get_breaches(reason: ReasonQuery, caller: CallerDep, page: PageDep) -> s.BreachPage:
    """Every breach recorded, newest first, with the notifications sent about each."""
    async with caller.transaction(session_required=True) as (db, _):
        return await service.list_breaches(db, reason=reason, page=page)
