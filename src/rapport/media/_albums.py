"""Albums: a person's own images and videos in an order they choose, seen by them and by
those they share the album with (media.may_read_album decides, in the policies).

Only the owner changes an album or its items. Positions run 1..n without gaps: adding at a
position moves those from there on down one, removing closes the gap, and a reorder names
every item once. Each change locks the album's row first, so two changes of one album
never interleave their positions (the unique (album, position) is checked at commit)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow
from rapport.kernel.ids import uuid7
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.media._members import file_outs, usable_file
from rapport.media.errors import (
    AlbumFull,
    AlbumItemNotFound,
    AlbumNotFound,
    AlreadyInAlbum,
    CoverNotInAlbum,
    NotAlbumOwner,
    OrderMismatch,
    PositionOutOfRange,
)
from rapport.media.models import Kind, album_items, albums, shared_files
from rapport.media.schemas_collections import (
    MAX_ALBUM_ITEMS,
    AlbumCreate,
    AlbumDetail,
    AlbumItemAdd,
    AlbumItemOut,
    AlbumOut,
    AlbumUpdate,
)

ALBUM_KINDS: tuple[Kind, ...] = ("image", "video")

_ITEM_COUNT = (
    select(func.count())
    .select_from(album_items)
    .where(album_items.c.album_id == albums.c.id)
    .scalar_subquery()
    .label("item_count")
)

# A file its owner deletes leaves their albums through media.delete_file, which leaves its
# position empty: a change closes such gaps first, so that the positions it is given are
# the ones the album shows (1..n, as album_items_of numbers them).
_CLOSE_GAPS = text(
    """
    UPDATE media.album_items i SET position = r.position
      FROM (SELECT file_id, row_number() OVER (ORDER BY position) AS position
              FROM media.album_items WHERE album_id = :album_id) r
     WHERE i.album_id = :album_id AND i.file_id = r.file_id AND i.position <> r.position
    """
)

# Every item takes the place its file has in the list given.
_REORDER = text(
    """
    UPDATE media.album_items i SET position = o.position
      FROM unnest(:file_ids) WITH ORDINALITY AS o(file_id, position)
     WHERE i.album_id = :album_id AND i.file_id = o.file_id
    """
).bindparams(bindparam("file_ids", type_=postgresql.ARRAY(postgresql.UUID(as_uuid=True))))


def album_out(row: AnyRow) -> AlbumOut:
    return AlbumOut.model_validate(row._mapping)


async def find_album(db: AsyncConnection, *, album_id: UUID) -> AnyRow | None:
    """The live album if the acting user may see it (row-level security decides), with its item count."""
    row: AnyRow | None = (
        await db.execute(select(albums, _ITEM_COUNT).where(albums.c.id == album_id, albums.c.deleted_at.is_(None)))
    ).one_or_none()
    return row


async def _access_album(db: AsyncConnection, *, album_id: UUID) -> AnyRow:
    row = await find_album(db, album_id=album_id)
    if row is None:
        raise AlbumNotFound
    return row


async def access_own_album(db: AsyncConnection, *, actor: Actor, album_id: UUID, lock: bool = False) -> AnyRow:
    """A live album of the actor's, locked for a change of its items when `lock`.

    Raises:
        AlbumNotFound: no such album, or one the actor may not see.
        NotAlbumOwner: the actor sees it (it is shared with them) but it is someone else's.
    """
    row = await _access_album(db, album_id=album_id)
    if row.owner_id != actor.user_id:
        raise NotAlbumOwner
    if lock:
        await db.execute(select(albums.c.id).where(albums.c.id == album_id).with_for_update())
        await db.execute(_CLOSE_GAPS, {"album_id": album_id})
    return row


async def album_items_of(db: AsyncConnection, *, album_id: UUID, viewer: UUID | None) -> list[AlbumItemOut]:
    """An album's items in order, each with its file as `viewer` sees it."""
    rows = (
        await db.execute(select(album_items).where(album_items.c.album_id == album_id).order_by(album_items.c.position))
    ).all()
    shown = await file_outs(db, ids=[row.file_id for row in rows], viewer=viewer)
    # Numbered in order rather than shown as stored: a deleted file's place may be empty
    # until the album's next change closes it.
    kept = [row for row in rows if row.file_id in shown]
    return [
        AlbumItemOut(
            file_id=row.file_id, position=position, caption=row.caption, added_at=row.added_at, file=shown[row.file_id]
        )
        for position, row in enumerate(kept, start=1)
    ]


async def _detail(db: AsyncConnection, *, row: AnyRow, viewer: UUID | None) -> AlbumDetail:
    items = await album_items_of(db, album_id=row.id, viewer=viewer)
    return AlbumDetail(**album_out(row).model_dump(), items=items)


async def do_create_album(db: AsyncConnection, *, actor: Actor, body: AlbumCreate) -> AlbumDetail:
    """A new, empty album of the actor's."""
    album_id = uuid7()
    await db.execute(
        insert(albums).values(id=album_id, owner_id=actor.user_id, title=body.title, description=body.description)
    )
    return await _detail(db, row=await _access_album(db, album_id=album_id), viewer=actor.user_id)


async def list_albums(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[AlbumOut]:
    """The actor's own live albums, newest first (albums shared with them are in
    shared-with-me)."""
    query = select(albums, _ITEM_COUNT).where(albums.c.owner_id == actor.user_id, albums.c.deleted_at.is_(None))
    rows = (await db.execute(keyset(query, albums.c.id, page))).all()
    return make_page([album_out(row) for row in rows], page)


async def get_album(db: AsyncConnection, *, actor: Actor, album_id: UUID) -> AlbumDetail:
    """An album the actor owns or that is shared with them, with its items in order.

    Raises:
        AlbumNotFound: no such album, or one the actor may not see.
    """
    return await _detail(db, row=await _access_album(db, album_id=album_id), viewer=actor.user_id)


async def do_update_album(db: AsyncConnection, *, actor: Actor, album_id: UUID, changes: AlbumUpdate) -> AlbumDetail:
    """Change the fields sent; the cover is one of the album's files, or null.

    Raises:
        AlbumNotFound, NotAlbumOwner: as access_own_album.
        CoverNotInAlbum: the cover named is not one of its files.
    """
    await access_own_album(db, actor=actor, album_id=album_id, lock=True)
    values: dict[str, Any] = changes.changes()
    cover = values.get("cover_file_id")
    if cover is not None:
        held = await db.execute(
            select(album_items.c.file_id).where(album_items.c.album_id == album_id, album_items.c.file_id == cover)
        )
        if held.one_or_none() is None:
            raise CoverNotInAlbum(f"The file {cover} is not in this album.")
    if values:
        await db.execute(update(albums).where(albums.c.id == album_id).values(**values))
    return await get_album(db, actor=actor, album_id=album_id)


async def do_delete_album(db: AsyncConnection, *, actor: Actor, album_id: UUID) -> None:
    """Delete an album: gone for everyone at once, its shares revoked (its files stay).

    Raises:
        AlbumNotFound, NotAlbumOwner: as access_own_album.
    """
    await access_own_album(db, actor=actor, album_id=album_id, lock=True)
    await db.execute(update(albums).where(albums.c.id == album_id).values(deleted_at=func.now()))
    await db.execute(
        update(shared_files)
        .where(shared_files.c.album_id == album_id, shared_files.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


async def do_add_item(db: AsyncConnection, *, actor: Actor, album_id: UUID, body: AlbumItemAdd) -> AlbumItemOut:
    """Put one of the actor's images or videos in their album, at `position` (those from
    there on move down one) or last.

    Raises:
        AlbumNotFound, NotAlbumOwner: as access_own_album.
        FileNotUsable: not the actor's live image or video, or quarantined.
        AlreadyInAlbum: the file is in the album already.
        AlbumFull: the album holds MAX_ALBUM_ITEMS files.
        PositionOutOfRange: a position past the end plus one.
    """
    album = await access_own_album(db, actor=actor, album_id=album_id, lock=True)
    await usable_file(db, actor=actor, file_id=body.file_id, kinds=ALBUM_KINDS, use="An album's file")
    held = await db.execute(
        select(album_items.c.file_id).where(album_items.c.album_id == album_id, album_items.c.file_id == body.file_id)
    )
    if held.one_or_none() is not None:
        raise AlreadyInAlbum
    count: int = album.item_count
    if count >= MAX_ALBUM_ITEMS:
        raise AlbumFull(f"An album holds at most {MAX_ALBUM_ITEMS} files.")
    position = count + 1 if body.position is None else body.position
    if position > count + 1:
        raise PositionOutOfRange(f"The album holds {count} files: a new one goes at 1 to {count + 1}.")
    # The unique (album, position) is deferred to the commit: the shift may pass over
    # positions still taken.
    await db.execute(
        update(album_items)
        .where(album_items.c.album_id == album_id, album_items.c.position >= position)
        .values(position=album_items.c.position + 1)
    )
    await db.execute(
        insert(album_items).values(album_id=album_id, file_id=body.file_id, position=position, caption=body.caption)
    )
    items = await album_items_of(db, album_id=album_id, viewer=actor.user_id)
    return next(item for item in items if item.file_id == body.file_id)


async def do_remove_item(db: AsyncConnection, *, actor: Actor, album_id: UUID, file_id: UUID) -> None:
    """Take a file out of the album (the file stays); those after it move up one. The
    cover, if it was this file, becomes none.

    Raises:
        AlbumNotFound, NotAlbumOwner: as access_own_album.
        AlbumItemNotFound: the file is not in the album.
    """
    await access_own_album(db, actor=actor, album_id=album_id, lock=True)
    removed = (
        await db.execute(
            album_items.delete()
            .where(album_items.c.album_id == album_id, album_items.c.file_id == file_id)
            .returning(album_items.c.position)
        )
    ).one_or_none()
    if removed is None:
        raise AlbumItemNotFound
    await db.execute(
        update(album_items)
        .where(album_items.c.album_id == album_id, album_items.c.position > removed.position)
        .values(position=album_items.c.position - 1)
    )
    await db.execute(
        update(albums).where(albums.c.id == album_id, albums.c.cover_file_id == file_id).values(cover_file_id=None)
    )


async def do_reorder_items(db: AsyncConnection, *, actor: Actor, album_id: UUID, file_ids: list[UUID]) -> AlbumDetail:
    """Put the album's items in the order given.

    Raises:
        AlbumNotFound, NotAlbumOwner: as access_own_album.
        OrderMismatch: the list does not name every item exactly once, or names another file.
    """
    await access_own_album(db, actor=actor, album_id=album_id, lock=True)
    current = set((await db.execute(select(album_items.c.file_id).where(album_items.c.album_id == album_id))).scalars())
    if len(set(file_ids)) != len(file_ids) or set(file_ids) != current:
        raise OrderMismatch(f"Name each of the album's {len(current)} files once, in the order wanted.")
    await db.execute(_REORDER, {"album_id": album_id, "file_ids": file_ids})
    return await get_album(db, actor=actor, album_id=album_id)
