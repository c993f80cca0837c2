"""Publishing events and reading them back in position order (docs/decisions/0012)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Row, bindparam, insert, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.outbox._wakeup import mark_published
from rapport.kernel.outbox.models import ScopeKind, events

JsonObject = dict[str, Any]

# How many low bits of a position number the events of one transaction (the rest is its id).
ORDINAL_BITS = 16


@dataclass(frozen=True)
class Scope:
    """Who may receive an event: a conversation's participants, or one user."""

    kind: ScopeKind
    id: UUID

    @classmethod
    def conversation(cls, conversation_id: UUID) -> Scope:
        return cls("conversation", conversation_id)

    @classmethod
    def user(cls, user_id: UUID) -> Scope:
        return cls("user", user_id)


class Event(BaseModel):
    """One committed event, as a reader receives it."""

    model_config = ConfigDict(frozen=True)

    position: int
    scope_kind: ScopeKind
    scope_id: UUID
    type: str
    payload: JsonObject
    actor_id: UUID | None
    created_at: datetime


@dataclass(frozen=True)
class EventBatch:
    """Events after a position, and where the next read resumes: `position` is the last
    event's when the batch is full, else the safe position, below which nothing can
    commit any more. Resuming from it never misses an event nor returns one twice."""

    events: list[Event]
    position: int


def batch_of(rows: Sequence[Row[Any]], *, after: int, limit: int) -> EventBatch:
    """The batch a barrier-and-read statement returned: rows of (safe, position,
    scope_kind, scope_id, type, payload, actor_id, created_at), at least one, with a null
    position when no event was found. Every reader of the outbox reads this shape."""
    found = [
        Event(
            position=row.position,
            scope_kind=row.scope_kind,
            scope_id=row.scope_id,
            type=row.type,
            payload=row.payload,
            actor_id=row.actor_id,
            created_at=row.created_at,
        )
        for row in rows
        if row.position is not None
    ]
    if len(found) == limit:
        return EventBatch(found, found[-1].position)
    # Never backwards: a caller may pass a position a little ahead of this snapshot's barrier.
    return EventBatch(found, max(after, rows[0].safe - 1))


async def publish(db: AsyncConnection, *, scope: Scope, type: str, payload: JsonObject, actor_id: UUID | None) -> None:
    """Add an event in the caller's transaction: it exists, and readers are told of it
    (`wakeup`), only if that transaction commits: commit it through
    rapport.kernel.db's transactions, which announce it. The database numbers it (the trigger
    kernel.events_position); the server's role may publish but not read it back.

    Raises:
        sqlalchemy.exc.DBAPIError: the payload is not a small JSON object, or `actor_id`
            is not the user the transaction acts for.
    """
    values = {"scope_kind": scope.kind, "scope_id": scope.id, "type": type, "payload": payload, "actor_id": actor_id}
    # NULL said aloud: the trigger numbers the event, and Core must not expect to.
    await db.execute(insert(events).values(position=None, **values))
    mark_published(db.info)


# The barrier and the read share one statement, hence one snapshot: every transaction
# whose id is below the snapshot's xmin has ended, and every transaction that has not has
# an id, hence positions, at or above it. Events below the safe position are therefore all
# the events there will ever be below it.
_READ_AFTER = text(
    """
    WITH barrier AS (
        SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint << :bits AS safe
    )
    SELECT barrier.safe, e.position, e.scope_kind, e.scope_id, e.type, e.payload, e.actor_id, e.created_at
      FROM barrier
      LEFT JOIN LATERAL (
          SELECT *
            FROM kernel.events
           WHERE position > :after AND position < barrier.safe
             AND ((scope_kind = 'conversation' AND scope_id = ANY(:conversations))
                  OR (scope_kind = 'user' AND scope_id = ANY(:users)))
           ORDER BY position
           LIMIT :limit
      ) e ON true
     ORDER BY e.position
    """
).bindparams(
    bindparam("conversations", type_=postgresql.ARRAY(postgresql.UUID(as_uuid=True))),
    bindparam("users", type_=postgresql.ARRAY(postgresql.UUID(as_uuid=True))),
)


async def read_after(db: AsyncConnection, *, position: int, scopes: Collection[Scope], limit: int) -> EventBatch:
    """The committed events of some scopes after a position, oldest first, up to `limit`,
    and the position to resume from. Events that committed after a later position stay
    unseen until every transaction that could still commit below them has ended: a
    long-running transaction delays delivery, it never loses an event.

    Run it on the worker's role (kernel.events is unreadable to the server's), in a
    transaction that has published nothing itself.

    Raises:
        ValueError: `limit` is not positive.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    rows = (
        await db.execute(
            _READ_AFTER,
            {
                "bits": ORDINAL_BITS,
                "after": position,
                "conversations": [scope.id for scope in scopes if scope.kind == "conversation"],
                "users": [scope.id for scope in scopes if scope.kind == "user"],
                "limit": limit,
            },
        )
    ).all()
    return batch_of(rows, after=position, limit=limit)
