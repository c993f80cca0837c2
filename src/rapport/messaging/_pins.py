"""Pinned messages of a conversation (seed 004 pinned_messages): members and above pin
and unpin; everyone taking part reads them. Deleting a message unpins it (by trigger)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.pagination import PageRequest, encode_cursor
from rapport.messaging._messages import Membership, access_membership, access_message
from rapport.messaging.errors import NotAllowed

# Who may pin and unpin (the policies pins_write and pins_remove say the same).
PINNERS: frozenset[str] = frozenset({"owner", "admin", "moderator", "member"})


def _may_pin(membership: Membership) -> None:
    if membership.role not in PINNERS:
        raise NotAllowed("Guests and observers do not pin messages.")


_PIN = text(
    """
    INSERT INTO messaging.pins (conversation_id, message_id, pinned_by)
    VALUES (:c, :m, :u)
    ON CONFLICT DO NOTHING
    RETURNING message_id
    """
)
_UNPIN = text(
    """
    DELETE FROM messaging.pins WHERE conversation_id = :c AND message_id = :m
    RETURNING message_id
    """
)


async def do_pin(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, message_id: UUID, pinned: bool) -> None:
    """Pin a message (`pinned`) or unpin it; doing it twice changes nothing and
    announces nothing the second time.

    Raises:
        ConversationNotFound, MessageNotFound: see access_message (pinning a deleted one too).
        NotAllowed: a guest or an observer.
    """
    found = await access_message(db, actor=actor, conversation_id=conversation_id, message_id=message_id, live=pinned)
    _may_pin(found.membership)
    params = {"c": conversation_id, "m": message_id, "u": actor.user_id}
    changed = (await db.execute(_PIN if pinned else _UNPIN, params)).first() is not None
    if changed:
        await publish(
            db,
            scope=Scope.conversation(conversation_id),
            type="pin.added" if pinned else "pin.removed",
            payload={"message_id": str(message_id), "seq": found.seq},
            actor_id=actor.user_id,
        )


# Pins joined to their messages under the reader's row-level security: a pin of a message
# from before the reader's window stays out of sight with the message. Built as JSON here,
# so the message reads exactly as history gives it.
_PINS = """
    SELECT p.message_id,
           jsonb_build_object('message', messaging.render_message(m, :u), 'pinned_by', p.pinned_by,
                              'pinned_at', p.pinned_at)::text AS item
      FROM messaging.pins p
      JOIN messaging.messages m
        ON m.conversation_id = p.conversation_id AND m.id = p.message_id
       AND m.created_at = messaging.id_time(p.message_id)
     WHERE p.conversation_id = :c {after}
     ORDER BY p.message_id DESC
     LIMIT :n
"""


async def list_pins(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, page: PageRequest) -> str:
    """A page of pinned messages as JSON (`{"items": [PinOut...], "next"}`), newest
    message first (its UUIDv7 is the key, so the primary key serves the order).

    Raises:
        ConversationNotFound: see access_membership.
    """
    await access_membership(db, actor=actor, conversation_id=conversation_id)
    params: dict[str, Any] = {"c": conversation_id, "u": actor.user_id, "n": page.limit + 1}
    after = ""
    if page.after_id is not None:
        after, params["after"] = "AND p.message_id < :after", page.after_id
    rows = (await db.execute(text(_PINS.format(after=after)), params)).all()
    items = rows[: page.limit]
    following = f'"{encode_cursor(items[-1].message_id)}"' if len(rows) > page.limit else "null"
    return f'{{"items":[{",".join(row.item for row in items)}],"next":{following}}}'
