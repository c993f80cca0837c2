"""Matching routes: the day's matches, and liking or passing on them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from rapport.kernel.deps import CallerDep
from rapport.modules.matching import schemas_matches as s
from rapport.modules.matching import service

router = APIRouter(prefix="/v1/matching", tags=["matching"])


@router.get("/daily", response_model=s.DailyOut)
async def get_daily(
    caller: CallerDep,
    date: Annotated[dt.date | None, Query(description="The day (UTC) whose matches to show; today by default.")] = None,
) -> s.DailyOut:
    """The caller's matches of the day, best first, each with its compatibility score and
    breakdown, its status and the person proposed as they may be seen (an age and a
    distance, never a birth date or a place). A daily job proposes them, honouring both
    people's age, distance and gender preferences and blocks; nobody is proposed twice."""
    async with caller.transaction() as (db, actor):
        return await service.list_daily(db, actor=actor, for_date=date)


@router.get("/matches/{match_id}", response_model=s.MatchOut)
async def get_match(match_id: UUID, caller: CallerDep) -> s.MatchOut:
    """One of the caller's matches. Errors: `match-not-found` (404)."""
    async with caller.transaction() as (db, actor):
        return await service.get_match(db, actor=actor, match_id=match_id)


@router.post("/matches/{match_id}/like", response_model=s.MatchOut)
async def like_match(match_id: UUID, caller: CallerDep) -> s.MatchOut:
    """Like one of the caller's matches. If the other person liked theirs, the match
    becomes `mutual` for both, their direct conversation opens (`conversation_id`) and
    each receives `match.mutual`. Liking again changes nothing.

    Errors: `match-not-found` (404; also with someone either blocks);
    `match-already-decided` (409) after a pass; `daily-likes-spent` (429) past the
    tier's likes of the day.
    """
    async with caller.transaction() as (db, actor):
        return await service.do_like(db, actor=actor, match_id=match_id)


@router.post("/matches/{match_id}/pass", response_model=s.MatchOut)
async def pass_match(match_id: UUID, caller: CallerDep) -> s.MatchOut:
    """Pass on one of the caller's matches: the two are never proposed to each other
    again, and the other person is never told. Passing again changes nothing.

    Errors: `match-not-found` (404); `match-already-decided` (409) after a like.
    """
    async with caller.transaction() as (db, actor):
        return await service.do_pass(db, actor=actor, match_id=match_id)
