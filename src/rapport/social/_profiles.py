"""Profiles: one per account, made with it (by trigger), seen by the visibility rules
that row-level security enforces (`social.can_see_profile`)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity import service as identity_service
from rapport.kernel.actor import Actor
from rapport.kernel.db import elevate_to_system
from rapport.social.errors import AdminRequired, ProfileNotFound, UsernameTaken
from rapport.social.models import activity_log, profiles
from rapport.social.schemas import ActivityOut, ProfileOut, ProfileUpdate


def _out(row) -> ProfileOut:
    return ProfileOut.model_validate(row._mapping)


async def get_own_profile(db: AsyncConnection, *, actor: Actor) -> ProfileOut:
    return _out((await db.execute(select(profiles).where(profiles.c.user_id == actor.user_id))).one())


async def access_profile(
    db: AsyncConnection, *, user_id: UUID | None = None, username: str | None = None
) -> ProfileOut:
    """A profile the actor may see, by id or username.

    Raises:
        ProfileNotFound: missing, or not visible to the actor (never told apart).
    """
    if user_id is None:
        # Resolved through the unique index by a definer function; the read below by id
        # is still checked by row-level security.
        user_id = (
            await db.execute(text("SELECT social.user_id_for_username(:name)"), {"name": username or ""})
        ).scalar_one()
        if user_id is None:
            raise ProfileNotFound()
    row = (await db.execute(select(profiles).where(profiles.c.user_id == user_id))).one_or_none()
    if row is None:
        raise ProfileNotFound()
    return _out(row)


async def do_update_profile(db: AsyncConnection, *, actor: Actor, changes: ProfileUpdate) -> ProfileOut:
    """Change the fields sent; the activity log records each change (by trigger).

    Raises:
        UsernameTaken: another profile has that username, in any case.
    """
    values: dict[str, Any] = changes.model_dump(exclude_unset=True, mode="json")
    if "birth_date" in values:
        # JSON mode turns URLs and links into plain values but the date into a string,
        # which the driver refuses for a date column.
        values["birth_date"] = changes.birth_date
    # Required columns cannot be cleared: null for them means "leave as is".
    for required in ("username", "display_name", "bio", "profile_visibility", "links", "interests"):
        if values.get(required, ...) is None:
            values.pop(required)
    if not values:
        return await get_own_profile(db, actor=actor)
    try:
        async with db.begin_nested():
            row = (
                await db.execute(
                    update(profiles).where(profiles.c.user_id == actor.user_id).values(**values).returning(profiles)
                )
            ).one()
    except IntegrityError as exc:
        if "ux_profiles_username_lower" in str(exc.orig):
            raise UsernameTaken(f"The username {values.get('username')!r} is taken.") from exc
        raise
    return _out(row)


async def do_set_verified_badge(db: AsyncConnection, *, actor: Actor, user_id: UUID, is_verified: bool) -> ProfileOut:
    """Grant or withdraw the verified badge (administrators only).

    Raises:
        AdminRequired: the actor is not an administrator.
        ProfileNotFound: no such profile.
    """
    me = await identity_service.get_user(db, actor=actor)
    if not me.is_admin:
        raise AdminRequired()
    await elevate_to_system(db)
    row = (
        await db.execute(
            update(profiles).where(profiles.c.user_id == user_id).values(is_verified=is_verified).returning(profiles)
        )
    ).one_or_none()
    if row is None:
        raise ProfileNotFound()
    return _out(row)


async def list_activity(db: AsyncConnection, *, actor: Actor, limit: int) -> list[ActivityOut]:
    rows = (
        await db.execute(
            select(activity_log)
            .where(activity_log.c.user_id == actor.user_id)
            .order_by(activity_log.c.id.desc())
            .limit(limit)
        )
    ).all()
    return [ActivityOut.model_validate(row._mapping) for row in rows]
