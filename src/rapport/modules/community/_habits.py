"""Habits (seed 001) with their check-ins and streaks.

A habit is its owner's alone (row-level security, migration 2026_11_30_0030). Its
streaks are counted when read, by the SQL function community.habit_streaks, from the
check-ins: nothing about them is stored. "Today" is the UTC date unless a caller says
otherwise (tests, and apps that know the person's time zone)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Date, bindparam, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.errors import ValidationFailed, constraint_of
from rapport.kernel.ids import uuid7
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.modules.community import models as m
from rapport.modules.community import schemas_habits as s
from rapport.modules.community.errors import (
    CheckinDayOutOfRange,
    CheckinExists,
    CheckinNotFound,
    HabitExists,
    HabitNotFound,
)

h = m.habits
c = m.habit_checkins

FIRST_DAY = date(2000, 1, 1)
CHECKINS_PAGE = 100

_STREAKS = (
    text("SELECT habit_id, checkins, last_day, current_streak, longest_streak FROM community.habit_streaks(:today)")
    .bindparams(bindparam("today", type_=Date))
    .columns()
)


def utc_today() -> date:
    return datetime.now(UTC).date()


async def _streaks(db: AsyncConnection, today: date) -> dict[UUID, Any]:
    return {row.habit_id: row for row in await db.execute(_STREAKS, {"today": today})}


def _out(row: Any, streak: Any) -> s.HabitOut:
    return s.HabitOut.model_validate(
        {
            **row._mapping,
            "checkins": streak.checkins if streak is not None else 0,
            "last_day": streak.last_day if streak is not None else None,
            "current_streak": streak.current_streak if streak is not None else 0,
            "longest_streak": streak.longest_streak if streak is not None else 0,
        }
    )


async def _write(db: AsyncConnection, statement: Any) -> Any:
    try:
        async with db.begin_nested():
            return (await db.execute(statement)).one_or_none()
    except IntegrityError as error:
        if constraint_of(error) == "ux_habits_name":
            raise HabitExists() from None
        raise


async def list_habit_rows(db: AsyncConnection, *, actor: Actor, today: date) -> list[s.HabitOut]:
    """All the actor's habits with their streaks, oldest first (the garden's plants)."""
    streaks = await _streaks(db, today)
    rows = await db.execute(select(h).where(h.c.user_id == actor.user_id).order_by(h.c.id))
    return [_out(row, streaks.get(row.id)) for row in rows]


async def list_habits(
    db: AsyncConnection, *, actor: Actor, page: PageRequest, today: date | None = None
) -> Page[s.HabitOut]:
    """The actor's habits with their streaks, newest first."""
    rows = (await db.execute(keyset(select(h).where(h.c.user_id == actor.user_id), h.c.id, page))).all()
    streaks = await _streaks(db, today or utc_today())
    return make_page([_out(row, streaks.get(row.id)) for row in rows], page)


async def access_habit(db: AsyncConnection, *, actor: Actor, habit_id: UUID, today: date | None = None) -> s.HabitOut:
    """One of the actor's habits with its streaks.

    Raises:
        HabitNotFound: missing, or someone else's.
    """
    row = (await db.execute(select(h).where(h.c.id == habit_id))).one_or_none()
    if row is None:
        raise HabitNotFound()
    streaks = await _streaks(db, today or utc_today())
    return _out(row, streaks.get(habit_id))


async def do_create_habit(db: AsyncConnection, *, actor: Actor, habit: s.HabitCreate) -> s.HabitOut:
    """Start a habit.

    Raises:
        HabitExists: the actor has a habit of this name (regardless of case).
    """
    habit_id = uuid7()
    await _write(db, insert(h).values(id=habit_id, user_id=actor.user_id, **habit.model_dump()).returning(h.c.id))
    return await access_habit(db, actor=actor, habit_id=habit_id)


async def do_update_habit(db: AsyncConnection, *, actor: Actor, habit_id: UUID, changes: s.HabitUpdate) -> s.HabitOut:
    """Change one of the actor's habits: the fields sent.

    Raises:
        HabitNotFound: missing, or someone else's.
        HabitExists: another of the actor's habits has the new name.
        ValidationFailed: `custom_days` is missing for a custom habit, or given for another.
    """
    current = (await db.execute(select(h).where(h.c.id == habit_id).with_for_update())).one_or_none()
    if current is None:
        raise HabitNotFound()
    values = changes.changes()
    frequency = values.get("frequency", current.frequency)
    if frequency != "custom":
        if values.get("custom_days") is not None:
            raise ValidationFailed("custom_days is given only for a custom habit")
        values["custom_days"] = None
    elif values.get("custom_days", current.custom_days) is None:
        raise ValidationFailed("a custom habit needs custom_days")
    if values:  # nothing sent for a custom habit changes nothing
        await _write(db, update(h).where(h.c.id == habit_id).values(**values).returning(h.c.id))
    return await access_habit(db, actor=actor, habit_id=habit_id)


async def do_delete_habit(db: AsyncConnection, *, actor: Actor, habit_id: UUID) -> None:
    """Stop a habit: it goes with its check-ins.

    Raises:
        HabitNotFound: missing, or someone else's.
    """
    if (await db.execute(delete(h).where(h.c.id == habit_id).returning(h.c.id))).one_or_none() is None:
        raise HabitNotFound()


async def do_check_in(
    db: AsyncConnection,
    *,
    actor: Actor,
    habit_id: UUID,
    checkin: s.CheckinIn,
    today: date | None = None,
) -> s.CheckinOut:
    """Record that the habit was done on a day (today when none is given): once a day.

    Raises:
        HabitNotFound: missing, or someone else's.
        CheckinDayOutOfRange: before 2000-01-01, or after tomorrow (UTC: tomorrow is
            already today for the people east of it).
        CheckinExists: the habit is already checked in that day.
    """
    today = today or utc_today()
    day = checkin.day or today
    if not FIRST_DAY <= day <= today + timedelta(days=1):
        raise CheckinDayOutOfRange()
    if (await db.execute(select(h.c.id).where(h.c.id == habit_id))).one_or_none() is None:
        raise HabitNotFound()
    statement = (
        insert(c)
        .values(habit_id=habit_id, day=day, user_id=actor.user_id, note=checkin.note)
        .returning(c.c.habit_id, c.c.day, c.c.note, c.c.created_at)
    )
    try:
        async with db.begin_nested():
            row = (await db.execute(statement)).one()
    except IntegrityError as error:
        if constraint_of(error) == "pk_habit_checkins":
            raise CheckinExists() from None
        raise
    return s.CheckinOut.model_validate(row._mapping)


async def list_checkins(
    db: AsyncConnection, *, actor: Actor, habit_id: UUID, before: date | None = None
) -> s.CheckinPage:
    """A habit's check-ins, latest day first, a page at a time (before the day `before`).

    Raises:
        HabitNotFound: missing, or someone else's.
    """
    if (await db.execute(select(h.c.id).where(h.c.id == habit_id))).one_or_none() is None:
        raise HabitNotFound()
    query = (
        select(c.c.habit_id, c.c.day, c.c.note, c.c.created_at)
        .where(c.c.habit_id == habit_id)
        .order_by(c.c.day.desc())
        .limit(CHECKINS_PAGE + 1)
    )
    if before is not None:
        query = query.where(c.c.day < before)
    rows = (await db.execute(query)).all()
    items = [s.CheckinOut.model_validate(row._mapping) for row in rows[:CHECKINS_PAGE]]
    return s.CheckinPage(items=items, next=items[-1].day if len(rows) > CHECKINS_PAGE else None)


async def do_delete_checkin(db: AsyncConnection, *, actor: Actor, habit_id: UUID, day: date) -> None:
    """Take back a check-in.

    Raises:
        HabitNotFound: missing, or someone else's.
        CheckinNotFound: the habit has no check-in that day.
    """
    if (await db.execute(select(h.c.id).where(h.c.id == habit_id))).one_or_none() is None:
        raise HabitNotFound()
    removed = await db.execute(delete(c).where(c.c.habit_id == habit_id, c.c.day == day).returning(c.c.day))
    if removed.one_or_none() is None:
        raise CheckinNotFound()
