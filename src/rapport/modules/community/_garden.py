"""The garden (seed 001 gardens): one per person, a name and a theme; how it has grown is
derived, each time it is read, from the person's habits (a plant each, grown by its
check-ins, thriving while its streak runs) and stories (a flower each), never stored.

And the profile extra seed 001 adds to social's profile: how many days a week the person
journals."""

from __future__ import annotations

from datetime import date
from math import isqrt
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.ids import uuid7
from rapport.modules.community import models as m
from rapport.modules.community import schemas_habits as s
from rapport.modules.community._habits import list_habit_rows, utc_today
from rapport.modules.community._stories import count_stories
from rapport.modules.community.errors import GardenNotFound

g = m.gardens
x = m.profile_extras

STORY_POINTS = 3
POINTS_PER_LEVEL_STEP = 5
# The fewest check-ins of each stage of a plant, largest first.
STAGES: tuple[tuple[int, s.PlantStage], ...] = ((30, "bloom"), (7, "bud"), (1, "sprout"), (0, "seed"))


def stage_of(checkins: int) -> s.PlantStage:
    return next(stage for least, stage in STAGES if checkins >= least)


def level_of(points: int) -> int:
    """1 at the start, 2 from 5 points, 3 from 20, 4 from 45: each level asks for more."""
    return 1 + isqrt(points // POINTS_PER_LEVEL_STEP)


async def garden_state(db: AsyncConnection, *, actor: Actor, today: date) -> s.GardenState:
    """How the actor's garden has grown by `today`."""
    habits = await list_habit_rows(db, actor=actor, today=today)
    stories = await count_stories(db, actor=actor)
    points = sum(habit.checkins for habit in habits) + STORY_POINTS * stories
    plants = [
        s.Plant(habit_id=habit.id, name=habit.name, stage=stage_of(habit.checkins), thriving=habit.current_streak > 0)
        for habit in habits
    ]
    return s.GardenState(level=level_of(points), points=points, plants=plants, flowers=stories)


async def _out(db: AsyncConnection, actor: Actor, row: Any, today: date | None) -> s.GardenOut:
    state = await garden_state(db, actor=actor, today=today or utc_today())
    return s.GardenOut.model_validate({**row._mapping, "state": state})


async def get_garden(db: AsyncConnection, *, actor: Actor, today: date | None = None) -> s.GardenOut:
    """The actor's garden with how it has grown.

    Raises:
        GardenNotFound: the actor has not planted one.
    """
    row = (await db.execute(select(g).where(g.c.user_id == actor.user_id))).one_or_none()
    if row is None:
        raise GardenNotFound()
    return await _out(db, actor, row, today)


async def do_put_garden(db: AsyncConnection, *, actor: Actor, garden: s.GardenIn) -> tuple[bool, s.GardenOut]:
    """Plant the actor's garden, or rename it and change its theme: (whether it was planted now, the garden)."""
    upsert = insert(g).values(id=uuid7(), user_id=actor.user_id, name=garden.name, theme=garden.theme)
    row = (
        await db.execute(
            upsert.on_conflict_do_update(
                index_elements=[g.c.user_id], set_={"name": upsert.excluded.name, "theme": upsert.excluded.theme}
            ).returning(g, (g.c.created_at == g.c.updated_at).label("planted"))
        )
    ).one()
    return bool(row.planted), await _out(db, actor, row, None)


async def do_delete_garden(db: AsyncConnection, *, actor: Actor) -> None:
    """Remove the actor's garden (their habits and stories stay).

    Raises:
        GardenNotFound: the actor has not planted one.
    """
    if (await db.execute(delete(g).where(g.c.user_id == actor.user_id).returning(g.c.id))).one_or_none() is None:
        raise GardenNotFound()


async def get_profile_extras(db: AsyncConnection, *, actor: Actor) -> s.ProfileExtrasOut:
    """How often the actor journals (null until they say)."""
    row = (await db.execute(select(x).where(x.c.user_id == actor.user_id))).one_or_none()
    if row is None:
        return s.ProfileExtrasOut(journaling_frequency=None, updated_at=None)
    return s.ProfileExtrasOut(journaling_frequency=row.journaling_frequency, updated_at=row.updated_at)


async def do_put_profile_extras(db: AsyncConnection, *, actor: Actor, extras: s.ProfileExtrasIn) -> s.ProfileExtrasOut:
    """Say how many days a week the actor journals (0 to 7)."""
    upsert = insert(x).values(user_id=actor.user_id, journaling_frequency=extras.journaling_frequency)
    await db.execute(
        upsert.on_conflict_do_update(
            index_elements=[x.c.user_id], set_={"journaling_frequency": upsert.excluded.journaling_frequency}
        )
    )
    return await get_profile_extras(db, actor=actor)
