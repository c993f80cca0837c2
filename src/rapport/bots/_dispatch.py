"""The dispatcher: turns each new message of a conversation a bot takes part in into an
interaction (bots.robot_interactions) and a job that POSTs it to the bot's webhook
(rapport.bots._delivery).

It reads the outbox (`message.created`) from its own durable cursor, in system
transactions, after the send has committed: the send path never waits for it, nor for
any webhook. A bot hears a message when it took part in the conversation at the
message's position (as sync decides who receives an event), did not send it itself, and
either receives every message or is mentioned in it. A message of another bot reaches it
only when it mentions it: two bots that each answer everything would otherwise answer
each other without end."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.bots import tasks
from rapport.bots.models import bots, robot_interactions
from rapport.kernel import jobs
from rapport.kernel.actor import Actor
from rapport.kernel.db import SystemEngine
from rapport.kernel.errors import NotFound
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import ORDINAL_BITS, Event
from rapport.kernel.outbox.readers import CursorReader, ReaderLoop
from rapport.messaging import service as messaging_service

# The events a bot hears.
MESSAGE_CREATED = "message.created"
DELIVERED_TYPES = (MESSAGE_CREATED,)

_TAKING_PART = text(
    "SELECT conversation_id, bot_id, receives, joined_position, left_position"
    "  FROM bots.taking_part(CAST(:ids AS uuid[]))"
)


@dataclass(frozen=True)
class Seat:
    """A bot in a conversation, and the stretch of the outbox that is its there: from the
    transaction that (re)joined it to the one that ended its participation."""

    bot_id: UUID
    receives: str
    joined: int
    left: int | None

    def holds(self, position: int) -> bool:
        if position < self.joined:
            return False
        if self.left is None:
            return True
        # Every event of the leaving transaction is still theirs (as rapport.messaging._sync counts it).
        return position <= (((self.left >> ORDINAL_BITS) + 1) << ORDINAL_BITS) - 1


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value)) if value is not None else None
    except ValueError:
        return None


def hears(seat: Seat, event: Event, *, bot_senders: set[UUID]) -> bool:
    """Whether a bot in the conversation hears a message event."""
    sender = _uuid(event.payload.get("sender_id"))
    if not seat.holds(event.position) or sender == seat.bot_id:
        return False
    mentioned = seat.bot_id in {_uuid(m) for m in event.payload.get("mentions") or []}
    if mentioned:
        return True
    return seat.receives == "all" and sender not in bot_senders


async def _seats(db: AsyncConnection, events: list[Event]) -> dict[UUID, list[Seat]]:
    conversations = list({event.scope_id for event in events if event.scope_kind == "conversation"})
    if not conversations:
        return {}
    seats: dict[UUID, list[Seat]] = {}
    for row in await db.execute(_TAKING_PART, {"ids": conversations}):
        seats.setdefault(row.conversation_id, []).append(
            Seat(row.bot_id, row.receives, row.joined_position, row.left_position)
        )
    return seats


async def _bot_senders(db: AsyncConnection, events: list[Event]) -> set[UUID]:
    senders = {sender for event in events if (sender := _uuid(event.payload.get("sender_id"))) is not None}
    if not senders:
        return set()
    return set((await db.execute(select(bots.c.id).where(bots.c.id.in_(senders)))).scalars())


async def _message_for(db: AsyncConnection, *, bot_id: UUID, event: Event) -> dict[str, Any] | None:
    """The message as the API shows it to the bot; None once it is gone or deleted."""
    message_id = _uuid(event.payload.get("message_id"))
    if message_id is None:
        return None
    try:
        rendered = await messaging_service.get_message(
            db, actor=Actor(user_id=bot_id), conversation_id=event.scope_id, message_id=message_id
        )
    except NotFound:
        return None
    message: dict[str, Any] = orjson.loads(rendered)
    return None if message.get("is_deleted") else message


async def _dispatch(db: AsyncConnection, events: list[Event]) -> int:
    """Make the interactions and queue the deliveries of some message events; how many."""
    seats = await _seats(db, events)
    if not seats:
        return 0
    bot_senders = await _bot_senders(db, events)
    deliveries: list[tuple[jobs.Task, dict[str, Any], None]] = []
    for event in events:
        for seat in seats.get(event.scope_id, ()):
            if not hears(seat, event, bot_senders=bot_senders):
                continue
            message = await _message_for(db, bot_id=seat.bot_id, event=event)
            if message is None:
                continue
            interaction_id = uuid7()
            body = {
                "id": str(interaction_id),
                "event_id": str(event.position),
                "type": event.type,
                "bot_id": str(seat.bot_id),
                "conversation_id": str(event.scope_id),
                "created_at": event.created_at.isoformat(),
                "message": message,
            }
            statement = (
                insert(robot_interactions)
                .values(
                    id=interaction_id,
                    bot_id=seat.bot_id,
                    conversation_id=event.scope_id,
                    message_id=UUID(message["id"]),
                    event_type=event.type,
                    event_position=event.position,
                    request_data=body,
                )
                .on_conflict_do_nothing(index_elements=[robot_interactions.c.bot_id, robot_interactions.c.message_id])
                .returning(robot_interactions.c.id)
            )
            try:
                # A conversation removed for good since the message was read must not
                # hold the dispatcher back on this batch for ever.
                async with db.begin_nested():
                    made = (await db.execute(statement)).one_or_none()
            except IntegrityError:
                continue
            if made is not None:
                deliveries.append((tasks.deliver, {"interaction_id": str(interaction_id)}, None))
    await jobs.enqueue_many(db, deliveries)
    return len(deliveries)


# Its cursor, lock ("bots" in ASCII) and loop are rapport.kernel.outbox's.
READER = CursorReader(
    name="bots-dispatcher",
    cursor_table="bots.cursor",
    cursor="deliveries",
    lock_key=0x626F7473,
    types=DELIVERED_TYPES,
    handle=_dispatch,
)


async def dispatch_batch(engine: SystemEngine, *, limit: int = READER.batch) -> tuple[int, int | None]:
    """One batch of the dispatcher: the new messages after its cursor (up to `limit`),
    each turned into the deliveries it means, and the cursor moved, all in one system
    transaction. Returns how many deliveries it queued and the position it reached (None
    when another process holds the dispatcher's lock and did the batch)."""
    return await READER.read_batch(engine, limit=limit)


async def dispatch_all(engine: SystemEngine) -> int:
    """Batches until the dispatcher has read past every message committed when it was
    called; how many deliveries it queued."""
    return await READER.read_all(engine)


class Dispatcher(ReaderLoop):
    """The dispatcher's loop beside the job worker (rapport.kernel.outbox.ReaderLoop)."""

    def __init__(self, engine: SystemEngine) -> None:
        super().__init__(READER, engine)
