"""Compliance logs: every event of the data lifecycle, written through the one SQL function
`compliance.log_event` (which decides who may log what) and read by the person whose events
they are, and by platform administrators."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.compliance.models import DataExportEvent, EventType, compliance_logs
from rapport.compliance.schemas import ComplianceLogOut
from rapport.kernel.db import AnyRow
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page

_LOG = text("SELECT compliance.log_event(:user_id, :event_type, CAST(:details AS jsonb))")


async def log_event(
    db: AsyncConnection, *, user_id: UUID | None, event_type: EventType, details: dict[str, Any] | None = None
) -> UUID:
    """Append a compliance event in the caller's transaction; its id.

    System work logs any event; a platform administrator account and breach events; a
    person their own consents and requests (the database refuses anything else)."""
    made: UUID = (
        await db.execute(
            _LOG, {"user_id": user_id, "event_type": event_type, "details": orjson.dumps(details or {}).decode()}
        )
    ).scalar_one()
    return made


def _out(row: AnyRow) -> ComplianceLogOut:
    return ComplianceLogOut(
        id=row.id, user_id=row.user_id, event_type=row.event_type, details=row.details, created_at=row.created_at
    )


async def list_logs(
    db: AsyncConnection, *, page: PageRequest, user_id: UUID | None = None, event_type: EventType | None = None
) -> Page[ComplianceLogOut]:
    """Compliance events, newest first, as row-level security lets the transaction see them
    (the person: their own; a platform administrator or system work: everyone's), of one
    person and of one type when asked."""
    query = select(compliance_logs)
    if user_id is not None:
        query = query.where(compliance_logs.c.user_id == user_id)
    if event_type is not None:
        query = query.where(compliance_logs.c.event_type == event_type)
    rows = (await db.execute(keyset(query, compliance_logs.c.id, page))).all()
    return make_page([_out(row) for row in rows], page)


_RECORD_EXPORT = text("SELECT audit.record_data_export(:export_id, :user_id, :event, CAST(:details AS jsonb))")


async def record_data_export(
    db: AsyncConnection,
    *,
    export_id: UUID,
    user_id: UUID,
    event: DataExportEvent,
    details: dict[str, Any] | None = None,
) -> None:
    """Record a step of an export of a person's data in the audit (audit.data_exports), as
    the person or in system work. The append holds the chain's lock to commit: call it
    late in a long transaction."""
    await db.execute(
        _RECORD_EXPORT,
        {"export_id": export_id, "user_id": user_id, "event": event, "details": orjson.dumps(details or {}).decode()},
    )
