"""The extended profile parts of seed 000: demographics, employment and background (seen
as the profile is), health and financials (their owner's alone, every read recorded).

Writes of the sensitive parts are recorded by a trigger, whatever path they take; reads
cannot be seen by a trigger, so every function here that returns a sensitive part records
the read through `audit.record_sensitive_access` in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import RowMapping, Table, Text, bindparam, delete, select, text
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.models import sensitive_data_access
from rapport.kernel.pagination import Page, PageRequest, make_page
from rapport.social import models_parts as m
from rapport.social import schemas_parts as s
from rapport.social._profiles import after_bigint, bigint_cursor_id
from rapport.social.errors import ProfilePartNotFound


@dataclass(frozen=True)
class Part:
    """One extended profile part: its table, whether it is sensitive, and its shapes."""

    name: str
    table: Table
    sensitive: bool
    request: type[BaseModel]
    response: type[BaseModel]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.request.model_fields)

    @property
    def qualified_name(self) -> str:
        return self.table.fullname


PARTS: dict[str, Part] = {
    part.name: part
    for part in (
        Part("demographics", m.user_demographics, False, s.DemographicsIn, s.DemographicsOut),
        Part("employment", m.user_employment, False, s.EmploymentIn, s.EmploymentOut),
        Part("health", m.user_health_context, True, s.HealthIn, s.HealthOut),
        Part("financials", m.user_financials, True, s.FinancialsIn, s.FinancialsOut),
        Part("background", m.user_background, False, s.BackgroundIn, s.BackgroundOut),
    )
}

_RECORD_READ = text("SELECT audit.record_sensitive_access(:subject, :table_name, 'read', :fields)").bindparams(
    bindparam("fields", type_=ARRAY(Text))
)
_PROFILE_VISIBLE = text("SELECT social.profile_visible(:user_id)")


async def get_part(db: AsyncConnection, *, actor: Actor, part: Part) -> BaseModel:
    """The actor's own part; empty (every field null) until first saved. A sensitive
    part's read is recorded in audit.sensitive_data_access."""
    row = await _load(db, part, actor.user_id)
    if part.sensitive:
        filled = [name for name in part.fields if row is not None and row[name] not in (None, [])]
        await db.execute(_RECORD_READ, {"subject": actor.user_id, "table_name": part.qualified_name, "fields": filled})
    return _out(part, actor.user_id, row)


async def do_put_part(db: AsyncConnection, *, actor: Actor, part: Part, values: BaseModel) -> BaseModel:
    """Replace the actor's part with `values` (fields left out are cleared). A sensitive
    part's write is recorded by trigger, with the fields that changed."""
    data = values.model_dump()
    upsert = insert(part.table).values(user_id=actor.user_id, **data)
    row = (
        await db.execute(
            upsert.on_conflict_do_update(
                index_elements=[part.table.c.user_id], set_={name: upsert.excluded[name] for name in data}
            ).returning(part.table)
        )
    ).one()
    return _out(part, actor.user_id, row._mapping)


async def do_delete_part(db: AsyncConnection, *, actor: Actor, part: Part) -> None:
    """Erase the actor's part (nothing happens when it was never saved)."""
    await db.execute(delete(part.table).where(part.table.c.user_id == actor.user_id))


async def access_user_part(db: AsyncConnection, *, actor: Actor, user_id: UUID, part: Part) -> BaseModel:
    """Another person's non-sensitive part, as the actor may see it. A part they never
    saved reads as empty; so does one of a person the actor blocks (row-level security
    hides parts both ways). Someone who blocks the actor has no parts to them at all, as
    a private profile has none (docs/decisions/0009).

    Raises:
        ProfilePartNotFound: the part is sensitive and not the actor's, or the person
            does not exist or their profile is not visible to the actor (someone who
            blocks the actor included).
    """
    if part.sensitive:
        if user_id != actor.user_id:
            raise ProfilePartNotFound
        return await get_part(db, actor=actor, part=part)
    if not (await db.execute(_PROFILE_VISIBLE, {"user_id": user_id})).scalar_one():
        raise ProfilePartNotFound
    return _out(part, user_id, await _load(db, part, user_id))


async def list_sensitive_access(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[s.SensitiveAccessOut]:
    """Who read or wrote the actor's sensitive parts, and which fields, newest first.

    Raises:
        InvalidCursor: a cursor this list did not issue.
    """
    t = sensitive_data_access
    query = select(t).where(t.c.user_id == actor.user_id).order_by(t.c.id.desc()).limit(page.limit + 1)
    after = after_bigint(page)
    if after is not None:
        query = query.where(t.c.id < after)
    rows = (await db.execute(query)).all()
    items = [
        s.SensitiveAccessOut(
            id=row.id,
            accessed_by=row.accessed_by,
            table_name=row.table_name,
            action=row.action,
            fields=row.fields,
            created_at=row.created_at,
        )
        for row in rows
    ]
    return make_page(items, page, id_of=lambda item: bigint_cursor_id(item.id))


async def _load(db: AsyncConnection, part: Part, user_id: UUID) -> RowMapping | None:
    return (await db.execute(select(part.table).where(part.table.c.user_id == user_id))).mappings().one_or_none()


def _out(part: Part, user_id: UUID, row: RowMapping | None) -> BaseModel:
    values = {name: row[name] for name in part.fields} if row is not None else {}
    # Built, not validated: the input rules (strict types, ISO codes) judge what comes in,
    # and a row stored under older rules must still be readable.
    return part.response.model_construct(
        user_id=user_id, updated_at=row["updated_at"] if row is not None else None, **values
    )
