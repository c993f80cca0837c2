"""Steps the tests of streamed messages, guests and room history share: a bot speaking
with its API key, a guest in a room, a stream step, and reading sync to a position."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import text

from rapport.kernel.db import system_transaction
from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime
from tests.messaging.messages_support import as_superuser
from tests.support import Persona


def stream_path(conversation_id: UUID, message_id: str) -> str:
    return f"/v1/conversations/{conversation_id}/messages/{message_id}/stream"


async def step(
    client: httpx.AsyncClient, who: Persona, conversation_id: UUID, message_id: str, **body: Any
) -> httpx.Response:
    """POST one stream step, whatever it answers."""
    return await client.post(stream_path(conversation_id, message_id), json=body, headers=who.headers)


async def api_key_of(client: httpx.AsyncClient, persona: Persona) -> Persona:
    """The persona speaking with a new API key of theirs instead of their session."""
    created = await client.post("/v1/auth/api-keys", json={"name": "script"}, headers=persona.headers)
    assert created.status_code == 201, created.text
    return Persona(
        name=f"{persona.name}-key",
        email=persona.email,
        password=persona.password,
        user_id=persona.user_id,
        access_token=created.json()["key"],
    )


async def make_bot(client: httpx.AsyncClient, database: DatabaseUrls, persona: Persona) -> Persona:
    """Turn a fresh persona's account into a bot (as the bots' own service makes one:
    kind bot, no password) that speaks with its API key."""
    bot = await api_key_of(client, persona)
    await as_superuser(
        database, "UPDATE auth.users SET kind = 'bot', password_hash = NULL WHERE id = $1", UUID(persona.user_id)
    )
    return bot


async def newest_position(runtime: Runtime) -> int:
    async with system_transaction(runtime.system_engine) as db:
        return int((await db.execute(text("SELECT coalesce(max(position), 0) FROM kernel.events"))).scalar_one())


async def synced(client: httpx.AsyncClient, runtime: Runtime, persona: Persona) -> list[dict[str, Any]]:
    """Every event the persona receives through GET /v1/sync, read past the newest one."""
    target = await newest_position(runtime)
    events: list[dict[str, Any]] = []
    position = 0
    async with asyncio.timeout(10):
        while True:
            response = await client.get("/v1/sync", headers=persona.headers, params={"since": position})
            assert response.status_code == 200, response.text
            body = response.json()
            events += body["events"]
            position = body["position"]
            if position >= target and not body["more"]:
                return events
            if not body["events"]:
                await asyncio.sleep(0.02)
