"""Blocking: the blocked person is never told. The blocker becomes invisible to them
everywhere, exactly as a private profile is (`social.can_see_profile` asks
`social.blocked_by`), the contact ends both ways, and every domain asks
`social.is_blocked(a, b)` before letting one reach the other (docs/decisions/0009)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.social.errors import CannotTargetSelf, NotBlocked
from rapport.social.models import blocks, contact_requests
from rapport.social.schemas import BlockOut


async def is_blocked(db: AsyncConnection, *, a: UUID, b: UUID) -> bool:
    """Whether either of two people blocks the other (the check every domain uses)."""
    return bool((await db.execute(text("SELECT social.is_blocked(:a, :b)"), {"a": a, "b": b})).scalar_one())


async def do_block(db: AsyncConnection, *, actor: Actor, user_id: UUID, reason: str | None) -> BlockOut:
    """Block someone (again: the first block stands). Ends the contact both ways and
    cancels the actor's own pending request to them.

    Any id is accepted, an account's or not, and answered alike: telling them apart would
    tell a stranger which private accounts exist. Their pending request to the actor
    stays pending, unseen by the actor while the block stands: cancelling it would tell
    them of the block (docs/decisions/0009).

    Raises:
        CannotTargetSelf: blocking oneself.
    """
    # Imported here: _requests imports this module.
    from rapport.social._requests import announce_request

    if user_id == actor.user_id:
        raise CannotTargetSelf("You cannot block yourself.")
    created = await db.execute(
        insert(blocks)
        .values(blocker_id=actor.user_id, blocked_id=user_id, reason=reason)
        .on_conflict_do_nothing(index_elements=[blocks.c.blocker_id, blocks.c.blocked_id])
    )
    await db.execute(text("SELECT social.unpair_contacts(:other)"), {"other": user_id})
    cancelled = await db.execute(
        update(contact_requests)
        .where(
            contact_requests.c.status == "pending",
            contact_requests.c.requester_id == actor.user_id,
            contact_requests.c.addressee_id == user_id,
        )
        .values(status="cancelled", responded_at=func.now())
        .returning(contact_requests)
    )
    # The person blocked hears of the block nothing but what they could read: the
    # actor's request to them cancelled, told exactly as a plain cancellation is.
    for request in cancelled.all():
        await announce_request(
            db, actor=actor, request=request, type="contact_request.cancelled", to=[actor.user_id, user_id]
        )
    if created.rowcount:
        await _announce_block(db, actor=actor, user_id=user_id, type="block.created")
    row = (
        await db.execute(select(blocks).where(blocks.c.blocker_id == actor.user_id, blocks.c.blocked_id == user_id))
    ).one()
    return BlockOut(blocked_id=row.blocked_id, reason=row.reason, created_at=row.created_at)


async def do_unblock(db: AsyncConnection, *, actor: Actor, user_id: UUID) -> None:
    """Raises:
    NotBlocked: the actor has not blocked this person.
    """
    removed = await db.execute(
        delete(blocks).where(blocks.c.blocker_id == actor.user_id, blocks.c.blocked_id == user_id)
    )
    if removed.rowcount == 0:
        raise NotBlocked()
    await _announce_block(db, actor=actor, user_id=user_id, type="block.removed")


async def _announce_block(db: AsyncConnection, *, actor: Actor, user_id: UUID, type: str) -> None:
    """Tell the blocker's own devices, and nobody else: the person blocked is never told."""
    await publish(
        db, scope=Scope.user(actor.user_id), type=type, payload={"blocked_id": str(user_id)}, actor_id=actor.user_id
    )


async def list_blocks(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[BlockOut]:
    query = keyset(select(blocks).where(blocks.c.blocker_id == actor.user_id), blocks.c.blocked_id, page)
    rows = (await db.execute(query)).all()
    items = [BlockOut(blocked_id=r.blocked_id, reason=r.reason, created_at=r.created_at) for r in rows]
    return make_page(items, page, id_of=lambda item: item.blocked_id)
