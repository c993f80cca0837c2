"""Dating profiles (seed 002 profiles): birth date (adults only), gender, bio, interests,
location and preferences, up to six ordered photos; and the card others see of one.

A profile is its owner's alone. Others see it only through matching.profile_card: an age
for the birth date and a distance in whole kilometres for the location (neither the
coordinates nor the city or country), when they have a profile themselves, the profile
is active and neither blocks the other. Anything else is "no such profile"."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import RowMapping, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert as upsert_into
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.errors import constraint_of
from rapport.media import service as media_service
from rapport.modules.matching import _features
from rapport.modules.matching import models_people as m
from rapport.modules.matching import schemas_people as s
from rapport.modules.matching.errors import ProfileNotFound, TooYoung

ADULT_AGE = 18


def age_on(birth_date: date, day: date) -> int:
    """Whole years from a birth date to a day (as matching.age_on counts them)."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


_FIELDS = tuple(name for name in s.DatingProfileIn.model_fields)


async def _photo_ids(db: AsyncConnection, actor: Actor) -> list[UUID]:
    """The actor's profile photos (media's, `PUT /v1/media/profile-photos/{position}`): a
    dating profile shows the photos of the person's profile, one set for both."""
    photos = await media_service.list_profile_photos(db, actor=actor, user_id=actor.user_id)
    return [photo.file_id for photo in photos.items]


def _profile_out(row: RowMapping, photos: list[UUID]) -> s.DatingProfileOut:
    values: dict[str, Any] = {name: row[name] for name in _FIELDS}
    values["interests"] = list(values["interests"])
    values["pref_genders"] = list(values["pref_genders"])
    return s.DatingProfileOut(
        user_id=row["user_id"],
        age=row["age"],
        photos=photos,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        **values,
    )


def _with_age() -> Any:
    return select(m.profiles, func.matching.age_on(m.profiles.c.birth_date, func.current_date()).label("age"))


async def get_own_profile(db: AsyncConnection, *, actor: Actor) -> s.DatingProfileOut:
    """The actor's own profile, all of it.

    Raises:
        ProfileNotFound: they have none.
    """
    row = (await db.execute(_with_age().where(m.profiles.c.user_id == actor.user_id))).mappings().one_or_none()
    if row is None:
        raise ProfileNotFound("You have no dating profile yet: PUT /v1/matching/profile makes it.")
    return _profile_out(row, await _photo_ids(db, actor))


async def do_put_profile(db: AsyncConnection, *, actor: Actor, profile: s.DatingProfileIn) -> s.DatingProfileOut:
    """Make or replace the actor's profile (fields left out take their defaults); their
    feature vector follows its interests.

    Raises:
        TooYoung: the birth date makes them under 18 today.
    """
    if age_on(profile.birth_date, date.today()) < ADULT_AGE:
        raise TooYoung()
    values = {name: getattr(profile, name) for name in _FIELDS}
    statement = upsert_into(m.profiles).values(user_id=actor.user_id, **values)
    statement = statement.on_conflict_do_update(
        index_elements=[m.profiles.c.user_id], set_={name: statement.excluded[name] for name in _FIELDS}
    )
    try:
        async with db.begin_nested():
            await db.execute(statement)
    except IntegrityError as error:
        # The trigger's own check, should the server's day already be the next one.
        if constraint_of(error) == "ck_profiles_adult":
            raise TooYoung() from None
        raise
    await _features.do_refresh_features(db, user_id=actor.user_id)
    return await get_own_profile(db, actor=actor)


async def do_delete_profile(db: AsyncConnection, *, actor: Actor) -> None:
    """Remove the actor's profile (their profile photos stay theirs, in media); their
    assessments stay theirs, and their vector keeps only what those give.

    Raises:
        ProfileNotFound: they have none.
    """
    gone = (
        await db.execute(
            delete(m.profiles).where(m.profiles.c.user_id == actor.user_id).returning(m.profiles.c.user_id)
        )
    ).one_or_none()
    if gone is None:
        raise ProfileNotFound()
    await _features.do_refresh_features(db, user_id=actor.user_id)


async def _require_profile(db: AsyncConnection, actor: Actor) -> None:
    exists = (await db.execute(select(m.profiles.c.user_id).where(m.profiles.c.user_id == actor.user_id))).one_or_none()
    if exists is None:
        raise ProfileNotFound("You have no dating profile yet: PUT /v1/matching/profile makes it.")


_CARD = text("SELECT user_id, age, gender, bio, interests, distance_km, photos FROM matching.profile_card(:target)")


async def get_profile_card(db: AsyncConnection, *, actor: Actor, user_id: UUID) -> s.ProfileCard:
    """Someone's profile as the actor may see it (their own included).

    Raises:
        ProfileNotFound: no such profile, the actor has none, it is inactive, or a block
            stands either way.
    """
    row = (await db.execute(_CARD, {"target": user_id})).mappings().one_or_none()
    if row is None:
        raise ProfileNotFound()
    return s.ProfileCard(
        user_id=row["user_id"],
        age=row["age"],
        gender=row["gender"],
        bio=row["bio"],
        interests=list(row["interests"]),
        distance_km=row["distance_km"],
        photos=list(row["photos"]),
    )
