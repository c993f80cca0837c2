"""Support rooms: a customer opens one about an issue; agents of its level or higher join
it; its customer or an agent in it changes who may come in (guests) and how urgent it is
(agents); it closes (rapport.modules.support._closing says what closing ends).

Each change is checked in the caller's own transaction (`authorise_*`: what they may see
and hold), then made as system work (`do_*`, given the permit): the room's conversation
and its participants are messaging's, which admits the desk's system work alone to make a
support room and bring agents into it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Select, insert, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.access import service as access_service
from rapport.identity import service as identity_service
from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.modules.support import _conversations
from rapport.modules.support._levels import require_level, works_at
from rapport.modules.support.errors import CustomerRequired, NotRoomMember, RoomClosed, RoomNotFound
from rapport.modules.support.models import room_agents, rooms, sla
from rapport.modules.support.schemas import RoomCreate, RoomCreated, RoomOut, RoomUpdate

CLOSE_PERMISSION = "chat:room:close"
JOIN_PERMISSION = "chat:room:join"
ROOM_NAME = "Support"

_MINUTE: ColumnElement[Any] = literal_column("interval '1 minute'")


@dataclass(frozen=True)
class RoomPermit:
    """What the caller's own transaction established: who may act on which room."""

    actor: Actor
    conversation_id: UUID


@dataclass(frozen=True)
class CustomerPermit:
    """A person with an account of their own, who may open a support room."""

    actor: Actor


def room_query() -> Select[Any]:
    """Rooms with the time their first response is due (support.sla)."""
    due = (rooms.c.opened_at + sla.c.first_response_minutes * _MINUTE).label("first_response_due_at")
    return select(rooms, due).select_from(rooms.join(sla, sla.c.priority == rooms.c.priority))


def room_out(row: AnyRow) -> RoomOut:
    return RoomOut.model_validate(row._mapping)


async def load_room(db: AsyncConnection, *, conversation_id: UUID, lock: bool = False) -> AnyRow:
    """A room as the transaction sees it (system work: any).

    Raises:
        RoomNotFound: missing, or invisible to the transaction's user.
    """
    query = room_query().where(rooms.c.conversation_id == conversation_id)
    if lock:
        query = query.with_for_update(of=rooms)
    row: AnyRow | None = (await db.execute(query)).one_or_none()
    if row is None:
        raise RoomNotFound()
    return row


async def access_room(db: AsyncConnection, *, actor: Actor, conversation_id: UUID) -> AnyRow:
    """A room the actor sees: its customer, someone taking part in it, an agent of its
    level or higher, a supervisor (the rooms' row-level security decides).

    Raises:
        RoomNotFound: missing, or not one the actor may see.
    """
    return await load_room(db, conversation_id=conversation_id)


async def get_room(db: AsyncConnection, *, actor: Actor, conversation_id: UUID) -> RoomOut:
    """Raises:
    RoomNotFound: missing, or not one the actor may see.
    """
    return room_out(await access_room(db, actor=actor, conversation_id=conversation_id))


async def list_rooms(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[RoomOut]:
    """The rooms the actor opened, newest first."""
    query = room_query().where(rooms.c.customer_id == actor.user_id)
    rows = (await db.execute(keyset(query, rooms.c.conversation_id, page))).all()
    return make_page([room_out(row) for row in rows], page, id_of=lambda room: room.conversation_id)


async def is_room_agent(db: AsyncConnection, *, conversation_id: UUID, user_id: UUID) -> bool:
    """Whether someone joined the room as an agent (or was assigned an escalation in it)."""
    found = await db.execute(
        select(room_agents.c.agent_id).where(
            room_agents.c.conversation_id == conversation_id, room_agents.c.agent_id == user_id
        )
    )
    return found.first() is not None


async def announce(db: AsyncConnection, *, room: AnyRow, type: str, actor_id: UUID | None, **payload: Any) -> None:
    """Publish a room's event to the people in its conversation (ids and small values)."""
    body: dict[str, Any] = {
        "conversation_id": str(room.conversation_id),
        "level": room.level,
        "priority": room.priority,
        "status": room.status,
    }
    body.update({key: str(value) if isinstance(value, UUID) else value for key, value in payload.items()})
    await publish(db, scope=Scope.conversation(room.conversation_id), type=type, payload=body, actor_id=actor_id)


# --- opening ------------------------------------------------------------------------


async def authorise_open_room(db: AsyncConnection, *, actor: Actor) -> CustomerPermit:
    """Raises:
    CustomerRequired: the actor is a guest or a bot.
    """
    me = await identity_service.get_user(db, actor=actor)
    if me.kind != "person":
        raise CustomerRequired()
    return CustomerPermit(actor=actor)


async def do_open_room(db: AsyncConnection, *, permit: CustomerPermit, body: RoomCreate) -> RoomCreated:
    """Open a support room (system work): its `support` conversation with the customer in
    it, and the room at level T1 waiting for an agent. Publishes `support.room.opened`."""
    customer = permit.actor.user_id
    conversation = await _conversations.open_conversation(
        db,
        type="support",
        creator_id=customer,
        name=body.issue_id or ROOM_NAME,
        description=body.issue_description,
        parent_id=None,
        members=[(customer, "member")],
        max_participants=body.max_participants,
    )
    await db.execute(
        insert(rooms).values(
            conversation_id=conversation.id,
            customer_id=customer,
            issue_id=body.issue_id,
            issue_description=body.issue_description,
            priority=body.priority,
            guests_allowed=body.guests_allowed,
            max_participants=body.max_participants,
        )
    )
    room = await load_room(db, conversation_id=conversation.id)
    await announce(db, room=room, type="support.room.opened", actor_id=customer)
    return RoomCreated(room=room_out(room), conversation=conversation)


# --- joining ------------------------------------------------------------------------


async def authorise_join_room(db: AsyncConnection, *, actor: Actor, conversation_id: UUID) -> RoomPermit:
    """Raises:
    RoomNotFound: not a room the actor sees.
    LevelRequired: the actor works no queue of the room's level or above.
    PermissionRequired: an agent of the level without chat:room:join there.
    RoomClosed: it is closed.
    """
    room = await access_room(db, actor=actor, conversation_id=conversation_id)
    await require_level(db, level=room.level, conversation_id=conversation_id)
    await access_service.require_permission(
        db, actor=actor, permission=JOIN_PERMISSION, conversation_id=conversation_id
    )
    if room.status == "closed":
        raise RoomClosed()
    return RoomPermit(actor=actor, conversation_id=conversation_id)


async def enrol_agent(db: AsyncConnection, *, room: AnyRow, agent_id: UUID) -> bool:
    """Bring an agent into a room (system work): a member of its conversation, counted
    among its agents. Whether they were new to it."""
    await _conversations.enrol(db, conversation_id=room.conversation_id, user_id=agent_id, role="member")
    made = await db.execute(
        pg_insert(room_agents)
        .values(conversation_id=room.conversation_id, agent_id=agent_id)
        .on_conflict_do_nothing()
        .returning(room_agents.c.agent_id)
    )
    return made.first() is not None


async def do_join_room(db: AsyncConnection, *, permit: RoomPermit) -> RoomOut:
    """The agent joins the room (system work): a member of its conversation, whose first
    message answers the customer. Joining again changes nothing. Publishes
    `support.room.joined` the first time.

    Raises:
        RoomClosed: it closed meanwhile.
    """
    room = await load_room(db, conversation_id=permit.conversation_id, lock=True)
    if room.status == "closed":
        raise RoomClosed()
    agent = permit.actor.user_id
    if await enrol_agent(db, room=room, agent_id=agent):
        await announce(db, room=room, type="support.room.joined", actor_id=agent, agent_id=agent)
    return room_out(room)


# --- changing and closing ------------------------------------------------------------


async def customer_or_agent(db: AsyncConnection, *, actor: Actor, room: AnyRow) -> bool:
    """Whether the actor is the room's customer (False) or an agent taking part in it (True).

    Raises:
        NotRoomMember: neither.
    """
    if room.customer_id == actor.user_id:
        return False
    if await is_room_agent(db, conversation_id=room.conversation_id, user_id=actor.user_id) and await works_at(
        db, level=room.level, conversation_id=room.conversation_id
    ):
        return True
    raise NotRoomMember()


async def authorise_update_room(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, changes: RoomUpdate
) -> RoomPermit:
    """Raises:
    RoomNotFound: not a room the actor sees.
    NotRoomMember: the actor is neither its customer nor an agent taking part in it; or
        the customer sets the priority, which agents set.
    RoomClosed: it is closed.
    """
    room = await access_room(db, actor=actor, conversation_id=conversation_id)
    as_agent = await customer_or_agent(db, actor=actor, room=room)
    if "priority" in changes.changes() and not as_agent:
        raise NotRoomMember("An agent taking part in the room sets its priority.")
    if room.status == "closed":
        raise RoomClosed()
    return RoomPermit(actor=actor, conversation_id=conversation_id)


async def do_update_room(db: AsyncConnection, *, permit: RoomPermit, changes: RoomUpdate) -> RoomOut:
    """Change what was sent (system work); a limit on who takes part is its conversation's
    too. Publishes `support.room.changed`.

    Raises:
        RoomClosed: it closed meanwhile.
        ValidationFailed: a limit below how many take part now.
    """
    room = await load_room(db, conversation_id=permit.conversation_id, lock=True)
    if room.status == "closed":
        raise RoomClosed()
    values = changes.changes()
    if not values:
        return room_out(room)
    if "max_participants" in values:
        await _conversations.set_limit(
            db, conversation_id=room.conversation_id, max_participants=values["max_participants"]
        )
    await db.execute(update(rooms).where(rooms.c.conversation_id == room.conversation_id).values(**values))
    room = await load_room(db, conversation_id=room.conversation_id)
    await announce(db, room=room, type="support.room.changed", actor_id=permit.actor.user_id, fields=sorted(values))
    return room_out(room)


async def authorise_close_room(db: AsyncConnection, *, actor: Actor, conversation_id: UUID) -> RoomPermit:
    """Raises:
    RoomNotFound: not a room the actor sees.
    NotRoomMember: the actor is neither its customer nor an agent taking part in it.
    PermissionRequired: an agent without chat:room:close.
    """
    room = await access_room(db, actor=actor, conversation_id=conversation_id)
    as_agent = await customer_or_agent(db, actor=actor, room=room)
    if as_agent:
        await access_service.require_permission(
            db, actor=actor, permission=CLOSE_PERMISSION, conversation_id=conversation_id
        )
    return RoomPermit(actor=actor, conversation_id=conversation_id)
