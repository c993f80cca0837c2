"""The analysis of a draft for an end-to-end encrypted conversation: refused (409
`analysis-conversation-encrypted`) before anything is analysed, so the draft never
reaches the language model and no rewrite, trigger count or text of it is kept. The same
draft for a plain conversation is analysed as ever, which shows the refusal is the
encryption's. A conversation the sender takes no part in stays not found, encrypted or
not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import text

from rapport.config import Settings
from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime
from tests.coparenting.llm_fake import API_KEY, MODEL, FakeLlm
from tests.encryption.support import open_encrypted
from tests.messaging.support import make_conversation
from tests.support import Persona, make_settings, problem_type

pytestmark = pytest.mark.module_database

ANALYSIS = "/v1/coparenting/analysis"
HOSTILE = "You need to send the school forms by Monday or else I'm calling my lawyer!!"
REWRITE = "Could you send the school forms by Monday?"


@pytest.fixture(scope="module")
async def llm() -> AsyncIterator[FakeLlm]:
    async with FakeLlm() as fake:
        yield fake


@pytest.fixture(scope="module")
def module_settings(llm: FakeLlm) -> Settings:
    return make_settings(llm_url=llm.url, llm_model=MODEL, llm_api_key=API_KEY, llm_timeout_s=2.0)


@pytest.fixture
async def willing(client: httpx.AsyncClient, alice: Persona, llm: FakeLlm) -> Persona:
    """Alice consented to AI features, keeps a trigger the draft contains, and the model
    would answer with a rewrite: everything that would send the draft out and keep it."""
    llm.reset()
    llm.answer({"hostile": True, "tone": "hostile", "rewrite": REWRITE})
    consented = await client.post(
        "/v1/me/consents", headers=alice.headers, json={"consent_type": "ai_features", "granted": True}
    )
    assert consented.status_code == 201, consented.text
    made = await client.post(
        "/v1/coparenting/triggers",
        headers=alice.headers,
        json={"trigger_type": "topic", "trigger_value": "school forms"},
    )
    assert made.status_code == 201, made.text
    return alice


async def analyse(client: httpx.AsyncClient, who: Persona, conversation_id: UUID | str) -> httpx.Response:
    return await client.post(
        ANALYSIS, headers=who.headers, json={"text": HOSTILE, "conversation_id": str(conversation_id)}
    )


async def kept(runtime: Runtime) -> dict[str, Any]:
    """What mediation holds of anyone's drafts, read past row-level security."""
    async with system_transaction(runtime.system_engine) as db:
        row = (
            await db.execute(
                text(
                    "SELECT (SELECT count(*) FROM coparenting.intervention_rewrites) AS rewrites,"
                    " (SELECT coalesce(sum(detection_count), 0) FROM coparenting.communication_triggers) AS detections"
                )
            )
        ).one()
    return {"rewrites": row.rewrites, "detections": row.detections}


@pytest.mark.parametrize("kind", ["direct", "group"])
async def test_a_draft_for_an_encrypted_conversation_is_refused_and_nothing_leaves_or_stays(
    client: httpx.AsyncClient, runtime: Runtime, willing: Persona, bob: Persona, llm: FakeLlm, kind: str
) -> None:
    room = await open_encrypted(client, willing, bob, type=kind)

    response = await analyse(client, willing, room)

    assert (response.status_code, problem_type(response)) == (409, "analysis-conversation-encrypted")
    assert response.headers["content-type"].startswith("application/problem+json")
    assert llm.received == []
    assert await kept(runtime) == {"rewrites": 0, "detections": 0}
    listed = await client.get("/v1/coparenting/rewrites", headers=willing.headers)
    assert listed.json()["items"] == []


async def test_the_same_draft_for_a_plain_conversation_is_analysed(
    client: httpx.AsyncClient, runtime: Runtime, app_engine: Any, willing: Persona, bob: Persona, llm: FakeLlm
) -> None:
    room = await make_conversation(app_engine, willing, bob, type="direct")

    response = await analyse(client, willing, room)

    assert response.status_code == 200, response.text
    assert (response.json()["engine"], response.json()["suggestion"]["text"]) == ("llm", REWRITE)
    assert len(llm.received) == 1
    assert await kept(runtime) == {"rewrites": 1, "detections": 1}


async def test_an_encrypted_conversation_the_sender_takes_no_part_in_is_not_found(
    client: httpx.AsyncClient, willing: Persona, bob: Persona, carol: Persona, llm: FakeLlm
) -> None:
    room = await open_encrypted(client, bob, carol, type="direct")

    response = await analyse(client, willing, room)

    assert (response.status_code, problem_type(response)) == (404, "conversation-not-found")
    assert llm.received == []
