"""Profile photos: up to six of a person's own images, in order, seen by whoever may see
their profile (social.profile_visible, and neither blocks the other: the policy says so).

Positions run 1..n without gaps. Both keys of the table, (person, position) and (person,
file), are checked row by row, not at commit: removing one moves those after it up one at
a time, first to last, and a reorder rewrites the person's slots whole. Every change first
takes a lock of the person's own, so that two changes of their photos never interleave."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow
from rapport.kernel.errors import NotFound
from rapport.media._members import file_outs, usable_file
from rapport.media.errors import (
    AlreadyAProfilePhoto,
    OrderMismatch,
    PositionOutOfRange,
    ProfilePhotoNotFound,
    ProfilePhotosFull,
)
from rapport.media.models import Kind, profile_photos
from rapport.media.schemas_collections import MAX_PROFILE_PHOTOS, ProfilePhotoOut, ProfilePhotos
from rapport.social import service as social_service

PHOTO_KINDS: tuple[Kind, ...] = ("image",)

# One person's photos change one change at a time (there is no row of theirs in media to lock).
_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended('media.profile_photos:' || :user_id, 0))")


async def _slots(db: AsyncConnection, *, user_id: UUID) -> list[AnyRow]:
    return list(
        (
            await db.execute(
                select(profile_photos).where(profile_photos.c.user_id == user_id).order_by(profile_photos.c.position)
            )
        ).all()
    )


async def _shown(db: AsyncConnection, *, user_id: UUID, viewer: UUID) -> ProfilePhotos:
    slots = await _slots(db, user_id=user_id)
    files = await file_outs(db, ids=[slot.file_id for slot in slots], viewer=viewer)
    # Numbered in order rather than shown as stored: a deleted file's slot may be empty
    # until the person's next change closes it.
    kept = [slot for slot in slots if slot.file_id in files]
    return ProfilePhotos(
        user_id=user_id,
        items=[
            ProfilePhotoOut(
                position=position, file_id=slot.file_id, created_at=slot.created_at, file=files[slot.file_id]
            )
            for position, slot in enumerate(kept, start=1)
        ],
    )


async def list_profile_photos(db: AsyncConnection, *, actor: Actor, user_id: UUID) -> ProfilePhotos:
    """A person's profile photos in order: one's own, or those of a profile the actor may see.

    Raises:
        UserNotFound: no such person, a profile the actor may not see, or either blocks the other.
    """
    if user_id != actor.user_id:
        try:
            await social_service.access_profile(db, user_id=user_id)
        except NotFound:
            raise social_service.UserNotFound() from None
        if await social_service.is_blocked(db, a=actor.user_id, b=user_id):
            raise social_service.UserNotFound()
    return await _shown(db, user_id=user_id, viewer=actor.user_id)


async def _lock(db: AsyncConnection, *, actor: Actor) -> list[AnyRow]:
    """The actor's slots, locked for a change, without gaps: a file its owner deletes leaves
    their slots through media.delete_file, which leaves its position empty."""
    await db.execute(_LOCK, {"user_id": str(actor.user_id)})
    slots = await _slots(db, user_id=actor.user_id)
    if [slot.position for slot in slots] == list(range(1, len(slots) + 1)):
        return slots
    # First to last, each into the lowest free slot: never onto one still taken.
    for position, slot in enumerate(slots, start=1):
        if slot.position != position:
            await db.execute(
                update(profile_photos)
                .where(profile_photos.c.user_id == actor.user_id, profile_photos.c.position == slot.position)
                .values(position=position)
            )
    return await _slots(db, user_id=actor.user_id)


async def _rewrite(db: AsyncConnection, *, actor: Actor, file_ids: list[UUID]) -> None:
    """Make the actor's photos exactly these files, in this order."""
    await db.execute(delete(profile_photos).where(profile_photos.c.user_id == actor.user_id))
    if file_ids:
        await db.execute(
            insert(profile_photos),
            [
                {"user_id": actor.user_id, "position": position, "file_id": file_id}
                for position, file_id in enumerate(file_ids, start=1)
            ],
        )


async def do_set_profile_photo(db: AsyncConnection, *, actor: Actor, position: int, file_id: UUID) -> ProfilePhotos:
    """Put one of the actor's images in a slot: replacing the photo there, or the next free
    one (n + 1). Setting the same photo in the same slot again changes nothing.

    Raises:
        FileNotUsable: not the actor's live image, or quarantined.
        AlreadyAProfilePhoto: it is in another slot (reorder instead).
        ProfilePhotosFull: six already, and the position is past them.
        PositionOutOfRange: below 1, or past the next free slot.
    """
    slots = await _lock(db, actor=actor)
    await usable_file(db, actor=actor, file_id=file_id, kinds=PHOTO_KINDS, use="A profile photo")
    count = len(slots)
    where = {slot.file_id: slot.position for slot in slots}
    if where.get(file_id) == position:
        return await _shown(db, user_id=actor.user_id, viewer=actor.user_id)
    if file_id in where:
        raise AlreadyAProfilePhoto(f"It is your profile photo {where[file_id]}.")
    if position > count and count >= MAX_PROFILE_PHOTOS:
        raise ProfilePhotosFull(f"A profile holds at most {MAX_PROFILE_PHOTOS} photos.")
    if not 1 <= position <= count + 1:
        raise PositionOutOfRange(f"You have {count} profile photos: set one at 1 to {count + 1}.")
    if position <= count:
        await db.execute(
            update(profile_photos)
            .where(profile_photos.c.user_id == actor.user_id, profile_photos.c.position == position)
            .values(file_id=file_id)
        )
    else:
        await db.execute(insert(profile_photos).values(user_id=actor.user_id, position=position, file_id=file_id))
    return await _shown(db, user_id=actor.user_id, viewer=actor.user_id)


async def do_remove_profile_photo(db: AsyncConnection, *, actor: Actor, position: int) -> None:
    """Take the photo out of a slot (the file stays); those after it move up one.

    Raises:
        ProfilePhotoNotFound: no photo in that slot.
    """
    slots = await _lock(db, actor=actor)
    if not any(slot.position == position for slot in slots):
        raise ProfilePhotoNotFound
    mine = profile_photos.c.user_id == actor.user_id
    await db.execute(delete(profile_photos).where(mine, profile_photos.c.position == position))
    # One at a time, first to last: each moves into the slot just freed.
    for slot in slots:
        if slot.position > position:
            await db.execute(
                update(profile_photos)
                .where(mine, profile_photos.c.position == slot.position)
                .values(position=slot.position - 1)
            )


async def do_reorder_profile_photos(db: AsyncConnection, *, actor: Actor, file_ids: list[UUID]) -> ProfilePhotos:
    """Put the actor's photos in the order given.

    Raises:
        OrderMismatch: the list does not name every photo exactly once, or names another file.
    """
    slots = await _lock(db, actor=actor)
    current = {slot.file_id for slot in slots}
    if len(set(file_ids)) != len(file_ids) or set(file_ids) != current:
        raise OrderMismatch(f"Name each of your {len(current)} profile photos once, in the order wanted.")
    if file_ids != [slot.file_id for slot in slots]:
        await _rewrite(db, actor=actor, file_ids=file_ids)
    return await _shown(db, user_id=actor.user_id, viewer=actor.user_id)
