"""Community routes: habits and their check-ins, the garden, and how often you journal."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from rapport.kernel.deps import NO_CONTENT, CallerDep, PageDep
from rapport.kernel.pagination import Page
from rapport.modules.community import schemas_habits as s
from rapport.modules.community import service

router = APIRouter(prefix="/v1", tags=["community"])


@router.post("/habits", status_code=status.HTTP_201_CREATED, response_model=s.HabitOut)
async def create_habit(body: s.HabitCreate, caller: CallerDep) -> s.HabitOut:
    """Start a habit: daily, weekly, monthly, or custom (at most `custom_days` between two check-ins)."""
    async with caller.transaction() as (db, actor):
        return await service.do_create_habit(db, actor=actor, habit=body)


@router.get("/habits", response_model=Page[s.HabitOut])
async def list_habits(caller: CallerDep, page: PageDep) -> Page[s.HabitOut]:
    """Your habits with their streaks, newest first."""
    async with caller.transaction() as (db, actor):
        return await service.list_habits(db, actor=actor, page=page)


@router.get("/habits/{habit_id}", response_model=s.HabitOut)
async def get_habit(habit_id: UUID, caller: CallerDep) -> s.HabitOut:
    """One of your habits with its streaks (in UTC days)."""
    async with caller.transaction() as (db, actor):
        return await service.access_habit(db, actor=actor, habit_id=habit_id)


@router.patch("/habits/{habit_id}", response_model=s.HabitOut)
async def update_habit(habit_id: UUID, body: s.HabitUpdate, caller: CallerDep) -> s.HabitOut:
    """Change a habit; its check-ins stay, and its streaks are counted by its new frequency."""
    async with caller.transaction() as (db, actor):
        return await service.do_update_habit(db, actor=actor, habit_id=habit_id, changes=body)


@router.delete("/habits/{habit_id}", **NO_CONTENT)
async def delete_habit(habit_id: UUID, caller: CallerDep) -> None:
    """Stop a habit: it goes with its check-ins."""
    async with caller.transaction() as (db, actor):
        await service.do_delete_habit(db, actor=actor, habit_id=habit_id)


@router.post("/habits/{habit_id}/checkins", status_code=status.HTTP_201_CREATED, response_model=s.CheckinOut)
async def check_in(habit_id: UUID, caller: CallerDep, body: s.CheckinIn | None = None) -> s.CheckinOut:
    """Record that you did the habit on a day (today, UTC, when none is given): once a day."""
    async with caller.transaction() as (db, actor):
        return await service.do_check_in(db, actor=actor, habit_id=habit_id, checkin=body or s.CheckinIn())


@router.get("/habits/{habit_id}/checkins", response_model=s.CheckinPage)
async def list_checkins(
    habit_id: UUID,
    caller: CallerDep,
    before: Annotated[date | None, Query(description="The `next` of the page before.")] = None,
) -> s.CheckinPage:
    """A habit's check-ins, latest day first, 100 a page."""
    async with caller.transaction() as (db, actor):
        return await service.list_checkins(db, actor=actor, habit_id=habit_id, before=before)


@router.delete("/habits/{habit_id}/checkins/{day}", **NO_CONTENT)
async def delete_checkin(habit_id: UUID, day: date, caller: CallerDep) -> None:
    """Take back a check-in."""
    async with caller.transaction() as (db, actor):
        await service.do_delete_checkin(db, actor=actor, habit_id=habit_id, day=day)


@router.get("/garden", response_model=s.GardenOut)
async def get_garden(caller: CallerDep) -> s.GardenOut:
    """Your garden and how it has grown: a plant for each habit, growing with its check-ins
    and thriving while its streak runs, a flower for each story, a level from both."""
    async with caller.transaction() as (db, actor):
        return await service.get_garden(db, actor=actor)


@router.put(
    "/garden",
    status_code=status.HTTP_201_CREATED,
    response_model=s.GardenOut,
    responses={200: {"model": s.GardenOut, "description": "Your garden was there: renamed, or its theme changed."}},
)
async def put_garden(body: s.GardenIn, caller: CallerDep, response: Response) -> s.GardenOut:
    """Plant your garden (201), or change its name and theme (200): one per person."""
    async with caller.transaction() as (db, actor):
        planted, garden = await service.do_put_garden(db, actor=actor, garden=body)
    if not planted:
        response.status_code = status.HTTP_200_OK
    return garden


@router.delete("/garden", **NO_CONTENT)
async def delete_garden(caller: CallerDep) -> None:
    """Remove your garden; your habits and stories stay."""
    async with caller.transaction() as (db, actor):
        await service.do_delete_garden(db, actor=actor)


@router.get("/me/profile-extras", response_model=s.ProfileExtrasOut)
async def get_profile_extras(caller: CallerDep) -> s.ProfileExtrasOut:
    """How many days a week you journal."""
    async with caller.transaction() as (db, actor):
        return await service.get_profile_extras(db, actor=actor)


@router.put("/me/profile-extras", response_model=s.ProfileExtrasOut)
async def put_profile_extras(body: s.ProfileExtrasIn, caller: CallerDep) -> s.ProfileExtrasOut:
    """Say how many days a week you journal (0 to 7)."""
    async with caller.transaction() as (db, actor):
        return await service.do_put_profile_extras(db, actor=actor, extras=body)
