"""Each level's queue: the open rooms of the level no agent has answered yet, and the open
escalations to it, most urgent first (priority, then how long each has waited), each with
the time the SLA of its priority (support.sla) makes it due and whether that has passed.
A room being worked through an escalation shows as the escalation only.

Agents of the level or higher read it, and supervisors every level's; row-level security
decides which rows of it the reader sees. Pages follow (priority, waiting since, id)."""

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

_QUEUE = text(
    """
    SELECT q.kind, q.id, q.room_id, q.priority, q.state, q.waiting_since, q.due_at, q.due_at < now() AS breached
      FROM (
        SELECT 'room' AS kind, r.conversation_id AS id, r.conversation_id AS room_id, r.priority,
               'unanswered' AS state, r.opened_at AS waiting_since,
               r.opened_at + s.first_response_minutes * interval '1 minute' AS due_at
          FROM support.rooms r
          JOIN support.sla s ON s.priority = r.priority
         WHERE r.level = :level AND r.status = 'open' AND r.first_response_at IS NULL
           AND NOT EXISTS (
                SELECT 1 FROM support.escalations e
                 WHERE e.source_room_id = r.conversation_id AND e.target_room_id IS NULL
                   AND e.status IN ('created', 'assigned', 'in_progress'))
           AND NOT EXISTS (
                SELECT 1 FROM support.escalations e
                 WHERE e.target_room_id = r.conversation_id AND e.status IN ('created', 'assigned', 'in_progress'))
        UNION ALL
        SELECT 'escalation', e.id, coalesce(e.target_room_id, e.source_room_id), e.priority,
               e.status, e.created_at,
               e.created_at + CASE WHEN e.status = 'created' THEN s.first_response_minutes
                                   ELSE s.resolution_minutes END * interval '1 minute'
          FROM support.escalations e
          JOIN support.sla s ON s.priority = e.priority
         WHERE e.to_level = :level AND e.status IN ('created', 'assigned', 'in_progress')
      ) q
     WHERE (NOT :breached_only OR q.due_at < now())
       AND (:after_priority IS NULL
            OR (q.priority, q.waiting_since, q.id) > (:after_priority, :after_since, :after_id))
     ORDER BY q.priority, q.waiting_since, q.id
     LIMIT :limit
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
