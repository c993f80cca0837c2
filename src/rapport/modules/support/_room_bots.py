"""Bots in support rooms: someone taking part in a room (its customer, or an agent in it)
who holds `chat:robot:invoke` there brings in a bot they manage (platform administrators
manage every bot, the platform's own included). Nobody invites anyone into a support
room: the desk admits the bot as system work, as it admits agents, and the room's limit
on who takes part counts it."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.access import service as access_service
from rapport.bots import service as bots_service
from rapport.kernel.actor import Actor
from rapport.modules.support import _conversations
from rapport.modules.support._rooms import access_room, announce, customer_or_agent, load_room, room_out
from rapport.modules.support.errors import RoomClosed
from rapport.modules.support.schemas import RoomOut

INVOKE_PERMISSION = "chat:robot:invoke"


@dataclass(frozen=True)
class BotPermit:
    actor: Actor
    conversation_id: UUID
    bot_id: UUID


async def authorise_add_bot(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, bot_id: UUID) -> BotPermit:
    """Raises:
    RoomNotFound: not a room the actor sees.
    NotRoomMember: the actor is neither its customer nor an agent taking part in it.
    PermissionRequired: the actor does not hold chat:robot:invoke there.
    BotNotFound: no bot the actor manages has this id.
    RoomClosed: it is closed.
    """
    room = await access_room(db, actor=actor, conversation_id=conversation_id)
    await customer_or_agent(db, actor=actor, room=room)
    await access_service.require_permission(
        db, actor=actor, permission=INVOKE_PERMISSION, conversation_id=conversation_id
    )
    await bots_service.access_bot(db, actor=actor, bot_id=bot_id)
    if room.status == "closed":
        raise RoomClosed()
    return BotPermit(actor=actor, conversation_id=conversation_id, bot_id=bot_id)


async def do_add_bot(db: AsyncConnection, *, permit: BotPermit) -> RoomOut:
    """The bot takes part in the room (system work): it hears its messages as its
    subscription says, and answers there. Adding it again changes nothing. Publishes
    `support.bot.added`.

    Raises:
        RoomClosed: it closed meanwhile.
        ConversationFull: the room is at its limit.
    """
    room = await load_room(db, conversation_id=permit.conversation_id, lock=True)
    if room.status == "closed":
        raise RoomClosed()
    await _conversations.enrol(db, conversation_id=room.conversation_id, user_id=permit.bot_id, role="member")
    await announce(db, room=room, type="support.bot.added", actor_id=permit.actor.user_id, bot_id=permit.bot_id)
    return room_out(room)
