"""Receipts: who read a message and whom it reached, derived from each participant's read
and delivered markers by the view messaging.message_receipts (no row per message and
reader), and the delivered marker a device moves."""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.pagination import PageRequest, encode_cursor
from rapport.messaging._messages import access_message
from rapport.messaging._refusals import refusals
from rapport.messaging.schemas import ReadState
from rapport.messaging.schemas_messages import DeliveryReceipt, MessageReceipts, ReadReceipt

_RECEIPTS = """
    SELECT r.user_id, r.status, r.read_at
      FROM messaging.message_receipts r
     WHERE r.conversation_id = :c AND r.message_id = :m AND r.seq = :seq
       AND r.created_at = messaging.id_time(:m) {after}
     ORDER BY r.user_id
     LIMIT :n
"""


async def list_receipts(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, message_id: UUID, page: PageRequest
) -> MessageReceipts:
    """Who read a message and whom it reached, from the markers (messaging.message_receipts):
    a reader who does not share read receipts shows as delivered only. A page of readers,
    in the order of their ids.

    Raises:
        ConversationNotFound, MessageNotFound: see access_message.
    """
    found = await access_message(
        db, actor=actor, conversation_id=conversation_id, message_id=message_id, taking_part=False, live=False
    )
    params: dict[str, Any] = {"c": conversation_id, "m": message_id, "seq": found.seq, "n": page.limit + 1}
    after = ""
    if page.after_id is not None:
        after, params["after"] = "AND r.user_id > :after", page.after_id
    rows = (await db.execute(text(_RECEIPTS.format(after=after)), params)).all()
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return MessageReceipts(
        message_id=message_id,
        read_by=[ReadReceipt(user_id=row.user_id, read_at=row.read_at) for row in rows if row.status == "read"],
        delivered_to=[DeliveryReceipt(user_id=row.user_id) for row in rows if row.status != "read"],
        next=encode_cursor(cast(UUID, rows[-1].user_id)) if more else None,
    )


_DELIVERED = text(
    """
    UPDATE messaging.participants SET delivered_seq = :seq
     WHERE conversation_id = :c AND user_id = :u AND status IN ('active', 'muted') AND delivered_seq < :seq
    RETURNING delivered_seq
    """
)
_READ_STATE = text(
    """
    SELECT c.id AS conversation_id, p.read_seq, p.delivered_seq,
           messaging.unread_count(p, c.last_seq) AS unread_count, messaging.unread_mentions(p) AS unread_mentions
      FROM messaging.participants p
      JOIN messaging.conversations c ON c.id = p.conversation_id
     WHERE p.conversation_id = :c AND p.user_id = :u
    """
)


async def do_mark_delivered(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, message_id: UUID) -> ReadState:
    """Every message up to this one reached a device of the caller: the delivered marker
    moves forward (never back), and the conversation hears it (receipt.delivered).

    Raises:
        ConversationNotFound, MessageNotFound: see access_message.
    """
    found = await access_message(db, actor=actor, conversation_id=conversation_id, message_id=message_id, live=False)
    params = {"c": conversation_id, "u": actor.user_id, "seq": found.seq}
    async with refusals():
        moved = (await db.execute(_DELIVERED, params)).first() is not None
    if moved:
        await publish(
            db,
            scope=Scope.conversation(conversation_id),
            type="receipt.delivered",
            payload={
                "conversation_id": str(conversation_id),
                "user_id": str(actor.user_id),
                "delivered_seq": found.seq,
            },
            actor_id=actor.user_id,
        )
    row = (await db.execute(_READ_STATE, params)).one()
    return ReadState.model_validate(row._mapping)
