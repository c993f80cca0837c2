"""Steps messaging tests share: making conversations straight through the SQL functions
the API uses (so a test of one route does not depend on another), and sending."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.db import user_transaction
from rapport.kernel.ids import uuid7
from tests.support import Persona


async def make_conversation(
    engine: AsyncEngine,
    creator: Persona,
    *members: Persona,
    type: str = "group",
    name: str | None = "Test room",
    roles: dict[str, str] | None = None,
    **columns: Any,
) -> UUID:
    """A conversation made by `creator` (its owner) with `members` in it, through
    messaging.add_participant as the creator, as the API does. `roles` maps a member's
    name to the role they get (default member)."""
    conversation_id = uuid7()
    values: dict[str, Any] = {"id": conversation_id, "type": type, "name": name, "creator_id": creator.user_id}
    if type == "direct":
        (other,) = members
        low, high = sorted([UUID(creator.user_id), UUID(other.user_id)])
        values.update(direct_low=low, direct_high=high, name=None)
    values.update(columns)
    names = ", ".join(values)
    params = ", ".join(f":{key}" for key in values)
    async with user_transaction(engine, UUID(creator.user_id)) as db:
        await db.execute(text(f"INSERT INTO messaging.conversations ({names}) VALUES ({params})"), values)
        await db.execute(text("SELECT messaging.add_participant(:c, :u)"), {"c": conversation_id, "u": creator.user_id})
        for member in members:
            role = (roles or {}).get(member.name, "member")
            await db.execute(
                text("SELECT messaging.add_participant(:c, :u, :r)"),
                {"c": conversation_id, "u": member.user_id, "r": role},
            )
    return conversation_id


async def send(
    client: httpx.AsyncClient, sender: Persona, conversation_id: UUID, content: str = "hello", **fields: Any
) -> dict[str, Any]:
    """Send a message through the API and return it; fails the test unless it was made."""
    response = await client.post(
        f"/v1/conversations/{conversation_id}/messages", json={"content": content, **fields}, headers=sender.headers
    )
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body
