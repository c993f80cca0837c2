"""Steps the tests of message actions share: the paths, reading the outbox back, a
conversation's line in a person's list, and changes made as the database's owner."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import httpx
from sqlalchemy import text

from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from rapport.kernel.runtime import Runtime
from tests.support import Persona


def message_path(conversation_id: UUID, message_id: str) -> str:
    return f"/v1/conversations/{conversation_id}/messages/{message_id}"


async def events_of(runtime: Runtime, scope_id: UUID | str, *, kind: str = "conversation") -> list[dict[str, Any]]:
    """The events published to a scope, oldest first, read on the worker's role (the
    server's role may publish but not read them)."""
    async with runtime.system_engine.engine.connect() as db:
        rows = await db.execute(
            text(
                "SELECT type, payload, actor_id FROM kernel.events"
                " WHERE scope_kind = :kind AND scope_id = :scope ORDER BY position"
            ),
            {"kind": kind, "scope": UUID(str(scope_id))},
        )
        return [{"type": row.type, "payload": row.payload, "actor_id": row.actor_id} for row in rows]


async def types_of(runtime: Runtime, scope_id: UUID | str, *, kind: str = "conversation") -> list[str]:
    return [event["type"] for event in await events_of(runtime, scope_id, kind=kind)]


async def listing(client: httpx.AsyncClient, persona: Persona, conversation_id: UUID) -> dict[str, Any]:
    """The conversation's line in the persona's conversation list."""
    response = await client.get("/v1/conversations", headers=persona.headers)
    assert response.status_code == 200, response.text
    [item] = [item for item in response.json()["items"] if item["id"] == str(conversation_id)]
    return dict(item)


async def history(client: httpx.AsyncClient, persona: Persona, conversation_id: UUID) -> list[dict[str, Any]]:
    """The newest page of history the persona reads, newest first."""
    response = await client.get(f"/v1/conversations/{conversation_id}/messages", headers=persona.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def as_superuser(database: DatabaseUrls, statement: str, *args: Any) -> str:
    """Run a statement in the test's database as the server's superuser, as an operator
    would (for what no API does yet, such as removing an account outright)."""
    conn = await asyncpg.connect(asyncpg_dsn(database.admin.set(database=database.app.database)))
    try:
        return str(await conn.execute(statement, *args))
    finally:
        await conn.close()
