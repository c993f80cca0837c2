"""Calls, their participants and reports of messages (messaging.calls,
messaging.call_participants, messaging.reports), attacked through SQL as `rapport_app`,
the role the server connects as, and through the API.

Alice owns a group with bob (a member) and carol (a moderator); alice started a call there
that bob joined, and bob and carol each reported alice's message. Mallory was never in the
group: she has a group, a call and a report of her own, so that the policies are seen to
filter rather than hide everything. Insiders are held to their own rows too: a member
neither ends someone else's call, nor writes another person's row, nor sees or resolves
anyone else's report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from rapport.kernel.db import user_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import DatabaseUrls
from tests.messaging.support import make_conversation, send
from tests.module_scope import build_once
from tests.security.messaging_sql import DENIED, POLICY, attempt, changed
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database


TABLES = ("messaging.calls", "messaging.call_participants", "messaging.reports")


async def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


@dataclass
class World:
    alice: Persona
    bob: Persona
    carol: Persona
    mallory: Persona
    group: UUID
    call: str
    message: str
    bobs_report: str
    carols_report: str
    mallorys_group: UUID

    def params(self, **more: Any) -> dict[str, Any]:
        return {
            "g": self.group,
            "call": self.call,
            "m": self.message,
            "alice": self.alice.user_id,
            "bob": self.bob.user_id,
            "carol": self.carol.user_id,
            "mallory": self.mallory.user_id,
            **more,
        }


@pytest.fixture(scope="module")
async def module_world(module_app: FastAPI, module_database: DatabaseUrls) -> World:
    """The group, its call and reports, and mallory's own, built once: each test's reset
    puts them back as they were (module_scope.build_once)."""
    async with build_once(module_app, module_database) as built:
        alice, bob, carol, mallory = await built.personas("alice", "bob", "carol", "mallory")
        return await _build(built.client, built.app_engine, alice, bob, carol, mallory)


@pytest.fixture
def world(module_world: World, database: DatabaseUrls) -> World:
    """The module's world, as built: the test's database was reset to it."""
    return module_world


async def _build(client, app_engine, alice, bob, carol, mallory) -> World:
    group = await make_conversation(app_engine, alice, bob, carol, roles={"carol": "moderator"})
    message = await send(client, alice, group, "something to report")
    call = await ok(
        await client.post(f"/v1/conversations/{group}/calls", headers=alice.headers, json={"type": "audio"}), 201
    )
    await ok(await client.post(f"/v1/conversations/{group}/calls/{call['id']}/join", headers=bob.headers))
    reports = [
        await ok(
            await client.post(
                f"/v1/conversations/{group}/messages/{message['id']}/report",
                headers=persona.headers,
                json={"reason": "spam"},
            ),
            201,
        )
        for persona in (bob, carol)
    ]
    mine = await make_conversation(app_engine, mallory)
    own = await send(client, mallory, mine, "note to self")
    await ok(await client.post(f"/v1/conversations/{mine}/calls", headers=mallory.headers, json={"type": "video"}), 201)
    await ok(
        await client.post(
            f"/v1/conversations/{mine}/messages/{own['id']}/report", headers=mallory.headers, json={"reason": "other"}
        ),
        201,
    )
    return World(
        alice=alice,
        bob=bob,
        carol=carol,
        mallory=mallory,
        group=group,
        call=call["id"],
        message=message["id"],
        bobs_report=reports[0]["id"],
        carols_report=reports[1]["id"],
        mallorys_group=mine,
    )


# Reading


async def test_the_group_has_rows_in_every_table(app_engine, world):
    """Without them the tests below would prove nothing."""
    seen = {
        table: await attempt(
            app_engine, world.alice, f"SELECT count(*) FROM {table} WHERE conversation_id = :g", g=world.group
        )
        for table in TABLES
    }
    assert seen == {"messaging.calls": 1, "messaging.call_participants": 3, "messaging.reports": 2}


async def test_mallory_reads_nothing_of_a_conversation_she_is_not_in(app_engine, world):
    seen = {
        table: await attempt(
            app_engine, world.mallory, f"SELECT count(*) FROM {table} WHERE conversation_id = :g", g=world.group
        )
        for table in TABLES
    }
    assert seen == dict.fromkeys(TABLES, 0)


async def test_mallory_reads_her_own(app_engine, world):
    """The policies filter; they do not merely hide everything."""
    seen = {table: await attempt(app_engine, world.mallory, f"SELECT count(*) FROM {table}") for table in TABLES}
    assert seen == {"messaging.calls": 1, "messaging.call_participants": 1, "messaging.reports": 1}


async def test_mallory_cannot_lock_a_call_she_cannot_see(app_engine, world):
    locked = await attempt(
        app_engine,
        world.mallory,
        "SELECT count(*) FROM (SELECT id FROM messaging.calls WHERE id = :call FOR UPDATE) x",
        call=world.call,
    )
    assert locked == 0


async def test_nothing_is_readable_without_a_user(app_engine, world):
    seen = {table: await attempt(app_engine, None, f"SELECT count(*) FROM {table}") for table in TABLES}
    assert seen == dict.fromkeys(TABLES, 0)


async def test_a_member_sees_their_own_report_only(app_engine, world):
    bob, carol = world.bob, world.carol
    sql = "SELECT count(*) FROM messaging.reports WHERE conversation_id = :g"
    assert await attempt(app_engine, bob, sql, g=world.group) == 1
    assert await attempt(app_engine, bob, sql + " AND reporter_id = :carol", g=world.group, carol=carol.user_id) == 0
    # The conversation's moderators see them all.
    assert await attempt(app_engine, carol, sql, g=world.group) == 2


async def test_a_removed_participant_sees_no_more_calls(app_engine, world):
    async with user_transaction(app_engine, UUID(world.alice.user_id)) as db:
        await db.execute(
            text("SELECT messaging.change_participant(:g, :bob, NULL, 'removed', NULL, NULL, NULL)"),
            {"g": world.group, "bob": world.bob.user_id},
        )
    seen = {
        table: await attempt(
            app_engine, world.bob, f"SELECT count(*) FROM {table} WHERE conversation_id = :g", g=world.group
        )
        for table in TABLES
    }
    # Their own report stays theirs to read.
    assert seen == {"messaging.calls": 0, "messaging.call_participants": 0, "messaging.reports": 1}


# Changing


# Each statement mallory tries on the group's rows, and what she gets: no row touched where
# her role holds the privilege, a refusal where it does not.
MALLORYS_CHANGES = {
    "end the call": ("UPDATE messaging.calls SET status = 'ended' WHERE conversation_id = :g RETURNING 1", 0),
    "move the call's times": (
        "UPDATE messaging.calls SET answered_at = now() WHERE conversation_id = :g RETURNING 1",
        DENIED,
    ),
    "delete the call": ("DELETE FROM messaging.calls WHERE conversation_id = :g RETURNING 1", DENIED),
    "leave for someone": (
        "UPDATE messaging.call_participants SET status = 'left' WHERE conversation_id = :g RETURNING 1",
        0,
    ),
    "rate for someone": (
        "UPDATE messaging.call_participants SET quality_rating = 1 WHERE conversation_id = :g RETURNING 1",
        0,
    ),
    "delete the participants": (
        "DELETE FROM messaging.call_participants WHERE conversation_id = :g RETURNING 1",
        DENIED,
    ),
    "resolve a report": (
        "UPDATE messaging.reports SET status = 'dismissed' WHERE conversation_id = :g RETURNING 1",
        0,
    ),
    "forge the resolver": (
        "UPDATE messaging.reports SET resolved_by = :mallory WHERE conversation_id = :g RETURNING 1",
        DENIED,
    ),
    "delete a report": ("DELETE FROM messaging.reports WHERE conversation_id = :g RETURNING 1", DENIED),
}


async def test_mallory_changes_nothing_of_a_conversation_she_is_not_in(app_engine, world):
    outcomes = {
        name: await changed(app_engine, world.mallory, statement, **world.params())
        for name, (statement, _) in MALLORYS_CHANGES.items()
    }
    assert outcomes == {name: expected for name, (_, expected) in MALLORYS_CHANGES.items()}


MALLORYS_INSERTS = {
    "start a call": (
        "INSERT INTO messaging.calls (id, conversation_id, type, started_by) VALUES (:id, :g, 'audio', :mallory)",
        "RM404 conversation-not-found",
    ),
    "start a call as alice": (
        "INSERT INTO messaging.calls (id, conversation_id, type, started_by) VALUES (:id, :g, 'audio', :alice)",
        "RM404 conversation-not-found",
    ),
    "join the call": (
        "INSERT INTO messaging.call_participants (conversation_id, call_id, user_id, status)"
        " VALUES (:g, :call, :mallory, 'joined')",
        "RM404 call-not-found",
    ),
    "report a message": (
        "INSERT INTO messaging.reports (id, conversation_id, message_id, reporter_id, reason)"
        " VALUES (:id, :g, :m, :mallory, 'spam')",
        "RM404 conversation-not-found",
    ),
    "report a message as bob": (
        "INSERT INTO messaging.reports (id, conversation_id, message_id, reporter_id, reason)"
        " VALUES (:id, :g, :m, :bob, 'spam')",
        "RM404 conversation-not-found",
    ),
}


async def test_mallory_cannot_write_into_a_conversation_she_is_not_in(app_engine, world):
    outcomes = {
        name: await attempt(app_engine, world.mallory, statement, **world.params(id=uuid7()))
        for name, (statement, _) in MALLORYS_INSERTS.items()
    }
    assert outcomes == {name: expected for name, (_, expected) in MALLORYS_INSERTS.items()}


async def test_mallory_cannot_put_a_call_into_her_conversation_under_anothers_name(app_engine, world):
    """Her own conversation, but alice as the starter: the policy refuses the row."""
    outcome = await attempt(
        app_engine,
        world.mallory,
        "INSERT INTO messaging.calls (id, conversation_id, type, started_by) VALUES (:id, :mine, 'audio', :alice)",
        id=uuid7(),
        mine=world.mallorys_group,
        alice=world.alice.user_id,
    )
    assert outcome == POLICY


# What a member tries on rows that are not theirs, and what they get.
MEMBERS_CHANGES = {
    "end alice's call": (
        "UPDATE messaging.calls SET status = 'ended' WHERE id = :call RETURNING 1",
        "RM403 not-allowed",
    ),
    "ring it again": (
        "UPDATE messaging.calls SET status = 'ringing' WHERE id = :call RETURNING 1",
        "RM403 not-allowed",
    ),
    "leave for alice": (
        "UPDATE messaging.call_participants SET status = 'left' WHERE call_id = :call AND user_id = :alice RETURNING 1",
        0,
    ),
    "stamp their own joining time": (
        "UPDATE messaging.call_participants SET joined_at = now() WHERE call_id = :call AND user_id = :bob RETURNING 1",
        DENIED,
    ),
    "mark themself missed": (
        "UPDATE messaging.call_participants SET status = 'missed' WHERE call_id = :call AND user_id = :bob RETURNING 1",
        "RM403 not-allowed",
    ),
    "resolve their own report": (
        "UPDATE messaging.reports SET status = 'dismissed' WHERE conversation_id = :g RETURNING 1",
        0,
    ),
}


async def test_a_member_is_held_to_their_own_rows(app_engine, world):
    outcomes = {
        name: await changed(app_engine, world.bob, statement, **world.params())
        for name, (statement, _) in MEMBERS_CHANGES.items()
    }
    assert outcomes == {name: expected for name, (_, expected) in MEMBERS_CHANGES.items()}


async def test_nobody_answers_a_call_by_hand(app_engine, world):
    """Mallory's own call rings with nobody else in it: only a second person joining answers it."""
    outcome = await changed(
        app_engine,
        world.mallory,
        "UPDATE messaging.calls SET status = 'ongoing' WHERE conversation_id = :mine RETURNING 1",
        mine=world.mallorys_group,
    )
    assert outcome == "RM403 not-allowed"


async def test_a_member_cannot_join_a_call_for_someone_else(app_engine, world):
    outcome = await attempt(
        app_engine,
        world.bob,
        "INSERT INTO messaging.call_participants (conversation_id, call_id, user_id, status)"
        " VALUES (:g, :call, :carol, 'joined')",
        **world.params(),
    )
    assert outcome == POLICY


async def test_a_moderator_resolves_but_never_rewrites_a_report(app_engine, world):
    carol = world.carol
    rewrite = await changed(
        app_engine,
        carol,
        "UPDATE messaging.reports SET reason = 'other' WHERE id = :r RETURNING 1",
        r=world.bobs_report,
    )
    note_only = await changed(
        app_engine,
        carol,
        "UPDATE messaging.reports SET resolution_note = 'hm' WHERE id = :r RETURNING 1",
        r=world.bobs_report,
    )
    assert (rewrite, note_only) == (DENIED, "RM403 not-allowed")


async def test_the_call_triggers_with_definer_rights_are_nobodys_to_call(app_engine, world):
    """They run as triggers only: neither serving role may call them (nor may anyone)."""
    granted = await attempt(
        app_engine,
        world.mallory,
        "SELECT string_agg(p.oid::regprocedure::text, ' ') FROM pg_proc p"
        " WHERE p.pronamespace = 'messaging'::regnamespace AND p.prosecdef AND p.prorettype = 'trigger'::regtype"
        " AND p.proname IN ('ring_call', 'close_call', 'follow_call')"
        " AND (has_function_privilege('rapport_app', p.oid, 'EXECUTE')"
        "      OR has_function_privilege('rapport_worker', p.oid, 'EXECUTE')"
        "      OR has_function_privilege('public', p.oid, 'EXECUTE'))",
    )
    found = await attempt(
        app_engine,
        world.mallory,
        "SELECT count(*) FROM pg_proc WHERE pronamespace = 'messaging'::regnamespace"
        " AND proname IN ('ring_call', 'close_call', 'follow_call') AND prosecdef",
    )
    assert (granted, found) == (None, 3)


async def test_the_groups_rows_survive_the_attempts(app_engine, world):
    for statement, _ in MALLORYS_CHANGES.values():
        await changed(app_engine, world.mallory, statement, **world.params())
    for statement, _ in MEMBERS_CHANGES.values():
        await changed(app_engine, world.bob, statement, **world.params())
    state = await attempt(
        app_engine,
        world.alice,
        "SELECT concat_ws(' ', (SELECT status FROM messaging.calls WHERE id = :call),"
        " (SELECT string_agg(status, ',' ORDER BY status) FROM messaging.call_participants WHERE call_id = :call),"
        " (SELECT string_agg(status, ',') FROM messaging.reports WHERE conversation_id = :g))",
        **world.params(),
    )
    assert state == "ongoing joined,joined,ringing open,open"


# Through the API


def mallorys_requests(world: World) -> list[tuple[str, str, dict[str, Any] | None]]:
    g, call, m = world.group, world.call, world.message
    report = world.bobs_report
    return [
        ("GET", f"/v1/conversations/{g}/calls", None),
        ("POST", f"/v1/conversations/{g}/calls", {"type": "audio"}),
        ("GET", f"/v1/conversations/{g}/calls/{call}", None),
        ("POST", f"/v1/conversations/{g}/calls/{call}/join", None),
        ("POST", f"/v1/conversations/{g}/calls/{call}/leave", None),
        ("POST", f"/v1/conversations/{g}/calls/{call}/decline", None),
        ("POST", f"/v1/conversations/{g}/calls/{call}/end", None),
        ("PUT", f"/v1/conversations/{g}/calls/{call}/rating", {"quality_rating": 1}),
        ("POST", f"/v1/conversations/{g}/messages/{m}/report", {"reason": "spam"}),
        ("PATCH", f"/v1/conversations/{g}/messages/{m}/moderation", {"moderation_flagged": True}),
        ("GET", f"/v1/conversations/{g}/moderation", None),
        ("GET", f"/v1/conversations/{g}/moderation/flagged", None),
        ("GET", f"/v1/conversations/{g}/moderation/reports", None),
        ("POST", f"/v1/conversations/{g}/moderation/reports/{report}", {"action": "delete_message"}),
    ]


async def test_mallory_gets_nothing_through_the_api(client, app_engine, world):
    answers = {}
    for method, path, body in mallorys_requests(world):
        response = await client.request(method, path, headers=world.mallory.headers, json=body)
        answers[f"{method} {path}"] = (response.status_code, problem_type(response))
    assert answers == dict.fromkeys(answers, (404, "conversation-not-found"))
    state = await attempt(
        app_engine,
        world.alice,
        "SELECT concat_ws(' ', (SELECT status FROM messaging.calls WHERE id = :call),"
        " (SELECT count(*) FROM messaging.reports WHERE conversation_id = :g AND status = 'open'))",
        **world.params(),
    )
    assert state == "ongoing 2"


async def test_the_platforms_reports_and_terms_are_not_mallorys(client, world):
    answers = [
        await client.get("/v1/admin/moderation/reports", headers=world.mallory.headers),
        await client.get("/v1/admin/moderation/blocked-terms", headers=world.mallory.headers),
        await client.post("/v1/admin/moderation/blocked-terms", headers=world.mallory.headers, json={"term": "x"}),
        await client.delete(f"/v1/admin/moderation/blocked-terms/{uuid7()}", headers=world.mallory.headers),
    ]
    assert [(a.status_code, problem_type(a)) for a in answers] == [(403, "platform-admin-required")] * 4


async def test_a_member_cannot_moderate_through_the_api(client, world):
    bob = world.bob
    g = world.group
    answers = [
        await client.get(f"/v1/conversations/{g}/moderation", headers=bob.headers),
        await client.post(
            f"/v1/conversations/{g}/moderation/reports/{world.bobs_report}",
            headers=bob.headers,
            json={"action": "dismiss"},
        ),
        await client.patch(
            f"/v1/conversations/{g}/messages/{world.message}/moderation",
            headers=bob.headers,
            json={"moderation_flagged": True},
        ),
        await client.post(f"/v1/conversations/{g}/calls/{world.call}/end", headers=bob.headers),
    ]
    assert [(a.status_code, problem_type(a)) for a in answers] == [(403, "not-allowed-in-conversation")] * 4
