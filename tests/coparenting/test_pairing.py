"""Pairing two parents: by code, link and e-mail; the shared room and its system message;
the status view; cancel, expiry, self-pairing, one active pairing per pair, the double
accept race, and the pause after many failed attempts.

Alice and bob are the two parents; carol is a third person who happens to hold a token."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable
from uuid import UUID

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import URL

from rapport.analytics import service as analytics_service
from rapport.kernel.db import system_transaction
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from rapport.kernel.runtime import Runtime
from rapport.modules.coparenting import service
from rapport.modules.coparenting._pairing import MAX_FAILED_ATTEMPTS
from tests.coparenting.pairing_support import (
    PAIRINGS,
    STATUS,
    accept,
    as_system,
    expire_now,
    invite,
    mailed_token,
    pair,
    user_events,
)
from tests.support import Mailbox, Persona, problem_type

pytestmark = pytest.mark.module_database


def refused(response: httpx.Response, status: int, slug: str) -> None:
    assert (response.status_code, problem_type(response)) == (status, slug), response.text


async def status_of(client: httpx.AsyncClient, persona: Persona) -> dict[str, object]:
    response = await client.get(STATUS, headers=persona.headers)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


# --- by code ---------------------------------------------------------------------------------


async def test_a_code_invitation_shows_its_code_to_the_initiator(client: httpx.AsyncClient, alice: Persona) -> None:
    made = await invite(client, alice, "code")

    assert re.fullmatch(r"LZ-\d{6}", made["pairing_code"])
    assert (made["status"], made["role"], made["token"], made["partner_id"]) == ("pending", "initiator", None, None)
    status = await status_of(client, alice)
    assert (status["pairing_id"], status["pairing_code"], status["status"]) == (
        made["id"],
        made["pairing_code"],
        "pending",
    )
    assert (status["user_role"], status["is_expired"]) == ("initiator", False)


async def test_accepting_a_code_pairs_the_two_in_a_shared_room(
    client: httpx.AsyncClient, alice: Persona, bob: Persona
) -> None:
    accepted = await pair(client, alice, bob)

    assert (accepted["status"], accepted["role"], accepted["partner_id"]) == ("active", "acceptor", alice.user_id)
    assert accepted["pairing_code"] is None and accepted["accepted_at"] is not None
    room = accepted["shared_room_id"]
    for parent, partner, role in ((alice, bob, "initiator"), (bob, alice, "acceptor")):
        status = await status_of(client, parent)
        assert (status["status"], status["user_role"], status["partner_id"]) == ("active", role, partner.user_id)
        assert status["shared_room_id"] == room
        people = await client.get(f"/v1/conversations/{room}/participants", headers=parent.headers)
        assert {p["user_id"] for p in people.json()["items"]} == {alice.user_id, bob.user_id}
    conversation = (await client.get(f"/v1/conversations/{room}", headers=alice.headers)).json()
    assert (conversation["type"], conversation["max_participants"]) == ("group", 2)


async def test_the_room_says_the_acceptor_joined_in_a_system_message(
    client: httpx.AsyncClient, alice: Persona, bob: Persona, jobs_done: Callable[[], Awaitable[None]]
) -> None:
    room = (await pair(client, alice, bob))["shared_room_id"]
    await jobs_done()

    history = (await client.get(f"/v1/conversations/{room}/messages", headers=alice.headers)).json()["items"]
    system = [(m["type"], m["content"], m["sender_id"]) for m in history if m["type"] == "system"]
    # Who joined is the pairing's to say: the message names nobody, so it outlives an erasure.
    assert system == [("system", "The other parent joined the shared room", None)]
    assert bob.user_id not in str(history)


async def test_both_parents_hear_of_the_pairing(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, bob: Persona
) -> None:
    accepted = await pair(client, alice, bob)

    assert [kind for kind, _ in await user_events(runtime, alice)] == ["pairing.created", "pairing.accepted"]
    [(kind, payload)] = await user_events(runtime, bob)
    assert (kind, payload["pairing_id"], payload["shared_room_id"]) == (
        "pairing.accepted",
        accepted["id"],
        accepted["shared_room_id"],
    )


# --- by link and by e-mail -------------------------------------------------------------------------


async def test_a_link_token_is_shown_once_and_kept_only_as_its_hash(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, carol: Persona
) -> None:
    made = await invite(client, alice, "link")
    token = made["token"]

    assert token.startswith("lzp_") and made["pairing_code"] is None
    again = (await client.get(f"{PAIRINGS}/{made['id']}", headers=alice.headers)).json()
    assert "token" not in again
    [stored] = await as_system(
        runtime,
        "SELECT invite_token_hash, pairing_code FROM coparenting.pairing_sessions WHERE id = :id",
        id=UUID(made["id"]),
    )
    assert (bytes(stored.invite_token_hash), stored.pairing_code) == (hashlib.sha256(token.encode()).digest(), None)
    accepted = await accept(client, carol, token=token)
    assert (accepted.status_code, accepted.json()["partner_id"]) == (200, alice.user_id), accepted.text


async def test_an_email_invitation_is_mailed_and_only_that_address_accepts(
    client: httpx.AsyncClient, mailbox: Mailbox, alice: Persona, bob: Persona, carol: Persona
) -> None:
    made = await invite(client, alice, "email", email="  BOB@example.com ")
    assert (made["invited_email"], made["token"]) == ("bob@example.com", None)

    [mail] = await mailbox.wait_for("bob@example.com")
    token = mailed_token(mail)
    refused(await accept(client, carol, token=token), 404, "pairing-invitation-not-found")
    accepted = await accept(client, bob, token=token)
    assert (accepted.status_code, accepted.json()["status"]) == (200, "active"), accepted.text


async def test_inviting_ones_own_address_is_refused(client: httpx.AsyncClient, alice: Persona) -> None:
    response = await client.post(PAIRINGS, headers=alice.headers, json={"invite_type": "email", "email": alice.email})
    refused(response, 422, "cannot-pair-with-yourself")


@pytest.mark.parametrize(
    "body",
    [
        {"invite_type": "email"},
        {"invite_type": "code", "email": "bob@example.com"},
        {"invite_type": "carrier pigeon"},
        {"invite_type": "link", "expires_in_hours": 0},
        {"invite_type": "email", "email": "not an address"},
    ],
)
async def test_a_malformed_invitation_is_refused(
    client: httpx.AsyncClient, alice: Persona, body: dict[str, object]
) -> None:
    refused(await client.post(PAIRINGS, headers=alice.headers, json=body), 422, "validation-error")


@pytest.mark.parametrize(
    "body", [{}, {"code": "LZ-000001", "token": "lzp_x"}, {"code": "123456"}, {"code": "LZ-12345"}]
)
async def test_a_malformed_acceptance_is_refused(client: httpx.AsyncClient, bob: Persona, body: dict[str, str]) -> None:
    refused(await accept(client, bob, **body), 422, "validation-error")


# --- refusals --------------------------------------------------------------------------------------


async def test_a_parent_cannot_accept_their_own_invitation(client: httpx.AsyncClient, alice: Persona) -> None:
    made = await invite(client, alice, "code")

    refused(await accept(client, alice, code=made["pairing_code"]), 422, "cannot-pair-with-yourself")
    assert (await status_of(client, alice))["status"] == "pending"


async def test_an_expired_invitation_is_marked_so_when_tried(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, bob: Persona
) -> None:
    made = await invite(client, alice, "code")
    await expire_now(runtime, made["id"])

    refused(await accept(client, bob, code=made["pairing_code"]), 410, "pairing-invitation-expired")
    status = await status_of(client, alice)
    assert (status["status"], status["is_expired"]) == ("expired", True)
    log = (await client.get(f"{PAIRINGS}/{made['id']}/log", headers=alice.headers)).json()
    assert [(step["action"], step["actor_id"]) for step in log] == [("created", alice.user_id), ("expired", None)]


async def test_the_sweep_expires_invitations_past_their_time(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona
) -> None:
    late, live = await invite(client, alice, "link"), await invite(client, alice, "code")
    await expire_now(runtime, late["id"])

    async with system_transaction(runtime.system_engine) as db:
        assert await service.do_expire_pairings(db) == 1
    assert (await client.get(f"{PAIRINGS}/{late['id']}", headers=alice.headers)).json()["status"] == "expired"
    assert (await client.get(f"{PAIRINGS}/{live['id']}", headers=alice.headers)).json()["status"] == "pending"
    assert (await user_events(runtime, alice))[-1][0] == "pairing.expired"


async def test_a_canceled_invitation_opens_nothing(client: httpx.AsyncClient, alice: Persona, bob: Persona) -> None:
    made = await invite(client, alice, "code")

    canceled = await client.post(f"{PAIRINGS}/{made['id']}/cancel", headers=alice.headers)
    assert (canceled.status_code, canceled.json()["status"]) == (200, "canceled"), canceled.text
    again = await client.post(f"{PAIRINGS}/{made['id']}/cancel", headers=alice.headers)
    assert again.json()["canceled_at"] == canceled.json()["canceled_at"]
    refused(await accept(client, bob, code=made["pairing_code"]), 404, "pairing-invitation-not-found")
    refused(await client.get(STATUS, headers=alice.headers), 404, "pairing-not-found")


async def test_either_parent_ends_an_active_pairing_and_both_hear_of_it(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, bob: Persona
) -> None:
    accepted = await pair(client, alice, bob)

    ended = await client.delete(f"{PAIRINGS}/{accepted['id']}", headers=bob.headers)
    assert ended.status_code == 204, ended.text
    mine = (await client.get(f"{PAIRINGS}/{accepted['id']}", headers=alice.headers)).json()
    assert (mine["status"], mine["shared_room_id"]) == ("canceled", accepted["shared_room_id"])
    assert (await user_events(runtime, alice))[-1][0] == "pairing.canceled"
    assert (await user_events(runtime, bob))[-1][0] == "pairing.canceled"
    # The room and its history stay theirs.
    room = await client.get(f"/v1/conversations/{accepted['shared_room_id']}", headers=alice.headers)
    assert room.status_code == 200


async def test_an_expired_invitation_cannot_be_canceled(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona
) -> None:
    made = await invite(client, alice, "code")
    await expire_now(runtime, made["id"])

    refused(await client.post(f"{PAIRINGS}/{made['id']}/cancel", headers=alice.headers), 409, "pairing-not-cancelable")


async def test_one_active_pairing_per_pair_of_parents(client: httpx.AsyncClient, alice: Persona, bob: Persona) -> None:
    first, second = await invite(client, alice, "code"), await invite(client, alice, "code")
    assert (await accept(client, bob, code=first["pairing_code"])).status_code == 200

    refused(await accept(client, bob, code=second["pairing_code"]), 409, "already-paired")
    reverse = await invite(client, bob, "code")
    refused(await accept(client, alice, code=reverse["pairing_code"]), 409, "already-paired")
    # The refused invitation is still pending: nothing of the attempt stayed.
    assert (await client.get(f"{PAIRINGS}/{second['id']}", headers=alice.headers)).json()["status"] == "pending"


async def test_of_two_acceptors_racing_one_wins(
    client: httpx.AsyncClient, alice: Persona, bob: Persona, carol: Persona
) -> None:
    made = await invite(client, alice, "code")

    answers = await asyncio.gather(
        accept(client, bob, code=made["pairing_code"]), accept(client, carol, code=made["pairing_code"])
    )
    assert sorted(answer.status_code for answer in answers) == [200, 404], [a.text for a in answers]
    [winner] = [who for who, answer in zip((bob, carol), answers, strict=True) if answer.status_code == 200]
    status = await status_of(client, alice)
    assert (status["status"], status["partner_id"]) == ("active", winner.user_id)


async def test_two_invitations_of_one_pair_accepted_at_once_make_one_pairing(
    client: httpx.AsyncClient, alice: Persona, bob: Persona
) -> None:
    first, second = await invite(client, alice, "code"), await invite(client, alice, "link")

    answers = await asyncio.gather(
        accept(client, bob, code=first["pairing_code"]), accept(client, bob, token=second["token"])
    )
    assert sorted(answer.status_code for answer in answers) == [200, 409], [a.text for a in answers]


async def test_many_failed_attempts_pause_the_guesser(
    client: httpx.AsyncClient, alice: Persona, mallory: Persona
) -> None:
    made = await invite(client, alice, "code")
    wrong = [f"LZ-{n:06d}" for n in range(20) if f"LZ-{n:06d}" != made["pairing_code"]][:MAX_FAILED_ATTEMPTS]
    for code in wrong:
        refused(await accept(client, mallory, code=code), 404, "pairing-invitation-not-found")

    paused = await accept(client, mallory, code=made["pairing_code"])
    refused(paused, 429, "too-many-pairing-attempts")
    assert int(paused.headers["Retry-After"]) > 0
    assert (await status_of(client, alice))["status"] == "pending"


async def test_a_failed_acceptance_is_written_to_the_audit_log(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, mallory: Persona
) -> None:
    made = await invite(client, alice, "code")
    wrong = next(f"LZ-{n:06d}" for n in range(2) if f"LZ-{n:06d}" != made["pairing_code"])

    refused(await accept(client, mallory, code=wrong), 404, "pairing-invitation-not-found")
    refused(await accept(client, mallory, token="lzp_not-a-token"), 404, "pairing-invitation-not-found")

    steps = await as_system(
        runtime,
        "SELECT pairing_id, details FROM coparenting.pairing_audit_log"
        " WHERE action = 'accept_failed' AND actor_id = :actor ORDER BY created_at, id",
        actor=UUID(mallory.user_id),
    )
    # Naming no pairing, and neither the code nor the token tried.
    assert [(row.pairing_id, row.details) for row in steps] == [(None, {"by": "code"}), (None, {"by": "token"})]


# --- reading ---------------------------------------------------------------------------------------


async def test_with_no_pairing_the_status_is_not_found(client: httpx.AsyncClient, bob: Persona) -> None:
    refused(await client.get(STATUS, headers=bob.headers), 404, "pairing-not-found")


async def test_the_status_prefers_the_active_pairing_to_a_newer_invitation(
    client: httpx.AsyncClient, alice: Persona, bob: Persona
) -> None:
    accepted = await pair(client, alice, bob)
    await invite(client, alice, "link")

    assert (await status_of(client, alice))["pairing_id"] == accepted["id"]


async def test_the_log_holds_every_step(client: httpx.AsyncClient, alice: Persona, bob: Persona) -> None:
    accepted = await pair(client, alice, bob)
    await client.post(f"{PAIRINGS}/{accepted['id']}/cancel", headers=alice.headers)

    for parent in (alice, bob):
        log = (await client.get(f"{PAIRINGS}/{accepted['id']}/log", headers=parent.headers)).json()
        assert [(step["action"], step["actor_id"]) for step in log] == [
            ("created", alice.user_id),
            ("accepted", bob.user_id),
            ("canceled", alice.user_id),
        ]
        assert all("LZ-" not in str(step["details"]) for step in log)


async def test_an_account_that_goes_leaves_the_pairing_to_the_other_parent_without_its_traces(
    app: FastAPI,
    client: httpx.AsyncClient,
    database: DatabaseUrls,
    admin_url: URL,
    mailbox: Mailbox,
    alice: Persona,
    bob: Persona,
) -> None:
    made = await invite(client, alice, "email", email=bob.email)
    [mail] = await mailbox.wait_for(bob.email)
    token = mailed_token(mail)
    assert (await accept(client, bob, token=token)).status_code == 200
    # The acceptance's own work done first (the room's notices, notifications, analytics'
    # record of the sign-ins): the deletion below is a bare DELETE, without the retries an
    # erasure job has when it meets that work in a deadlock.
    async with asyncio.timeout(10):
        await app.state.worker.wait_idle()
        await app.state.notifications.catch_up()
        await analytics_service.record_server_events(app.state.runtime.system_engine)

    su = await asyncpg.connect(asyncpg_dsn(admin_url.set(database=database.owner.database)))
    try:
        await su.execute("DELETE FROM auth.users WHERE id = $1", UUID(bob.user_id))
        row = await su.fetchrow("SELECT * FROM coparenting.pairing_sessions WHERE id = $1", UUID(made["id"]))
    finally:
        await su.close()

    assert row is not None
    assert (row["parent_a_id"], row["parent_b_id"], row["parent_b_email"]) == (UUID(alice.user_id), None, None)
    status = await status_of(client, alice)
    assert (status["status"], status["partner_id"], status["invited_email"]) == ("active", None, None)
