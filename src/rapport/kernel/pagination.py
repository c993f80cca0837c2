"""Keyset pagination: opaque cursors over (id) of UUIDv7 rows, never OFFSET.

A page is asked for with `limit` and an optional `cursor`; the answer carries `next`,
the cursor of the following page, or null at the end.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Generic, TypeVar
from uuid import UUID

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select

from rapport.kernel.errors import RapportError

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class InvalidCursor(RapportError):
    slug = "invalid-cursor"
    title = "The pagination cursor is not valid"


class Page(BaseModel, Generic[T]):
    items: list[T]
    next: str | None = None


class PageRequest(BaseModel):
    limit: int
    after_id: UUID | None


def encode_cursor(last_id: UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> UUID:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return UUID(bytes=raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor("The cursor was not issued by this server.") from exc


def page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=64, description="The `next` value of the previous page.")] = None,
) -> PageRequest:
    """FastAPI dependency reading `limit` and `cursor` from the query string."""
    return PageRequest(limit=limit, after_id=decode_cursor(cursor) if cursor else None)


def keyset(query: Select, id_column: ColumnElement, request: PageRequest) -> Select:
    """Newest first by a UUIDv7 id column, starting after the cursor, one row extra."""
    query = query.order_by(id_column.desc()).limit(request.limit + 1)
    if request.after_id is not None:
        query = query.where(id_column < request.after_id)
    return query


def make_page(rows: list[T], request: PageRequest, *, id_of=lambda row: row.id) -> Page[T]:
    """Build a page from up to limit + 1 rows fetched newest first (the extra row only
    tells that another page exists)."""
    has_more = len(rows) > request.limit
    items = rows[: request.limit]
    return Page[T](items=items, next=encode_cursor(id_of(items[-1])) if has_more else None)
