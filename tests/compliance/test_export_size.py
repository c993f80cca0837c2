"""An export has no per-request cap: a person with more messages than the 10,000 a chat
service's export hands over per request gets every one of them in one archive, read
through server-side cursors a page at a time (the page made smaller here, so that the
archive is many pages) and written to the zip as it is read."""

from __future__ import annotations

from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from rapport.compliance import _archive
from rapport.kernel.db import system_transaction
from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime
from tests.compliance.erase_support import (
    archive_sections,
    compliance_app,  # noqa: F401  (this module's app serves the compliance routes)
    compliance_settings,  # noqa: F401
    exported,
    fetch,
)
from tests.support import Persona

# Past the 10,000 messages per request that Stream's export stops at.
MESSAGES = 10_500
ROWS_PER_FETCH = 400

# Her messages as a send stores them, made in one statement as system work: each a
# UUIDv7 whose time is its creation time, numbered in her words.
_HER_MESSAGES = text(
    """
    INSERT INTO messaging.messages (id, conversation_id, sender_id, content, created_at)
    SELECT g.id, :conversation, :sender, 'Long story, part ' || g.n, messaging.id_time(g.id)
      FROM (SELECT kernel.uuid7_like() AS id, n FROM generate_series(1, :count) AS n) AS g
    """
)


async def test_every_message_is_exported_past_ten_thousand(
    client: httpx.AsyncClient,
    app: FastAPI,
    runtime: Runtime,
    database: DatabaseUrls,
    alice: Persona,
    bob: Persona,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_archive, "ROWS_PER_FETCH", ROWS_PER_FETCH)
    made = await client.post(
        "/v1/conversations", headers=alice.headers, json={"type": "direct", "participant_ids": [bob.user_id]}
    )
    assert made.status_code in (200, 201), made.text
    conversation = UUID(made.json()["id"])
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            _HER_MESSAGES, {"conversation": conversation, "sender": UUID(alice.user_id), "count": MESSAGES}
        )
    his = await client.post(
        f"/v1/conversations/{conversation}/messages", headers=bob.headers, json={"content": "Bob's only reply"}
    )
    assert his.status_code == 201, his.text

    status, data = await exported(client, app, alice)

    exported_messages = archive_sections(data)["messaging/messages.jsonl"]
    stored = await fetch(database, "SELECT id FROM messaging.messages WHERE sender_id = $1", UUID(alice.user_id))
    assert len(stored) == MESSAGES
    assert sorted(m["id"] for m in exported_messages) == sorted(str(row["id"]) for row in stored)
    assert sorted(m["content"] for m in exported_messages) == sorted(
        f"Long story, part {n}" for n in range(1, MESSAGES + 1)
    )
    assert all(m["sender_id"] == alice.user_id for m in exported_messages), "nothing bob sent"
    assert status["sections"]["messaging/messages.jsonl"] == MESSAGES
