"""Closing a support room ends everything that could still act in it, at once: the room
leaves the queues; its conversation closes (nobody sends any more, and its history stays
readable to those who took part); its guests' sessions end, so their tokens stop working;
its open guest links are revoked; and the escalations still open in it are cancelled,
with a note saying why. A closed room stays closed: the desk offers no reopening.

Closing again finishes whatever an earlier close left undone (a room closed before this
was so, whose conversation was left open) and announces nothing twice."""

from __future__ import annotations

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.modules.support import _conversations
from rapport.modules.support._escalations import cancel_open_escalations
from rapport.modules.support._guests import end_guests
from rapport.modules.support._rooms import RoomPermit, announce, load_room, room_out
from rapport.modules.support.models import rooms
from rapport.modules.support.schemas import RoomOut

# The resolution note of the escalations a closing cancels.
CLOSED_NOTE = "Cancelled: the support room was closed."


async def do_close_room(db: AsyncConnection, *, permit: RoomPermit) -> RoomOut:
    """Close the room (system work), under its lock: it leaves the queues, its
    conversation closes, its guests' sessions end, its open guest links are revoked and
    its open escalations are cancelled (see the module). Publishes `support.room.closed`
    the first time, and what each part announces: `conversation.changed`,
    `support.escalation.cancelled`, the guests' `session.revoked`.

    Raises:
        RoomNotFound: it went meanwhile.
    """
    room = await load_room(db, conversation_id=permit.conversation_id, lock=True)
    actor_id = permit.actor.user_id
    if room.status != "closed":
        await db.execute(
            update(rooms)
            .where(rooms.c.conversation_id == room.conversation_id)
            .values(status="closed", closed_at=func.now(), closed_by=actor_id)
        )
        room = await load_room(db, conversation_id=room.conversation_id)
        await announce(db, room=room, type="support.room.closed", actor_id=actor_id)
    await _conversations.close_conversation(db, conversation_id=room.conversation_id)
    await end_guests(db, conversation_id=room.conversation_id)
    await cancel_open_escalations(db, conversation_id=room.conversation_id, actor_id=actor_id, notes=CLOSED_NOTE)
    return room_out(room)
