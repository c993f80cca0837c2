"""Agents' levels: T1 < T2 < T3 < manager. An agent works the queue of a level when they
hold its permission (`support:queue:t1` ... `support:queue:manager`, through access's
grants) or a higher level's: a higher level includes the lower queues. The database
answers, through `support.works_at`, for the acting user only; who else works a level is
system work's question (`access.service.holders_of`)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.access import service as access_service
from rapport.kernel.actor import Actor
from rapport.modules.support.errors import LevelRequired
from rapport.modules.support.models import LEVELS, Level

OBSERVE = "supervisor:chat:observe"

_WORKS_AT = text("SELECT support.works_at(:level, :conversation)")


def rank(level: str) -> int:
    """1 for T1 up to 4 for manager."""
    return LEVELS.index(level) + 1


def at_or_above(level: str) -> tuple[Level, ...]:
    """The levels whose agents work this level's queue."""
    return LEVELS[rank(level) - 1 :]


def queue_permission(level: str) -> str:
    return f"support:queue:{level.lower()}"


async def works_at(db: AsyncConnection, *, level: str, conversation_id: UUID | None = None) -> bool:
    """Whether the acting user works the queue of this level (or a higher one), platform-wide
    or, with `conversation_id`, also through a grant for that room."""
    return bool((await db.execute(_WORKS_AT, {"level": level, "conversation": conversation_id})).scalar_one())


async def require_level(db: AsyncConnection, *, level: str, conversation_id: UUID | None = None) -> None:
    """Raises:
    LevelRequired: the acting user works no queue of this level or above.
    """
    if not await works_at(db, level=level, conversation_id=conversation_id):
        raise LevelRequired(level)


async def observes(db: AsyncConnection, *, actor: Actor, conversation_id: UUID | None = None) -> bool:
    """Whether the actor is a supervisor (supervisor:chat:observe), platform-wide or for this room."""
    return await access_service.has_permission(db, actor=actor, permission=OBSERVE, conversation_id=conversation_id)


async def holds_level(db: AsyncConnection, *, user_id: UUID, level: str, conversation_id: UUID | None = None) -> bool:
    """Whether someone works the queue of this level or above (system work: it reads
    others' grants). Platform administrators count only through a grant."""
    for candidate in at_or_above(level):
        if await access_service.holds_permission(
            db, user_id=user_id, permission=queue_permission(candidate), conversation_id=conversation_id
        ):
            return True
    return False
