"""Comments on a file: read by whoever may read the file (media.may_read_file, in the
policy), written by its owner and by those it is shared with for comment
(media.may_comment_file). An author edits and deletes their own comments; the file's owner
deletes any on their file. A comment may carry one of its author's own files.

A new comment is told (`media.comment_added`) to the file's owner and to those who
commented before, but never to its author, nor to anyone either side blocks."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.pagination import Page, PageRequest, make_page
from rapport.media._members import usable_file
from rapport.media.errors import (
    CannotComment,
    CommentNotFound,
    FileNotFound,
    NotCommentAuthor,
    ParentCommentNotFound,
)
from rapport.media.models import file_comments, files
from rapport.media.schemas_collections import CommentCreate, CommentOut, CommentUpdate
from rapport.social import service as social_service

_MAY_COMMENT = text("SELECT media.may_comment_file(:file_id)")


def _out(row: AnyRow) -> CommentOut:
    return CommentOut.model_validate(row._mapping)


async def _readable_file(db: AsyncConnection, *, file_id: UUID) -> AnyRow:
    # Row-level security shows the actor only files they may read.
    row = (await db.execute(select(files.c.id, files.c.owner_id).where(files.c.id == file_id))).one_or_none()
    if row is None:
        raise FileNotFound
    return row


async def _live_comment(db: AsyncConnection, *, comment_id: UUID) -> AnyRow:
    """A live comment on a file the actor may read, with the file's owner.

    Raises:
        CommentNotFound: no such comment, deleted, or on a file the actor may not read.
    """
    row = (
        await db.execute(
            select(file_comments, files.c.owner_id.label("file_owner_id"))
            .join(files, files.c.id == file_comments.c.file_id)
            .where(file_comments.c.id == comment_id, file_comments.c.deleted_at.is_(None))
        )
    ).one_or_none()
    if row is None:
        raise CommentNotFound
    return row


async def list_comments(db: AsyncConnection, *, file_id: UUID, page: PageRequest) -> Page[CommentOut]:
    """A file's live comments, oldest first.

    Raises:
        FileNotFound: no such file, or one the actor may not read.
    """
    await _readable_file(db, file_id=file_id)
    query = select(file_comments).where(file_comments.c.file_id == file_id, file_comments.c.deleted_at.is_(None))
    if page.after_id is not None:
        query = query.where(file_comments.c.id > page.after_id)
    rows = (await db.execute(query.order_by(file_comments.c.id).limit(page.limit + 1))).all()
    return make_page([_out(row) for row in rows], page)


async def do_add_comment(db: AsyncConnection, *, actor: Actor, file_id: UUID, body: CommentCreate) -> CommentOut:
    """Comment on a file; the file's owner and earlier commenters are told.

    Raises:
        FileNotFound: no such file, or one the actor may not read.
        CannotComment: the actor reads it through a share that is not for comment.
        FileNotUsable: the attachment is not one of the actor's live files, or is quarantined.
        ParentCommentNotFound: the comment answered is not a live one on this file.
    """
    file = await _readable_file(db, file_id=file_id)
    if not (await db.execute(_MAY_COMMENT, {"file_id": file_id})).scalar_one():
        raise CannotComment
    if body.attachment_file_id is not None:
        await usable_file(db, actor=actor, file_id=body.attachment_file_id, use="A comment's attachment")
    if body.parent_id is not None:
        parent = await db.execute(
            select(file_comments.c.id).where(
                file_comments.c.id == body.parent_id,
                file_comments.c.file_id == file_id,
                file_comments.c.deleted_at.is_(None),
            )
        )
        if parent.one_or_none() is None:
            raise ParentCommentNotFound
    # Those told: the owner and the earlier commenters, read before this comment is in.
    earlier = set(
        (
            await db.execute(
                select(file_comments.c.author_id)
                .where(file_comments.c.file_id == file_id, file_comments.c.deleted_at.is_(None))
                .distinct()
            )
        ).scalars()
    )
    comment_id = uuid7()
    await db.execute(
        insert(file_comments).values(
            id=comment_id,
            file_id=file_id,
            author_id=actor.user_id,
            body=body.body,
            attachment_file_id=body.attachment_file_id,
            parent_id=body.parent_id,
        )
    )
    for user_id in sorted({file.owner_id, *earlier} - {actor.user_id}):
        if await social_service.is_blocked(db, a=actor.user_id, b=user_id):
            continue
        await publish(
            db,
            scope=Scope.user(user_id),
            type="media.comment_added",
            payload={"file_id": str(file_id), "comment_id": str(comment_id), "author_id": str(actor.user_id)},
            actor_id=actor.user_id,
        )
    row = (await db.execute(select(file_comments).where(file_comments.c.id == comment_id))).one()
    return _out(row)


async def do_edit_comment(db: AsyncConnection, *, actor: Actor, comment_id: UUID, changes: CommentUpdate) -> CommentOut:
    """Change one's own comment's text (it shows when it was edited).

    Raises:
        CommentNotFound: as _live_comment.
        NotCommentAuthor: someone else's comment.
    """
    comment = await _live_comment(db, comment_id=comment_id)
    if comment.author_id != actor.user_id:
        raise NotCommentAuthor
    if changes.body is not None and changes.body != comment.body:
        await db.execute(
            update(file_comments)
            .where(file_comments.c.id == comment_id)
            .values(body=changes.body, edited_at=func.now())
        )
    row = (await db.execute(select(file_comments).where(file_comments.c.id == comment_id))).one()
    return _out(row)


async def do_delete_comment(db: AsyncConnection, *, actor: Actor, comment_id: UUID) -> None:
    """Delete a comment: its author, or the file's owner. Replies to it stay.

    Raises:
        CommentNotFound: as _live_comment.
        NotCommentAuthor: neither its author nor the file's owner.
    """
    comment = await _live_comment(db, comment_id=comment_id)
    if actor.user_id not in (comment.author_id, comment.file_owner_id):
        raise NotCommentAuthor("Only its author or the file's owner deletes a comment.")
    await db.execute(update(file_comments).where(file_comments.c.id == comment_id).values(deleted_at=func.now()))
