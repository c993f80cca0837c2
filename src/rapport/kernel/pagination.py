"""Keyset pagination: opaque cursors over (id) of UUIDv7 rows, never OFFSET.

A page is asked for with `limit` and an optional `cursor`; the answer carries `next`,
the cursor of the following page, or null at the end. The FastAPI dependency that reads
them from the query string is `rapport.kernel.deps.PageDep`: this module knows no framework.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any, Generic, TypeVar, TypeVarTuple
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select

from rapport.kernel.errors import InvalidCursor

T = TypeVar("T")
Columns = TypeVarTuple("Columns")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


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


def keyset(query: Select[*Columns], id_column: ColumnElement[UUID], request: PageRequest) -> Select[*Columns]:
    """Newest first by a UUIDv7 id column, starting after the cursor, one row extra."""
    query = query.order_by(id_column.desc()).limit(request.limit + 1)
    if request.after_id is not None:
        query = query.where(id_column < request.after_id)
    return query


def _id_attribute(row: Any) -> UUID:
    # Rows and response models alike carry their key as `id`.
    row_id: UUID = row.id
    return row_id


def make_page(rows: list[T], request: PageRequest, *, id_of: Callable[[T], UUID] = _id_attribute) -> Page[T]:
    """Build a page from up to limit + 1 rows fetched newest first (the extra row only
    tells that another page exists)."""
    has_more = len(rows) > request.limit
    items = rows[: request.limit]
    return Page[T](items=items, next=encode_cursor(id_of(items[-1])) if has_more else None)
