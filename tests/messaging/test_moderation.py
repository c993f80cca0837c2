"""Moderation: POST /v1/conversations/{id}/messages/{message_id}/report, the conversation's
moderation queue (GET .../moderation, .../moderation/flagged, .../moderation/reports),
resolving a report (POST .../moderation/reports/{report_id}), flagging a message (PATCH
.../messages/{message_id}/moderation), and, for platform administrators, every open report
(GET /v1/admin/moderation/reports) and the blocked terms (/v1/admin/moderation/blocked-terms)
that flag messages as they are sent.

Alice owns a group where bob is a member and carol a moderator; bob reports alice's
messages; dave is a platform administrator who takes part in nothing; mallory is a stranger."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import asyncpg_dsn
from rapport.kernel.runtime import Runtime
from tests.messaging import group_world
from tests.messaging.support import make_conversation, send
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

# The shared world's fixtures (tests.messaging.group_world), taken by this module.
World = group_world.World
module_world, world, group = group_world.module_world, group_world.world, group_world.group
alice, bob, carol, mallory = group_world.alice, group_world.bob, group_world.carol, group_world.mallory

ADMIN_REPORTS = "/v1/admin/moderation/reports"
BLOCKED_TERMS = "/v1/admin/moderation/blocked-terms"


def report_path(conversation_id: UUID, message_id: str) -> str:
    return f"/v1/conversations/{conversation_id}/messages/{message_id}/report"


def flag_path(conversation_id: UUID, message_id: str) -> str:
    return f"/v1/conversations/{conversation_id}/messages/{message_id}/moderation"


def moderation_of(conversation_id: UUID, tail: str = "") -> str:
    return f"/v1/conversations/{conversation_id}/moderation{tail}"


def refused(response: httpx.Response, status: int, slug: str) -> None:
    assert (response.status_code, problem_type(response)) == (status, slug), response.text


async def report(
    client: httpx.AsyncClient, persona: Persona, conversation_id: UUID, message_id: str, **body: Any
) -> dict[str, Any]:
    body.setdefault("reason", "harassment")
    response = await client.post(report_path(conversation_id, message_id), headers=persona.headers, json=body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def resolve(
    client: httpx.AsyncClient, persona: Persona, conversation_id: UUID, report_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        moderation_of(conversation_id, f"/reports/{report_id}"), headers=persona.headers, json=body
    )


async def make_admin(runtime: Runtime, persona: Persona) -> Persona:
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(text("UPDATE auth.users SET is_admin = true WHERE id = :id"), {"id": persona.user_id})
    return persona


async def events(runtime: Runtime, conversation_id: UUID) -> list[tuple[str, dict[str, Any]]]:
    """The conversation's committed events, oldest first, as the worker role reads them."""
    async with runtime.system_engine.engine.connect() as db:
        rows = await db.execute(
            text(
                "SELECT type, payload FROM kernel.events"
                " WHERE scope_kind = 'conversation' AND scope_id = :scope ORDER BY position"
            ),
            {"scope": conversation_id},
        )
        return [(row.type, row.payload) for row in rows if row.type != "message.created"]


async def history(client: httpx.AsyncClient, persona: Persona, conversation_id: UUID) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/conversations/{conversation_id}/messages", headers=persona.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


# Carol moderates the group (tests.messaging.group_world).
CAROL_ROLE = "moderator"


@pytest.fixture
async def dave(runtime, database, make_persona) -> Persona:
    # The one row of messaging.moderation is made by migration 0014, and this module's
    # database is emptied before each test (tests/module_scope.py): put it back, as a fresh
    # database has it.
    owner = await asyncpg.connect(asyncpg_dsn(database.owner))
    try:
        await owner.execute("INSERT INTO messaging.moderation (id, pattern) VALUES (true, NULL) ON CONFLICT DO NOTHING")
    finally:
        await owner.close()
    return await make_admin(runtime, await make_persona("dave"))


# Reporting


async def test_a_participant_reports_a_message_as_they_saw_it(client, group, alice, bob):
    message = await send(client, alice, group, "you are awful")
    made = await report(client, bob, group, message["id"], reason="harassment", details="Not the first time.")
    assert made["status"] == "open" and made["reporter_id"] == bob.user_id
    assert (made["message_id"], made["message_sender_id"], made["message_content"]) == (
        message["id"],
        alice.user_id,
        "you are awful",
    )
    assert (made["reason"], made["details"], made["resolved_at"]) == ("harassment", "Not the first time.", None)


async def test_one_open_report_per_person_and_message(client, group, alice, bob, carol):
    message = await send(client, alice, group, "spam spam")
    await report(client, bob, group, message["id"], reason="spam")
    again = await client.post(report_path(group, message["id"]), headers=bob.headers, json={"reason": "other"})
    refused(again, 409, "already-reported")
    await report(client, carol, group, message["id"], reason="spam")


async def test_a_message_may_be_reported_again_once_its_report_was_resolved(client, group, alice, bob):
    message = await send(client, alice, group, "hm")
    first = await report(client, bob, group, message["id"])
    assert (await resolve(client, alice, group, first["id"], action="dismiss")).status_code == 200
    second = await report(client, bob, group, message["id"])
    assert second["id"] != first["id"]


async def test_a_deleted_or_unknown_message_cannot_be_reported(client, app_engine, group, alice, bob):
    message = await send(client, alice, group, "gone soon")
    async with user_transaction(app_engine, UUID(alice.user_id)) as db:
        await db.execute(
            text(
                "UPDATE messaging.messages SET deleted_at = now()"
                " WHERE conversation_id = :c AND id = :m AND created_at = messaging.id_time(:m)"
            ),
            {"c": group, "m": message["id"]},
        )
    elsewhere = await make_conversation(app_engine, alice, bob)
    kept = await send(client, alice, elsewhere, "over there")
    for conversation, message_id in ((group, message["id"]), (group, str(uuid7())), (group, kept["id"])):
        refused(
            await client.post(report_path(conversation, message_id), headers=bob.headers, json={"reason": "spam"}),
            404,
            "message-not-found",
        )


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-reason"),
        pytest.param({"reason": "rude"}, id="unknown-reason"),
        pytest.param({"reason": "spam", "details": "x" * 2001}, id="details-too-long"),
        pytest.param({"reason": "spam", "details": ""}, id="empty-details"),
        pytest.param({"reason": "spam", "status": "actioned"}, id="extra-field"),
    ],
)
async def test_a_bad_report_is_refused(client, group, alice, bob, body):
    message = await send(client, alice, group, "hello")
    refused(
        await client.post(report_path(group, message["id"]), headers=bob.headers, json=body), 422, "validation-error"
    )


async def test_a_stranger_cannot_report(client, group, alice, mallory):
    message = await send(client, alice, group, "private")
    refused(
        await client.post(report_path(group, message["id"]), headers=mallory.headers, json={"reason": "spam"}),
        404,
        "conversation-not-found",
    )


# The conversation's moderation queue


async def test_moderators_see_flagged_messages_and_open_reports(client, group, alice, bob, carol):
    message = await send(client, alice, group, "look at this")
    made = await report(client, bob, group, message["id"])
    flagged = await client.patch(
        flag_path(group, message["id"]), headers=carol.headers, json={"moderation_flagged": True}
    )
    assert flagged.status_code == 200, flagged.text
    for moderator in (alice, carol):
        queue = await client.get(moderation_of(group), headers=moderator.headers)
        assert queue.status_code == 200, queue.text
        assert [m["id"] for m in queue.json()["flagged"]["items"]] == [message["id"]]
        assert [r["id"] for r in queue.json()["reports"]["items"]] == [made["id"]]


async def test_members_and_strangers_have_no_moderation_queue(client, group, bob, mallory):
    for path in (moderation_of(group), moderation_of(group, "/flagged"), moderation_of(group, "/reports")):
        refused(await client.get(path, headers=bob.headers), 403, "not-allowed-in-conversation")
        refused(await client.get(path, headers=mallory.headers), 404, "conversation-not-found")


async def test_the_flagged_list_is_paginated_newest_first(client, group, alice, carol):
    sent = [await send(client, alice, group, f"message {n}") for n in range(3)]
    for message in sent:
        response = await client.patch(
            flag_path(group, message["id"]), headers=carol.headers, json={"moderation_flagged": True}
        )
        assert response.status_code == 200, response.text
    first = (await client.get(moderation_of(group, "/flagged"), headers=alice.headers, params={"limit": 2})).json()
    rest = (
        await client.get(
            moderation_of(group, "/flagged"), headers=alice.headers, params={"limit": 2, "cursor": first["next"]}
        )
    ).json()
    assert [m["id"] for m in first["items"] + rest["items"]] == [m["id"] for m in sent[::-1]]
    assert rest["next"] is None


async def test_the_reports_list_filters_by_status(client, group, alice, bob):
    one, two = await send(client, alice, group, "one"), await send(client, alice, group, "two")
    kept = await report(client, bob, group, one["id"])
    dismissed = await report(client, bob, group, two["id"])
    await resolve(client, alice, group, dismissed["id"], action="dismiss")
    open_now = (await client.get(moderation_of(group, "/reports"), headers=alice.headers)).json()
    closed = (
        await client.get(moderation_of(group, "/reports"), headers=alice.headers, params={"status": "dismissed"})
    ).json()
    assert [r["id"] for r in open_now["items"]] == [kept["id"]]
    assert [r["id"] for r in closed["items"]] == [dismissed["id"]]


async def test_bad_list_parameters_are_refused(client, group, alice):
    refused(
        await client.get(moderation_of(group, "/reports"), headers=alice.headers, params={"status": "closed"}),
        422,
        "validation-error",
    )
    refused(
        await client.get(moderation_of(group, "/flagged"), headers=alice.headers, params={"cursor": "%%"}),
        400,
        "invalid-cursor",
    )
    refused(await client.get(moderation_of(group), headers=alice.headers, params={"limit": 0}), 422, "validation-error")


# Resolving reports


async def test_a_moderator_dismisses_a_report(client, group, alice, bob, carol):
    message = await send(client, alice, group, "fine really")
    made = await report(client, bob, group, message["id"])
    response = await resolve(client, carol, group, made["id"], action="dismiss", note="Banter.")
    assert response.status_code == 200, response.text
    done = response.json()
    assert (done["status"], done["resolved_by"], done["resolution_note"]) == ("dismissed", carol.user_id, "Banter.")
    assert done["resolved_at"] is not None
    assert not (await history(client, bob, group))[0]["is_deleted"]


async def test_deleting_the_message_resolves_every_open_report_of_it(client, runtime, group, alice, bob, carol):
    message = await send(client, alice, group, "truly vile")
    by_bob = await report(client, bob, group, message["id"], reason="hate")
    by_carol = await report(client, carol, group, message["id"], reason="hate")
    response = await resolve(client, alice, group, by_bob["id"], action="delete_message")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "actioned"
    [gone] = await history(client, bob, group)
    assert gone["is_deleted"] and gone["content"] == ""
    reports = (
        await client.get(moderation_of(group, "/reports"), headers=alice.headers, params={"status": "actioned"})
    ).json()
    assert {r["id"] for r in reports["items"]} == {by_bob["id"], by_carol["id"]}
    # The report keeps what was said, for the record.
    assert {r["message_content"] for r in reports["items"]} == {"truly vile"}
    assert await events(runtime, group) == [("message.deleted", {"message_id": message["id"], "seq": message["seq"]})]


async def test_a_resolved_report_stays_resolved(client, group, alice, bob):
    message = await send(client, alice, group, "meh")
    made = await report(client, bob, group, message["id"])
    await resolve(client, alice, group, made["id"], action="dismiss")
    refused(await resolve(client, alice, group, made["id"], action="delete_message"), 409, "report-not-open")


async def test_a_member_cannot_resolve_reports(client, group, alice, bob):
    message = await send(client, alice, group, "hey")
    made = await report(client, bob, group, message["id"])
    refused(await resolve(client, bob, group, made["id"], action="dismiss"), 403, "not-allowed-in-conversation")


async def test_a_stranger_cannot_resolve_reports(client, group, alice, bob, mallory):
    message = await send(client, alice, group, "hey")
    made = await report(client, bob, group, message["id"])
    refused(await resolve(client, mallory, group, made["id"], action="dismiss"), 404, "conversation-not-found")


async def test_an_unknown_report_is_not_found(client, group, alice):
    refused(await resolve(client, alice, group, str(uuid7()), action="dismiss"), 404, "report-not-found")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-action"),
        pytest.param({"action": "ban"}, id="unknown-action"),
        pytest.param({"action": "dismiss", "note": "x" * 2001}, id="note-too-long"),
    ],
)
async def test_a_bad_resolution_is_refused(client, group, alice, bob, body):
    message = await send(client, alice, group, "hey")
    made = await report(client, bob, group, message["id"])
    refused(await resolve(client, alice, group, made["id"], **body), 422, "validation-error")


# Platform administrators


async def test_a_platform_admin_sees_every_open_report(client, app_engine, group, alice, bob, mallory, dave):
    message = await send(client, alice, group, "report me")
    made = await report(client, bob, group, message["id"])
    elsewhere = await make_conversation(app_engine, mallory, bob)
    other = await send(client, mallory, elsewhere, "and me")
    theirs = await report(client, bob, elsewhere, other["id"], reason="spam")
    response = await client.get(ADMIN_REPORTS, headers=dave.headers)
    assert response.status_code == 200, response.text
    assert [(r["id"], r["message_content"]) for r in response.json()["items"]] == [
        (theirs["id"], "and me"),
        (made["id"], "report me"),
    ]


async def test_a_platform_admin_resolves_a_report_where_they_take_no_part(client, group, alice, bob, dave):
    message = await send(client, alice, group, "hmm")
    made = await report(client, bob, group, message["id"])
    response = await resolve(client, dave, group, made["id"], action="dismiss", note="Checked.")
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["resolved_by"]) == ("dismissed", dave.user_id)
    assert (await client.get(ADMIN_REPORTS, headers=dave.headers)).json()["items"] == []


async def test_only_platform_admins_list_every_report(client, alice, carol):
    refused(await client.get(ADMIN_REPORTS, headers=alice.headers), 403, "platform-admin-required")


# Flags


async def test_a_moderator_flags_and_clears_a_message(client, runtime, group, alice, bob, carol):
    message = await send(client, bob, group, "borderline")
    flagged = await client.patch(
        flag_path(group, message["id"]), headers=alice.headers, json={"moderation_flagged": True}
    )
    assert flagged.status_code == 200, flagged.text
    assert flagged.json()["moderation_flagged"] is True
    assert (await history(client, bob, group))[0]["moderation_flagged"] is True
    cleared = await client.patch(
        flag_path(group, message["id"]), headers=carol.headers, json={"moderation_flagged": False}
    )
    assert cleared.json()["moderation_flagged"] is False
    again = await client.patch(
        flag_path(group, message["id"]), headers=carol.headers, json={"moderation_flagged": False}
    )
    assert again.status_code == 200
    assert await events(runtime, group) == [
        ("message.flagged", {"message_id": message["id"], "seq": 1, "moderation_flagged": True}),
        ("message.flagged", {"message_id": message["id"], "seq": 1, "moderation_flagged": False}),
    ]
    assert (await client.get(moderation_of(group, "/flagged"), headers=alice.headers)).json()["items"] == []


async def test_members_and_strangers_cannot_flag(client, group, alice, bob, mallory):
    message = await send(client, alice, group, "mine")
    body = {"moderation_flagged": True}
    refused(
        await client.patch(flag_path(group, message["id"]), headers=bob.headers, json=body),
        403,
        "not-allowed-in-conversation",
    )
    refused(
        await client.patch(flag_path(group, message["id"]), headers=mallory.headers, json=body),
        404,
        "conversation-not-found",
    )
    assert (await history(client, alice, group))[0]["moderation_flagged"] is False


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"moderation_flagged": "true"}, id="a-string"),
        pytest.param({"moderation_flagged": None}, id="null"),
    ],
)
async def test_a_bad_flag_is_refused(client, group, alice, body):
    message = await send(client, alice, group, "x")
    refused(
        await client.patch(flag_path(group, message["id"]), headers=alice.headers, json=body), 422, "validation-error"
    )


async def test_a_flag_left_out_stays_as_it_is(client, group, alice, carol):
    message = await send(client, alice, group, "x")
    await client.patch(flag_path(group, message["id"]), headers=carol.headers, json={"moderation_flagged": True})
    response = await client.patch(flag_path(group, message["id"]), headers=carol.headers, json={})
    assert response.status_code == 200, response.text
    assert response.json()["moderation_flagged"] is True


async def test_an_unknown_message_cannot_be_flagged(client, group, alice):
    refused(
        await client.patch(flag_path(group, str(uuid7())), headers=alice.headers, json={"moderation_flagged": True}),
        404,
        "message-not-found",
    )


# Blocked terms


async def add_term(client: httpx.AsyncClient, admin: Persona, term: str) -> dict[str, Any]:
    response = await client.post(BLOCKED_TERMS, headers=admin.headers, json={"term": term})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_blocked_term_flags_messages_sent_afterwards(client, group, alice, bob, dave):
    before = await send(client, bob, group, "what a Scam this is")
    term = await add_term(client, dave, "SCAM")
    assert term["term"] == "scam" and term["created_by"] == dave.user_id
    flagged = await send(client, bob, group, "total sCaM, buy now")
    clean = await send(client, bob, group, "all good here")
    assert (before["moderation_flagged"], flagged["moderation_flagged"], clean["moderation_flagged"]) == (
        False,
        True,
        False,
    )
    queue = (await client.get(moderation_of(group, "/flagged"), headers=alice.headers)).json()
    assert [m["id"] for m in queue["items"]] == [flagged["id"]]


async def test_a_blocked_term_is_matched_literally(client, group, bob, dave):
    await add_term(client, dave, "a.b")
    assert (await send(client, bob, group, "axb"))["moderation_flagged"] is False
    assert (await send(client, bob, group, "see a.b here"))["moderation_flagged"] is True


async def test_an_unblocked_term_flags_no_more(client, group, bob, dave):
    term = await add_term(client, dave, "forbidden")
    removed = await client.delete(f"{BLOCKED_TERMS}/{term['id']}", headers=dave.headers)
    assert removed.status_code == 204, removed.text
    assert (await send(client, bob, group, "forbidden fruit"))["moderation_flagged"] is False
    refused(await client.delete(f"{BLOCKED_TERMS}/{term['id']}", headers=dave.headers), 404, "blocked-term-not-found")


async def test_the_blocked_terms_are_listed_newest_first(client, dave):
    first, second = await add_term(client, dave, "one"), await add_term(client, dave, "two")
    listed = await client.get(BLOCKED_TERMS, headers=dave.headers)
    assert listed.status_code == 200, listed.text
    assert [t["id"] for t in listed.json()["items"]] == [second["id"], first["id"]]


async def test_a_term_is_blocked_once_whatever_its_case(client, dave):
    await add_term(client, dave, "twice")
    refused(await client.post(BLOCKED_TERMS, headers=dave.headers, json={"term": "TWICE"}), 409, "blocked-term-exists")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="missing"),
        pytest.param({"term": ""}, id="empty"),
        pytest.param({"term": "   "}, id="blank"),
        pytest.param({"term": "x" * 201}, id="too-long"),
        pytest.param({"term": "two\nlines"}, id="multiline"),
        pytest.param({"term": 42}, id="not-a-string"),
    ],
)
async def test_a_bad_term_is_refused(client, dave, body):
    refused(await client.post(BLOCKED_TERMS, headers=dave.headers, json=body), 422, "validation-error")


async def test_only_platform_admins_keep_the_blocked_terms(client, alice, dave):
    term = await add_term(client, dave, "secret")
    refused(await client.get(BLOCKED_TERMS, headers=alice.headers), 403, "platform-admin-required")
    refused(
        await client.post(BLOCKED_TERMS, headers=alice.headers, json={"term": "mine"}), 403, "platform-admin-required"
    )
    refused(await client.delete(f"{BLOCKED_TERMS}/{term['id']}", headers=alice.headers), 403, "platform-admin-required")
