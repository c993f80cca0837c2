"""Every SECURITY DEFINER function, called straight through SQL as `rapport_app` (the role
the server connects as), with another user's context or none: each checks the caller's
right to what it does, and none is anybody's to call (docs/decisions/0009).

The functions are found in the catalogue: a new one without a case below fails
`test_every_definer_function_has_a_case`. Alice's profile is public; bob is her contact;
alice blocks dave; mallory is a stranger who tries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.runtime import Runtime
from tests.support import Persona, befriend

pytestmark = pytest.mark.module_database

DENIED = "permission denied"  # no EXECUTE privilege
REFUSED = "refused"  # the function ran and raised insufficient_privilege
SCHEMAS = ("auth", "social", "kernel", "audit")

# Trigger functions run only as triggers; nobody is granted them.
TRIGGER_FUNCTIONS = {
    "audit.record_change()",
    "audit.record_sensitive_write()",
    "social.create_profile_for_user()",
    "social.link_contacts_on_verification()",
    "social.log_profile_changes()",
    "social.forget_blocks_of_deleted_user()",
}
# The others, each with the test(s) below that call it out of its context.
CALLED_FUNCTIONS = {
    "social.is_blocked(uuid,uuid)": "test_is_blocked_answers_only_about_the_callers_own_pairs",
    "social.are_contacts(uuid,uuid)": "test_are_contacts_answers_only_about_the_callers_own_pairs",
    "social.blocked_by(uuid)": "test_blocked_by_answers_only_about_the_caller",
    "social.profile_visible(uuid)": "test_profile_visible_is_the_callers_visibility",
    "social.user_id_for_username(text)": "test_user_id_for_username_finds_only_a_profile_the_caller_sees",
    "social.pair_contacts(uuid,uuid)": "test_pair_contacts_refuses_a_pair_removed_before",
    "social.unpair_contacts(uuid)": "test_unpair_contacts_undoes_only_the_callers_pair",
    "social.search_profiles(text[],text,integer,integer,uuid,integer)": "test_search_profiles_out_of_context",
    "social.set_verified_badge(uuid,boolean)": "test_set_verified_badge_needs_an_administrator",
    "audit.record_sensitive_access(uuid,text,text,text[])": "test_record_sensitive_access_records_only_for_the_owner",
    "social.generate_unique_username(text)": "test_generate_unique_username_is_nobodys_to_call",
}

_DEFINER_FUNCTIONS = text(
    """
    SELECT regexp_replace(p.oid::regprocedure::text, ',\\s+', ',', 'g') AS signature,
           p.prorettype = 'trigger'::regtype AS is_trigger,
           has_function_privilege('public', p.oid, 'EXECUTE') AS public_may,
           has_function_privilege('rapport_app', p.oid, 'EXECUTE') AS app_may,
           has_function_privilege('rapport_worker', p.oid, 'EXECUTE') AS worker_may,
           coalesce(array_to_string(p.proconfig, ' '), '') LIKE '%search_path=%' AS pins_search_path
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE p.prosecdef AND n.nspname = ANY(:schemas)
     ORDER BY 1
    """
)


@dataclass(frozen=True)
class World:
    alice: Persona
    bob: Persona
    dave: Persona
    mallory: Persona


@pytest.fixture
async def world(
    client: httpx.AsyncClient,
    make_persona: Callable[[str], Awaitable[Persona]],
    alice: Persona,
    bob: Persona,
    mallory: Persona,
) -> World:
    dave = await make_persona("dave")
    await befriend(client, alice, bob)
    blocked = await client.put(f"/v1/blocks/{dave.user_id}", headers=alice.headers)
    assert blocked.status_code == 200, blocked.text
    return World(alice=alice, bob=bob, dave=dave, mallory=mallory)


def _outcome(error: DBAPIError) -> str:
    cause = error.orig.__cause__ if error.orig is not None else None
    if isinstance(cause, asyncpg.exceptions.InsufficientPrivilegeError):
        return DENIED if "permission denied" in str(cause) else REFUSED
    return type(cause).__name__


async def call(engine: AsyncEngine, user: Persona | None, statement: str, **params: Any) -> Any:
    """The first column of the first row the statement returns (None for no row), as
    `user` or with no user set; or why PostgreSQL refused."""
    try:
        if user is None:
            async with engine.begin() as db:
                return (await db.execute(text(statement), params)).scalar()
        async with user_transaction(engine, UUID(user.user_id)) as db:
            return (await db.execute(text(statement), params)).scalar()
    except DBAPIError as error:
        return _outcome(error)


async def system_value(runtime: Runtime, statement: str, **params: Any) -> Any:
    async with system_transaction(runtime.system_engine) as db:
        return (await db.execute(text(statement), params)).scalar()


# The catalogue


async def test_every_definer_function_has_a_case(app_engine: AsyncEngine) -> None:
    async with app_engine.connect() as db:
        found = {row.signature for row in await db.execute(_DEFINER_FUNCTIONS, {"schemas": list(SCHEMAS)})}
    assert found == TRIGGER_FUNCTIONS | set(CALLED_FUNCTIONS), (
        "A SECURITY DEFINER function needs a case here that calls it out of context"
    )


async def test_no_definer_function_is_public_and_each_pins_its_search_path(app_engine: AsyncEngine) -> None:
    async with app_engine.connect() as db:
        rows = (await db.execute(_DEFINER_FUNCTIONS, {"schemas": list(SCHEMAS)})).all()
    assert [row.signature for row in rows if row.public_may] == []
    assert [row.signature for row in rows if not row.pins_search_path] == []
    assert [row.signature for row in rows if row.is_trigger and (row.app_may or row.worker_may)] == []


@pytest.mark.parametrize("signature", sorted(TRIGGER_FUNCTIONS))
async def test_a_trigger_function_cannot_be_called(app_engine: AsyncEngine, world: World, signature: str) -> None:
    # Its result (of type trigger) is never sent back, so the driver has nothing to decode.
    outcome = await call(app_engine, world.mallory, f"SELECT count(*) FROM (SELECT {signature}) AS called")
    assert outcome == DENIED


# Each function, out of its context


async def test_is_blocked_answers_only_about_the_callers_own_pairs(app_engine: AsyncEngine, world: World) -> None:
    asked = "SELECT social.is_blocked(:alice, :dave)"
    ids = {"alice": world.alice.user_id, "dave": world.dave.user_id}
    by_alice = await call(app_engine, world.alice, asked, **ids)
    by_mallory = await call(app_engine, world.mallory, asked, **ids)
    by_nobody = await call(app_engine, None, asked, **ids)
    assert (by_alice, by_mallory, by_nobody) == (True, False, False)


async def test_are_contacts_answers_only_about_the_callers_own_pairs(app_engine: AsyncEngine, world: World) -> None:
    asked = "SELECT social.are_contacts(:alice, :bob)"
    ids = {"alice": world.alice.user_id, "bob": world.bob.user_id}
    by_bob = await call(app_engine, world.bob, asked, **ids)
    by_mallory = await call(app_engine, world.mallory, asked, **ids)
    by_nobody = await call(app_engine, None, asked, **ids)
    assert (by_bob, by_mallory, by_nobody) == (True, False, False)


async def test_blocked_by_answers_only_about_the_caller(app_engine: AsyncEngine, world: World) -> None:
    """Mallory cannot learn whom alice blocks: the function names no one but its caller."""
    asked = "SELECT social.blocked_by(:alice)"
    by_dave = await call(app_engine, world.dave, asked, alice=world.alice.user_id)
    by_mallory = await call(app_engine, world.mallory, asked, alice=world.alice.user_id)
    by_nobody = await call(app_engine, None, asked, alice=world.alice.user_id)
    assert (by_dave, by_mallory, by_nobody) == (True, False, False)


async def test_profile_visible_is_the_callers_visibility(
    client: httpx.AsyncClient, app_engine: AsyncEngine, world: World
) -> None:
    asked = "SELECT social.profile_visible(:alice)"
    public = [await call(app_engine, who, asked, alice=world.alice.user_id) for who in (world.mallory, world.dave)]
    by_nobody = await call(app_engine, None, asked, alice=world.alice.user_id)
    await client.patch("/v1/profile", headers=world.alice.headers, json={"profile_visibility": "private"})
    private = await call(app_engine, world.mallory, asked, alice=world.alice.user_id)
    assert (public, by_nobody, private) == ([True, False], False, False)


async def test_user_id_for_username_finds_only_a_profile_the_caller_sees(
    client: httpx.AsyncClient, app_engine: AsyncEngine, world: World
) -> None:
    asked = "SELECT social.user_id_for_username('alice')"
    by_mallory = await call(app_engine, world.mallory, asked)
    by_dave = await call(app_engine, world.dave, asked)
    by_nobody = await call(app_engine, None, asked)
    await client.patch("/v1/profile", headers=world.alice.headers, json={"profile_visibility": "private"})
    private = await call(app_engine, world.mallory, asked)
    assert (str(by_mallory), by_dave, by_nobody, private) == (world.alice.user_id, None, None, None)


async def _are_contacts(runtime: Runtime, a: Persona, b: Persona) -> bool:
    return bool(await system_value(runtime, "SELECT social.are_contacts(:a, :b)", a=a.user_id, b=b.user_id))


async def _remove(client: httpx.AsyncClient, owner: Persona, other: Persona) -> None:
    contacts = (await client.get("/v1/contacts", headers=owner.headers)).json()["items"]
    [contact] = [c for c in contacts if c["contact_user_id"] == other.user_id]
    assert (await client.delete(f"/v1/contacts/{contact['id']}", headers=owner.headers)).status_code == 204


async def test_pair_contacts_refuses_a_pair_removed_before(
    client: httpx.AsyncClient, runtime: Runtime, app_engine: AsyncEngine, world: World
) -> None:
    """Mallory accepted alice's request once; alice removed her. The old acceptance
    pairs nobody, even made to look fresh."""
    alice, mallory = world.alice, world.mallory
    await befriend(client, alice, mallory)
    await _remove(client, alice, mallory)
    ids = {"alice": alice.user_id, "mallory": mallory.user_id}

    paired = await call(app_engine, mallory, "SELECT social.pair_contacts(:mallory, :alice)", **ids)
    refreshed = await call(
        app_engine,
        mallory,
        "UPDATE social.contact_requests SET responded_at = now(), status = 'accepted' "
        "WHERE requester_id = :alice AND addressee_id = :mallory RETURNING id",
        **ids,
    )

    assert (paired, refreshed) == (REFUSED, REFUSED)
    assert await _are_contacts(runtime, alice, mallory) is False


async def test_pair_contacts_refuses_after_a_block_is_lifted(
    client: httpx.AsyncClient, runtime: Runtime, app_engine: AsyncEngine, world: World
) -> None:
    alice, mallory = world.alice, world.mallory
    await befriend(client, alice, mallory)
    await client.put(f"/v1/blocks/{mallory.user_id}", headers=alice.headers)
    await client.delete(f"/v1/blocks/{mallory.user_id}", headers=alice.headers)

    paired = await call(
        app_engine,
        mallory,
        "SELECT social.pair_contacts(:mallory, :alice)",
        mallory=mallory.user_id,
        alice=alice.user_id,
    )

    assert paired == REFUSED
    assert await _are_contacts(runtime, alice, mallory) is False


async def test_pair_contacts_pairs_only_its_caller(app_engine: AsyncEngine, world: World) -> None:
    paired = await call(
        app_engine,
        world.mallory,
        "SELECT social.pair_contacts(:alice, :dave)",
        alice=world.alice.user_id,
        dave=world.dave.user_id,
    )
    assert paired == REFUSED


async def test_unpair_contacts_undoes_only_the_callers_pair(
    runtime: Runtime, app_engine: AsyncEngine, world: World
) -> None:
    by_mallory = await call(app_engine, world.mallory, "SELECT social.unpair_contacts(:bob)", bob=world.bob.user_id)
    by_nobody = await call(app_engine, None, "SELECT social.unpair_contacts(:bob)", bob=world.bob.user_id)
    assert (by_mallory, by_nobody) == (0, REFUSED)
    assert await _are_contacts(runtime, world.alice, world.bob) is True


async def test_search_profiles_out_of_context(app_engine: AsyncEngine, world: World) -> None:
    asked = "SELECT count(*) FROM social.search_profiles(ARRAY['alice'], 'alice')"
    by_mallory = await call(app_engine, world.mallory, asked)
    by_dave = await call(app_engine, world.dave, asked)
    by_nobody = await call(app_engine, None, asked)
    assert (by_mallory, by_dave, by_nobody) == (1, 0, 0)


async def test_set_verified_badge_needs_an_administrator(
    runtime: Runtime, app_engine: AsyncEngine, world: World
) -> None:
    asked = "SELECT count(*) FROM social.set_verified_badge(:mallory, true)"
    by_mallory = await call(app_engine, world.mallory, asked, mallory=world.mallory.user_id)
    by_nobody = await call(app_engine, None, asked, mallory=world.mallory.user_id)
    badge = await system_value(
        runtime, "SELECT is_verified FROM social.profiles WHERE user_id = :id", id=world.mallory.user_id
    )
    assert (by_mallory, by_nobody, badge) == (REFUSED, REFUSED, False)


async def test_record_sensitive_access_records_only_for_the_owner(
    runtime: Runtime, app_engine: AsyncEngine, world: World
) -> None:
    asked = "SELECT audit.record_sensitive_access(:alice, 'social.user_health_context', 'read', '{}')"
    by_mallory = await call(app_engine, world.mallory, asked, alice=world.alice.user_id)
    by_nobody = await call(app_engine, None, asked, alice=world.alice.user_id)
    records = await system_value(
        runtime, "SELECT count(*) FROM audit.sensitive_data_access WHERE user_id = :alice", alice=world.alice.user_id
    )
    assert (by_mallory, by_nobody, records) == (REFUSED, REFUSED, 0)


async def test_generate_unique_username_is_nobodys_to_call(app_engine: AsyncEngine, world: World) -> None:
    """It would tell anyone which usernames exist, private profiles' included."""
    outcome = await call(app_engine, world.mallory, "SELECT social.generate_unique_username('alice')")
    assert outcome == DENIED
