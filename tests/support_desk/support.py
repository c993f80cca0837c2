"""What the support desk's tests share: the desk's people (a customer, agents of each
level, a supervisor), the steps through the API, and rows read or planted as system work.

Alice is the customer. Tess works T1, Theo T2, Tara T3 and Max is a support manager; Sam
supervises; Mallory holds nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from sqlalchemy import text

from rapport.access import service as access_service
from rapport.kernel.db import system_transaction
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from rapport.kernel.runtime import Runtime
from rapport.modules.support import service
from tests.support import Persona

ROOMS = "/v1/support/rooms"
ESCALATIONS = "/v1/support/escalations"
QUEUES = "/v1/support/queues"
GUEST_SESSIONS = "/v1/support/guest-sessions"


@dataclass(frozen=True)
class Desk:
    alice: Persona
    tess: Persona
    theo: Persona
    tara: Persona
    max: Persona
    sam: Persona
    mallory: Persona


async def grant(runtime: Runtime, persona: Persona, role: str, conversation_id: UUID | None = None) -> Persona:
    """Grant a built-in role as system work, as the command line does."""
    async with system_transaction(runtime.system_engine) as db:
        await access_service.grant_role_system(db, UUID(persona.user_id), role, conversation_id)
    return persona


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def open_room(client: httpx.AsyncClient, customer: Persona, **fields: Any) -> dict[str, Any]:
    """A room opened through the API; the room as answered."""
    body = {"issue_description": "My order never arrived", **fields}
    made = ok(await client.post(ROOMS, headers=customer.headers, json=body), 201)
    room: dict[str, Any] = made["room"]
    return room


async def join(client: httpx.AsyncClient, agent: Persona, room_id: str) -> httpx.Response:
    return await client.post(f"{ROOMS}/{room_id}/join", headers=agent.headers)


async def escalate(client: httpx.AsyncClient, agent: Persona, room_id: str, **fields: Any) -> httpx.Response:
    body = {"reason": "Needs a refund above my limit", "to_level": "T2", **fields}
    return await client.post(f"{ROOMS}/{room_id}/escalations", headers=agent.headers, json=body)


async def step(
    client: httpx.AsyncClient, persona: Persona, escalation_id: str, name: str, **body: Any
) -> httpx.Response:
    return await client.post(f"{ESCALATIONS}/{escalation_id}/{name}", headers=persona.headers, json=body or None)


async def send(client: httpx.AsyncClient, sender: Persona, room_id: str, content: str = "hello") -> dict[str, Any]:
    response = await client.post(
        f"/v1/conversations/{room_id}/messages", headers=sender.headers, json={"content": content}
    )
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


async def as_system(runtime: Runtime, statement: str, **params: Any) -> list[Any]:
    """Rows of one statement run as system work (planting what no request can: a past time)."""
    async with system_transaction(runtime.system_engine) as db:
        result = await db.execute(text(statement), params)
        return list(result.all()) if result.returns_rows else []


async def as_superuser(database: DatabaseUrls, statement: str, *args: object) -> None:
    """Run one statement as the superuser with triggers off, as an operator planting a past
    time no guard lets anyone else write."""
    conn = await asyncpg.connect(asyncpg_dsn(database.admin.set(database=database.app.database)))
    try:
        await conn.execute("SET session_replication_role = replica")
        await conn.execute(statement, *args)
    finally:
        await conn.close()


async def events(runtime: Runtime, prefix: str = "support.") -> list[tuple[str, str, dict[str, Any]]]:
    """The committed events whose type starts with `prefix`, oldest first: (type, scope id, payload)."""
    rows = await as_system(
        runtime,
        "SELECT type, scope_id::text AS scope, payload FROM kernel.events WHERE starts_with(type, :prefix)"
        " ORDER BY position",
        prefix=prefix,
    )
    return [(row.type, row.scope, row.payload) for row in rows]


async def watch(runtime: Runtime) -> int:
    """Let the first-response watcher read everything committed so far."""
    return await service.watch_all(runtime.system_engine)


def guest_persona(session: dict[str, Any], name: str = "guest") -> Persona:
    """A guest signed in through a link, as a persona."""
    tokens = session["tokens"]
    return Persona(
        name=name,
        email="",
        password="",
        user_id=tokens["user_id"],
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        session_id=tokens["session_id"],
    )


async def guest_link(client: httpx.AsyncClient, maker: Persona, room_id: str, **fields: Any) -> dict[str, Any]:
    return ok(await client.post(f"{ROOMS}/{room_id}/guest-links", headers=maker.headers, json=fields), 201)


async def redeem(client: httpx.AsyncClient, token: str, display_name: str = "Gus") -> httpx.Response:
    return await client.post(GUEST_SESSIONS, json={"token": token, "display_name": display_name})
