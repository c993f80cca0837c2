"""What the analytics ingestion tests share: consent, sending a batch, reading events as
system work."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text

from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime
from tests.support import Persona

EVENTS = "/v1/analytics/events"
CRASHES = "/v1/analytics/crashes"


async def consent(client: httpx.AsyncClient, who: Persona, *, granted: bool = True) -> None:
    """Give (or withdraw) the privacy_policy consent analytics honours."""
    response = await client.post(
        "/v1/me/consents", json={"consent_type": "privacy_policy", "granted": granted}, headers=who.headers
    )
    assert response.status_code == 201, response.text


def event(name: str = "screen_view", **fields: Any) -> dict[str, Any]:
    return {"event_name": name, **fields}


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


async def send_events(client: httpx.AsyncClient, who: Persona, events: list[dict[str, Any]]) -> httpx.Response:
    return await client.post(EVENTS, json={"events": events}, headers=who.headers)


async def rows(runtime: Runtime, sql: str, **params: Any) -> list[dict[str, Any]]:
    """The rows of a query, as system work (which reads every analytics row)."""
    async with system_transaction(runtime.system_engine) as db:
        return [dict(row._mapping) for row in (await db.execute(text(sql), params)).all()]
