"""Reading an account's sign-in history and security events."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity.models import login_history, security_events
from rapport.identity.schemas import LoginHistoryOut, SecurityEventOut
from rapport.kernel.actor import Actor
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page


async def list_login_history(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[LoginHistoryOut]:
    query = keyset(select(login_history).where(login_history.c.user_id == actor.user_id), login_history.c.id, page)
    items = [
        LoginHistoryOut(
            id=row.id,
            method=row.method,
            succeeded=row.succeeded,
            failure_reason=row.failure_reason,
            ip_address=str(row.ip_address) if row.ip_address else None,
            user_agent=row.user_agent,
            created_at=row.created_at,
        )
        for row in (await db.execute(query)).all()
    ]
    return make_page(items, page)


async def list_security_events(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[SecurityEventOut]:
    query = keyset(
        select(security_events).where(security_events.c.user_id == actor.user_id), security_events.c.id, page
    )
    items = [
        SecurityEventOut(
            id=row.id,
            event_type=row.event_type,
            severity=row.severity,
            ip_address=str(row.ip_address) if row.ip_address else None,
            details=row.details,
            created_at=row.created_at,
        )
        for row in (await db.execute(query)).all()
    ]
    return make_page(items, page)
