"""Who administers access, and the audit record of what they do.

Access administrators are those access.has_permission says hold `access:admin:manage`
(platform administrators always do). Each of their changes is recorded in
`audit.admin_actions` through audit.record_admin_action, in the transaction that makes
it: a change that fails records nothing, one that succeeds cannot go unrecorded."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.access._check import require_permission
from rapport.kernel.actor import Actor

ADMIN_PERMISSION = "access:admin:manage"
# Recorded when the administrator gives no reason: the audit needs one.
NO_REASON = "No reason given."

AccessAction = Literal[
    "role_created", "role_changed", "role_deleted", "role_permissions_set", "grant_created", "grant_revoked"
]

_RECORD_ACTION = text(
    "SELECT audit.record_admin_action(:action, :reason, :target_user_id, :target, CAST(:details AS jsonb))"
)


async def require_access_admin(db: AsyncConnection, actor: Actor) -> None:
    """Raises:
    PermissionRequired: the actor does not hold access:admin:manage.
    """
    await require_permission(db, actor, ADMIN_PERMISSION)


async def record_action(
    db: AsyncConnection,
    *,
    action: AccessAction,
    reason: str | None,
    target: str,
    target_user_id: UUID | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Record the acting administrator's change in audit.admin_actions; the row's id."""
    recorded: int = (
        await db.execute(
            _RECORD_ACTION,
            {
                "action": action,
                "reason": reason or NO_REASON,
                "target_user_id": target_user_id,
                "target": target,
                "details": orjson.dumps(details or {}).decode(),
            },
        )
    ).scalar_one()
    return recorded
