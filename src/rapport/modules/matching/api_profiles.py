"""Matching routes: profiles. Your dating profile and its photos, what others see of a
profile, the ECR-R attachment assessment, and the people most like you."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, status

from rapport.kernel.db import system_transaction
from rapport.kernel.deps import NO_CONTENT, CallerDep, PageDep
from rapport.kernel.pagination import Page
from rapport.modules.matching import schemas_people as s
from rapport.modules.matching import service

router = APIRouter(prefix="/v1/matching", tags=["matching"])


@router.put("/profile", response_model=s.DatingProfileOut)
async def put_profile(body: s.DatingProfileIn, caller: CallerDep) -> s.DatingProfileOut:
    """Make or replace your dating profile (18 or older). Your birth date and location are
    never shown to anyone: others see your age and how far away you are, in whole km."""
    async with caller.transaction() as (db, actor):
        return await service.do_put_profile(db, actor=actor, profile=body)


@router.get("/profile", response_model=s.DatingProfileOut)
async def get_profile(caller: CallerDep) -> s.DatingProfileOut:
    """Your dating profile, all of it."""
    async with caller.transaction() as (db, actor):
        return await service.get_own_profile(db, actor=actor)


@router.delete("/profile", **NO_CONTENT)
async def delete_profile(caller: CallerDep) -> None:
    """Remove your dating profile and its photos (the files stay in your media)."""
    async with caller.transaction() as (db, actor):
        await service.do_delete_profile(db, actor=actor)


@router.get("/profiles/{user_id}", response_model=s.ProfileCard)
async def get_profile_card(user_id: UUID, caller: CallerDep) -> s.ProfileCard:
    """Someone's profile as you may see it: age, gender, bio, interests, photos and the
    distance between you. Needs a profile of your own; an inactive profile, or one across
    a block, is not found."""
    async with caller.transaction() as (db, actor):
        return await service.get_profile_card(db, actor=actor, user_id=user_id)


@router.post("/assessments", status_code=status.HTTP_201_CREATED, response_model=s.AssessmentOut)
async def take_assessment(body: s.AssessmentIn, caller: CallerDep) -> s.AssessmentOut:
    """Take the ECR-R attachment assessment: 36 answers, 1-7, in the instrument's order.
    Answers come back scored (anxiety, avoidance, style); the newest is your current one,
    the earlier ones stay in your history. Only you see them."""
    async with caller.transaction() as (db, actor):
        return await service.do_take_assessment(db, actor=actor, responses=body.responses)


@router.get("/assessments", response_model=Page[s.AssessmentOut])
async def list_assessments(caller: CallerDep, page: PageDep) -> Page[s.AssessmentOut]:
    """Your assessments, newest (current) first."""
    async with caller.transaction() as (db, actor):
        return await service.list_assessments(db, actor=actor, page=page)


@router.get("/similar", response_model=list[s.SimilarOut])
async def list_similar(caller: CallerDep) -> list[s.SimilarOut]:
    """The people most like you (interests and attachment) as last computed, best first."""
    async with caller.transaction() as (db, actor):
        return await service.list_similar(db, actor=actor)


@router.post("/similar/refresh", response_model=list[s.SimilarOut])
async def refresh_similar(
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=service.MAX_TOP_N, description="How many people.")] = service.DEFAULT_TOP_N,
) -> list[s.SimilarOut]:
    """Compute the people most like you now (you need a profile), then answer as
    `GET /v1/matching/similar`."""
    async with caller.transaction() as (db, actor):
        # Checks the session is live and the caller has a profile before any system work.
        await service.get_own_profile(db, actor=actor)
    # Comparing with everyone's vectors is system work, done for the caller alone.
    async with system_transaction(caller.runtime.system_engine) as db:
        await service.do_refresh_match_results(db, user_id=actor.user_id, limit=limit)
    async with caller.transaction() as (db, actor):
        return await service.list_similar(db, actor=actor)
