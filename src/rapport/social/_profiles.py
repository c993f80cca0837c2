"""Profiles: one per account, made with it (by trigger), seen by the visibility rules
that row-level security enforces (`social.can_see_profile`)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from uuid import UUID

from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity import service as identity_service
from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow
from rapport.kernel.errors import InvalidCursor, constraint_of
from rapport.kernel.pagination import Page, PageRequest, make_page
from rapport.social.errors import AdminRequired, ProfileNotFound, UsernameTaken
from rapport.social.models import activity_log, profiles
from rapport.social.schemas import ActivityOut, ProfileOut, ProfileUpdate

# The largest bigint: a cursor beyond it was not made from a bigint id.
_BIGINT_MAX = 2**63 - 1


def _out(row: AnyRow) -> ProfileOut:
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


async def list_languages(db: AsyncConnection, *, user_ids: Collection[UUID]) -> dict[UUID, str | None]:
    """The language of each of these people whose profile the actor may see (system work
    sees every one), in one statement: for work that speaks to many people at once."""
    if not user_ids:
        return {}
    query = select(profiles.c.user_id, profiles.c.language_code).where(profiles.c.user_id.in_(list(user_ids)))
    return {row.user_id: row.language_code for row in await db.execute(query)}


async def do_update_profile(db: AsyncConnection, *, actor: Actor, changes: ProfileUpdate) -> ProfileOut:
    """Change the fields sent (null clears an optional one; the schema refuses null for
    the others); the activity log records each change (by trigger).

    Raises:
        UsernameTaken: another profile has that username, in any case.
    """
    values: dict[str, Any] = changes.changes(mode="json")
    if "birth_date" in values:
        # JSON mode turns URLs and links into plain values but the date into a string,
        # which the driver refuses for a date column.
        values["birth_date"] = changes.birth_date
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
        if constraint_of(exc) == "ux_profiles_username_lower":
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
    # The definer function checks again that the acting user is an administrator: the
    # database, not this check, is what keeps anyone else from granting the badge.
    row = (
        await db.execute(
            text("SELECT * FROM social.set_verified_badge(:user_id, :is_verified)"),
            {"user_id": user_id, "is_verified": is_verified},
        )
    ).one_or_none()
    if row is None:
        raise ProfileNotFound()
    return _out(row)


def after_bigint(page: PageRequest) -> int | None:
    """The bigint id a page starts after. The kernel's cursors carry a UUID; lists keyed
    by a bigint identity keep the id in one.

    Raises:
        InvalidCursor: the cursor holds no bigint (another list's cursor).
    """
    if page.after_id is None:
        return None
    after = page.after_id.int
    if after > _BIGINT_MAX:
        raise InvalidCursor("The cursor was not issued for this list.")
    return after


def bigint_cursor_id(item_id: int) -> UUID:
    """A bigint id as the UUID a kernel cursor carries (see after_bigint)."""
    return UUID(int=item_id)


async def list_activity(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[ActivityOut]:
    """The actor's profile changes, newest first, a page at a time.

    Raises:
        InvalidCursor: a cursor this list did not issue.
    """
    query = (
        select(activity_log)
        .where(activity_log.c.user_id == actor.user_id)
        .order_by(activity_log.c.id.desc())
        .limit(page.limit + 1)
    )
    after = after_bigint(page)
    if after is not None:
        query = query.where(activity_log.c.id < after)
    items = [ActivityOut.model_validate(row._mapping) for row in (await db.execute(query)).all()]
    return make_page(items, page, id_of=lambda item: bigint_cursor_id(item.id))
