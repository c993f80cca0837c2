"""The in-app inbox: a person's notifications newest first with the exact unread count,
and marking them read. Notifications are written by system work only (the pipeline,
rapport.notifications._consumer); a bundle (`group_key`) moves to the top when a newer
notification of its group joins it, so the list is ordered by `created_at`, then id, and
its cursor holds both."""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow
from rapport.kernel.errors import InvalidCursor
from rapport.kernel.outbox import Scope, publish
from rapport.notifications.models import notifications
from rapport.notifications.schemas import NotificationOut, NotificationPage

# Ids named in a `notification.read` event: more, and the event says only the new count.
_IDS_IN_EVENT = 50

_CURSOR = struct.Struct(">q16s")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _visible() -> ColumnElement[bool]:
    """Shown now: not scheduled for later."""
    return or_(notifications.c.scheduled_for.is_(None), notifications.c.scheduled_for <= func.now())


def _encode_cursor(created_at: datetime, notification_id: UUID) -> str:
    micros = (created_at - _EPOCH) // _MICROSECOND
    return base64.urlsafe_b64encode(_CURSOR.pack(micros, notification_id.bytes)).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        micros, raw = _CURSOR.unpack(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return _EPOCH + micros * _MICROSECOND, UUID(bytes=raw)
    except (binascii.Error, ValueError, struct.error, OverflowError) as error:
        raise InvalidCursor("The cursor was not issued by this server.") from error


async def count_unread(db: AsyncConnection, *, actor: Actor) -> int:
    """The actor's unread notifications, exactly."""
    query = (
        select(func.count())
        .select_from(notifications)
        .where(notifications.c.user_id == actor.user_id, notifications.c.is_read.is_(False), _visible())
    )
    return int((await db.execute(query)).scalar_one())


async def list_notifications(
    db: AsyncConnection, *, actor: Actor, unread: bool | None, cursor: str | None, limit: int
) -> NotificationPage:
    """The actor's notifications, newest first (a bundle by its newest member), only the
    unread or only the read ones when `unread` says so, with the exact unread count.

    Raises:
        InvalidCursor: a cursor this server did not issue.
    """
    query = select(notifications).where(notifications.c.user_id == actor.user_id, _visible())
    if unread is not None:
        query = query.where(notifications.c.is_read.is_(not unread))
    if cursor is not None:
        created_at, after_id = _decode_cursor(cursor)
        query = query.where(tuple_(notifications.c.created_at, notifications.c.id) < tuple_(created_at, after_id))
    query = query.order_by(notifications.c.created_at.desc(), notifications.c.id.desc()).limit(limit + 1)
    rows = (await db.execute(query)).all()
    items = [_out(row) for row in rows[:limit]]
    following = _encode_cursor(items[-1].created_at, items[-1].id) if len(rows) > limit else None
    return NotificationPage(items=items, next=following, unread_count=await count_unread(db, actor=actor))


async def do_mark_read(db: AsyncConnection, *, actor: Actor, ids: Sequence[UUID] | None) -> int:
    """Mark the actor's notifications read: those of `ids` (others' and unknown ids are
    ignored, and nothing tells them apart), or every one with `ids` None. Announces the
    change to the actor's other devices; returns the unread count after it."""
    condition = [notifications.c.user_id == actor.user_id, notifications.c.is_read.is_(False), _visible()]
    if ids is not None:
        condition.append(notifications.c.id.in_(list(ids)))
    marked = (
        (
            await db.execute(
                update(notifications)
                .where(*condition)
                .values(is_read=True, read_at=func.now())
                .returning(notifications.c.id)
            )
        )
        .scalars()
        .all()
    )
    unread = await count_unread(db, actor=actor)
    if marked:
        payload: dict[str, Any] = {"unread_count": unread}
        if len(marked) <= _IDS_IN_EVENT:
            payload["ids"] = [str(notification_id) for notification_id in marked]
        await publish(
            db, scope=Scope.user(actor.user_id), type="notification.read", payload=payload, actor_id=actor.user_id
        )
    return unread


def _out(row: AnyRow) -> NotificationOut:
    return NotificationOut(
        id=row.id,
        type=row.type,
        category=row.category,
        priority=row.priority,
        title=row.title,
        body=row.body,
        action_url=row.action_url,
        icon_url=row.icon_url,
        image_url=row.image_url,
        actor_id=row.actor_id,
        conversation_id=row.conversation_id,
        related_kind=row.related_kind,
        related_id=row.related_id,
        data=row.data,
        group_key=row.group_key,
        bundle_count=row.bundle_count,
        is_read=row.is_read,
        read_at=row.read_at,
        created_at=row.created_at,
    )
