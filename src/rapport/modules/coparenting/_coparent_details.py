"""The details kept about a contact who is the other parent or a partner (seed 000
contacts' extended fields: separation details, partner relationship info): sensitive,
their keeper's alone, every read and write recorded, as a child's details are."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.modules.coparenting import models_family as m
from rapport.modules.coparenting import schemas_family as s
from rapport.modules.coparenting._children import Details, do_delete_details, do_put_details, get_details
from rapport.modules.coparenting.errors import NotACoparent

COPARENT = Details(
    m.coparent_details, s.CoparentDetailsIn, s.CoparentDetailsOut, s.COPARENT_RELATIONSHIPS, NotACoparent
)


async def get_coparent_details(db: AsyncConnection, *, actor: Actor, contact_id: UUID) -> BaseModel:
    """A co-parent's or partner's details; the read is recorded.

    Raises:
        ContactNotFound: not in the actor's list.
        NotACoparent: the contact's relationship is not a co-parent's or partner's.
    """
    return await get_details(db, actor=actor, contact_id=contact_id, details=COPARENT)


async def do_put_coparent_details(
    db: AsyncConnection, *, actor: Actor, contact_id: UUID, values: s.CoparentDetailsIn
) -> BaseModel:
    """Replace a co-parent's or partner's details (fields left out are cleared).

    Raises:
        ContactNotFound: not in the actor's list.
        NotACoparent: the contact's relationship is not a co-parent's or partner's.
    """
    return await do_put_details(db, actor=actor, contact_id=contact_id, details=COPARENT, values=values)


async def do_delete_coparent_details(db: AsyncConnection, *, actor: Actor, contact_id: UUID) -> None:
    """Erase a co-parent's or partner's details.

    Raises:
        ContactNotFound: not in the actor's list.
    """
    await do_delete_details(db, actor=actor, contact_id=contact_id, details=COPARENT)
