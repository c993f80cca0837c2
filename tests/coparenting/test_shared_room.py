"""The shared room of a pairing: its topics organised from the acceptance on, the notice
that mediation is available (an `ai` message, Rapport's own), and the system message
saying that an active pairing ended. Each of Rapport's messages is posted once, whatever
number of times its job runs; no person sends an `ai` message, through the API or SQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel import jobs
from rapport.kernel.db import system_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.runtime import Runtime
from rapport.modules.coparenting import service
from rapport.modules.coparenting._pairing_jobs import (
    ENDED,
    JOINED,
    MEDIATION_AVAILABLE,
    announce_ended,
    announce_joined,
)
from tests.coparenting.pairing_support import PAIRINGS, invite, pair
from tests.messaging.support import make_conversation, send
from tests.security.messaging_sql import POLICY, attempt
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

JobsDone = Callable[[], Awaitable[None]]


async def rapports_own(client: httpx.AsyncClient, persona: Persona, room: str) -> list[tuple[str, str, Any]]:
    """The room's messages no person sent, oldest first, as (type, content, sender)."""
    listed = await client.get(f"/v1/conversations/{room}/messages", headers=persona.headers)
    assert listed.status_code == 200, listed.text
    items = sorted(listed.json()["items"], key=lambda m: m["seq"])
    return [(m["type"], m["content"], m["sender_id"]) for m in items if m["type"] in ("system", "ai")]


async def run_again(runtime: Runtime, jobs_done: JobsDone, task: jobs.Task, pairing_id: str) -> None:
    """Queue a job a second time (as a retry after a lost acknowledgement would) and wait for it."""
    async with system_transaction(runtime.system_engine) as db:
        await jobs.enqueue(db, task, {"pairing_id": pairing_id})
    await jobs_done()


async def end(client: httpx.AsyncClient, persona: Persona, pairing_id: str) -> None:
    ended = await client.delete(f"{PAIRINGS}/{pairing_id}", headers=persona.headers)
    assert ended.status_code == 204, ended.text


# --- topics ----------------------------------------------------------------------------------


async def test_accepting_organises_the_shared_rooms_topics(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, bob: Persona
) -> None:
    room = (await pair(client, alice, bob))["shared_room_id"]

    for parent in (alice, bob):
        topics = await client.get(f"/v1/coparenting/rooms/{room}/topics", headers=parent.headers)
        assert topics.status_code == 200, topics.text
        assert topics.json()["enabled_by"] == bob.user_id
    message = await send(client, alice, UUID(room), "The teacher says the homework is late again")
    await service.organise_all(runtime.system_engine)
    listed = await client.get(f"/v1/coparenting/rooms/{room}/topic-suggestions", headers=bob.headers)
    assert [(s["message_id"], s["kind"], s["category"]) for s in listed.json()["items"]] == [
        (message["id"], "new", "school")
    ]


# --- Rapport's messages in the room ------------------------------------------------------------


async def test_accepting_posts_the_mediation_notice_once_naming_nobody(
    client: httpx.AsyncClient, runtime: Runtime, jobs_done: JobsDone, alice: Persona, bob: Persona
) -> None:
    accepted = await pair(client, alice, bob)
    room = accepted["shared_room_id"]
    await jobs_done()
    await run_again(runtime, jobs_done, announce_joined, accepted["id"])

    expected = [("system", JOINED, None), ("ai", MEDIATION_AVAILABLE, None)]
    for parent in (alice, bob):
        assert await rapports_own(client, parent, room) == expected
    assert MEDIATION_AVAILABLE == (
        "Mediation is available: before you send, you can ask for a calmer version of your message. Only you see it."
    )
    history = (await client.get(f"/v1/conversations/{room}/messages", headers=alice.headers)).text
    assert alice.user_id not in history and bob.user_id not in history


async def test_ending_an_active_pairing_says_so_in_the_room_once(
    client: httpx.AsyncClient, runtime: Runtime, jobs_done: JobsDone, alice: Persona, bob: Persona
) -> None:
    accepted = await pair(client, alice, bob)
    room = accepted["shared_room_id"]
    await jobs_done()

    await end(client, alice, accepted["id"])
    await end(client, bob, accepted["id"])  # again: already ended, nothing more
    await jobs_done()
    await run_again(runtime, jobs_done, announce_ended, accepted["id"])

    for parent in (alice, bob):
        assert (await rapports_own(client, parent, room))[-1:] == [("system", ENDED, None)]
        assert [content for _, content, _ in await rapports_own(client, parent, room)].count(ENDED) == 1
    assert ENDED == "The co-parenting pairing ended. This room and its history stay."


async def test_canceling_an_invitation_never_accepted_posts_nothing(
    client: httpx.AsyncClient, runtime: Runtime, jobs_done: JobsDone, alice: Persona, bob: Persona
) -> None:
    made = await invite(client, alice, "code")
    await end(client, alice, made["id"])
    await run_again(runtime, jobs_done, announce_ended, made["id"])

    mine = (await client.get(f"{PAIRINGS}/{made['id']}", headers=alice.headers)).json()
    assert (mine["status"], mine["shared_room_id"]) == ("canceled", None)


async def test_an_active_pairing_is_not_said_to_have_ended(
    client: httpx.AsyncClient, runtime: Runtime, jobs_done: JobsDone, alice: Persona, bob: Persona
) -> None:
    accepted = await pair(client, alice, bob)
    await jobs_done()
    await run_again(runtime, jobs_done, announce_ended, accepted["id"])

    assert ENDED not in [c for _, c, _ in await rapports_own(client, alice, accepted["shared_room_id"])]


# --- nobody sends an ai message -------------------------------------------------------------------


async def test_a_client_cannot_send_an_ai_message_through_the_api(
    client: httpx.AsyncClient, app_engine: AsyncEngine, alice: Persona, bob: Persona
) -> None:
    room = await make_conversation(app_engine, alice, bob)

    for kind in ("ai", "system"):
        response = await client.post(
            f"/v1/conversations/{room}/messages", json={"content": "Calm down", "type": kind}, headers=alice.headers
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    listed = await client.get(f"/v1/conversations/{room}/messages", headers=bob.headers)
    assert listed.json()["items"] == []


def _send(kind: str) -> str:
    return (
        f"SELECT created FROM messaging.send_message(:u, :s, NULL, :c, NULL, '{kind}', 'Calm down', '{{}}'::jsonb, "
        "NULL, NULL, NULL, '{}'::uuid[], '{}'::uuid[])"
    )


_INSERT = (
    "INSERT INTO messaging.messages (id, conversation_id, sender_id, type, content, created_at) "
    "VALUES (:id, :c, :u, :kind, 'Calm down', messaging.id_time(:id)) RETURNING seq"
)


async def test_a_client_cannot_send_an_ai_message_through_sql(
    app_engine: AsyncEngine, alice: Persona, bob: Persona
) -> None:
    room = await make_conversation(app_engine, alice, bob)
    me = {"u": alice.user_id, "s": alice.session_id, "c": room}

    # The send function (a definer, which the insert policy lets through) refuses both types.
    assert await attempt(app_engine, None, _send("ai"), **me) == "RM403 cannot-send"
    assert await attempt(app_engine, None, _send("system"), **me) == "RM403 cannot-send"
    assert await attempt(app_engine, None, _send("text"), **me) is True
    # So does the insert policy, for a participant writing the row as themself.
    for kind in ("ai", "system"):
        refused = await attempt(app_engine, alice, _INSERT, id=uuid7(), c=room, u=alice.user_id, kind=kind)
        assert refused == POLICY
    made = await attempt(app_engine, alice, _INSERT, id=uuid7(), c=room, u=alice.user_id, kind="text")
    assert isinstance(made, int)


async def test_rapports_ai_notice_is_not_forwarded(
    client: httpx.AsyncClient, app_engine: AsyncEngine, jobs_done: JobsDone, alice: Persona, bob: Persona
) -> None:
    room = (await pair(client, alice, bob))["shared_room_id"]
    await jobs_done()
    elsewhere = await make_conversation(app_engine, alice, bob)
    listed = (await client.get(f"/v1/conversations/{room}/messages", headers=alice.headers)).json()["items"]
    [notice] = [m for m in listed if m["type"] == "ai"]

    forwarded = await client.post(
        f"/v1/conversations/{room}/messages/{notice['id']}/forward",
        json={"conversation_ids": [str(elsewhere)]},
        headers=alice.headers,
    )
    assert forwarded.status_code == 422, forwarded.text
    assert problem_type(forwarded).endswith("validation-error")
