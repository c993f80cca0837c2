"""Row-level security on the `social` schema of migration 0003 (profiles, settings, blocks,
contact requests, contacts, groups and their members, the activity log), through SQL as
`rapport_app`, the role the server connects as, and through the API.

Alice has a row in every table: a private profile, settings, a block on dave, bob as a
contact, carol's pending request, an offline contact in her group Family, and the record
of her profile changes. Mallory is a stranger, bob a contact and dave the person alice
blocks: none of them may read or change what is alice's alone."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import DatabaseUrls
from tests.module_scope import build_once
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

# Migration 0003's tables, each with the rows that are alice's and none of the viewer's
# business (a request between alice and bob is bob's business too).
ALICES_ROWS = {
    "social.profiles": "user_id = :alice",
    "social.settings": "user_id = :alice",
    "social.blocks": "blocker_id = :alice",
    "social.contact_requests": ":alice IN (requester_id, addressee_id) AND :viewer NOT IN (requester_id, addressee_id)",
    "social.contacts": "owner_id = :alice",
    "social.contact_groups": "owner_id = :alice",
    "social.contact_group_members": "owner_id = :alice",
    "social.activity_log": "user_id = :alice",
}

DENIED = "permission denied"
RLS = "row-level security"


async def _ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


@pytest.fixture(scope="module")
async def module_world(module_app: FastAPI, module_database: DatabaseUrls) -> dict[str, Persona | dict]:
    """Alice with a row in every table of 0003; bob her contact; dave blocked by her;
    carol's request to her pending; mallory a stranger. Built once: each test's reset puts
    it back as it was (module_scope.build_once)."""
    async with build_once(module_app, module_database) as built:
        alice, bob, carol, dave, mallory = await built.personas("alice", "bob", "carol", "dave", "mallory")
        return await _build(built.client, alice, bob, carol, dave, mallory)


@pytest.fixture
def world(module_world: dict[str, Persona | dict], database: DatabaseUrls) -> dict[str, Persona | dict]:
    """The module's world, as built: the test's database was reset to it."""
    return module_world


async def _build(client, alice, bob, carol, dave, mallory) -> dict[str, Persona | dict]:
    asked = await _ok(
        await client.post("/v1/contact-requests", headers=alice.headers, json={"user_id": bob.user_id}), 201
    )
    await _ok(await client.post(f"/v1/contact-requests/{asked['id']}/accept", headers=bob.headers))
    pending = await _ok(
        await client.post("/v1/contact-requests", headers=carol.headers, json={"user_id": alice.user_id}), 201
    )
    await _ok(await client.put(f"/v1/blocks/{dave.user_id}", headers=alice.headers, json={"reason": "spam"}))
    lily = await _ok(
        await client.post(
            "/v1/contacts", headers=alice.headers, json={"first_name": "Lily", "relationship": "My Child"}
        ),
        201,
    )
    family = await _ok(await client.post("/v1/contact-groups", headers=alice.headers, json={"name": "Family"}), 201)
    await _ok(await client.put(f"/v1/contact-groups/{family['id']}/members/{lily['id']}", headers=alice.headers), 204)
    await _ok(await client.patch("/v1/settings", headers=alice.headers, json={"theme": "dark"}))
    await _ok(await client.patch("/v1/profile", headers=alice.headers, json={"profile_visibility": "private"}))
    return {
        "alice": alice,
        "bob": bob,
        "carol": carol,
        "dave": dave,
        "mallory": mallory,
        "lily": lily,
        "family": family,
        "pending": pending,
    }


async def test_alice_has_rows_in_every_table(runtime, world):
    """Without them the tests below would prove nothing."""
    async with system_transaction(runtime.system_engine) as db:
        counts = {
            table: (
                await db.execute(
                    text(f"SELECT count(*) FROM {table} WHERE {rows}"),
                    {"alice": world["alice"].user_id, "viewer": world["mallory"].user_id},
                )
            ).scalar_one()
            for table, rows in ALICES_ROWS.items()
        }
    assert [table for table, count in counts.items() if count == 0] == []


# Reading


VIEWERS = ["mallory", "bob", "dave"]


@pytest.mark.parametrize("viewer", VIEWERS, ids=["stranger", "contact", "blocked"])
async def test_no_one_else_reads_alices_rows(app_engine, world, viewer):
    params = {"alice": world["alice"].user_id, "viewer": world[viewer].user_id}
    async with user_transaction(app_engine, UUID(world[viewer].user_id)) as db:
        seen = {
            table: (await db.execute(text(f"SELECT count(*) FROM {table} WHERE {rows}"), params)).scalar_one()
            for table, rows in ALICES_ROWS.items()
        }
    assert seen == dict.fromkeys(ALICES_ROWS, 0)


async def test_mallory_reads_her_own_rows(app_engine, client, world):
    """The policies filter; they do not merely hide everything."""
    mallory = world["mallory"]
    async with user_transaction(app_engine, UUID(mallory.user_id)) as db:
        own = (
            await db.execute(
                text(
                    "SELECT (SELECT count(*) FROM social.profiles WHERE user_id = :me) "
                    "     + (SELECT count(*) FROM social.settings WHERE user_id = :me)"
                ),
                {"me": mallory.user_id},
            )
        ).scalar_one()
    assert own == 2


async def test_the_parties_read_a_request_between_them(app_engine, world):
    bob = world["bob"]
    async with user_transaction(app_engine, UUID(bob.user_id)) as db:
        seen = (
            await db.execute(
                text("SELECT count(*) FROM social.contact_requests WHERE requester_id = :alice"),
                {"alice": world["alice"].user_id},
            )
        ).scalar_one()
    assert seen == 1


async def test_the_blocked_person_cannot_read_the_block_on_them(app_engine, world):
    dave = world["dave"]
    async with user_transaction(app_engine, UUID(dave.user_id)) as db:
        seen = (
            await db.execute(text("SELECT count(*) FROM social.blocks WHERE blocked_id = :me"), {"me": dave.user_id})
        ).scalar_one()
    assert seen == 0


async def test_nothing_in_social_is_readable_without_a_user(app_engine, world):
    async with app_engine.begin() as db:
        tables = (
            (
                await db.execute(
                    text(
                        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
                        "WHERE schemaname = 'social' ORDER BY 1"
                    )
                )
            )
            .scalars()
            .all()
        )
        counts = {table: (await db.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() for table in tables}
    assert set(counts) >= set(ALICES_ROWS)
    assert counts == dict.fromkeys(counts, 0)


# Changing


def _outcome(error: DBAPIError) -> str:
    cause = error.orig.__cause__
    if isinstance(cause, asyncpg.exceptions.InsufficientPrivilegeError):
        return RLS if "row-level security" in str(cause) else DENIED
    return type(cause).__name__


async def _attempt(engine: AsyncEngine, user_id: str, statement: str, params: dict) -> int | str:
    """Rows touched, or why PostgreSQL refused."""
    try:
        async with user_transaction(engine, UUID(user_id)) as db:
            return (await db.execute(text(statement), params)).rowcount
    except DBAPIError as error:
        return _outcome(error)


# Each table's update and delete of alice's rows, and what mallory gets: no row touched
# where the role holds the privilege, a refusal where it does not.
CHANGES = {
    "update social.profiles": ("UPDATE social.profiles SET bio = 'pwned' WHERE user_id = :alice", 0),
    "delete social.profiles": ("DELETE FROM social.profiles WHERE user_id = :alice", DENIED),
    "update social.settings": ("UPDATE social.settings SET theme = 'light' WHERE user_id = :alice", 0),
    "delete social.settings": ("DELETE FROM social.settings WHERE user_id = :alice", DENIED),
    "update social.blocks": ("UPDATE social.blocks SET reason = 'x' WHERE blocker_id = :alice", DENIED),
    "delete social.blocks": ("DELETE FROM social.blocks WHERE blocker_id = :alice", 0),
    "update social.contact_requests": (
        "UPDATE social.contact_requests SET status = 'rejected' WHERE :alice IN (requester_id, addressee_id) "
        "AND :viewer NOT IN (requester_id, addressee_id)",
        0,
    ),
    "delete social.contact_requests": ("DELETE FROM social.contact_requests WHERE addressee_id = :alice", DENIED),
    "update social.contacts": ("UPDATE social.contacts SET nickname = 'x' WHERE owner_id = :alice", 0),
    "delete social.contacts": ("DELETE FROM social.contacts WHERE owner_id = :alice", 0),
    "update social.contact_groups": ("UPDATE social.contact_groups SET name = 'x' WHERE owner_id = :alice", 0),
    "delete social.contact_groups": ("DELETE FROM social.contact_groups WHERE owner_id = :alice", 0),
    "update social.contact_group_members": (
        "UPDATE social.contact_group_members SET owner_id = owner_id WHERE owner_id = :alice",
        DENIED,
    ),
    "delete social.contact_group_members": ("DELETE FROM social.contact_group_members WHERE owner_id = :alice", 0),
    "update social.activity_log": ("UPDATE social.activity_log SET action = 'x' WHERE user_id = :alice", DENIED),
    "delete social.activity_log": ("DELETE FROM social.activity_log WHERE user_id = :alice", DENIED),
}


@pytest.mark.parametrize("viewer", VIEWERS, ids=["stranger", "contact", "blocked"])
async def test_no_one_else_changes_alices_rows(app_engine, world, viewer):
    params = {"alice": world["alice"].user_id, "viewer": world[viewer].user_id}
    outcomes = {
        name: await _attempt(app_engine, world[viewer].user_id, statement, params)
        for name, (statement, _) in CHANGES.items()
    }
    assert outcomes == {name: expected for name, (_, expected) in CHANGES.items()}


async def test_mallory_cannot_change_a_public_profile_she_reads(app_engine, world):
    bob = world["bob"]
    touched = await _attempt(
        app_engine,
        world["mallory"].user_id,
        "UPDATE social.profiles SET bio = 'pwned' WHERE user_id = :bob",
        {"bob": bob.user_id},
    )
    assert touched == 0


async def test_alices_rows_survive_the_attempts(app_engine, runtime, world):
    for viewer in VIEWERS:
        params = {"alice": world["alice"].user_id, "viewer": world[viewer].user_id}
        for statement, _ in CHANGES.values():
            await _attempt(app_engine, world[viewer].user_id, statement, params)
    async with system_transaction(runtime.system_engine) as db:
        state = (
            await db.execute(
                text(
                    "SELECT (SELECT bio FROM social.profiles WHERE user_id = :alice), "
                    "       (SELECT theme FROM social.settings WHERE user_id = :alice), "
                    "       (SELECT count(*) FROM social.blocks WHERE blocker_id = :alice), "
                    "       (SELECT status FROM social.contact_requests WHERE id = :pending), "
                    "       (SELECT count(*) FROM social.contacts WHERE owner_id = :alice AND nickname IS NULL), "
                    "       (SELECT name FROM social.contact_groups WHERE owner_id = :alice), "
                    "       (SELECT count(*) FROM social.contact_group_members WHERE owner_id = :alice)"
                ),
                {"alice": world["alice"].user_id, "pending": world["pending"]["id"]},
            )
        ).one()
    assert tuple(state) == ("", "dark", 1, "pending", 2, "Family", 1)


def _rows_naming_alice(world) -> dict[str, tuple[str, dict]]:
    alice, mallory = world["alice"].user_id, world["mallory"].user_id
    return {
        "social.profiles": (
            "INSERT INTO social.profiles (user_id, username, display_name) VALUES (:alice, 'forged', 'Forged')",
            {"alice": alice},
        ),
        "social.settings": ("INSERT INTO social.settings (user_id) VALUES (:alice)", {"alice": alice}),
        "social.blocks": (
            "INSERT INTO social.blocks (blocker_id, blocked_id) VALUES (:alice, :mallory)",
            {"alice": alice, "mallory": mallory},
        ),
        "social.contact_requests": (
            "INSERT INTO social.contact_requests (id, requester_id, addressee_id) VALUES (:id, :alice, :mallory)",
            {"id": uuid7(), "alice": alice, "mallory": mallory},
        ),
        "social.contacts": (
            "INSERT INTO social.contacts (id, owner_id, first_name) VALUES (:id, :alice, 'Forged')",
            {"id": uuid7(), "alice": alice},
        ),
        "social.contact_groups": (
            "INSERT INTO social.contact_groups (id, owner_id, name) VALUES (:id, :alice, 'Forged')",
            {"id": uuid7(), "alice": alice},
        ),
        "social.contact_group_members": (
            "INSERT INTO social.contact_group_members (group_id, contact_id, owner_id) "
            "VALUES (:group, :contact, :alice)",
            {"group": world["family"]["id"], "contact": world["lily"]["id"], "alice": alice},
        ),
        "social.activity_log": (
            "INSERT INTO social.activity_log (user_id, action) VALUES (:alice, 'forged')",
            {"alice": alice},
        ),
    }


async def test_mallory_cannot_insert_rows_naming_alice(app_engine, world):
    outcomes = {
        table: await _attempt(app_engine, world["mallory"].user_id, statement, params)
        for table, (statement, params) in _rows_naming_alice(world).items()
    }
    assert outcomes == {
        "social.profiles": DENIED,
        "social.settings": DENIED,
        "social.blocks": RLS,
        "social.contact_requests": RLS,
        "social.contacts": RLS,
        "social.contact_groups": RLS,
        # The owner check (a trigger) runs before the policy, and finds neither the
        # group nor the contact visible to mallory.
        "social.contact_group_members": "ForeignKeyViolationError",
        "social.activity_log": DENIED,
    }


async def test_mallory_cannot_put_alices_contact_in_her_own_group(app_engine, world):
    mallory = world["mallory"]
    group_id = uuid7()
    outcome = await _attempt(
        app_engine,
        mallory.user_id,
        "WITH g AS (INSERT INTO social.contact_groups (id, owner_id, name) VALUES (:group, :mallory, 'Mine') "
        "           RETURNING id) "
        "INSERT INTO social.contact_group_members (group_id, contact_id, owner_id) "
        "SELECT g.id, :contact, :mallory FROM g",
        {"group": group_id, "mallory": mallory.user_id, "contact": world["lily"]["id"]},
    )
    assert outcome == "ForeignKeyViolationError"


# Contacts between accounts come only from the pairing functions


async def test_mallory_cannot_insert_a_contact_naming_an_account(app_engine, world):
    mallory = world["mallory"]
    outcome = await _attempt(
        app_engine,
        mallory.user_id,
        "INSERT INTO social.contacts (id, owner_id, contact_user_id) VALUES (:id, :me, :alice)",
        {"id": uuid7(), "me": mallory.user_id, "alice": world["alice"].user_id},
    )
    assert outcome == RLS


async def test_mallory_cannot_point_her_contact_at_an_account(app_engine, client, world):
    mallory = world["mallory"]
    own = await _ok(await client.post("/v1/contacts", headers=mallory.headers, json={"first_name": "Eve"}), 201)
    outcome = await _attempt(
        app_engine,
        mallory.user_id,
        "UPDATE social.contacts SET contact_user_id = :alice WHERE id = :id",
        {"alice": world["alice"].user_id, "id": own["id"]},
    )
    assert outcome == DENIED


async def test_mallory_cannot_pair_alice_and_bob(app_engine, world):
    outcome = await _attempt(
        app_engine,
        world["mallory"].user_id,
        "SELECT social.pair_contacts(:alice, :bob)",
        {"alice": world["alice"].user_id, "bob": world["bob"].user_id},
    )
    assert outcome == DENIED


async def test_mallory_cannot_pair_herself_with_alice_without_a_request(app_engine, world):
    outcome = await _attempt(
        app_engine,
        world["mallory"].user_id,
        "SELECT social.pair_contacts(:mallory, :alice)",
        {"mallory": world["mallory"].user_id, "alice": world["alice"].user_id},
    )
    assert outcome == DENIED


async def test_mallory_cannot_unpair_alice_and_bob(app_engine, client, world):
    await _attempt(
        app_engine, world["mallory"].user_id, "SELECT social.unpair_contacts(:bob)", {"bob": world["bob"].user_id}
    )
    contacts = (await client.get("/v1/contacts", headers=world["bob"].headers)).json()["items"]
    assert [c["contact_user_id"] for c in contacts] == [world["alice"].user_id]


async def _are_contacts(runtime, a: str, b: str) -> bool:
    async with system_transaction(runtime.system_engine) as db:
        return (await db.execute(text("SELECT social.are_contacts(:a, :b)"), {"a": a, "b": b})).scalar_one()


async def test_mallory_cannot_write_herself_an_accepted_request(app_engine, runtime, world):
    mallory, alice = world["mallory"].user_id, world["alice"].user_id
    await _attempt(
        app_engine,
        mallory,
        "INSERT INTO social.contact_requests (id, requester_id, addressee_id, status) "
        "VALUES (:id, :mallory, :alice, 'accepted')",
        {"id": uuid7(), "mallory": mallory, "alice": alice},
    )
    await _attempt(
        app_engine, mallory, "SELECT social.pair_contacts(:mallory, :alice)", {"mallory": mallory, "alice": alice}
    )
    assert await _are_contacts(runtime, alice, mallory) is False


async def test_mallory_cannot_accept_her_own_request(app_engine, runtime, client, world):
    mallory, alice = world["mallory"], world["alice"]
    request = await _ok(
        await client.post("/v1/contact-requests", headers=mallory.headers, json={"user_id": world["bob"].user_id}), 201
    )
    await _attempt(
        app_engine,
        mallory.user_id,
        "UPDATE social.contact_requests SET status = 'accepted', addressee_id = :alice WHERE id = :id",
        {"id": request["id"], "alice": alice.user_id},
    )
    await _attempt(
        app_engine,
        mallory.user_id,
        "SELECT social.pair_contacts(:mallory, :alice)",
        {"mallory": mallory.user_id, "alice": alice.user_id},
    )
    assert await _are_contacts(runtime, alice.user_id, mallory.user_id) is False


async def test_the_blocked_person_cannot_insert_a_request(app_engine, world):
    dave = world["dave"]
    outcome = await _attempt(
        app_engine,
        dave.user_id,
        "INSERT INTO social.contact_requests (id, requester_id, addressee_id) VALUES (:id, :dave, :alice)",
        {"id": uuid7(), "dave": dave.user_id, "alice": world["alice"].user_id},
    )
    assert outcome == RLS


async def test_a_user_cannot_set_their_own_verified_badge(app_engine, world):
    alice = world["alice"]
    outcome = await _attempt(
        app_engine,
        alice.user_id,
        "UPDATE social.profiles SET is_verified = true WHERE user_id = :me",
        {"me": alice.user_id},
    )
    assert outcome == DENIED


# Through the API


async def test_mallory_cannot_read_alices_contact(client, world):
    response = await client.get(f"/v1/contacts/{world['lily']['id']}", headers=world["mallory"].headers)
    assert (response.status_code, problem_type(response)) == (404, "contact-not-found")


async def test_mallory_cannot_change_or_remove_alices_contact(client, world):
    mallory, lily = world["mallory"], world["lily"]
    await client.patch(f"/v1/contacts/{lily['id']}", headers=mallory.headers, json={"nickname": "mine"})
    await client.delete(f"/v1/contacts/{lily['id']}", headers=mallory.headers)
    assert (await client.get(f"/v1/contacts/{lily['id']}", headers=world["alice"].headers)).json() == lily


async def test_mallory_cannot_list_alices_group(client, world):
    response = await client.get(
        "/v1/contacts", headers=world["mallory"].headers, params={"group_id": world["family"]["id"]}
    )
    assert (response.status_code, problem_type(response)) == (404, "contact-group-not-found")


async def test_mallory_cannot_rename_or_empty_alices_group(client, world):
    mallory, family = world["mallory"], world["family"]
    await client.patch(f"/v1/contact-groups/{family['id']}", headers=mallory.headers, json={"name": "Mine"})
    await client.delete(f"/v1/contact-groups/{family['id']}/members/{world['lily']['id']}", headers=mallory.headers)
    await client.delete(f"/v1/contact-groups/{family['id']}", headers=mallory.headers)
    members = (
        await client.get("/v1/contacts", headers=world["alice"].headers, params={"group_id": family["id"]})
    ).json()["items"]
    assert [c["id"] for c in members] == [world["lily"]["id"]]


async def test_mallory_cannot_see_alices_requests(client, world):
    mallory = world["mallory"]
    lists = [
        (
            await client.get("/v1/contact-requests", headers=mallory.headers, params={"direction": d, "status": s})
        ).json()["items"]
        for d in ("incoming", "outgoing")
        for s in ("pending", "accepted")
    ]
    assert lists == [[]] * 4


@pytest.mark.parametrize("verb", ["accept", "reject", "cancel"])
async def test_mallory_cannot_answer_a_request_to_alice(client, world, verb):
    response = await client.post(
        f"/v1/contact-requests/{world['pending']['id']}/{verb}", headers=world["mallory"].headers
    )
    assert (response.status_code, problem_type(response)) == (404, "contact-request-not-found")


async def test_mallorys_settings_change_leaves_alices(client, world):
    await client.patch("/v1/settings", headers=world["mallory"].headers, json={"theme": "light"})
    assert (await client.get("/v1/settings", headers=world["alice"].headers)).json()["theme"] == "dark"


async def test_mallory_cannot_see_alices_blocks(client, world):
    assert (await client.get("/v1/blocks", headers=world["mallory"].headers)).json()["items"] == []


async def test_the_blocked_person_cannot_see_the_block_through_the_api(client, world):
    assert (await client.get("/v1/blocks", headers=world["dave"].headers)).json()["items"] == []


async def test_mallory_cannot_lift_alices_block(client, world):
    await client.delete(f"/v1/blocks/{world['dave'].user_id}", headers=world["mallory"].headers)
    blocked = (await client.get("/v1/blocks", headers=world["alice"].headers)).json()["items"]
    assert [b["blocked_id"] for b in blocked] == [world["dave"].user_id]


async def test_mallory_cannot_read_alices_activity(client, world):
    assert (await client.get("/v1/profile/activity", headers=world["mallory"].headers)).json()["items"] == []


@pytest.mark.parametrize("viewer", VIEWERS, ids=["stranger", "contact", "blocked"])
async def test_no_one_else_reads_a_private_profile(client, world, viewer):
    response = await client.get(f"/v1/users/{world['alice'].user_id}/profile", headers=world[viewer].headers)
    assert (response.status_code, problem_type(response)) == (404, "profile-not-found")
