"""The details kept about a contact who is a child (seed 000 contacts' extended fields:
health, activities, appointments), and the machinery the co-parent's details share.

Both are sensitive: only the contact's owner reads or writes them. Writes are recorded by
trigger (audit.record_sensitive_write), whatever path they take; reads cannot be seen by
a trigger, so every function here that returns details records the read through
`audit.record_sensitive_access` in the same transaction, as social's health part does."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import RowMapping, Table, Text, bindparam, delete, select, text
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.errors import Conflict
from rapport.modules.coparenting import models_family as m
from rapport.modules.coparenting import schemas_family as s
from rapport.modules.coparenting.errors import NotAChild
from rapport.social import service as social_service

_RECORD_READ = text("SELECT audit.record_sensitive_access(:subject, :table_name, 'read', :fields)").bindparams(
    bindparam("fields", type_=ARRAY(Text))
)


def relationship_key(relationship: str | None) -> str:
    """A contact's relationship as the lists of schemas_family compare it."""
    return " ".join((relationship or "").lower().replace("-", " ").replace("_", " ").split())


@dataclass(frozen=True)
class Details:
    """One kind of details kept about a contact: its table, shapes, and the relationships
    that admit it."""

    table: Table
    request: type[BaseModel]
    response: type[BaseModel]
    relationships: Collection[str]
    refusal: Callable[[], Conflict]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.request.model_fields)


CHILD = Details(m.child_details, s.ChildDetailsIn, s.ChildDetailsOut, s.CHILD_RELATIONSHIPS, NotAChild)


async def _access(db: AsyncConnection, *, actor: Actor, contact_id: UUID, details: Details) -> None:
    """Raises:
    ContactNotFound: not in the actor's list.
    NotAChild / NotACoparent: the contact's relationship does not admit these details.
    """
    contact = await social_service.access_contact(db, actor=actor, contact_id=contact_id)
    if relationship_key(contact.relationship) not in details.relationships:
        raise details.refusal()


async def _load(db: AsyncConnection, details: Details, contact_id: UUID) -> RowMapping | None:
    table = details.table
    return (await db.execute(select(table).where(table.c.contact_id == contact_id))).mappings().one_or_none()


def _out(details: Details, contact_id: UUID, row: RowMapping | None) -> BaseModel:
    values: dict[str, Any] = {name: row[name] for name in details.fields} if row is not None else {}
    # Built, not validated: a row stored under older rules must still be readable.
    return details.response.model_construct(
        contact_id=contact_id, updated_at=row["updated_at"] if row is not None else None, **values
    )


async def get_details(db: AsyncConnection, *, actor: Actor, contact_id: UUID, details: Details) -> BaseModel:
    """The details of one of the actor's contacts; empty until first saved. The read is
    recorded in audit.sensitive_data_access (with the fields that held a value).

    Raises:
        ContactNotFound: not in the actor's list.
        NotAChild / NotACoparent: the contact's relationship does not admit these details.
    """
    await _access(db, actor=actor, contact_id=contact_id, details=details)
    row = await _load(db, details, contact_id)
    filled = [name for name in details.fields if row is not None and row[name] not in (None, [])]
    await db.execute(_RECORD_READ, {"subject": actor.user_id, "table_name": details.table.fullname, "fields": filled})
    return _out(details, contact_id, row)


async def do_put_details(
    db: AsyncConnection, *, actor: Actor, contact_id: UUID, details: Details, values: BaseModel
) -> BaseModel:
    """Replace the details of one of the actor's contacts (fields left out are cleared);
    the write is recorded by trigger with the fields that changed.

    Raises:
        ContactNotFound: not in the actor's list.
        NotAChild / NotACoparent: the contact's relationship does not admit these details.
    """
    await _access(db, actor=actor, contact_id=contact_id, details=details)
    # Lists of shapes (activities, appointments) are stored as JSON; other values keep
    # their Python type (dates stay dates for the date columns).
    dumped = values.model_dump(mode="json")
    data = {
        name: dumped[name] if isinstance(getattr(values, name), list) else getattr(values, name)
        for name in details.fields
    }
    table = details.table
    upsert = insert(table).values(contact_id=contact_id, user_id=actor.user_id, **data)
    row = (
        await db.execute(
            upsert.on_conflict_do_update(
                index_elements=[table.c.contact_id], set_={name: upsert.excluded[name] for name in data}
            ).returning(table)
        )
    ).one()
    return _out(details, contact_id, row._mapping)


async def do_delete_details(db: AsyncConnection, *, actor: Actor, contact_id: UUID, details: Details) -> None:
    """Erase the details of one of the actor's contacts (nothing happens when none were saved).

    Raises:
        ContactNotFound: not in the actor's list.
    """
    await social_service.access_contact(db, actor=actor, contact_id=contact_id)
    await db.execute(delete(details.table).where(details.table.c.contact_id == contact_id))


async def get_child_details(db: AsyncConnection, *, actor: Actor, contact_id: UUID) -> BaseModel:
    """A child's details (see get_details)."""
    return await get_details(db, actor=actor, contact_id=contact_id, details=CHILD)


async def do_put_child_details(
    db: AsyncConnection, *, actor: Actor, contact_id: UUID, values: s.ChildDetailsIn
) -> BaseModel:
    """Replace a child's details (see do_put_details)."""
    return await do_put_details(db, actor=actor, contact_id=contact_id, details=CHILD, values=values)


async def do_delete_child_details(db: AsyncConnection, *, actor: Actor, contact_id: UUID) -> None:
    """Erase a child's details (see do_delete_details)."""
    await do_delete_details(db, actor=actor, contact_id=contact_id, details=CHILD)
