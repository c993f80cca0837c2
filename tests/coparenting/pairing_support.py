"""Steps pairing tests share: inviting and accepting through the API, and reading the
rows the API cannot show (token hashes, audit steps) as the owner role would."""

from __future__ import annotations

import re
from email.message import Message
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import text

from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime
from tests.support import Persona

PAIRINGS = "/v1/coparenting/pairings"
ACCEPT = "/v1/coparenting/pairings/accept"
STATUS = "/v1/coparenting/pairing"


async def invite(
    client: httpx.AsyncClient, inviter: Persona, invite_type: str = "code", **fields: Any
) -> dict[str, Any]:
    """An invitation made through the API; fails the test unless it was made."""
    response = await client.post(PAIRINGS, headers=inviter.headers, json={"invite_type": invite_type, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def accept(client: httpx.AsyncClient, acceptor: Persona, **secret: str) -> httpx.Response:
    """POST .../accept with a `code` or a `token`, whatever it answers."""
    return await client.post(ACCEPT, headers=acceptor.headers, json=secret)


async def pair(client: httpx.AsyncClient, initiator: Persona, acceptor: Persona) -> dict[str, Any]:
    """The two parents paired by code; the accepted pairing as the acceptor sees it."""
    made = await invite(client, initiator, "code")
    accepted = await accept(client, acceptor, code=made["pairing_code"])
    assert accepted.status_code == 200, accepted.text
    body: dict[str, Any] = accepted.json()
    return body


async def user_events(runtime: Runtime, user: Persona, prefix: str = "pairing.") -> list[tuple[str, dict[str, Any]]]:
    """The committed events of one person's scope whose type starts with `prefix`, oldest
    first, as the worker role reads them."""
    async with runtime.system_engine.engine.connect() as db:
        rows = await db.execute(
            text(
                "SELECT type, payload FROM kernel.events"
                " WHERE scope_kind = 'user' AND scope_id = :scope AND starts_with(type, :prefix) ORDER BY position"
            ),
            {"scope": UUID(user.user_id), "prefix": prefix},
        )
        return [(row.type, row.payload) for row in rows]


async def as_system(runtime: Runtime, statement: str, **params: Any) -> list[Any]:
    """Rows of one statement run as system work (planting what no request can: a past expiry)."""
    async with system_transaction(runtime.system_engine) as db:
        result = await db.execute(text(statement), params)
        return list(result.all()) if result.returns_rows else []


async def expire_now(runtime: Runtime, pairing_id: str) -> None:
    """Move an invitation's expiry into the past, as time would."""
    await as_system(
        runtime,
        "UPDATE coparenting.pairing_sessions SET expires_at = now() - interval '1 minute' WHERE id = :id",
        id=UUID(pairing_id),
    )


def mailed_token(mail: Message) -> str:
    """The invitation token an e-mail invitation carries."""
    payload = mail.get_payload(decode=True)
    assert isinstance(payload, bytes)
    [token] = re.findall(r"lzp_\S+", payload.decode())
    return str(token)
