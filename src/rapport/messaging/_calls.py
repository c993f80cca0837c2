"""Calls (seed 004): start, ring, join, leave, decline, end, rate; the history of a
conversation's calls with their duration.

The rules live in migration 2026_11_29_0015: who may call (messaging.may_call: whoever may
send), what each person may do to their own row (messaging.guard_call_participant), how the
call follows its people (messaging.follow_call: answered when a second person joins, over
when the last one leaves, declined when everyone rung declines) and who may end it
(messaging.guard_call). This module checks the same things first, for clear errors, and
publishes the events. Every change takes the call's row lock before anything else, so that
changes to one call follow one another (and a person's row is never locked before the call's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable

from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow
from rapport.kernel.errors import constraint_of
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.messaging._refusals import execute
from rapport.messaging.errors import (
    CallInProgress,
    CallNotFound,
    CallNotLive,
    CallNotRinging,
    ConversationNotFound,
    NotAllowed,
    NotInCall,
)
from rapport.messaging.models_calls import LIVE_CALL_STATUSES, CallType, call_participants, calls
from rapport.messaging.schemas_calls import CallOut, CallParticipantOut

# Who may end a call they did not start.
MODERATOR_ROLES = ("owner", "admin", "moderator")

_ROLE = text("SELECT messaging.participant_role(:conversation)")


async def _role(db: AsyncConnection, conversation_id: UUID) -> str:
    """The actor's role in a conversation they take part in.

    Raises:
        ConversationNotFound: missing, or the actor does not take part in it.
    """
    role: str | None = (await db.execute(_ROLE, {"conversation": conversation_id})).scalar_one()
    if role is None:
        raise ConversationNotFound()
    return role


async def _load(db: AsyncConnection, *, conversation_id: UUID, call_id: UUID, lock: bool) -> AnyRow:
    query = select(calls).where(calls.c.conversation_id == conversation_id, calls.c.id == call_id)
    if lock:
        query = query.with_for_update()
    row = (await db.execute(query)).one_or_none()
    if row is None:
        raise CallNotFound()
    return row


async def _own_row(db: AsyncConnection, actor: Actor, call: AnyRow) -> AnyRow | None:
    return (
        await db.execute(
            select(call_participants).where(
                call_participants.c.conversation_id == call.conversation_id,
                call_participants.c.call_id == call.id,
                call_participants.c.user_id == actor.user_id,
            )
        )
    ).one_or_none()


async def _outputs(db: AsyncConnection, actor: Actor, rows: Sequence[AnyRow]) -> list[CallOut]:
    """The calls with their participants, in one query for all of them."""
    if not rows:
        return []
    people: dict[UUID, list[AnyRow]] = {row.id: [] for row in rows}
    found = await db.execute(
        select(call_participants)
        .where(
            call_participants.c.conversation_id == rows[0].conversation_id,
            call_participants.c.call_id.in_(list(people)),
        )
        .order_by(call_participants.c.call_id, call_participants.c.created_at, call_participants.c.user_id)
    )
    for person in found:
        people[person.call_id].append(person)
    return [
        CallOut(
            **row._mapping,
            quality_rating=next((p.quality_rating for p in people[row.id] if p.user_id == actor.user_id), None),
            participants=[CallParticipantOut.model_validate(p._mapping) for p in people[row.id]],
        )
        for row in rows
    ]


async def _output(db: AsyncConnection, actor: Actor, *, conversation_id: UUID, call_id: UUID) -> CallOut:
    (out,) = await _outputs(db, actor, [await _load(db, conversation_id=conversation_id, call_id=call_id, lock=False)])
    return out


async def _announce(db: AsyncConnection, actor: Actor, call: CallOut, *, participant_status: str | None) -> None:
    """call.ended once the call is over (whoever's change ended it), else call.changed."""
    if call.status in LIVE_CALL_STATUSES:
        event = "call.changed"
        payload: dict[str, Any] = {
            "call_id": str(call.id),
            "status": call.status,
            "user_id": str(actor.user_id),
            "participant_status": participant_status,
        }
    else:
        event = "call.ended"
        payload = {"call_id": str(call.id), "status": call.status, "duration_seconds": call.duration_seconds}
    await publish(
        db, scope=Scope.conversation(call.conversation_id), type=event, payload=payload, actor_id=actor.user_id
    )


async def _live_call(db: AsyncConnection, conversation_id: UUID) -> str | None:
    """The id of the conversation's ringing or ongoing call, if it has one."""
    live = (
        await db.execute(
            select(calls.c.id).where(calls.c.conversation_id == conversation_id, calls.c.status.in_(LIVE_CALL_STATUSES))
        )
    ).scalar_one_or_none()
    return None if live is None else str(live)


async def access_call(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, call_id: UUID) -> CallOut:
    """One call of a conversation the actor takes part in.

    Raises:
        ConversationNotFound: missing, or the actor does not take part in it.
        CallNotFound: no such call in this conversation.
    """
    await _role(db, conversation_id)
    return await _output(db, actor, conversation_id=conversation_id, call_id=call_id)


async def list_calls(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, page: PageRequest) -> Page[CallOut]:
    """A conversation's calls, newest first, with their participants and duration.

    Raises:
        ConversationNotFound: missing, or the actor does not take part in it.
        InvalidCursor: a cursor this server did not issue.
    """
    await _role(db, conversation_id)
    rows = (
        await db.execute(keyset(select(calls).where(calls.c.conversation_id == conversation_id), calls.c.id, page))
    ).all()
    return make_page(await _outputs(db, actor, rows), page)


async def do_start_call(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, call_type: CallType) -> CallOut:
    """Start a call: the actor joins it; everyone else who may take part is rung (or, if
    they muted the conversation, invited without ringing). Publishes call.started.

    Raises:
        ConversationNotFound: missing, or the actor does not take part in it.
        ConversationNotActive: the conversation is archived or closed.
        CannotCall: the actor may not send in this conversation, so may not call either.
        CallInProgress: a call is ringing or going on there already (its id in `call_id`).
    """
    await _role(db, conversation_id)
    call_id = uuid7()
    try:
        async with db.begin_nested():
            await execute(
                db,
                insert(calls).values(
                    id=call_id, conversation_id=conversation_id, type=call_type, started_by=actor.user_id
                ),
            )
    except IntegrityError as error:
        if constraint_of(error) != "uq_calls_live":
            raise
        raise CallInProgress(
            "Join the call that is ringing or going on, or wait for it to end.",
            call_id=await _live_call(db, conversation_id),
        ) from None
    out = await _output(db, actor, conversation_id=conversation_id, call_id=call_id)
    await publish(
        db,
        scope=Scope.conversation(conversation_id),
        type="call.started",
        payload={"call_id": str(call_id), "type": call_type, "started_by": str(actor.user_id)},
        actor_id=actor.user_id,
    )
    return out


async def do_join_call(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, call_id: UUID) -> CallOut:
    """Join (or rejoin) a live call; a second person joining answers it. Joining a call one
    is in already changes nothing. Publishes call.changed.

    Raises:
        ConversationNotFound, CallNotFound.
        CallNotLive: the call is over.
        CannotCall: the actor may not send in this conversation, so may not call either.
    """
    await _role(db, conversation_id)
    call = await _load(db, conversation_id=conversation_id, call_id=call_id, lock=True)
    if call.status not in LIVE_CALL_STATUSES:
        raise CallNotLive()
    mine = await _own_row(db, actor, call)
    if mine is not None and mine.status == "joined":
        return await _output(db, actor, conversation_id=conversation_id, call_id=call_id)
    if mine is None:
        # They joined the conversation after the call started: nobody rang them.
        await execute(
            db,
            insert(call_participants).values(
                conversation_id=conversation_id, call_id=call_id, user_id=actor.user_id, status="joined"
            ),
        )
    else:
        await execute(db, _set_own(actor, call, status="joined"))
    out = await _output(db, actor, conversation_id=conversation_id, call_id=call_id)
    await _announce(db, actor, out, participant_status="joined")
    return out


def _set_own(actor: Actor, call: AnyRow, **values: Any) -> Executable:
    return (
        update(call_participants)
        .where(
            call_participants.c.conversation_id == call.conversation_id,
            call_participants.c.call_id == call.id,
            call_participants.c.user_id == actor.user_id,
        )
        .values(**values)
    )


async def do_leave_call(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, call_id: UUID) -> CallOut:
    """Leave a call one has joined. The last person to leave ends it: ended if it was
    answered, missed if not. Publishes call.changed, or call.ended.

    Raises:
        ConversationNotFound, CallNotFound.
        CallNotLive: the call is over.
        NotInCall: the actor is not in the call.
    """
    await _role(db, conversation_id)
    call = await _load(db, conversation_id=conversation_id, call_id=call_id, lock=True)
    if call.status not in LIVE_CALL_STATUSES:
        raise CallNotLive()
    mine = await _own_row(db, actor, call)
    if mine is None or mine.status != "joined":
        raise NotInCall()
    await execute(db, _set_own(actor, call, status="left"))
    out = await _output(db, actor, conversation_id=conversation_id, call_id=call_id)
    await _announce(db, actor, out, participant_status="left")
    return out


async def do_decline_call(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, call_id: UUID) -> CallOut:
    """Decline a call that rings for the actor. When everyone rung has declined and nobody
    but its starter is in it, the call is declined. Publishes call.changed, or call.ended.

    Raises:
        ConversationNotFound, CallNotFound.
        CallNotLive: the call is over.
        CallNotRinging: the actor joined, left or declined it already, or was not rung.
    """
    await _role(db, conversation_id)
    call = await _load(db, conversation_id=conversation_id, call_id=call_id, lock=True)
    if call.status not in LIVE_CALL_STATUSES:
        raise CallNotLive()
    mine = await _own_row(db, actor, call)
    if mine is None or mine.status not in ("ringing", "invited"):
        raise CallNotRinging()
    await execute(db, _set_own(actor, call, status="declined"))
    out = await _output(db, actor, conversation_id=conversation_id, call_id=call_id)
    await _announce(db, actor, out, participant_status="declined")
    return out


async def do_end_call(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, call_id: UUID) -> CallOut:
    """End a call for everyone (its starter, or the conversation's moderators and above):
    ended with its duration if it was answered, missed if not. Publishes call.ended.

    Raises:
        ConversationNotFound, CallNotFound.
        CallNotLive: the call is over already.
        NotAllowed: the actor neither started the call nor moderates the conversation.
    """
    role = await _role(db, conversation_id)
    call = await _load(db, conversation_id=conversation_id, call_id=call_id, lock=True)
    if call.status not in LIVE_CALL_STATUSES:
        raise CallNotLive()
    if call.started_by != actor.user_id and role not in MODERATOR_ROLES:
        raise NotAllowed(
            "Only the person who started the call, or a moderator, ends it for everyone; leave it instead."
        )
    await execute(
        db,
        update(calls).where(calls.c.conversation_id == conversation_id, calls.c.id == call_id).values(status="ended"),
    )
    out = await _output(db, actor, conversation_id=conversation_id, call_id=call_id)
    await _announce(db, actor, out, participant_status=None)
    return out


async def do_rate_call(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, call_id: UUID, quality_rating: int
) -> CallOut:
    """Rate how a call went for the actor (1 to 5), once they have joined it; a new rating
    replaces the last. Ratings are each person's own: nobody is told.

    Raises:
        ConversationNotFound, CallNotFound.
        NotInCall: the actor never joined the call.
    """
    await _role(db, conversation_id)
    call = await _load(db, conversation_id=conversation_id, call_id=call_id, lock=True)
    mine = await _own_row(db, actor, call)
    if mine is None or mine.joined_at is None:
        raise NotInCall("Only those who joined a call rate it.")
    await execute(db, _set_own(actor, call, quality_rating=quality_rating))
    return await _output(db, actor, conversation_id=conversation_id, call_id=call_id)
