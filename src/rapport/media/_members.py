"""The files that collections hold: the two questions asked of a file given to one (is it
the caller's to act on as owner, sharing or versioning it; may it go where the caller puts
it, an album, a profile photo slot, a comment), and how the files held are shown."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow
from rapport.media import _files
from rapport.media.errors import FileNotFound, FileNotUsable, NotFileOwner
from rapport.media.models import Kind, files
from rapport.media.schemas import FileOut


async def owned_file(db: AsyncConnection, *, actor: Actor, file_id: UUID) -> AnyRow:
    """A live file of the actor's, for what only its owner does.

    Raises:
        FileNotFound: no such file, or one the actor may not read.
        NotFileOwner: the actor may read it (shared with them) but it is someone else's.
    """
    # Row-level security shows the actor only files they may read.
    row = (await db.execute(select(files).where(files.c.id == file_id))).one_or_none()
    if row is None:
        raise FileNotFound
    if row.owner_id != actor.user_id:
        raise NotFileOwner
    if row.deleted_at is not None:
        # Readable only through a conversation that carries it: deleted for its owner.
        raise FileNotFound
    return row


async def usable_file(
    db: AsyncConnection, *, actor: Actor, file_id: UUID, kinds: Collection[Kind] = (), use: str
) -> AnyRow:
    """A file the actor may put somewhere: their own, live, not quarantined, and of one of
    `kinds` when given. `use` names the place, for the message.

    Raises:
        FileNotUsable: anything else, including a file that does not exist or is someone
            else's (the same answer: nobody learns of others' files here).
    """
    row = (
        await db.execute(select(files).where(files.c.id == file_id, files.c.owner_id == actor.user_id))
    ).one_or_none()
    if row is None or row.deleted_at is not None:
        raise FileNotUsable(f"{use} must be one of your own files.")
    if row.status == "quarantined":
        raise FileNotUsable("This file was quarantined by the virus scan.")
    if kinds and row.kind not in kinds:
        raise FileNotUsable(f"{use} must be {' or '.join(kinds)}; this file is {row.kind}.")
    return row


async def file_outs(db: AsyncConnection, *, ids: Sequence[UUID], viewer: UUID | None) -> dict[UUID, FileOut]:
    """The files of these ids that the acting user may read, as `viewer` sees them (three
    statements whatever their number); the others are left out."""
    if not ids:
        return {}
    rows = (await db.execute(_files.file_query().where(files.c.id.in_(ids)))).all()
    return {out.id: out for out in await _files.file_outs(db, rows, viewer)}
