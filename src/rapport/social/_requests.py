"""Contact requests: ask, accept, reject, cancel. Two people who ask each other become
contacts at once (004's mutual auto-accept)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal
from uuid import UUID

from sqlalchemy import and_, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.social._blocks import is_blocked
from rapport.social.errors import (
    AlreadyContacts,
    CannotTargetSelf,
    ContactRequestNotAllowed,
    ContactRequestNotFound,
    NotYourRequestToAnswer,
    NotYourRequestToCancel,
    RequestAlreadyPending,
    RequestNotPending,
    UserNotFound,
)
from rapport.social.models import blocks, contact_requests, profiles
from rapport.social.schemas import ContactRequestOut, ContactRequestStatus


def _out(row: AnyRow) -> ContactRequestOut:
    return ContactRequestOut.model_validate(row._mapping)


async def announce_request(
    db: AsyncConnection, *, actor: Actor, request: AnyRow, type: str, to: Iterable[UUID]
) -> None:
    """Tell these people's devices of a change to a contact request, in the transaction of
    the change. Both people see a request and its status (the policy
    contact_requests_parties), so each hears of what they could read anyway: a rejection
    reaches the requester, whose outgoing list shows it."""
    payload = {
        "request_id": str(request.id),
        "requester_id": str(request.requester_id),
        "addressee_id": str(request.addressee_id),
        "status": request.status,
    }
    for user_id in to:
        await publish(db, scope=Scope.user(user_id), type=type, payload=payload, actor_id=actor.user_id)


async def are_contacts(db: AsyncConnection, *, a: UUID, b: UUID) -> bool:
    return bool((await db.execute(text("SELECT social.are_contacts(:a, :b)"), {"a": a, "b": b})).scalar_one())


async def do_request_contact(
    db: AsyncConnection, *, actor: Actor, user_id: UUID, message: str | None
) -> ContactRequestOut:
    """Ask someone to become a contact. If they already asked the actor, both become
    contacts at once and their request comes back accepted.

    Raises:
        CannotTargetSelf: asking oneself.
        UserNotFound: no such account, or its profile is invisible to the actor (which
            includes someone who blocks the actor: they are told nothing more).
        ContactRequestNotAllowed: the actor blocks this person.
        AlreadyContacts: each is in the other's contacts already.
        RequestAlreadyPending: the actor's earlier request is still pending.
    """
    if user_id == actor.user_id:
        raise CannotTargetSelf("You cannot send yourself a contact request.")
    theirs = (
        await db.execute(
            select(contact_requests)
            .where(
                contact_requests.c.requester_id == user_id,
                contact_requests.c.addressee_id == actor.user_id,
                contact_requests.c.status == "pending",
            )
            .with_for_update()
        )
    ).one_or_none()
    # Someone who asked the actor is known to them, whatever their profile shows.
    if theirs is None:
        visible = (await db.execute(select(profiles.c.user_id).where(profiles.c.user_id == user_id))).one_or_none()
        if visible is None:
            raise UserNotFound()
    if await is_blocked(db, a=actor.user_id, b=user_id):
        raise ContactRequestNotAllowed()
    # Both ways: a contact linked by e-mail is in one list only until a request pairs them.
    if await are_contacts(db, a=actor.user_id, b=user_id) and await are_contacts(db, a=user_id, b=actor.user_id):
        raise AlreadyContacts()
    if theirs is not None:
        return await _accept(db, actor=actor, request_id=theirs.id)
    existing = (
        await db.execute(
            select(contact_requests.c.id).where(
                contact_requests.c.requester_id == actor.user_id,
                contact_requests.c.addressee_id == user_id,
                contact_requests.c.status == "pending",
            )
        )
    ).one_or_none()
    if existing is not None:
        raise RequestAlreadyPending()
    row = (
        await db.execute(
            contact_requests.insert()
            .values(id=uuid7(), requester_id=actor.user_id, addressee_id=user_id, message=message)
            .returning(contact_requests)
        )
    ).one()
    await announce_request(db, actor=actor, request=row, type="contact_request.received", to=[user_id])
    await announce_request(db, actor=actor, request=row, type="contact_request.sent", to=[actor.user_id])
    return _out(row)


async def do_answer_request(
    db: AsyncConnection, *, actor: Actor, request_id: UUID, answer: Literal["accept", "reject", "cancel"]
) -> ContactRequestOut:
    """Accept or reject a request made to the actor, or cancel one the actor made.

    Raises:
        ContactRequestNotFound: no such request between the actor and someone.
        NotYourRequestToAnswer: accepting or rejecting one's own request.
        NotYourRequestToCancel: cancelling a request someone else made.
        RequestNotPending: the request was already answered or cancelled.
        ContactRequestNotAllowed: accepting across a block.
    """
    request = (
        await db.execute(select(contact_requests).where(contact_requests.c.id == request_id).with_for_update())
    ).one_or_none()
    if request is None:
        raise ContactRequestNotFound()
    if answer == "cancel" and request.requester_id != actor.user_id:
        raise NotYourRequestToCancel()
    if answer != "cancel" and request.addressee_id != actor.user_id:
        raise NotYourRequestToAnswer()
    if request.status != "pending":
        raise RequestNotPending()
    if answer == "accept":
        if await is_blocked(db, a=request.requester_id, b=request.addressee_id):
            raise ContactRequestNotAllowed()
        return await _accept(db, actor=actor, request_id=request_id)
    status: ContactRequestStatus = "rejected" if answer == "reject" else "cancelled"
    row = (
        await db.execute(
            update(contact_requests)
            .where(contact_requests.c.id == request_id)
            .values(status=status, responded_at=func.now())
            .returning(contact_requests)
        )
    ).one()
    await announce_request(
        db, actor=actor, request=row, type=f"contact_request.{status}", to=[row.requester_id, row.addressee_id]
    )
    return _out(row)


async def list_requests(
    db: AsyncConnection,
    *,
    actor: Actor,
    direction: Literal["incoming", "outgoing"],
    status: ContactRequestStatus | None,
    page: PageRequest,
) -> Page[ContactRequestOut]:
    side = contact_requests.c.addressee_id if direction == "incoming" else contact_requests.c.requester_id
    conditions = [side == actor.user_id]
    if status is not None:
        conditions.append(contact_requests.c.status == status)
    if direction == "incoming":
        # A pending request from someone the actor blocks waits unseen (cancelling it
        # would tell its sender of the block); it shows again if the block is lifted.
        conditions.append(
            ~(
                (contact_requests.c.status == "pending")
                & contact_requests.c.requester_id.in_(
                    select(blocks.c.blocked_id).where(blocks.c.blocker_id == actor.user_id)
                )
            )
        )
    query = keyset(select(contact_requests).where(and_(*conditions)), contact_requests.c.id, page)
    return make_page([_out(row) for row in (await db.execute(query)).all()], page)


async def _accept(db: AsyncConnection, *, actor: Actor, request_id: UUID) -> ContactRequestOut:
    row = (
        await db.execute(
            update(contact_requests)
            .where(contact_requests.c.id == request_id)
            .values(status="accepted", responded_at=func.now())
            .returning(contact_requests)
        )
    ).one()
    await db.execute(text("SELECT social.pair_contacts(:a, :b)"), {"a": row.requester_id, "b": row.addressee_id})
    await announce_request(
        db, actor=actor, request=row, type="contact_request.accepted", to=[row.requester_id, row.addressee_id]
    )
    return _out(row)
