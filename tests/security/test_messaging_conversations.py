"""Conversations, their participants and their invite links (messaging.conversations,
messaging.participants, messaging.invites), attacked through SQL as `rapport_app`, the
role the server connects as, and through the API's conversation list.

Alice owns a group with bob (a member) and carol (a moderator) and made an invite link to
it; mallory was never in it. Membership changes only through the definer functions
messaging.add_participant, change_participant and join_by_invite: nobody inserts or
deletes a participant row, and a person updates only the personal columns of their own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import DatabaseUrls
from tests.messaging.support import make_conversation
from tests.module_scope import build_once
from tests.security.messaging_sql import DENIED, POLICY, attempt, changed
from tests.support import Persona

pytestmark = pytest.mark.module_database

NOT_FOUND = "RM404 conversation-not-found"
NOT_ALLOWED = "RM403 not-allowed"


ADD = "SELECT messaging.add_participant(:c, :u, :role)"
CHANGE = "SELECT messaging.change_participant(:c, :u, :role, :status, :can_send, NULL, NULL)"
INVITE = (
    "INSERT INTO messaging.invites (id, conversation_id, token_hash, created_by) "
    "VALUES (:id, :c, sha256(convert_to(:token, 'UTF8')), :u) RETURNING 1"
)
JOIN = "SELECT messaging.join_by_invite(sha256(convert_to(:token, 'UTF8')))"


def change(c: UUID, member: Persona, *, role: str | None = None, status: str | None = None) -> dict[str, Any]:
    return {"c": c, "u": member.user_id, "role": role, "status": status, "can_send": None}


@dataclass
class Group:
    alice: Persona  # its owner
    bob: Persona  # a member
    carol: Persona  # a moderator
    mallory: Persona  # never in it
    id: UUID
    token: str  # alice's invite link


@pytest.fixture(scope="module")
async def module_group(module_app: FastAPI, module_database: DatabaseUrls) -> Group:
    """The group, built once: each test's reset puts it back as it was
    (module_scope.build_once)."""
    async with build_once(module_app, module_database) as built:
        alice, bob, carol, mallory = await built.personas("alice", "bob", "carol", "mallory")
        app_engine = built.app_engine
        c = await make_conversation(app_engine, alice, bob, carol, roles={"carol": "moderator"})
        token = "alices-invite-token"
        assert await attempt(app_engine, alice, INVITE, id=uuid7(), c=c, token=token, u=alice.user_id) == 1
        return Group(alice, bob, carol, mallory, c, token)


@pytest.fixture
def group(module_group: Group, database: DatabaseUrls) -> Group:
    """The module's group, as built: the test's database was reset to it."""
    return module_group


# The group's people, for the tests that name them.
@pytest.fixture
def alice(group: Group) -> Persona:
    return group.alice


@pytest.fixture
def bob(group: Group) -> Persona:
    return group.bob


@pytest.fixture
def carol(group: Group) -> Persona:
    return group.carol


@pytest.fixture
def mallory(group: Group) -> Persona:
    return group.mallory


# What of the group each table shows.
OF_THE_GROUP = {
    "messaging.conversations": "SELECT count(*) FROM messaging.conversations WHERE id = :c",
    "messaging.participants": "SELECT count(*) FROM messaging.participants WHERE conversation_id = :c",
    "messaging.invites": "SELECT count(*) FROM messaging.invites WHERE conversation_id = :c",
}


async def _seen(engine: AsyncEngine, who: Persona | None, c: UUID) -> dict[str, Any]:
    return {table: await attempt(engine, who, query, c=c) for table, query in OF_THE_GROUP.items()}


# A stranger


async def test_the_owner_sees_the_group_its_people_and_its_invite(app_engine, group):
    assert await _seen(app_engine, group.alice, group.id) == {
        "messaging.conversations": 1,
        "messaging.participants": 3,
        "messaging.invites": 1,
    }


@pytest.mark.parametrize("attacker", ["mallory", None])
async def test_a_stranger_reads_nothing_of_a_private_conversation(app_engine, group, attacker):
    who = getattr(group, attacker) if attacker else None

    assert await _seen(app_engine, who, group.id) == dict.fromkeys(OF_THE_GROUP, 0)


async def test_a_stranger_cannot_add_herself_whatever_role_she_asks(app_engine, group):
    mallory = group.mallory

    added = [
        await attempt(app_engine, mallory, ADD, c=group.id, u=mallory.user_id, role=role)
        for role in ("member", "owner", "observer")
    ]

    assert added == [NOT_FOUND] * 3
    assert await _seen(app_engine, group.alice, group.id) == {
        "messaging.conversations": 1,
        "messaging.participants": 3,
        "messaging.invites": 1,
    }


async def test_a_stranger_joins_a_public_channel_as_a_member_only(app_engine, alice, mallory):
    channel = await make_conversation(app_engine, alice, type="channel", is_public=True)

    joined = await attempt(app_engine, mallory, ADD, c=channel, u=mallory.user_id, role="admin")
    role = await attempt(
        app_engine,
        mallory,
        "SELECT role FROM messaging.participants WHERE conversation_id = :c AND user_id = :u",
        c=channel,
        u=mallory.user_id,
    )

    assert (joined, role) == ("added", "member")


async def test_a_stranger_sees_a_public_channel_but_not_who_is_in_it(client, app_engine, alice, bob, mallory):
    channel = await make_conversation(app_engine, alice, bob, type="channel", is_public=True)

    people = await client.get(f"/v1/conversations/{channel}/participants", headers=mallory.headers)

    assert people.status_code == 404
    assert await _seen(app_engine, mallory, channel) == {
        "messaging.conversations": 1,
        "messaging.participants": 0,
        "messaging.invites": 0,
    }


async def test_a_stranger_cannot_change_anyone(app_engine, group):
    mallory, c = group.mallory, group.id

    changes = [
        await attempt(app_engine, mallory, CHANGE, **change(c, group.bob, status="removed")),
        await attempt(app_engine, mallory, CHANGE, **change(c, group.alice, role="member")),
        await attempt(app_engine, None, CHANGE, **change(c, group.bob, status="muted")),
    ]

    assert changes == [NOT_FOUND] * 3


async def test_a_stranger_touches_neither_the_conversation_nor_anyones_row(app_engine, group):
    mallory, c, bob = group.mallory, group.id, group.bob

    touched = {
        "rename": await changed(
            app_engine, mallory, "UPDATE messaging.conversations SET name = 'Mine' WHERE id = :c RETURNING 1", c=c
        ),
        "delete it": await changed(
            app_engine,
            mallory,
            "UPDATE messaging.conversations SET deleted_at = now() WHERE id = :c RETURNING 1",
            c=c,
        ),
        "bob's personal columns": await changed(
            app_engine,
            mallory,
            "UPDATE messaging.participants SET nickname = 'pwned', is_muted = true, is_pinned = true, read_seq = 0 "
            "WHERE conversation_id = :c AND user_id = :u RETURNING 1",
            c=c,
            u=bob.user_id,
        ),
        "revoke the invite": await changed(
            app_engine,
            mallory,
            "UPDATE messaging.invites SET revoked_at = now() WHERE conversation_id = :c RETURNING 1",
            c=c,
        ),
    }
    refused = {
        "an invite": await attempt(app_engine, mallory, INVITE, id=uuid7(), c=c, token="mallorys", u=mallory.user_id),
        "her own row": await attempt(
            app_engine,
            mallory,
            "INSERT INTO messaging.participants (conversation_id, user_id, role) VALUES (:c, :u, 'owner')",
            c=c,
            u=mallory.user_id,
        ),
        "bob's row": await changed(
            app_engine,
            mallory,
            "DELETE FROM messaging.participants WHERE conversation_id = :c AND user_id = :u RETURNING 1",
            c=c,
            u=bob.user_id,
        ),
        "the conversation": await changed(
            app_engine, mallory, "DELETE FROM messaging.conversations WHERE id = :c RETURNING 1", c=c
        ),
    }

    assert touched == dict.fromkeys(touched, 0)
    assert refused == {"an invite": POLICY, "her own row": DENIED, "bob's row": DENIED, "the conversation": DENIED}


async def test_nobody_claims_a_direct_conversation_between_two_other_people(app_engine, alice, bob, mallory):
    """At most one direct conversation per pair: one that mallory made naming alice and bob,
    with neither in it, would stop them ever having theirs."""
    low, high = sorted([UUID(alice.user_id), UUID(bob.user_id)])

    made = await attempt(
        app_engine,
        mallory,
        "INSERT INTO messaging.conversations (id, type, creator_id, direct_low, direct_high) "
        "VALUES (:id, 'direct', :u, :low, :high) RETURNING 1",
        id=uuid7(),
        u=mallory.user_id,
        low=low,
        high=high,
    )

    assert made == POLICY


async def test_nobody_makes_a_conversation_in_someone_elses_name(app_engine, alice, mallory):
    made = await attempt(
        app_engine,
        mallory,
        "INSERT INTO messaging.conversations (id, type, name, creator_id) VALUES (:id, 'group', 'Alice''s', :u) "
        "RETURNING 1",
        id=uuid7(),
        u=alice.user_id,
    )

    assert made == POLICY


# A member trying an admin's work


async def test_a_member_cannot_remove_silence_or_promote_anyone(app_engine, group):
    bob, c = group.bob, group.id

    changes = {
        "remove carol": await attempt(app_engine, bob, CHANGE, **change(c, group.carol, status="removed")),
        "silence alice": await attempt(app_engine, bob, CHANGE, **change(c, group.alice, status="muted")),
        "make himself an admin": await attempt(app_engine, bob, CHANGE, **change(c, bob, role="admin")),
        "make carol an observer": await attempt(app_engine, bob, CHANGE, **change(c, group.carol, role="observer")),
        "add mallory": await attempt(app_engine, bob, ADD, c=c, u=group.mallory.user_id, role="member"),
    }

    assert changes == dict.fromkeys(changes, NOT_ALLOWED)


async def test_a_member_cannot_rename_archive_or_delete_the_conversation(app_engine, group):
    bob, c = group.bob, group.id

    touched = {
        column: await changed(
            app_engine, bob, f"UPDATE messaging.conversations SET {column} = {value} WHERE id = :c RETURNING 1", c=c
        )
        for column, value in {
            "name": "'Bob''s now'",
            "status": "'archived'",
            "deleted_at": "now()",
            "max_participants": "2",
            "settings": "'{\"x\": 1}'",
        }.items()
    }

    assert touched == dict.fromkeys(touched, 0)


async def test_a_member_neither_sees_nor_makes_nor_revokes_invite_links(app_engine, group):
    bob, c = group.bob, group.id

    seen = await attempt(app_engine, bob, "SELECT count(*) FROM messaging.invites WHERE conversation_id = :c", c=c)
    made = await attempt(app_engine, bob, INVITE, id=uuid7(), c=c, token="bobs", u=bob.user_id)
    revoked = await changed(
        app_engine, bob, "UPDATE messaging.invites SET revoked_at = now() WHERE conversation_id = :c RETURNING 1", c=c
    )

    assert (seen, made, revoked) == (0, POLICY, 0)


async def test_a_moderator_silences_and_removes_but_sets_no_roles_and_spares_the_owner(app_engine, group):
    carol, c = group.carol, group.id

    refused = {
        "make bob a moderator": await attempt(app_engine, carol, CHANGE, **change(c, group.bob, role="moderator")),
        "make bob an observer": await attempt(app_engine, carol, CHANGE, **change(c, group.bob, role="observer")),
        "remove alice": await attempt(app_engine, carol, CHANGE, **change(c, group.alice, status="removed")),
        "make herself an admin": await attempt(app_engine, carol, CHANGE, **change(c, carol, role="admin")),
    }
    await attempt(app_engine, carol, CHANGE, **change(c, group.bob, status="muted"))
    bobs = await attempt(
        app_engine,
        carol,
        "SELECT status FROM messaging.participants WHERE conversation_id = :c AND user_id = :u",
        c=c,
        u=group.bob.user_id,
    )

    assert refused == dict.fromkeys(refused, NOT_ALLOWED)
    assert bobs == "muted"


async def test_nobody_changes_their_own_role_status_or_window_by_hand(app_engine, group):
    """The personal columns (read state, mute, pin, nickname) are a person's own; the rest
    changes only through the definer functions."""
    bob, c = group.bob, group.id

    attempts = {
        column: await changed(
            app_engine,
            bob,
            f"UPDATE messaging.participants SET {column} = {value} WHERE conversation_id = :c AND user_id = :u "
            "RETURNING 1",
            c=c,
            u=bob.user_id,
        )
        for column, value in {
            "role": "'owner'",
            "status": "'active'",
            "can_send": "true",
            "can_invite": "true",
            "can_see_history": "true",
            "history_from_seq": "0",
            "left_seq": "NULL",
            "conversation_id": "gen_random_uuid()",
            "user_id": "gen_random_uuid()",
        }.items()
    }
    own = await changed(
        app_engine,
        bob,
        "UPDATE messaging.participants SET nickname = 'B', is_muted = true, is_pinned = true "
        "WHERE conversation_id = :c AND user_id = :u RETURNING 1",
        c=c,
        u=bob.user_id,
    )

    assert attempts == dict.fromkeys(attempts, DENIED)
    assert own == 1


async def test_a_member_changes_nobody_elses_personal_columns(app_engine, group):
    touched = await changed(
        app_engine,
        group.bob,
        "UPDATE messaging.participants SET nickname = 'the boss', is_muted = true, read_seq = 0 "
        "WHERE conversation_id = :c AND user_id <> :u RETURNING 1",
        c=group.id,
        u=group.bob.user_id,
    )

    assert touched == 0


# Those removed, those who left, and invite links


async def test_someone_removed_does_not_come_back_by_themself(app_engine, alice, bob):
    channel = await make_conversation(app_engine, alice, bob, type="channel", is_public=True)
    await attempt(app_engine, alice, INVITE, id=uuid7(), c=channel, token="channel-link", u=alice.user_id)
    await attempt(app_engine, alice, CHANGE, **change(channel, bob, status="removed"))

    by_joining = await attempt(app_engine, bob, ADD, c=channel, u=bob.user_id, role="member")
    by_the_link = await attempt(app_engine, bob, JOIN, token="channel-link")
    status = await attempt(
        app_engine,
        bob,
        "SELECT status FROM messaging.participants WHERE conversation_id = :c AND user_id = :u",
        c=channel,
        u=bob.user_id,
    )

    assert (by_joining, by_the_link) == (NOT_FOUND, "RM404 invite-not-found")
    assert status == "removed"


async def test_an_invite_link_lets_in_a_member_and_no_more(app_engine, group):
    mallory = group.mallory

    joined = await attempt(app_engine, mallory, JOIN, token=group.token)
    role = await attempt(
        app_engine,
        mallory,
        "SELECT role || '/' || can_invite::text FROM messaging.participants "
        "WHERE conversation_id = :c AND user_id = :u",
        c=group.id,
        u=mallory.user_id,
    )
    links = await attempt(
        app_engine, mallory, "SELECT count(*) FROM messaging.invites WHERE conversation_id = :c", c=group.id
    )

    assert (str(joined), role, links) == (str(group.id), "member/false", 0)


@pytest.mark.parametrize("spoiled", ["revoked", "expired", "used up", "wrong"])
async def test_a_spoiled_invite_link_lets_nobody_in(app_engine, make_persona, group, spoiled):
    alice, c, token = group.alice, group.id, f"{spoiled}-link"
    made = await attempt(
        app_engine,
        alice,
        "INSERT INTO messaging.invites (id, conversation_id, token_hash, created_by, expires_at, max_uses) "
        "VALUES (:id, :c, sha256(convert_to(:token, 'UTF8')), :u, now() + CAST(:lasts AS interval), :uses) RETURNING 1",
        id=uuid7(),
        c=c,
        token=token,
        u=alice.user_id,
        lasts=timedelta(minutes=-1 if spoiled == "expired" else 1),
        uses=1 if spoiled == "used up" else None,
    )
    assert made == 1
    if spoiled == "revoked":
        await changed(
            app_engine,
            alice,
            "UPDATE messaging.invites SET revoked_at = now() WHERE conversation_id = :c RETURNING 1",
            c=c,
        )
    elif spoiled == "used up":
        assert await attempt(app_engine, await make_persona("dave"), JOIN, token=token) == c
    elif spoiled == "wrong":
        token = "not-" + token

    joined = await attempt(app_engine, group.mallory, JOIN, token=token)

    assert joined == "RM404 invite-not-found"


async def test_someone_the_links_maker_blocks_cannot_use_it(client, app_engine, group):
    blocked = await client.put(f"/v1/blocks/{group.mallory.user_id}", headers=group.alice.headers)
    assert blocked.status_code in (200, 201, 204), blocked.text

    joined = await attempt(app_engine, group.mallory, JOIN, token=group.token)

    assert joined == "RM404 invite-not-found"


async def test_the_conversation_list_shows_a_stranger_nothing(client, group):
    listed = await client.get("/v1/conversations", headers=group.mallory.headers)

    assert listed.status_code == 200 and listed.json()["items"] == []
