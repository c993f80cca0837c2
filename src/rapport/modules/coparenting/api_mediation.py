"""Co-parenting routes: mediation. A parent's conflict triggers, the analysis of a draft
before it is sent, what they did with a suggested rewrite, their statistics and their
communication profile. All of it is the caller's own: nothing here reaches a conversation
or the other parent."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, status

from rapport.kernel.deps import NO_CONTENT, CallerDep, PageDep
from rapport.modules.coparenting import schemas_mediation as s
from rapport.modules.coparenting import service

router = APIRouter(prefix="/v1/coparenting", tags=["coparenting"])

TriggerId = Annotated[UUID, Path(description="One of your triggers.")]
RewriteId = Annotated[UUID, Path(description="A rewrite suggested to you.")]


@router.post("/analysis", response_model=s.AnalysisOut)
async def post_analysis(body: s.AnalysisIn, caller: CallerDep) -> s.AnalysisOut:
    """Analyse a draft before sending it: which of your triggers it contains, its tone
    (VADER's sentiment and the wording's hostility markers), whether it reads as hostile,
    and, when it does, a calmer rewrite that keeps what you ask and say. The rewrite is
    kept, pending, until you record what you did with it
    (`POST /v1/coparenting/rewrites/{id}/outcome`).

    With a language model configured and your `ai_features` consent given, the draft (and
    only the draft) is also sent to it, and its judgement and rewrite are used; when it
    fails or is slow, the local analysis answers (`engine` says which). Nothing of this is
    shown to the other parent, and nothing is posted in the conversation.

    A draft for an end-to-end encrypted conversation is refused (409
    `analysis-conversation-encrypted`): Rapport never reads, sends to a model or keeps any
    text of such a conversation, so its drafts are analysed on the device."""
    return await service.analyse_draft(caller.runtime, caller.transaction, body=body)


@router.get("/triggers", response_model=s.TriggerPage)
async def get_triggers(caller: CallerDep, page: PageDep) -> s.TriggerPage:
    """Your conflict triggers, newest first, with how often your drafts contained each."""
    async with caller.transaction() as (db, actor):
        found = await service.list_triggers(db, actor=actor, page=page)
    return s.TriggerPage(items=found.items, next=found.next)


@router.post("/triggers", status_code=status.HTTP_201_CREATED, response_model=s.TriggerOut)
async def post_trigger(body: s.TriggerIn, caller: CallerDep) -> s.TriggerOut:
    """Name something that sets you off: a topic (words that must all appear, any ending),
    a phrase (words in this order) or a pattern (words where `*` stands for one to three
    words), with its intensity from 0 to 1. At most 100; one per value and type."""
    async with caller.transaction() as (db, actor):
        return await service.do_create_trigger(db, actor=actor, wanted=body)


@router.patch("/triggers/{trigger_id}", response_model=s.TriggerOut)
async def patch_trigger(trigger_id: TriggerId, body: s.TriggerPatch, caller: CallerDep) -> s.TriggerOut:
    """Change one of your triggers: the fields sent."""
    async with caller.transaction() as (db, actor):
        return await service.do_update_trigger(db, actor=actor, trigger_id=trigger_id, changes=body)


@router.delete("/triggers/{trigger_id}", **NO_CONTENT)
async def delete_trigger(trigger_id: TriggerId, caller: CallerDep) -> None:
    """Remove one of your triggers."""
    async with caller.transaction() as (db, actor):
        await service.do_delete_trigger(db, actor=actor, trigger_id=trigger_id)


@router.get("/rewrites", response_model=s.RewritePage)
async def get_rewrites(caller: CallerDep, page: PageDep) -> s.RewritePage:
    """The rewrites suggested to you, newest first, with what you did with each."""
    async with caller.transaction() as (db, actor):
        found = await service.list_rewrites(db, actor=actor, page=page)
    return s.RewritePage(items=found.items, next=found.next)


@router.post("/rewrites/{rewrite_id}/outcome", response_model=s.RewriteOut)
async def post_outcome(rewrite_id: RewriteId, body: s.OutcomeIn, caller: CallerDep) -> s.RewriteOut:
    """Say what you did with a suggested rewrite: accepted, modified (with the text you
    sent), rejected or ignored. Once only; your statistics count it."""
    async with caller.transaction() as (db, actor):
        return await service.do_record_outcome(db, actor=actor, rewrite_id=rewrite_id, wanted=body)


@router.get("/mediation/statistics", response_model=s.StatisticsOut)
async def get_statistics(caller: CallerDep) -> s.StatisticsOut:
    """Your answered suggestions summed, with the acceptance rate (accepted / answered)."""
    async with caller.transaction() as (db, actor):
        return await service.get_statistics(db, actor=actor)


@router.get("/communication-profile", response_model=s.CommunicationProfileOut)
async def get_communication_profile(caller: CallerDep) -> s.CommunicationProfileOut:
    """How you write, as learned from your own recent messages: tone tendencies, average
    length, vocabulary, emoji use. 404 until first learned. Only a signed-in session may
    read it (not an API key); each read is recorded."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.get_profile(db, actor=actor)


@router.post("/communication-profile/learn", status_code=status.HTTP_202_ACCEPTED, response_model=s.LearningQueued)
async def post_learn_profile(caller: CallerDep) -> s.LearningQueued:
    """Learn your communication profile (again) from your newest messages, in the
    background: read it a moment later."""
    async with caller.transaction() as (db, actor):
        await service.do_request_learning(db, actor=actor)
    return s.LearningQueued()
