"""The consent routes under /v1/me: a person gives and withdraws consents, and reads where
each stands, their whole history and their compliance log."""

from __future__ import annotations

from fastapi import APIRouter, status

from rapport.compliance import schemas as s
from rapport.compliance import service
from rapport.kernel.deps import CallerDep, PageDep

router = APIRouter(prefix="/v1/me", tags=["compliance"])


@router.get("/consents", response_model=s.ConsentsOut)
async def get_consents(caller: CallerDep) -> s.ConsentsOut:
    """Where each of your consents stands: every type (terms_of_service, privacy_policy,
    ai_features, ai_coaching, marketing_emails), given or not, with when it last changed.
    Features that need a consent (AI features, marketing e-mail) check it."""
    async with caller.transaction() as (db, actor):
        return await service.current_consents(db, user_id=actor.user_id)


@router.post("/consents", status_code=status.HTTP_201_CREATED, response_model=s.ConsentRecordOut)
async def post_consent(body: s.ConsentIn, caller: CallerDep) -> s.ConsentRecordOut:
    """Give (`granted: true`) or withdraw (`granted: false`) one consent. Each is recorded
    with the address and user agent it came from, and in your compliance log; nothing is
    ever overwritten: `GET /v1/me/consents/history` lists them all. Only a signed-in session
    may (not an API key)."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.do_record_consent(db, actor=actor, client=caller.client, wanted=body)


@router.get("/consents/history", response_model=s.ConsentHistoryPage)
async def get_consent_history(caller: CallerDep, page: PageDep) -> s.ConsentHistoryPage:
    """Every consent you gave or withdrew, newest first."""
    async with caller.transaction() as (db, actor):
        found = await service.consent_history(db, user_id=actor.user_id, page=page)
    return s.ConsentHistoryPage(items=found.items, next=found.next)


@router.get("/compliance-log", response_model=s.ComplianceLogPage)
async def get_compliance_log(caller: CallerDep, page: PageDep) -> s.ComplianceLogPage:
    """Your compliance log, newest first: consents given and withdrawn, exports and
    deletions asked for and done, breach notifications about you, and any suspension or
    restoration of your account."""
    async with caller.transaction() as (db, actor):
        found = await service.list_logs(db, page=page, user_id=actor.user_id)
    return s.ComplianceLogPage(items=found.items, next=found.next)
