"""Each person's own messaging state (messaging.drafts, hidden_messages, client_messages,
mentions, their read markers) and the platform's moderation list (messaging.blocked_terms
and its compiled form messaging.moderation), attacked through SQL as `rapport_app`, the
role the server connects as.

Alice and bob share a group: alice sent a message mentioning bob with a client id, bob
hid it and both keep a draft. Mallory was never in it. Grace is a platform administrator,
who alone keeps the blocked terms; nobody reads their compiled pattern."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from rapport.kernel.db import system_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime
from tests.messaging.support import make_conversation, send
from tests.module_scope import build_once
from tests.security.messaging_sql import DENIED, POLICY, attempt, changed
from tests.support import Persona

pytestmark = pytest.mark.module_database


DRAFT = (
    "INSERT INTO messaging.drafts (user_id, conversation_id, content) VALUES (:u, :c, :content) "
    "ON CONFLICT (user_id, conversation_id) DO UPDATE SET content = EXCLUDED.content RETURNING 1"
)
HIDE = (
    "INSERT INTO messaging.hidden_messages (user_id, conversation_id, seq, message_id) "
    "VALUES (:u, :c, :seq, :m) RETURNING 1"
)
CLIENT_KEY = (
    "INSERT INTO messaging.client_messages (conversation_id, sender_id, client_message_id, message_id) "
    "VALUES (:c, :u, :key, :m) RETURNING 1"
)


@dataclass
class Group:
    alice: Persona
    bob: Persona
    mallory: Persona
    id: UUID
    hello: UUID  # seq 1: alice's, client id "a-1", mentions bob; bob hid it


@pytest.fixture(scope="module")
async def module_group(module_app: FastAPI, module_database: DatabaseUrls) -> Group:
    """The group, built once: each test's reset puts it back as it was
    (module_scope.build_once)."""
    async with build_once(module_app, module_database) as built:
        alice, bob, mallory = await built.personas("alice", "bob", "mallory")
        return await _build(built.client, built.app_engine, alice, bob, mallory)


@pytest.fixture
def group(module_group: Group, database: DatabaseUrls) -> Group:
    """The module's group, as built: the test's database was reset to it."""
    return module_group


async def _build(client, app_engine, alice, bob, mallory) -> Group:
    c = await make_conversation(app_engine, alice, bob)
    hello = UUID((await send(client, alice, c, "hello bob", client_message_id="a-1", mentions=[bob.user_id]))["id"])
    assert await attempt(app_engine, bob, HIDE, u=bob.user_id, c=c, seq=1, m=hello) == 1
    for who in (alice, bob):
        assert await attempt(app_engine, who, DRAFT, u=who.user_id, c=c, content=f"{who.name}'s draft") == 1
    return Group(alice, bob, mallory, c, hello)


# Each table with what names the person a row belongs to, and whose rows the group holds.
OWN_ROWS = {
    "messaging.drafts": ("SELECT count(*) FROM messaging.drafts WHERE user_id = :owner", "bob"),
    "messaging.hidden_messages": ("SELECT count(*) FROM messaging.hidden_messages WHERE user_id = :owner", "bob"),
    "messaging.client_messages": (
        "SELECT count(*) FROM messaging.client_messages WHERE sender_id = :owner",
        "alice",
    ),
    "messaging.mentions": ("SELECT count(*) FROM messaging.mentions WHERE user_id = :owner", "bob"),
}


@pytest.mark.parametrize("table", sorted(OWN_ROWS))
async def test_a_persons_own_rows_are_read_by_them_alone(app_engine, group, table):
    query, owner_name = OWN_ROWS[table]
    owner = getattr(group, owner_name)
    other = group.bob if owner is group.alice else group.alice

    seen = {
        name: await attempt(app_engine, who, query, owner=owner.user_id)
        for name, who in {"owner": owner, "other": other, "mallory": group.mallory, "nobody": None}.items()
    }

    assert seen == {"owner": 1, "other": 0, "mallory": 0, "nobody": 0}


async def test_nobody_writes_these_rows_for_someone_else(app_engine, group):
    alice, bob, c, m = group.alice, group.bob, group.id, group.hello

    refused = {
        "alice's draft": await attempt(app_engine, bob, DRAFT, u=alice.user_id, c=c, content="bob wrote this"),
        "a hide for alice": await attempt(app_engine, bob, HIDE, u=alice.user_id, c=c, seq=1, m=m),
        "alice's client id": await attempt(app_engine, bob, CLIENT_KEY, c=c, u=alice.user_id, key="a-2", m=m),
    }

    assert refused == dict.fromkeys(refused, POLICY)


async def test_a_stranger_keeps_no_draft_and_hides_nothing_in_the_conversation(app_engine, group):
    mallory, c = group.mallory, group.id

    refused = {
        "a draft": await attempt(app_engine, mallory, DRAFT, u=mallory.user_id, c=c, content="let me in"),
        "a hide": await attempt(app_engine, mallory, HIDE, u=mallory.user_id, c=c, seq=1, m=group.hello),
    }

    assert refused == dict.fromkeys(refused, POLICY)


async def test_a_hide_names_the_message_where_it_is(app_engine, group):
    """A hide at another sequence than its message's would take some other message out of
    the reader's history and unread count."""
    alice, c = group.alice, group.id
    second = uuid7()
    await attempt(
        app_engine,
        group.bob,
        "INSERT INTO messaging.messages (id, conversation_id, sender_id, content, created_at) "
        "VALUES (:id, :c, :u, 'another', messaging.id_time(:id)) RETURNING seq",
        id=second,
        c=c,
        u=group.bob.user_id,
    )

    misplaced = await attempt(app_engine, alice, HIDE, u=alice.user_id, c=c, seq=1, m=second)

    assert misplaced == POLICY


async def test_nobody_changes_or_deletes_someone_elses_rows(app_engine, group):
    alice, bob, c = group.alice, group.bob, group.id

    touched = {
        "edit bob's draft": await changed(
            app_engine,
            alice,
            "UPDATE messaging.drafts SET content = 'alice wrote this' WHERE user_id = :u RETURNING 1",
            u=bob.user_id,
        ),
        "delete bob's draft": await changed(
            app_engine, alice, "DELETE FROM messaging.drafts WHERE user_id = :u RETURNING 1", u=bob.user_id
        ),
        "unhide for bob": await changed(
            app_engine, alice, "DELETE FROM messaging.hidden_messages WHERE user_id = :u RETURNING 1", u=bob.user_id
        ),
        "mallory deletes bob's draft": await changed(
            app_engine, group.mallory, "DELETE FROM messaging.drafts WHERE conversation_id = :c RETURNING 1", c=c
        ),
    }
    refused = {
        "repoint alice's client id": await changed(
            app_engine,
            alice,
            "UPDATE messaging.client_messages SET message_id = gen_random_uuid() WHERE sender_id = :u RETURNING 1",
            u=alice.user_id,
        ),
        "forget alice's client id": await changed(
            app_engine, alice, "DELETE FROM messaging.client_messages WHERE sender_id = :u RETURNING 1", u=alice.user_id
        ),
        "hand a draft to alice": await changed(
            app_engine,
            bob,
            "UPDATE messaging.drafts SET user_id = :alice WHERE user_id = :u RETURNING 1",
            alice=alice.user_id,
            u=bob.user_id,
        ),
    }

    assert touched == dict.fromkeys(touched, 0)
    assert refused == {
        "repoint alice's client id": DENIED,
        "forget alice's client id": DENIED,
        "hand a draft to alice": POLICY,
    }


async def test_someone_removed_keeps_no_new_draft(app_engine, group):
    alice, bob, c = group.alice, group.bob, group.id
    await attempt(
        app_engine,
        alice,
        "SELECT messaging.change_participant(:c, :u, NULL, 'removed', NULL, NULL, NULL)",
        c=c,
        u=bob.user_id,
    )

    drafted = await attempt(app_engine, bob, DRAFT, u=bob.user_id, c=c, content="still typing")

    assert drafted == POLICY


# Read markers


async def test_read_markers_never_move_past_the_last_message(app_engine, group):
    """A marker ahead of the conversation would show the next messages as read to their
    senders before they are even sent (the participants table's trigger says it keeps them
    within the conversation)."""
    bob, c = group.bob, group.id

    await attempt(
        app_engine,
        bob,
        "UPDATE messaging.participants SET read_seq = 1000, delivered_seq = 1000 "
        "WHERE conversation_id = :c AND user_id = :u",
        c=c,
        u=bob.user_id,
    )
    furthest = await attempt(
        app_engine,
        bob,
        "SELECT greatest(read_seq, delivered_seq) FROM messaging.participants "
        "WHERE conversation_id = :c AND user_id = :u",
        c=c,
        u=bob.user_id,
    )

    assert furthest <= 1


# Blocked terms and the compiled pattern


async def _make_admin(runtime: Runtime, who: Persona) -> Persona:
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(text("UPDATE auth.users SET is_admin = true WHERE id = :id"), {"id": UUID(who.user_id)})
    return who


TERM = "INSERT INTO messaging.blocked_terms (id, term, created_by) VALUES (:id, :term, :u) RETURNING 1"


@pytest.fixture
async def grace(runtime, make_persona) -> Persona:
    """A platform administrator."""
    return await _make_admin(runtime, await make_persona("grace"))


async def test_only_a_platform_admin_reads_or_keeps_the_blocked_terms(app_engine, grace, group):
    mallory, alice = group.mallory, group.alice
    assert await attempt(app_engine, grace, TERM, id=uuid7(), term="forbidden", u=grace.user_id) == 1

    by_admin = await attempt(app_engine, grace, "SELECT count(*) FROM messaging.blocked_terms")
    read = {
        who.name: await attempt(app_engine, who, "SELECT count(*) FROM messaging.blocked_terms")
        for who in (alice, mallory)
    }
    read_by_nobody = await attempt(app_engine, None, "SELECT count(*) FROM messaging.blocked_terms")
    added = await attempt(app_engine, mallory, TERM, id=uuid7(), term="grace", u=mallory.user_id)
    removed = await changed(app_engine, mallory, "DELETE FROM messaging.blocked_terms RETURNING 1")
    renamed = await changed(app_engine, grace, "UPDATE messaging.blocked_terms SET term = 'allowed' RETURNING 1")

    assert by_admin == 1
    assert (read, read_by_nobody) == ({"alice": 0, "mallory": 0}, 0)
    assert (added, removed, renamed) == (POLICY, 0, DENIED)


async def test_nobody_reads_or_writes_the_compiled_pattern(app_engine, grace, group):
    statements = {
        "read": "SELECT pattern FROM messaging.moderation",
        "rewrite": "UPDATE messaging.moderation SET pattern = NULL RETURNING 1",
        "add": "INSERT INTO messaging.moderation (id, pattern) VALUES (false, 'x') RETURNING 1",
        "empty": "DELETE FROM messaging.moderation RETURNING 1",
    }

    outcomes = {
        (who_name, action): await attempt(app_engine, who, statement)
        for who_name, who in {"grace": grace, "mallory": group.mallory, "nobody": None}.items()
        for action, statement in statements.items()
    }

    assert outcomes == dict.fromkeys(outcomes, DENIED)


async def test_a_blocked_term_flags_a_message_however_it_is_written(client, app_engine, grace, group):
    """Through the API, inserted straight (with the flag left out or set false), or brought
    in by an edit: the flag is the database's to set, not the sender's."""
    bob, c = group.bob, group.id
    assert await attempt(app_engine, grace, TERM, id=uuid7(), term="forbidden", u=grace.user_id) == 1
    sent = await send(client, bob, c, "a FORBIDDEN word")
    for column, value in (("", ""), (", moderation_flagged", ", false")):
        await attempt(
            app_engine,
            bob,
            f"INSERT INTO messaging.messages (id, conversation_id, sender_id, content{column}, created_at) "
            f"VALUES (:id, :c, :u, 'forbidden, straight'{value}, messaging.id_time(:id))",
            id=uuid7(),
            c=c,
            u=bob.user_id,
        )
    edited = UUID((await send(client, bob, c, "harmless"))["id"])
    await attempt(
        app_engine,
        bob,
        "UPDATE messaging.messages SET content = 'now forbidden' WHERE conversation_id = :c AND id = :m",
        c=c,
        m=edited,
    )

    flags = await attempt(
        app_engine,
        group.alice,
        "SELECT array_agg(moderation_flagged ORDER BY seq) FROM messaging.messages "
        "WHERE conversation_id = :c AND seq > 1",
        c=c,
    )

    assert sent["moderation_flagged"] is True
    assert flags == [True, True, True, True]
