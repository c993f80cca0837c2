"""The match routes as a person meets them: a free person's eleventh like of the day,
through POST /v1/matching/matches/{id}/like, is refused with 429 and when to try again;
and the conversation a mutual match opens is the messaging domain's, blocked terms and
the moderation flag included.

Alice (free, a woman) and bob (a man) want each other; dave keeps the platform's blocked
terms."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from rapport.kernel.db import system_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from rapport.kernel.runtime import Runtime
from rapport.modules.matching import service
from tests.compliance.admin_support import make_admin
from tests.matching.test_likes import decide, ok, proposed, refused
from tests.messaging.support import send
from tests.support import Persona

pytestmark = pytest.mark.module_database

__all__ = ["proposed"]

BREAKDOWN = json.dumps({"attachment": 0.5, "interests": 0.5, "values": 0.5, "demographics": 0.5})


async def proposals_to(runtime: Runtime, person: Persona, count: int) -> list[dict[str, Any]]:
    """`count` matches proposed today to `person`, each with someone new (accounts without
    sign-in: they only need to exist)."""
    made = []
    async with system_transaction(runtime.system_engine) as db:
        for _ in range(count):
            other, match_id = uuid7(), uuid7()
            await db.execute(
                text(
                    "INSERT INTO auth.users (id, email, status, email_verified_at)"
                    " VALUES (:id, :email, 'active', now())"
                ),
                {"id": other, "email": f"someone-{other}@example.com"},
            )
            await db.execute(
                text(
                    "INSERT INTO matching.matches (id, user_id, matched_user_id, score, breakdown, for_date)"
                    " VALUES (:id, :me, :other, 0.5, CAST(:breakdown AS jsonb), (now() AT TIME ZONE 'UTC')::date)"
                ),
                {"id": match_id, "me": UUID(person.user_id), "other": other, "breakdown": BREAKDOWN},
            )
            made.append({"id": str(match_id)})
    return made


async def test_a_free_persons_eleventh_like_is_refused_with_retry_after(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona
) -> None:
    limit = service.LIKES_PER_DAY["free"]
    assert limit is not None
    *allowed, eleventh = await proposals_to(runtime, alice, limit + 1)
    for match in allowed:
        assert ok(await decide(client, alice, match, "like"))["status"] == "liked"

    answer = await decide(client, alice, eleventh, "like")

    refused(answer, 429, "daily-likes-spent")
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    assert 0 < int(answer.headers["Retry-After"]) <= (midnight - datetime.now(UTC)).total_seconds() + 2
    # Refused, not spent: the match waits, still proposed, for tomorrow's like.
    [still] = [
        m
        for m in (await client.get("/v1/matching/daily", headers=alice.headers)).json()["matches"]
        if m["id"] == eleventh["id"]
    ]
    assert still["status"] == "proposed"


async def test_a_blocked_term_flags_a_message_in_a_mutual_matchs_conversation(
    client: httpx.AsyncClient,
    runtime: Runtime,
    database: DatabaseUrls,
    make_persona: Any,
    alice: Persona,
    bob: Persona,
    proposed: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    # The one row of messaging.moderation is a fresh database's (migration 0014); this
    # module's database is emptied before each test: put it back.
    owner = await asyncpg.connect(asyncpg_dsn(database.owner))
    try:
        await owner.execute("INSERT INTO messaging.moderation (id, pattern) VALUES (true, NULL) ON CONFLICT DO NOTHING")
    finally:
        await owner.close()
    dave = await make_admin(runtime, await make_persona("dave"))
    added = await client.post("/v1/admin/moderation/blocked-terms", headers=dave.headers, json={"term": "wire me"})
    assert added.status_code == 201, added.text
    hers, his = proposed
    ok(await decide(client, alice, hers, "like"))
    conversation = UUID(ok(await decide(client, bob, his, "like"))["conversation_id"])

    flagged = await send(client, bob, conversation, "Please WIRE ME the money")
    clean = await send(client, alice, conversation, "Coffee on Sunday?")

    assert (flagged["moderation_flagged"], clean["moderation_flagged"]) == (True, False)
