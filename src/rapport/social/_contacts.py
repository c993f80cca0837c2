"""Contact lists and groups. A contact is another account (made in pairs when a request
is accepted) or someone without one, kept by name and e-mail and linked to their account
when they join (by trigger, on e-mail verification)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable

from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow
from rapport.kernel.errors import InvalidCursor, ValidationFailed, constraint_of
from rapport.kernel.ids import uuid7
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.social.errors import ContactExists, ContactGroupExists, ContactGroupNotFound, ContactNotFound
from rapport.social.models import contact_group_members, contact_groups, contacts
from rapport.social.schemas import ContactCreate, ContactGroupOut, ContactOut, ContactUpdate


def _out(row: AnyRow) -> ContactOut:
    return ContactOut.model_validate(row._mapping)


async def list_contacts(
    db: AsyncConnection,
    *,
    actor: Actor,
    page: PageRequest,
    favorites_only: bool = False,
    group_id: UUID | None = None,
) -> Page[ContactOut]:
    query = select(contacts).where(contacts.c.owner_id == actor.user_id)
    if favorites_only:
        query = query.where(contacts.c.is_favorite)
    if group_id is not None:
        await access_group(db, actor=actor, group_id=group_id)
        query = query.where(
            contacts.c.id.in_(
                select(contact_group_members.c.contact_id).where(contact_group_members.c.group_id == group_id)
            )
        )
    rows = (await db.execute(keyset(query, contacts.c.id, page))).all()
    return make_page([_out(row) for row in rows], page)


async def access_contact(db: AsyncConnection, *, actor: Actor, contact_id: UUID) -> AnyRow:
    """Raises:
    ContactNotFound: not in the actor's list.
    """
    row = (
        await db.execute(select(contacts).where(contacts.c.id == contact_id, contacts.c.owner_id == actor.user_id))
    ).one_or_none()
    if row is None:
        raise ContactNotFound()
    return row


async def do_add_contact(db: AsyncConnection, *, actor: Actor, contact: ContactCreate) -> ContactOut:
    """Add someone without an account here (a child, a co-parent by e-mail). When a
    person verifies that e-mail address later, the contact is linked to their account.

    Raises:
        ContactExists: a contact with this e-mail is already in the list.
    """
    values = contact.model_dump(exclude_none=True)
    # What ck_contacts_someone asks of a contact without an account.
    if not any(values.get(key) for key in ("first_name", "email")):
        raise ValidationFailed("Give at least a first name or an e-mail address.")
    try:
        async with db.begin_nested():
            row = (
                await db.execute(
                    contacts.insert().values(id=uuid7(), owner_id=actor.user_id, **values).returning(contacts)
                )
            ).one()
    except IntegrityError as exc:
        if constraint_of(exc) == "ux_contacts_owner_email":
            raise ContactExists() from exc
        raise
    return _out(row)


async def do_update_contact(
    db: AsyncConnection, *, actor: Actor, contact_id: UUID, changes: ContactUpdate
) -> ContactOut:
    """Change the fields sent; null clears an optional one (the schema refuses it for the
    flags).

    Raises:
        ContactNotFound: not in the actor's list.
        ContactExists: the new e-mail is another contact's.
        ValidationFailed: the contact would be left with no name, e-mail or account.
    """
    await access_contact(db, actor=actor, contact_id=contact_id)
    values: dict[str, Any] = changes.changes()
    if not values:
        return _out(await access_contact(db, actor=actor, contact_id=contact_id))
    try:
        async with db.begin_nested():
            row = (
                await db.execute(
                    update(contacts).where(contacts.c.id == contact_id).values(**values).returning(contacts)
                )
            ).one()
    except IntegrityError as exc:
        violated = constraint_of(exc)
        if violated == "ux_contacts_owner_email":
            raise ContactExists() from exc
        if violated == "ck_contacts_someone":
            raise ValidationFailed("A contact needs a name, an e-mail address or an account.") from exc
        raise
    return _out(row)


async def do_remove_contact(db: AsyncConnection, *, actor: Actor, contact_id: UUID) -> None:
    """Remove a contact; for another account, both stop being each other's contacts.

    Raises:
        ContactNotFound: not in the actor's list.
    """
    row = await access_contact(db, actor=actor, contact_id=contact_id)
    if row.contact_user_id is not None:
        await db.execute(text("SELECT social.unpair_contacts(:other)"), {"other": row.contact_user_id})
    else:
        await db.execute(delete(contacts).where(contacts.c.id == contact_id))


@dataclass(frozen=True)
class GroupPageRequest:
    """A page of groups, which are listed by name: the cursor carries the last name seen
    (in lower case, the order's key; one group per such name and owner), so a page
    resumes right after it even if that group was renamed or deleted meanwhile."""

    limit: int
    after_name: str | None = None


_GROUP_CURSOR_VERSION = b"\x01"


def encode_group_cursor(name_key: str) -> str:
    return base64.urlsafe_b64encode(_GROUP_CURSOR_VERSION + name_key.encode()).decode().rstrip("=")


def decode_group_cursor(cursor: str) -> str:
    """The name key a group cursor carries.

    Raises:
        InvalidCursor: not a cursor of the group list.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        if raw[:1] != _GROUP_CURSOR_VERSION:
            raise ValueError("not a group cursor")
        name_key = raw[1:].decode()
    except (binascii.Error, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidCursor("The cursor was not issued for this list.") from exc
    if not name_key or "\x00" in name_key:
        raise InvalidCursor("The cursor was not issued for this list.")
    return name_key


async def list_groups(db: AsyncConnection, *, actor: Actor, page: GroupPageRequest) -> Page[ContactGroupOut]:
    """The actor's groups by name (regardless of case), a page at a time."""
    name_key = func.lower(contact_groups.c.name)
    query = (
        select(contact_groups, name_key.label("name_key"))
        .where(contact_groups.c.owner_id == actor.user_id)
        .order_by(name_key)
        .limit(page.limit + 1)
    )
    if page.after_name is not None:
        query = query.where(name_key > page.after_name)
    rows = (await db.execute(query)).all()
    items = [ContactGroupOut.model_validate(row._mapping) for row in rows[: page.limit]]
    has_more = len(rows) > page.limit
    return Page[ContactGroupOut](
        items=items, next=encode_group_cursor(rows[page.limit - 1].name_key) if has_more else None
    )


async def access_group(db: AsyncConnection, *, actor: Actor, group_id: UUID) -> AnyRow:
    """Raises:
    ContactGroupNotFound: not one of the actor's groups.
    """
    row = (
        await db.execute(
            select(contact_groups).where(contact_groups.c.id == group_id, contact_groups.c.owner_id == actor.user_id)
        )
    ).one_or_none()
    if row is None:
        raise ContactGroupNotFound()
    return row


async def do_create_group(db: AsyncConnection, *, actor: Actor, name: str) -> ContactGroupOut:
    """Raises:
    ContactGroupExists: a group with this name (in any case) exists.
    """
    return await _write_group(
        db, contact_groups.insert().values(id=uuid7(), owner_id=actor.user_id, name=name).returning(contact_groups)
    )


async def do_rename_group(db: AsyncConnection, *, actor: Actor, group_id: UUID, name: str | None) -> ContactGroupOut:
    """Rename a group; None (the name left out of a PATCH) leaves it as it is.

    Raises:
        ContactGroupNotFound: not one of the actor's groups.
        ContactGroupExists: another group has this name.
    """
    group = await access_group(db, actor=actor, group_id=group_id)
    if name is None:
        return ContactGroupOut.model_validate(group._mapping)
    return await _write_group(
        db, update(contact_groups).where(contact_groups.c.id == group_id).values(name=name).returning(contact_groups)
    )


async def _write_group(db: AsyncConnection, statement: Executable) -> ContactGroupOut:
    """Insert or rename a group in a savepoint, so that a name taken by another of the
    owner's groups is a ContactGroupExists and the transaction goes on."""
    try:
        async with db.begin_nested():
            row = (await db.execute(statement)).one()
    except IntegrityError as exc:
        if constraint_of(exc) == "ux_contact_groups_owner_name":
            raise ContactGroupExists() from exc
        raise
    return ContactGroupOut.model_validate(row._mapping)


async def do_delete_group(db: AsyncConnection, *, actor: Actor, group_id: UUID) -> None:
    """Raises:
    ContactGroupNotFound: not one of the actor's groups.
    """
    await access_group(db, actor=actor, group_id=group_id)
    await db.execute(delete(contact_groups).where(contact_groups.c.id == group_id))


async def do_add_to_group(db: AsyncConnection, *, actor: Actor, group_id: UUID, contact_id: UUID) -> None:
    """Put a contact in a group (again: nothing changes).

    Raises:
        ContactGroupNotFound / ContactNotFound: not the actor's.
    """
    await access_group(db, actor=actor, group_id=group_id)
    await access_contact(db, actor=actor, contact_id=contact_id)
    await db.execute(
        insert(contact_group_members)
        .values(group_id=group_id, contact_id=contact_id, owner_id=actor.user_id)
        .on_conflict_do_nothing()
    )


async def do_remove_from_group(db: AsyncConnection, *, actor: Actor, group_id: UUID, contact_id: UUID) -> None:
    """Raises:
    ContactGroupNotFound: not one of the actor's groups.
    ContactNotFound: the contact is not in the group.
    """
    await access_group(db, actor=actor, group_id=group_id)
    removed = await db.execute(
        delete(contact_group_members).where(
            contact_group_members.c.group_id == group_id, contact_group_members.c.contact_id == contact_id
        )
    )
    if removed.rowcount == 0:
        raise ContactNotFound("This contact is not in the group.")
