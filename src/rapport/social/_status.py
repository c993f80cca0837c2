"""Status updates that expire after 24 hours (seed 004 users.status_history). Others see
a live one when they may see the profile and neither blocks the other; the policy on
social.status_updates decides that, these functions only ask."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow, delete_owned
from rapport.kernel.ids import uuid7
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.social.errors import ProfileNotFound, StatusNotFound
from rapport.social.models_parts import status_updates
from rapport.social.schemas_parts import StatusCreateRequest, StatusOut

_PROFILE_VISIBLE = text("SELECT social.profile_visible(:user_id)")


async def do_post_status(db: AsyncConnection, *, actor: Actor, status: StatusCreateRequest) -> StatusOut:
    """Post a status; it expires 24 hours from now (the column's default)."""
    row = (
        await db.execute(
            insert(status_updates)
            .values(id=uuid7(), user_id=actor.user_id, **status.model_dump())
            .returning(status_updates)
        )
    ).one()
    return _out(row)


async def list_my_statuses(
    db: AsyncConnection, *, actor: Actor, page: PageRequest, include_expired: bool = False
) -> Page[StatusOut]:
    """The actor's statuses, newest first: live ones, or all that are kept."""
    query = select(status_updates).where(status_updates.c.user_id == actor.user_id)
    if not include_expired:
        query = query.where(status_updates.c.expires_at > func.now())
    return make_page([_out(row) for row in (await db.execute(keyset(query, status_updates.c.id, page))).all()], page)


async def list_user_statuses(db: AsyncConnection, *, actor: Actor, user_id: UUID, page: PageRequest) -> Page[StatusOut]:
    """Someone's live statuses that the actor may see, newest first. A block on either
    side leaves the list empty, like having posted nothing.

    Raises:
        ProfileNotFound: no such person, or their profile is not visible to the actor.
    """
    if not (await db.execute(_PROFILE_VISIBLE, {"user_id": user_id})).scalar_one():
        raise ProfileNotFound()
    query = select(status_updates).where(status_updates.c.user_id == user_id, status_updates.c.expires_at > func.now())
    return make_page([_out(row) for row in (await db.execute(keyset(query, status_updates.c.id, page))).all()], page)


async def do_delete_status(db: AsyncConnection, *, actor: Actor, status_id: UUID) -> None:
    """Remove one of the actor's statuses, live or expired.

    Raises:
        StatusNotFound: no status with this id belongs to the actor.
    """
    if not await delete_owned(db, status_updates, row_id=status_id, user_id=actor.user_id):
        raise StatusNotFound


def _out(row: AnyRow) -> StatusOut:
    return StatusOut(
        id=row.id,
        user_id=row.user_id,
        content=row.content,
        media_url=row.media_url,
        background_color=row.background_color,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )
