"""Tasks (seed 000 tasks): status, priority, type, due date, assignee and the people they
are about, shared by everyone taking part in the task's room (the parents' shared room),
with a reminder when they fall due.

Who sees and changes a task is row-level security's decision (migration
2026_11_30_0029): its creator, and the participants of its room. Each change publishes
an event to the room (or to the creator, for a task of their own), so that the other
parent hears of it; a due task's reminder is a job queued for its due date, which
publishes a `reminder.due` event to the person who has to do it, which notifications turn
into a notification."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel import jobs
from rapport.kernel.actor import Actor
from rapport.kernel.db import SystemEngine, system_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.messaging import service as messaging_service
from rapport.modules.coparenting import models_family as m
from rapport.modules.coparenting import schemas_family as s
from rapport.modules.coparenting.errors import InvalidAssignee, TaskNotFound
from rapport.social import service as social_service

# Every role that acts in a conversation: observers read its tasks but change none.
_ACTING_ROLES = ("owner", "admin", "moderator", "member", "guest")
_OPEN = ("open", "in_progress")
_PARTICIPANTS_PAGE = 100
# The event notifications turn into a reminder (rapport.notifications._rules).
TASK_DUE_EVENT = "reminder.due"
# The queue of the reminders (kernel.jobs): the module's, as its learning jobs'.
QUEUE = "coparenting"

t = m.tasks
p = m.task_people


async def _related(db: AsyncConnection, task_ids: list[UUID]) -> dict[UUID, list[s.RelatedPerson]]:
    found: dict[UUID, list[s.RelatedPerson]] = {task_id: [] for task_id in task_ids}
    if task_ids:
        rows = await db.execute(select(p).where(p.c.task_id.in_(task_ids)).order_by(p.c.task_id, p.c.created_at))
        for row in rows:
            found[row.task_id].append(s.RelatedPerson(contact_id=row.contact_id, name=row.name, added_by=row.user_id))
    return found


def _out(row: Any, related: list[s.RelatedPerson]) -> s.TaskOut:
    return s.TaskOut.model_validate({**row._mapping, "related_people": related})


async def _task_row(db: AsyncConnection, task_id: UUID, *, lock: bool = False) -> Any:
    query = select(t).where(t.c.id == task_id)
    if lock:
        query = query.with_for_update()
    row = (await db.execute(query)).one_or_none()
    if row is None:
        raise TaskNotFound()
    return row


async def access_task(db: AsyncConnection, *, actor: Actor, task_id: UUID) -> s.TaskOut:
    """A task the actor made or shares through its room.

    Raises:
        TaskNotFound: missing, or not shared with the actor.
    """
    row = await _task_row(db, task_id)
    return _out(row, (await _related(db, [task_id]))[task_id])


async def list_tasks(
    db: AsyncConnection,
    *,
    actor: Actor,
    page: PageRequest,
    conversation_id: UUID | None = None,
    status: s.TaskStatus | None = None,
    assigned_to_me: bool = False,
) -> Page[s.TaskOut]:
    """The tasks the actor sees (their own and their rooms'), or one room's, newest first.

    Raises:
        ConversationNotFound: `conversation_id` is not a room the actor takes part in.
    """
    query = select(t)
    if conversation_id is not None:
        await messaging_service.access_conversation(db, actor=actor, conversation_id=conversation_id)
        query = query.where(t.c.conversation_id == conversation_id)
    if status is not None:
        query = query.where(t.c.status == status)
    if assigned_to_me:
        query = query.where(t.c.assignee_id == actor.user_id)
    rows = (await db.execute(keyset(query, t.c.id, page))).all()
    related = await _related(db, [row.id for row in rows])
    return make_page([_out(row, related[row.id]) for row in rows], page)


async def _check_assignee(
    db: AsyncConnection, *, actor: Actor, creator_id: UUID, conversation_id: UUID | None, assignee_id: UUID
) -> None:
    if assignee_id in (actor.user_id, creator_id):
        return
    if conversation_id is not None:
        request = PageRequest(limit=_PARTICIPANTS_PAGE, after_id=None)
        while True:
            found = await messaging_service.list_participants(
                db, actor=actor, conversation_id=conversation_id, status=None, page=request
            )
            if any(person.user_id == assignee_id and person.role != "observer" for person in found.items):
                return
            if found.next is None:
                break
            request = PageRequest(limit=_PARTICIPANTS_PAGE, after_id=found.items[-1].user_id)
    raise InvalidAssignee()


async def _add_people(db: AsyncConnection, *, actor: Actor, task_id: UUID, contact_ids: list[UUID]) -> None:
    for contact_id in dict.fromkeys(contact_ids):
        contact = await social_service.access_contact(db, actor=actor, contact_id=contact_id)
        name = " ".join(part for part in (contact.first_name, contact.last_name) if part) or contact.nickname
        await db.execute(
            insert(p).values(
                task_id=task_id, contact_id=contact_id, user_id=actor.user_id, name=(name or contact.email)[:201]
            )
        )


def _scope(row: Any) -> Scope:
    return Scope.conversation(row.conversation_id) if row.conversation_id else Scope.user(row.user_id)


async def _publish(db: AsyncConnection, *, actor: Actor, row: Any, type: str, **payload: Any) -> None:
    await publish(
        db,
        scope=_scope(row),
        type=type,
        payload={"task_id": str(row.id), **payload},
        actor_id=actor.user_id,
    )


async def _schedule_reminder(db: AsyncConnection, row: Any) -> None:
    if row.due_date is not None and row.status in _OPEN:
        payload = {"task_id": str(row.id), "due": row.due_date.isoformat()}
        await jobs.enqueue(db, task_reminder, payload, run_at=row.due_date)


async def do_create_task(db: AsyncConnection, *, actor: Actor, task: s.TaskCreate) -> s.TaskOut:
    """Make a task, the actor's own or shared in a room they act in; its reminder is
    queued for its due date.

    Raises:
        ConversationNotFound: the room is not one the actor takes part in.
        NotAllowed: the actor only observes the room.
        InvalidAssignee: the assignee is neither the actor nor acting in the room.
        ContactNotFound: a related person is not in the actor's contacts.
    """
    if task.conversation_id is not None:
        await messaging_service.access_conversation(
            db, actor=actor, conversation_id=task.conversation_id, roles=_ACTING_ROLES
        )
    if task.assignee_id is not None:
        await _check_assignee(
            db,
            actor=actor,
            creator_id=actor.user_id,
            conversation_id=task.conversation_id,
            assignee_id=task.assignee_id,
        )
    values = task.model_dump(exclude={"related_contact_ids"})
    row = (await db.execute(insert(t).values(id=uuid7(), user_id=actor.user_id, **values).returning(t))).one()
    await _add_people(db, actor=actor, task_id=row.id, contact_ids=task.related_contact_ids)
    await _schedule_reminder(db, row)
    await _publish(db, actor=actor, row=row, type="coparenting.task.created")
    return _out(row, (await _related(db, [row.id]))[row.id])


async def do_update_task(db: AsyncConnection, *, actor: Actor, task_id: UUID, changes: s.TaskUpdate) -> s.TaskOut:
    """Change the fields sent. Completing a task stamps completed_at (reopening clears
    it); a new due date is reminded of again.

    Raises:
        TaskNotFound: missing, or not shared with the actor.
        NotAllowed: the actor only observes the task's room.
        InvalidAssignee: the assignee is neither the task's creator nor acting in its room.
    """
    current = await _task_row(db, task_id, lock=True)
    await _check_acting(db, actor=actor, row=current)
    values: dict[str, Any] = changes.changes()
    if not values:
        return await access_task(db, actor=actor, task_id=task_id)
    if values.get("assignee_id") is not None:
        await _check_assignee(
            db,
            actor=actor,
            creator_id=current.user_id,
            conversation_id=current.conversation_id,
            assignee_id=values["assignee_id"],
        )
    if "status" in values and values["status"] != current.status:
        values["completed_at"] = func.now() if values["status"] == "completed" else None
    if "due_date" in values and values["due_date"] != current.due_date:
        values["reminded_at"] = None
    row = (await db.execute(update(t).where(t.c.id == task_id).values(**values).returning(t))).one()
    rescheduled = "due_date" in values and values["due_date"] != current.due_date
    reopened = current.status not in _OPEN and row.status in _OPEN
    if (rescheduled or reopened) and row.reminded_at is None:
        await _schedule_reminder(db, row)
    await _publish(db, actor=actor, row=row, type="coparenting.task.changed", changed=sorted(changes.changes()))
    return _out(row, (await _related(db, [row.id]))[row.id])


async def _check_acting(db: AsyncConnection, *, actor: Actor, row: Any) -> None:
    """Raises NotAllowed when the actor only observes the task's room (its creator always acts)."""
    if row.conversation_id is not None and row.user_id != actor.user_id:
        await messaging_service.access_conversation(
            db, actor=actor, conversation_id=row.conversation_id, roles=_ACTING_ROLES
        )


async def do_delete_task(db: AsyncConnection, *, actor: Actor, task_id: UUID) -> None:
    """Remove a task for everyone who shares it.

    Raises:
        TaskNotFound: missing, or not shared with the actor.
        NotAllowed: the actor only observes the task's room.
    """
    row = await _task_row(db, task_id, lock=True)
    await _check_acting(db, actor=actor, row=row)
    await db.execute(delete(t).where(t.c.id == task_id))
    await _publish(db, actor=actor, row=row, type="coparenting.task.deleted")


async def do_add_related_person(db: AsyncConnection, *, actor: Actor, task_id: UUID, contact_id: UUID) -> s.TaskOut:
    """Say that a task is about one of the actor's contacts (again: nothing changes).
    Those sharing the task see the contact's name as it is now, never the contact.

    Raises:
        TaskNotFound: missing, or not shared with the actor.
        NotAllowed: the actor only observes the task's room.
        ContactNotFound: not in the actor's contacts.
    """
    row = await _task_row(db, task_id)
    await _check_acting(db, actor=actor, row=row)
    known = (
        await db.execute(select(p.c.contact_id).where(p.c.task_id == task_id, p.c.contact_id == contact_id))
    ).first()
    if known is None:
        await _add_people(db, actor=actor, task_id=task_id, contact_ids=[contact_id])
        await _publish(db, actor=actor, row=row, type="coparenting.task.changed", changed=["related_people"])
    return await access_task(db, actor=actor, task_id=task_id)


async def do_remove_related_person(db: AsyncConnection, *, actor: Actor, task_id: UUID, contact_id: UUID) -> s.TaskOut:
    """Raises:
    TaskNotFound: missing, or not shared with the actor.
    NotAllowed: the actor only observes the task's room.
    """
    row = await _task_row(db, task_id)
    await _check_acting(db, actor=actor, row=row)
    removed = await db.execute(delete(p).where(p.c.task_id == task_id, p.c.contact_id == contact_id))
    if removed.rowcount:
        await _publish(db, actor=actor, row=row, type="coparenting.task.changed", changed=["related_people"])
    return await access_task(db, actor=actor, task_id=task_id)


async def send_due_reminder(engine: SystemEngine, *, task_id: UUID, due: datetime) -> bool:
    """A reminder is for the current due date only: a task rescheduled, done or already
    reminded of is left alone (the job runs at least once, perhaps twice).

    Mark a task reminded of and publish `reminder.due` to its assignee (or,
    when nobody is, to its creator), when it is still open and due at `due`. Returns
    whether a reminder went out."""
    async with system_transaction(engine) as db:
        row = (
            await db.execute(
                update(t)
                .where(t.c.id == task_id, t.c.due_date == due, t.c.status.in_(_OPEN), t.c.reminded_at.is_(None))
                .values(reminded_at=func.now())
                .returning(t)
            )
        ).one_or_none()
        if row is None:
            return False
        recipient = row.assignee_id or row.user_id
        await publish(
            db,
            scope=Scope.user(recipient),
            type=TASK_DUE_EVENT,
            # The notifications' generic reminder: a headline and detail the recipient may read.
            payload={
                "task_id": str(row.id),
                "conversation_id": str(row.conversation_id) if row.conversation_id else None,
                "due_date": row.due_date.isoformat(),
                "headline": f"Task due: {row.title}",
                "detail": f"Due {row.due_date:%Y-%m-%d %H:%M} UTC.",
                "related_kind": "task",
                "related_id": str(row.id),
                "url": f"/coparenting/tasks/{row.id}",
            },
            actor_id=None,
        )
    return True


@jobs.tasks.task("coparenting.task_reminder", queue=QUEUE, max_attempts=5, timeout_seconds=60)
async def task_reminder(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    await send_due_reminder(
        ctx.runtime.system_engine, task_id=UUID(payload["task_id"]), due=datetime.fromisoformat(payload["due"])
    )
