"""What the inbox, preference and subscription tests share: notifications written the way
the pipeline writes them, as system work on `rapport_worker`."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import text

from rapport.kernel.db import system_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.runtime import Runtime
from tests.support import Persona

NOTIFICATIONS = "/v1/notifications"

_INSERT = text(
    """
    INSERT INTO notifications.notifications (
        id, user_id, type, category, priority, title, body, group_key, bundle_count, source_position,
        data, scheduled_for)
    VALUES (:id, :user_id, :type, :category, :priority, :title, :body, :group_key, :bundle_count,
            :source_position, CAST(:data AS jsonb), :scheduled_for)
    """
)


async def notify(runtime: Runtime, persona: Persona, title: str = "Hello", **fields: Any) -> UUID:
    """A notification for `persona`, written as system work; its id."""
    notification_id = uuid7()
    values: dict[str, Any] = {
        "id": notification_id,
        "user_id": UUID(persona.user_id),
        "type": "system",
        "category": "system",
        "priority": "normal",
        "title": title,
        "body": "",
        "group_key": None,
        "bundle_count": 1,
        "source_position": None,
        "data": {},
        "scheduled_for": None,
    }
    values.update(fields)
    values["data"] = orjson.dumps(values["data"]).decode()
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(_INSERT, values)
    return notification_id


async def notify_many(runtime: Runtime, persona: Persona, count: int) -> list[UUID]:
    """`count` notifications for `persona`, oldest first, titled "#0", "#1"..."""
    return [await notify(runtime, persona, f"#{n}") for n in range(count)]
