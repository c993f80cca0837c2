"""Sign-in history and security events: append-only records of an account's security."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity.models import login_history, security_events
from rapport.identity.schemas import Severity
from rapport.kernel.actor import Client
from rapport.kernel.ids import uuid7


async def record_security_event(
    db: AsyncConnection,
    *,
    user_id: UUID,
    event_type: str,
    client: Client,
    severity: Severity = "info",
    details: dict[str, Any] | None = None,
) -> None:
    await db.execute(
        insert(security_events).values(
            id=uuid7(),
            user_id=user_id,
            event_type=event_type,
            severity=severity,
            ip_address=client.ip,
            user_agent=client.user_agent,
            details=details or {},
        )
    )


async def record_login(
    db: AsyncConnection,
    *,
    user_id: UUID,
    method: str,
    client: Client,
    session_id: UUID | None = None,
    failure_reason: str | None = None,
) -> None:
    await db.execute(
        insert(login_history).values(
            id=uuid7(),
            user_id=user_id,
            session_id=session_id,
            method=method,
            succeeded=failure_reason is None,
            failure_reason=failure_reason,
            ip_address=client.ip,
            user_agent=client.user_agent,
        )
    )
