"""Escalations (seed 003): a room goes up a level, T1 -> T2 -> T3 -> manager, either in
place (`same_room`: the room's level rises) or into a new `escalated` room below it
(`new_room`: the customer is brought along). Then: created -> assigned (to an agent of the
level or higher, who joins the room) -> in_progress (the assignee starts) -> resolved
(with notes), or cancelled from any of those. Any other step is a 409 naming the status.

As for rooms, who may is checked in the caller's transaction (`authorise_*`), and the
change is system work under the escalation's lock (`do_*`), which checks the status again.
Each step publishes `support.escalation.<step>` to the room it is worked in, and an
assignment to the assignee too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.access import service as access_service
from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.modules.support import _conversations
from rapport.modules.support._levels import holds_level, rank, require_level
from rapport.modules.support._rooms import ROOM_NAME, access_room, announce, enrol_agent, load_room
from rapport.modules.support.errors import (
    AssigneeNotAgent,
    EscalationNotFound,
    EscalationNotUpward,
    IllegalTransition,
    NotAssignee,
    RoomClosed,
)
from rapport.modules.support.models import OPEN_ESCALATION, EscalationStatus, escalations, rooms
from rapport.modules.support.schemas import EscalationCreate, EscalationOut

CREATE_PERMISSION = "chat:escalation:create"
ASSIGN_PERMISSION = "chat:escalation:assign"
RESOLVE_PERMISSION = "chat:escalation:resolve"

Step = Literal["assign", "start", "resolve", "cancel"]

# The statuses each step starts from, and the status it leaves.
_STEPS: dict[Step, tuple[tuple[EscalationStatus, ...], EscalationStatus]] = {
    "assign": (("created", "assigned"), "assigned"),
    "start": (("assigned",), "in_progress"),
    "resolve": (("in_progress",), "resolved"),
    "cancel": (OPEN_ESCALATION, "cancelled"),
}
# How a step is named in a refusal and in its event's type.
_DONE: dict[Step, str] = {"assign": "assigned", "start": "started", "resolve": "resolved", "cancel": "cancelled"}


@dataclass(frozen=True)
class EscalatePermit:
    actor: Actor
    conversation_id: UUID


@dataclass(frozen=True)
class StepPermit:
    actor: Actor
    escalation_id: UUID
    step: Step
    assignee_id: UUID | None = None


def _query() -> Select[Any]:
    room_id = func.coalesce(escalations.c.target_room_id, escalations.c.source_room_id).label("room_id")
    return select(escalations, room_id)


def _out(row: AnyRow) -> EscalationOut:
    return EscalationOut.model_validate(row._mapping)


async def _load(db: AsyncConnection, *, escalation_id: UUID, lock: bool = False) -> AnyRow:
    query = _query().where(escalations.c.id == escalation_id)
    if lock:
        query = query.with_for_update(of=escalations)
    row: AnyRow | None = (await db.execute(query)).one_or_none()
    if row is None:
        raise EscalationNotFound()
    return row


async def access_escalation(db: AsyncConnection, *, actor: Actor, escalation_id: UUID) -> AnyRow:
    """An escalation the actor sees: theirs (made or assigned), one of a level they work,
    or any to a supervisor.

    Raises:
        EscalationNotFound: missing, or not one the actor may see.
    """
    return await _load(db, escalation_id=escalation_id)


async def get_escalation(db: AsyncConnection, *, actor: Actor, escalation_id: UUID) -> EscalationOut:
    """Raises:
    EscalationNotFound: missing, or not one the actor may see.
    """
    return _out(await access_escalation(db, actor=actor, escalation_id=escalation_id))


async def list_escalations(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, page: PageRequest
) -> Page[EscalationOut]:
    """The escalations of a room the actor sees (those they may see), newest first.

    Raises:
        RoomNotFound: not a room the actor sees.
    """
    await access_room(db, actor=actor, conversation_id=conversation_id)
    query = _query().where(escalations.c.source_room_id == conversation_id)
    rows = (await db.execute(keyset(query, escalations.c.id, page))).all()
    return make_page([_out(row) for row in rows], page)


async def _announce(db: AsyncConnection, *, row: AnyRow, step: str, actor_id: UUID | None) -> None:
    payload: dict[str, Any] = {
        "escalation_id": str(row.id),
        "room_id": str(row.room_id),
        "source_room_id": str(row.source_room_id),
        "status": row.status,
        "to_level": row.to_level,
        "priority": row.priority,
        "assigned_to": str(row.assigned_to) if row.assigned_to else None,
    }
    event = f"support.escalation.{step}"
    await publish(db, scope=Scope.conversation(row.room_id), type=event, payload=payload, actor_id=actor_id)
    if row.source_room_id != row.room_id:
        await publish(db, scope=Scope.conversation(row.source_room_id), type=event, payload=payload, actor_id=actor_id)
    if step == "assigned" and row.assigned_to is not None:
        await publish(db, scope=Scope.user(row.assigned_to), type=event, payload=payload, actor_id=actor_id)


# --- escalating ---------------------------------------------------------------------------


def _upward(room: AnyRow, body: EscalationCreate) -> None:
    if room.status == "closed":
        raise RoomClosed()
    if rank(body.to_level) <= rank(room.level):
        raise EscalationNotUpward(room.level, body.to_level)


async def authorise_escalate(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, body: EscalationCreate
) -> EscalatePermit:
    """Raises:
    RoomNotFound: not a room the actor sees.
    PermissionRequired: the actor lacks chat:escalation:create.
    RoomClosed: the room is closed.
    EscalationNotUpward: the level is not above the room's.
    """
    room = await access_room(db, actor=actor, conversation_id=conversation_id)
    await access_service.require_permission(
        db, actor=actor, permission=CREATE_PERMISSION, conversation_id=conversation_id
    )
    _upward(room, body)
    return EscalatePermit(actor=actor, conversation_id=conversation_id)


async def do_escalate(db: AsyncConnection, *, permit: EscalatePermit, body: EscalationCreate) -> EscalationOut:
    """Escalate the room (system work), status created. `new_room` opens an escalated room
    below it, at the new level, with its customer in it; `same_room` raises the room's
    level (and sets its priority). Publishes `support.escalation.created`, and
    `support.room.opened` for a new room.

    Raises:
        RoomClosed, EscalationNotUpward: the room changed meanwhile.
    """
    source = await load_room(db, conversation_id=permit.conversation_id, lock=True)
    _upward(source, body)
    actor_id = permit.actor.user_id
    priority = body.priority if body.priority is not None else source.priority
    target_id: UUID | None = None
    if body.mode == "new_room":
        conversation = await _conversations.open_conversation(
            db,
            type="escalated",
            creator_id=actor_id,
            name=source.issue_id or ROOM_NAME,
            description=source.issue_description,
            parent_id=source.conversation_id,
            members=[(source.customer_id, "member")] if source.customer_id else [],
        )
        target_id = conversation.id
        await db.execute(
            insert(rooms).values(
                conversation_id=target_id,
                customer_id=source.customer_id,
                issue_id=source.issue_id,
                issue_description=source.issue_description,
                level=body.to_level,
                priority=priority,
                guests_allowed=source.guests_allowed,
                escalated_from=source.conversation_id,
            )
        )
        await announce(
            db, room=await load_room(db, conversation_id=target_id), type="support.room.opened", actor_id=actor_id
        )
    else:
        await db.execute(
            update(rooms)
            .where(rooms.c.conversation_id == source.conversation_id)
            .values(level=body.to_level, priority=priority)
        )
    escalation_id = uuid7()
    await db.execute(
        insert(escalations).values(
            id=escalation_id,
            source_room_id=source.conversation_id,
            target_room_id=target_id,
            mode=body.mode,
            reason=body.reason,
            from_level=source.level,
            to_level=body.to_level,
            priority=priority,
            created_by=actor_id,
        )
    )
    row = await _load(db, escalation_id=escalation_id)
    await _announce(db, row=row, step="created", actor_id=actor_id)
    return _out(row)


# --- its steps ---------------------------------------------------------------------------


def _check_status(row: AnyRow, step: Step) -> None:
    allowed, _ = _STEPS[step]
    if row.status not in allowed:
        raise IllegalTransition(status=row.status, step=_DONE[step])


async def authorise_step(
    db: AsyncConnection, *, actor: Actor, escalation_id: UUID, step: Step, assignee_id: UUID | None = None
) -> StepPermit:
    """Who may take each step: assigning needs chat:escalation:assign (and, for oneself,
    working the escalation's level); starting is the assignee's; resolving the assignee's,
    with chat:escalation:resolve; cancelling its creator's or an assigner's.

    Raises:
        EscalationNotFound: not one the actor sees.
        IllegalTransition: its status does not allow the step.
        PermissionRequired: the actor lacks the step's permission.
        LevelRequired: assigning to oneself below the escalation's level.
        NotAssignee: starting or resolving someone else's.
    """
    row = await access_escalation(db, actor=actor, escalation_id=escalation_id)
    _check_status(row, step)
    me = actor.user_id
    if step == "assign":
        await access_service.require_permission(
            db, actor=actor, permission=ASSIGN_PERMISSION, conversation_id=row.room_id
        )
        if assignee_id is None or assignee_id == me:
            await require_level(db, level=row.to_level, conversation_id=row.room_id)
            assignee_id = me
    elif step in ("start", "resolve"):
        if row.assigned_to != me:
            raise NotAssignee()
        if step == "resolve":
            await access_service.require_permission(
                db, actor=actor, permission=RESOLVE_PERMISSION, conversation_id=row.room_id
            )
    elif row.created_by != me:
        await access_service.require_permission(
            db, actor=actor, permission=ASSIGN_PERMISSION, conversation_id=row.room_id
        )
    return StepPermit(actor=actor, escalation_id=escalation_id, step=step, assignee_id=assignee_id)


async def do_step(db: AsyncConnection, *, permit: StepPermit, notes: str | None = None) -> EscalationOut:
    """Take the step (system work), under the escalation's lock: assigned (the assignee
    joins the room), in_progress, resolved (with `notes`) or cancelled.

    Raises:
        IllegalTransition: its status changed meanwhile and no longer allows it.
        AssigneeNotAgent: the assignee works no queue of the escalation's level or above.
        NotAssignee: it was given to someone else meanwhile.
        RoomClosed: assigning in a closed room.
    """
    row = await _load(db, escalation_id=permit.escalation_id, lock=True)
    _check_status(row, permit.step)
    actor_id = permit.actor.user_id
    _, status = _STEPS[permit.step]
    values: dict[str, Any] = {"status": status}
    if permit.step == "assign":
        assignee = permit.assignee_id or actor_id
        if assignee != actor_id and not await holds_level(
            db, user_id=assignee, level=row.to_level, conversation_id=row.room_id
        ):
            raise AssigneeNotAgent(f"The assignee works no queue of level {row.to_level} or above.")
        room = await load_room(db, conversation_id=row.room_id, lock=True)
        if room.status == "closed":
            raise RoomClosed()
        await enrol_agent(db, room=room, agent_id=assignee)
        values.update(assigned_to=assignee, assigned_at=func.now())
    elif permit.step in ("start", "resolve") and row.assigned_to != actor_id:
        raise NotAssignee()
    if permit.step == "start":
        values["started_at"] = func.now()
    elif permit.step == "resolve":
        values.update(resolved_at=func.now(), resolution_notes=notes)
    elif permit.step == "cancel":
        values["cancelled_at"] = func.now()
    await db.execute(update(escalations).where(escalations.c.id == row.id).values(**values))
    row = await _load(db, escalation_id=row.id)
    await _announce(db, row=row, step=_DONE[permit.step], actor_id=actor_id)
    return _out(row)


# --- when the room closes ----------------------------------------------------------------


async def cancel_open_escalations(
    db: AsyncConnection, *, conversation_id: UUID, actor_id: UUID | None, notes: str
) -> list[EscalationOut]:
    """Cancel, with `notes`, the open escalations worked in a room that is closing (system
    work): its own raised in place, and the one that opened it if it is an escalated room.
    An escalated room it opened goes on with its own. Publishes `support.escalation.cancelled`
    for each, oldest first."""
    worked_here = func.coalesce(escalations.c.target_room_id, escalations.c.source_room_id) == conversation_id
    open_ids = (
        await db.execute(
            select(escalations.c.id)
            .where(worked_here, escalations.c.status.in_(OPEN_ESCALATION))
            .order_by(escalations.c.id)
            .with_for_update()
        )
    ).scalars()
    cancelled: list[EscalationOut] = []
    for escalation_id in list(open_ids):
        await db.execute(
            update(escalations)
            .where(escalations.c.id == escalation_id)
            .values(status="cancelled", cancelled_at=func.now(), resolution_notes=notes)
        )
        row = await _load(db, escalation_id=escalation_id)
        await _announce(db, row=row, step=_DONE["cancel"], actor_id=actor_id)
        cancelled.append(_out(row))
    return cancelled
