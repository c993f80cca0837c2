"""Each level's queue: the open rooms of the level no agent has answered yet, and the open
escalations to it, most urgent first (priority, then how long each has waited), each with
the time the SLA of its priority (support.sla) makes it due and whether that has passed.
A room being worked through an escalation shows as the escalation only.

Agents of the level or higher (platform-wide) read it, and supervisors every level's;
whoever may read it sees all of it. Pages follow (priority, waiting since, id)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from uuid import UUID

import orjson
from sqlalchemy import Boolean, DateTime, Integer, Text, bindparam, func, text, update
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.access import service as access_service
from rapport.kernel.actor import Actor
from rapport.kernel.errors import InvalidCursor
from rapport.modules.support._levels import observes, works_at
from rapport.modules.support.errors import LevelRequired
from rapport.modules.support.models import Level, sla
from rapport.modules.support.schemas import QueueItem, QueuePage, SlaOut, SlaUpdate

SLA_PERMISSION = "access:admin:manage"

# The queue is read by the definer function support.queue_page (migration
# 2026_11_30_0042), which checks its reader once instead of row-level security asking
# for every room and escalation.
_QUEUE = text(
    """
    SELECT kind, id, room_id, priority, state, waiting_since, due_at, breached
      FROM support.queue_page(:level, :breached_only, :after_priority, :after_since, :after_id, :limit)
    """
).bindparams(
    bindparam("level", type_=Text()),
    bindparam("breached_only", type_=Boolean()),
    bindparam("after_priority", type_=Integer()),
    bindparam("after_since", type_=DateTime(timezone=True)),
    bindparam("after_id", type_=PG_UUID(as_uuid=True)),
    bindparam("limit", type_=Integer()),
)


def _encode(item: QueueItem) -> str:
    raw = orjson.dumps([item.priority, item.waiting_since.isoformat(), str(item.id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[int, datetime, UUID]:
    refusal = InvalidCursor("The cursor was not issued by this server.")
    try:
        priority, since, item_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after = (priority, datetime.fromisoformat(since), UUID(item_id))
    except (binascii.Error, ValueError, TypeError, AttributeError) as exc:
        raise refusal from exc
    if type(after[0]) is not int or not 1 <= after[0] <= 5 or after[1].tzinfo is None:
        raise refusal
    return after


async def list_queue(
    db: AsyncConnection,
    *,
    actor: Actor,
    level: Level,
    limit: int,
    cursor: str | None = None,
    breached_only: bool = False,
) -> QueuePage:
    """A level's queue, most urgent first; with `breached_only`, what is past its SLA.

    Raises:
        LevelRequired: the actor works no queue of this level or above and is no supervisor.
        InvalidCursor: a cursor this server did not issue.
    """
    if not await works_at(db, level=level) and not await observes(db, actor=actor):
        raise LevelRequired(level)
    after: tuple[int | None, datetime | None, UUID | None] = _decode(cursor) if cursor else (None, None, None)
    rows = (
        await db.execute(
            _QUEUE,
            {
                "level": level,
                "breached_only": breached_only,
                "after_priority": after[0],
                "after_since": after[1],
                "after_id": after[2],
                "limit": limit + 1,
            },
        )
    ).all()
    items = [QueueItem.model_validate(row._mapping) for row in rows[:limit]]
    return QueuePage(level=level, items=items, next=_encode(items[-1]) if len(rows) > limit else None)


# --- the service levels ------------------------------------------------------------------


async def list_sla(db: AsyncConnection) -> list[SlaOut]:
    """The service level of each priority, 1 to 5."""
    rows = (await db.execute(sla.select().order_by(sla.c.priority))).all()
    return [SlaOut.model_validate(row._mapping) for row in rows]


async def do_update_sla(db: AsyncConnection, *, actor: Actor, priority: int, body: SlaUpdate) -> SlaOut:
    """Set a priority's service level (access administrators). Queues measure against it
    from now on, what waits already included.

    Raises:
        PermissionRequired: the actor lacks access:admin:manage.
    """
    await access_service.require_permission(db, actor=actor, permission=SLA_PERMISSION)
    row = (
        await db.execute(
            update(sla)
            .where(sla.c.priority == priority)
            .values(
                first_response_minutes=body.first_response_minutes,
                resolution_minutes=body.resolution_minutes,
                updated_by=actor.user_id,
                updated_at=func.now(),
            )
            .returning(sla)
        )
    ).one()
    return SlaOut.model_validate(row._mapping)
