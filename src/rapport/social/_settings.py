"""Privacy and app settings: one row per account, made with it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.social.models import settings
from rapport.social.schemas import SettingsOut, SettingsUpdate


async def get_settings(db: AsyncConnection, *, actor: Actor) -> SettingsOut:
    row = (await db.execute(select(settings).where(settings.c.user_id == actor.user_id))).one()
    return SettingsOut.model_validate(row._mapping)


async def do_update_settings(db: AsyncConnection, *, actor: Actor, changes: SettingsUpdate) -> SettingsOut:
    """Change the settings sent; `notification_defaults` merges into the current ones.
    Every setting has a value, so the schema refuses null for each."""
    values: dict[str, Any] = changes.changes()
    if "notification_defaults" in values:
        # Merge, so a client can change one kind of notification without knowing the rest.
        values["notification_defaults"] = settings.c.notification_defaults.op("||")(values["notification_defaults"])
    if not values:
        return await get_settings(db, actor=actor)
    row = (
        await db.execute(
            update(settings).where(settings.c.user_id == actor.user_id).values(**values).returning(settings)
        )
    ).one()
    return SettingsOut.model_validate(row._mapping)
