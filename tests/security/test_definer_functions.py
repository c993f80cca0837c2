"""Every SECURITY DEFINER function, called straight through SQL as `rapport_app` (the role
the server connects as), with another user's context or none: each checks the caller's
right to what it does, and none is anybody's to call (docs/decisions/0009).

The functions are found in the catalogue: a new one without a case below fails
`test_every_definer_function_has_a_case`. Alice's profile is public; bob is her contact;
alice blocks dave; mallory is a stranger who tries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime
from tests.messaging.support import make_conversation, send
from tests.module_scope import build_once
from tests.support import Persona, befriend

pytestmark = pytest.mark.module_database

DENIED = "permission denied"  # no EXECUTE privilege
REFUSED = "refused"  # the function ran and raised insufficient_privilege
SCHEMAS = (
    "auth",
    "social",
    "kernel",
    "audit",
    "messaging",
    "realtime",
    "notifications",
    "media",
    "compliance",
    "coparenting",
    "community",
    "matching",
    "access",
    "bots",
    "support",
    "analytics",
    "views",
    "encryption",
)

# Trigger functions run only as triggers; nobody is granted them.
TRIGGER_FUNCTIONS = {
    "analytics.track_sessions()",
    "audit.record_change()",
    "audit.record_sensitive_write()",
    "social.create_profile_for_user()",
    "social.link_contacts_on_verification()",
    "social.log_profile_changes()",
    "social.forget_blocks_of_deleted_user()",
    "messaging.sequence_message()",
    "messaging.guard_message_update()",
    "messaging.count_members()",
    "messaging.compile_blocked_terms()",
    "messaging.ring_call()",
    "messaging.close_call()",
    "messaging.follow_call()",
    "audit.record_auth_event()",
    "coparenting.count_outcome()",
    "messaging.record_conversation_change()",
    "messaging.record_participant_change()",
}
# The others, each with the test(s) below that call it out of its context.
# Media's definer functions are called out of context in tests/security/test_media_files.py.
_MEDIA_CASE = "test_the_definer_functions_tell_a_stranger_nothing_and_do_nothing_for_her"
_RETENTION_CASE = "test_no_one_but_system_work_calls_a_retention_or_repair_function"
CALLED_FUNCTIONS = {
    # End-to-end encryption (migration 2026_11_30_0048): the cases are in
    # tests/security/test_encryption_rls.py.
    "encryption.device_owner_in(uuid,uuid)": "test_device_owner_in_answers_only_within_the_callers_conversations",
    "encryption.claim_key_bundles(uuid,boolean)": "test_claim_key_bundles_out_of_context_hands_out_nothing",
    # Analytics' reports (migration 2026_11_30_0046): in tests/security/test_analytics_reports_rls.py.
    "analytics.expose(text)": "test_expose_records_only_the_callers_own_exposure",
    "analytics.experiment_counts(uuid)": "test_report_functions_answer_administrators_alone",
    "analytics.funnel_counts(uuid,timestamp with time zone,timestamp with time zone)": (
        "test_report_functions_answer_administrators_alone"
    ),
    "views.user_growth_between(date,date)": "test_report_functions_answer_administrators_alone",
    "views.active_users_at(date)": "test_report_functions_answer_administrators_alone",
    "views.user_engagement_at(date)": "test_report_functions_answer_administrators_alone",
    "views.messaging_stats_between(date,date)": "test_report_functions_answer_administrators_alone",
    "views.conversation_analytics_top(integer)": "test_report_functions_answer_administrators_alone",
    "views.media_storage()": "test_report_functions_answer_administrators_alone",
    "views.slow_queries_top(integer)": "test_report_functions_answer_administrators_alone",
    # Streams, support rooms and room history (migration 2026_11_30_0037): the cases are in
    # tests/security/test_messaging_streams.py.
    "messaging.stream_message(uuid,uuid,uuid,uuid,uuid,text,text)": "test_nobody_but_the_sender_streams_into_a_message",
    "messaging.admit_participant(uuid,uuid,text,boolean)": "test_admitting_and_dismissing_are_for_system_work_alone",
    "messaging.dismiss_participant(uuid,uuid)": "test_admitting_and_dismissing_are_for_system_work_alone",
    "messaging.observes(uuid)": "test_observes_answers_for_the_caller_only",
    # Bots' abandoned streams (migration 2026_11_30_0040): the case is in tests/bots/test_lifecycle.py.
    "bots.fail_abandoned_streams(timestamp with time zone,integer)": (
        "test_ending_abandoned_streams_is_system_work_alone"
    ),
    # The support desk's supervisors (migration 2026_11_30_0039): in tests/security/test_support_rls.py.
    "support.observe_messages(uuid,uuid,integer)": "test_observe_messages_out_of_context_reads_nothing",
    "support.queue_page(text,boolean,integer,timestamp with time zone,uuid,integer)": (
        "test_queue_page_out_of_context_reads_nothing"
    ),
    # Permissions (migration 2026_11_30_0036): the case is in tests/security/test_access_rls.py.
    "access.has_permission(text,uuid)": "test_has_permission_answers_for_nobody_else",
    "social.is_blocked(uuid,uuid)": "test_is_blocked_answers_only_about_the_callers_own_pairs",
    # Phone lookups (migration 2026_11_30_0022): the case is in tests/security/test_phone_lookup.py.
    "social.find_by_phone(text[])": "test_find_by_phone_finds_only_whom_the_caller_may_find",
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
    "kernel.ensure_partitions()": "test_ensure_partitions_is_system_work_alone",
    "messaging.participant_role(uuid)": "test_participant_role_is_the_callers_own",
    "messaging.may_invite(uuid)": "test_may_invite_answers_for_the_caller_alone",
    "messaging.flags(text)": "test_flags_tells_about_one_text_never_the_list",
    "messaging.shares_read_receipts(uuid)": "test_shares_read_receipts_answers_only_about_fellow_participants",
    "messaging.add_participant(uuid,uuid,text,boolean)": "test_add_participant_out_of_context",
    "messaging.change_participant(uuid,uuid,text,text,boolean,boolean,boolean)": (
        "test_change_participant_acts_only_below_the_callers_rank"
    ),
    "messaging.join_by_invite(bytea)": "test_join_by_invite_needs_a_live_link_and_leaves_the_caller_as_they_were",
    "messaging.delete_conversation(uuid)": "test_delete_conversation_is_the_owners_alone",
    "messaging.direct_with(uuid,boolean)": "test_direct_with_finds_only_the_callers_own_direct_conversation",
    "messaging.delete_as_platform_admin(uuid,uuid)": "test_delete_as_platform_admin_needs_a_platform_administrator",
    "messaging.search_messages(tsquery,uuid,uuid,timestamp with time zone,timestamp with time zone,text,integer,real,"
    "uuid,integer,interval)": "test_search_messages_finds_only_the_callers_own_messages",
    "messaging.send_message(uuid,uuid,uuid,uuid,text,text,text,jsonb,uuid,uuid,uuid,uuid[],uuid[],boolean)": (
        "test_send_message_sends_only_as_the_sessions_own_participant"
    ),
    "messaging.list_conversations(uuid,uuid,uuid,boolean,timestamp with time zone,uuid,integer)": (
        "test_list_conversations_lists_only_the_sessions_own_conversations"
    ),
    "messaging.search_page(uuid,uuid,uuid,text,text,uuid,uuid,timestamp with time zone,timestamp with time zone,"
    "text,integer,real,uuid,integer,interval)": "test_search_page_finds_only_the_sessions_own_messages",
    "messaging.read_history(uuid,uuid,uuid,uuid,uuid,uuid,uuid,integer)": (
        "test_read_history_reads_only_within_the_sessions_own_window"
    ),
    # Presence (migration 2026_11_29_0018): cases in tests/security/test_realtime_presence.py.
    "realtime.presence_visibility(uuid[])": "test_presence_visibility_tells_mallory_nothing_alice_hides",
    "realtime.presence_audience(uuid)": "test_presence_audience_is_system_work_alone",
    "realtime.record_last_seen(uuid[],timestamp with time zone[])": (
        "test_the_worker_records_last_seen_only_in_system_work"
    ),
    # Push subscriptions (migration 2026_11_29_0019): the case is in tests/security/test_notifications.py.
    "notifications.register_push_subscription(uuid,text,text,text,text,text,uuid,text)": (
        "test_register_push_subscription_acts_for_the_caller_alone"
    ),
    # Co-parenting's accept: the case is in tests/security/test_coparenting_pairing.py.
    "coparenting.claim_pairing(bytea,text)": "test_claim_pairing_out_of_context_accepts_nothing",
    # Matching's: the cases are in tests/security/test_matching_people.py and test_matching_matches.py.
    "matching.profile_card(uuid)": "test_profile_card_out_of_context_tells_nothing",
    "matching.decide_match(uuid,text)": "test_decide_match_out_of_context_decides_nothing",
    "media.shared_with_caller(uuid,boolean)": _MEDIA_CASE,
    "media.may_read_file_itself(uuid)": _MEDIA_CASE,
    "media.may_read_file(uuid)": _MEDIA_CASE,
    "media.may_comment_file(uuid)": _MEDIA_CASE,
    "media.may_read_album(uuid)": _MEDIA_CASE,
    "media.owns_file(uuid)": _MEDIA_CASE,
    "media.file_blob(uuid)": _MEDIA_CASE,
    "media.thumbnail_blob(uuid,text)": _MEDIA_CASE,
    "media.version_blob(uuid,integer)": _MEDIA_CASE,
    "media.count_download(uuid)": _MEDIA_CASE,
    "media.delete_file(uuid)": _MEDIA_CASE,
    "media.add_version(uuid,bytea,bigint,text,text,text)": _MEDIA_CASE,
    "media.file_by_link(bytea)": _MEDIA_CASE,
    "media.album_by_link(bytea)": _MEDIA_CASE,
    "media.register_blob(bytea,bigint,text,text,text)": (
        "test_a_claim_made_ahead_with_a_false_size_and_type_is_corrected_by_the_upload"
    ),
    # Compliance (migrations 2026_11_30_0023 to 0025). Consents, logs, administrators and the
    # audit chain: cases in tests/security/test_compliance_rls.py.
    "compliance.log_event(uuid,text,jsonb)": "test_log_event_logs_only_what_the_caller_may",
    "audit.record_admin_action(text,text,uuid,text,jsonb,uuid)": (
        "test_record_admin_action_records_only_an_administrators_own"
    ),
    "audit.record_admin_access(uuid,text,text[])": "test_record_admin_access_needs_an_administrator",
    "audit.record_data_export(uuid,uuid,text,jsonb)": "test_record_data_export_records_only_for_the_caller",
    "audit.erase_person(uuid,text[])": "test_erasing_and_pruning_the_audit_are_system_work_alone",
    "audit.prune_chain(text,timestamp with time zone)": "test_erasing_and_pruning_the_audit_are_system_work_alone",
    # Erasure: the case is in tests/security/test_compliance_exports.py.
    "compliance.erase_messages(uuid)": "test_the_server_role_runs_no_deletion_or_erasure",
    # Retention and repairs: the case is in tests/security/test_retention_rls.py.
    "compliance.expire_message_partitions(timestamp with time zone,boolean)": _RETENTION_CASE,
    "compliance.expire_conversation_messages(uuid,timestamp with time zone,boolean,integer)": _RETENTION_CASE,
    "compliance.repair_conversation_counters(uuid)": _RETENTION_CASE,
    "compliance.repair_attachment_count(uuid,uuid)": _RETENTION_CASE,
    "compliance.repair_thread_count(uuid)": _RETENTION_CASE,
    "compliance.remove_message_remains(uuid,uuid)": _RETENTION_CASE,
    "compliance.remove_orphan_thread(uuid)": _RETENTION_CASE,
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


@pytest.fixture(scope="module")
async def module_world(module_app: FastAPI, module_database: DatabaseUrls) -> World:
    """Alice and bob contacts, dave blocked by alice, mallory a stranger. Built once: each
    test's reset puts it back as it was (module_scope.build_once)."""
    async with build_once(module_app, module_database) as built:
        alice, bob, dave, mallory = await built.personas("alice", "bob", "dave", "mallory")
        await befriend(built.client, alice, bob)
        blocked = await built.client.put(f"/v1/blocks/{dave.user_id}", headers=alice.headers)
        assert blocked.status_code == 200, blocked.text
        return World(alice=alice, bob=bob, dave=dave, mallory=mallory)


@pytest.fixture
def world(module_world: World, database: DatabaseUrls) -> World:
    """The module's world, as built: the test's database was reset to it."""
    return module_world


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


async def test_ensure_partitions_is_system_work_alone(runtime: Runtime, app_engine: AsyncEngine, world: World) -> None:
    """It runs as the owner of every partitioned table: the server's role may neither call
    it nor choose what it partitions, and the worker's role only in a system transaction."""
    asked = "SELECT kernel.ensure_partitions()"
    by_mallory = await call(app_engine, world.mallory, asked)
    by_nobody = await call(app_engine, None, asked)
    registered = await call(
        app_engine, world.mallory, "INSERT INTO kernel.monthly_partitions (parent) VALUES ('auth.users') RETURNING 1"
    )
    listed = await call(app_engine, world.mallory, "SELECT count(*) FROM kernel.monthly_partitions")
    worker_outside_system_work = await call(runtime.system_engine.engine, None, asked)
    by_the_system = await system_value(runtime, asked)
    assert (by_mallory, by_nobody, registered, listed) == (DENIED, DENIED, DENIED, DENIED)
    assert worker_outside_system_work == REFUSED
    assert isinstance(by_the_system, int)


async def test_search_messages_finds_only_the_callers_own_messages(
    client: httpx.AsyncClient, app_engine: AsyncEngine, world: World
) -> None:
    """It reads every conversation's messages: it answers only from the caller's own
    participations, whatever conversation it is asked about, and never for a query that
    only excludes words (no index could serve it)."""
    conversation = await make_conversation(app_engine, world.alice, world.bob)
    sent = await client.post(
        f"/v1/conversations/{conversation}/messages", json={"content": "the secret plan"}, headers=world.bob.headers
    )
    assert sent.status_code == 201, sent.text
    asked = (
        "SELECT coalesce(sum(cardinality(message_ids)), 0)"
        " FROM messaging.search_messages(messaging.message_query(:q), :conversation)"
    )
    by_alice = await call(app_engine, world.alice, asked, q="secret", conversation=conversation)
    by_mallory = await call(app_engine, world.mallory, asked, q="secret", conversation=conversation)
    by_mallory_anywhere = await call(app_engine, world.mallory, asked, q="secret", conversation=None)
    by_nobody = await call(app_engine, None, asked, q="secret", conversation=None)
    excluding_only = await call(app_engine, world.alice, asked, q="-nothing", conversation=None)
    assert (by_alice, by_mallory, by_mallory_anywhere, by_nobody, excluding_only) == (1, 0, 0, 0, 0)


# Messaging (migration 2026_11_29_0014): alice owns a group with bob in it; mallory and
# dave (whom alice blocks) are not in it. The membership functions refuse with the
# SQLSTATE and slug of the problem the API answers with.

GONE = "RM404 conversation-not-found"
NOT_ALLOWED = "RM403 not-allowed"
NO_INVITE = "RM404 invite-not-found"


async def messaging_call(engine: AsyncEngine, user: Persona | None, statement: str, **params: Any) -> Any:
    """As `call`, where a refusal a messaging function (or the session check) raises reads as
    its SQLSTATE and slug."""
    try:
        if user is None:
            async with engine.begin() as db:
                return (await db.execute(text(statement), params)).scalar()
        async with user_transaction(engine, UUID(user.user_id)) as db:
            return (await db.execute(text(statement), params)).scalar()
    except DBAPIError as error:
        cause = error.orig.__cause__ if error.orig is not None else None
        if isinstance(cause, asyncpg.PostgresError) and str(cause.sqlstate).startswith(("RM", "RA")):
            return f"{cause.sqlstate} {cause}"
        return _outcome(error)


async def _group(engine: AsyncEngine, world: World) -> UUID:
    return await make_conversation(engine, world.alice, world.bob)


async def _participants(runtime: Runtime, conversation: UUID) -> list[str]:
    """Who takes part, in which role and status, as the system sees it."""
    async with system_transaction(runtime.system_engine) as db:
        rows = await db.execute(
            text("SELECT role || ' ' || status FROM messaging.participants WHERE conversation_id = :c ORDER BY role"),
            {"c": conversation},
        )
        return list(rows.scalars())


async def test_participant_role_is_the_callers_own(app_engine: AsyncEngine, world: World) -> None:
    group = await _group(app_engine, world)
    asked = "SELECT messaging.participant_role(:c)"
    roles = [await messaging_call(app_engine, who, asked, c=group) for who in (world.alice, world.bob, world.mallory)]
    by_nobody = await messaging_call(app_engine, None, asked, c=group)
    await messaging_call(
        app_engine,
        world.bob,
        "SELECT messaging.change_participant(:c, :bob, NULL, 'left', NULL, NULL, NULL)",
        c=group,
        bob=world.bob.user_id,
    )
    after_leaving = await messaging_call(app_engine, world.bob, asked, c=group)
    assert (roles, by_nobody, after_leaving) == (["owner", "member", None], None, None)


async def test_may_invite_answers_for_the_caller_alone(app_engine: AsyncEngine, world: World) -> None:
    group = await _group(app_engine, world)
    asked = "SELECT messaging.may_invite(:c)"
    answers = [await messaging_call(app_engine, who, asked, c=group) for who in (world.alice, world.bob, world.mallory)]
    by_nobody = await messaging_call(app_engine, None, asked, c=group)
    assert (answers, by_nobody) == ([True, False, False], False)


async def test_flags_tells_about_one_text_never_the_list(
    runtime: Runtime, app_engine: AsyncEngine, world: World
) -> None:
    """Whether one text holds a blocked term, which sending it shows anyway: never the
    list nor its pattern, and nothing to a caller who names no user."""
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(text("INSERT INTO messaging.blocked_terms (id, term) VALUES (gen_random_uuid(), 'forbidden')"))
    asked = "SELECT messaging.flags('so FORBIDDEN')"
    by_mallory = await messaging_call(app_engine, world.mallory, asked)
    clean = await messaging_call(app_engine, world.mallory, "SELECT messaging.flags('all fine')")
    by_nobody = await messaging_call(app_engine, None, asked)
    pattern = await messaging_call(app_engine, world.mallory, "SELECT pattern FROM messaging.moderation")
    terms = await messaging_call(app_engine, world.mallory, "SELECT count(*) FROM messaging.blocked_terms")
    assert (by_mallory, clean, by_nobody) == (True, False, False)
    assert (pattern, terms) == (DENIED, 0)


async def test_shares_read_receipts_answers_only_about_fellow_participants(
    client: httpx.AsyncClient, app_engine: AsyncEngine, world: World
) -> None:
    """Mallory cannot learn whether alice shares read receipts: she shares no conversation
    with her, and the answer is no whatever alice's setting."""
    await _group(app_engine, world)
    asked = "SELECT messaging.shares_read_receipts(:alice)"
    ids = {"alice": world.alice.user_id}
    shared = [await messaging_call(app_engine, who, asked, **ids) for who in (world.bob, world.mallory, None)]
    changed = await client.patch("/v1/settings", json={"read_receipts_enabled": False}, headers=world.alice.headers)
    assert changed.status_code == 200, changed.text
    withheld = [await messaging_call(app_engine, who, asked, **ids) for who in (world.bob, world.mallory)]
    assert (shared, withheld) == ([True, False, None], [False, False])


async def test_add_participant_out_of_context(runtime: Runtime, app_engine: AsyncEngine, world: World) -> None:
    group = await _group(app_engine, world)
    add = "SELECT messaging.add_participant(:c, :member, :role)"
    alice, bob, dave, mallory = world.alice, world.bob, world.dave, world.mallory
    outcomes = {
        "mallory adds herself": await messaging_call(
            app_engine, mallory, add, c=group, member=mallory.user_id, role="member"
        ),
        "mallory makes herself owner": await messaging_call(
            app_engine, mallory, add, c=group, member=mallory.user_id, role="owner"
        ),
        "nobody adds mallory": await messaging_call(
            app_engine, None, add, c=group, member=mallory.user_id, role="member"
        ),
        "bob, a member, adds mallory": await messaging_call(
            app_engine, bob, add, c=group, member=mallory.user_id, role="member"
        ),
        "alice adds a second owner": await messaging_call(
            app_engine, alice, add, c=group, member=mallory.user_id, role="owner"
        ),
        "alice adds dave, whom she blocks": await messaging_call(
            app_engine, alice, add, c=group, member=dave.user_id, role="member"
        ),
    }
    assert outcomes == {
        "mallory adds herself": GONE,
        "mallory makes herself owner": GONE,
        "nobody adds mallory": GONE,
        "bob, a member, adds mallory": NOT_ALLOWED,
        "alice adds a second owner": NOT_ALLOWED,
        "alice adds dave, whom she blocks": "RM404 user-not-found",
    }
    assert await _participants(runtime, group) == ["member active", "owner active"]


async def test_change_participant_acts_only_below_the_callers_rank(
    runtime: Runtime, app_engine: AsyncEngine, world: World
) -> None:
    group = await _group(app_engine, world)
    change = "SELECT messaging.change_participant(:c, :member, :role, :status, NULL, NULL, NULL)"
    alice, bob = world.alice.user_id, world.bob.user_id
    outcomes = {
        "mallory removes bob": await messaging_call(
            app_engine, world.mallory, change, c=group, member=bob, role=None, status="removed"
        ),
        "nobody removes bob": await messaging_call(
            app_engine, None, change, c=group, member=bob, role=None, status="removed"
        ),
        "bob removes alice": await messaging_call(
            app_engine, world.bob, change, c=group, member=alice, role=None, status="removed"
        ),
        "bob demotes alice": await messaging_call(
            app_engine, world.bob, change, c=group, member=alice, role="member", status=None
        ),
        "bob makes himself an admin": await messaging_call(
            app_engine, world.bob, change, c=group, member=bob, role="admin", status=None
        ),
    }
    assert outcomes == {
        "mallory removes bob": GONE,
        "nobody removes bob": GONE,
        "bob removes alice": NOT_ALLOWED,
        "bob demotes alice": NOT_ALLOWED,
        "bob makes himself an admin": NOT_ALLOWED,
    }
    assert await _participants(runtime, group) == ["member active", "owner active"]


async def test_join_by_invite_needs_a_live_link_and_leaves_the_caller_as_they_were(
    app_engine: AsyncEngine, world: World
) -> None:
    """The function acts as the link's maker to add the caller; once done, the transaction
    acts for the caller again, with none of the maker's rights."""
    group = await _group(app_engine, world)
    made = await messaging_call(
        app_engine,
        world.alice,
        "INSERT INTO messaging.invites (id, conversation_id, token_hash, created_by) "
        "VALUES (gen_random_uuid(), :c, sha256(convert_to('live-link', 'UTF8')), :alice) RETURNING 1",
        c=group,
        alice=world.alice.user_id,
    )
    assert made == 1
    join = "SELECT messaging.join_by_invite(sha256(convert_to(:token, 'UTF8')))"
    refused = [
        await messaging_call(app_engine, None, join, token="live-link"),
        await messaging_call(app_engine, world.mallory, join, token="wrong-link"),
        await messaging_call(app_engine, world.dave, join, token="live-link"),
    ]
    async with user_transaction(app_engine, UUID(world.mallory.user_id)) as db:
        joined = (await db.execute(text(join), {"token": "live-link"})).scalar()
        acting_for = (await db.execute(text("SELECT auth.current_user_id()::text"))).scalar()
        invites = (await db.execute(text("SELECT count(*) FROM messaging.invites"))).scalar()
    assert refused == [NO_INVITE, NO_INVITE, NO_INVITE]
    assert (joined, acting_for, invites) == (group, world.mallory.user_id, 0)


async def test_delete_conversation_is_the_owners_alone(runtime: Runtime, app_engine: AsyncEngine, world: World) -> None:
    group = await _group(app_engine, world)
    asked = "SELECT messaging.delete_conversation(:c)"
    outcomes = [await messaging_call(app_engine, who, asked, c=group) for who in (world.mallory, None, world.bob)]
    there = await system_value(runtime, "SELECT deleted_at IS NULL FROM messaging.conversations WHERE id = :c", c=group)
    assert (outcomes, there) == ([GONE, GONE, NOT_ALLOWED], True)


async def test_direct_with_finds_only_the_callers_own_direct_conversation(
    app_engine: AsyncEngine, world: World
) -> None:
    direct = await make_conversation(app_engine, world.alice, world.bob, type="direct")
    asked = "SELECT messaging.direct_with(:other)"
    by_bob = await messaging_call(app_engine, world.bob, asked, other=world.alice.user_id)
    by_mallory = [
        await messaging_call(app_engine, world.mallory, asked, other=other.user_id)
        for other in (world.alice, world.bob)
    ]
    by_nobody = await messaging_call(app_engine, None, asked, other=world.alice.user_id)
    assert (by_bob, by_mallory, by_nobody) == (direct, [None, None], None)


async def test_delete_as_platform_admin_needs_a_platform_administrator(
    client: httpx.AsyncClient, runtime: Runtime, app_engine: AsyncEngine, world: World
) -> None:
    """Not a stranger, not a member, not even the conversation's owner: only a platform
    administrator deletes through it, where row-level security shows them no message."""
    group = await _group(app_engine, world)
    sent = await client.post(
        f"/v1/conversations/{group}/messages", json={"content": "keep me"}, headers=world.alice.headers
    )
    assert sent.status_code == 201, sent.text
    message = sent.json()["id"]
    asked = "SELECT messaging.delete_as_platform_admin(:c, :m)"
    refused = [
        await messaging_call(app_engine, who, asked, c=group, m=message)
        for who in (world.mallory, None, world.bob, world.alice)
    ]
    kept = await system_value(
        runtime,
        "SELECT deleted_at IS NULL FROM messaging.messages WHERE conversation_id = :c AND id = :m",
        c=group,
        m=message,
    )
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text("UPDATE auth.users SET is_admin = true WHERE id = :id"), {"id": UUID(world.mallory.user_id)}
        )
    by_an_administrator = await messaging_call(app_engine, world.mallory, asked, c=group, m=message)
    assert (refused, kept) == ([NOT_ALLOWED] * 4, True)
    assert by_an_administrator == 1


# The hot paths (migration 2026_11_29_0017): the session names who acts, and everything
# after it is that person's own rows. Called as rapport_app outside any user context, as
# the server calls them.

INVALID_TOKEN = "RA401 invalid-token"


def _send(content: str) -> str:
    return (
        "SELECT created FROM messaging.send_message(:u, :s, NULL, :c, NULL, 'text', "
        f"'{content}', '{{}}'::jsonb, NULL, NULL, NULL, '{{}}'::uuid[], '{{}}'::uuid[])"
    )


async def test_send_message_sends_only_as_the_sessions_own_participant(
    runtime: Runtime, app_engine: AsyncEngine, world: World
) -> None:
    group = await _group(app_engine, world)
    alice, mallory = world.alice, world.mallory
    outcomes = {
        "alice in her group": await messaging_call(
            app_engine, None, _send("hello"), u=alice.user_id, s=alice.session_id, c=group
        ),
        "mallory, not in it": await messaging_call(
            app_engine, None, _send("let me in"), u=mallory.user_id, s=mallory.session_id, c=group
        ),
        "mallory as alice with her own session": await messaging_call(
            app_engine, None, _send("it is me, alice"), u=alice.user_id, s=mallory.session_id, c=group
        ),
        "as alice without a session": await messaging_call(
            app_engine, None, _send("no session"), u=alice.user_id, s=None, c=group
        ),
    }
    async with system_transaction(runtime.system_engine) as db:
        contents = list(
            (
                await db.execute(
                    text("SELECT content FROM messaging.messages WHERE conversation_id = :c ORDER BY seq"), {"c": group}
                )
            ).scalars()
        )
    assert outcomes == {
        "alice in her group": True,
        "mallory, not in it": GONE,
        "mallory as alice with her own session": INVALID_TOKEN,
        "as alice without a session": INVALID_TOKEN,
    }
    assert contents == ["hello"]


async def test_list_conversations_lists_only_the_sessions_own_conversations(
    app_engine: AsyncEngine, world: World
) -> None:
    group = await _group(app_engine, world)
    listed = (
        "SELECT coalesce((SELECT array_agg((x ->> 'id')::uuid) FROM json_array_elements(items::json) x), '{}')"
        " FROM messaging.list_conversations(:u, :s, NULL, NULL, NULL, NULL, 50)"
    )
    alice, bob, mallory = world.alice, world.bob, world.mallory
    outcomes = {
        "alice": await messaging_call(app_engine, None, listed, u=alice.user_id, s=alice.session_id),
        "bob": await messaging_call(app_engine, None, listed, u=bob.user_id, s=bob.session_id),
        "mallory": await messaging_call(app_engine, None, listed, u=mallory.user_id, s=mallory.session_id),
        "mallory as alice": await messaging_call(app_engine, None, listed, u=alice.user_id, s=mallory.session_id),
        "no session": await messaging_call(app_engine, None, listed, u=alice.user_id, s=None),
    }
    assert outcomes == {
        "alice": [group],
        "bob": [group],
        "mallory": [],
        "mallory as alice": INVALID_TOKEN,
        "no session": INVALID_TOKEN,
    }


async def test_search_page_finds_only_the_sessions_own_messages(
    client: httpx.AsyncClient, app_engine: AsyncEngine, world: World
) -> None:
    """The search's page acts for the session it is given: a stranger, or someone else's
    session, finds nothing of the group's, whatever conversation they name."""
    group = await _group(app_engine, world)
    alice, bob, mallory = world.alice, world.bob, world.mallory
    await send(client, alice, group, "the secret plan")
    found = (
        "SELECT coalesce((SELECT array_agg(x ->> 'content') FROM json_array_elements(('[' || items || ']')::json) x),"
        " '{}') FROM messaging.search_page(:u, :s, NULL, 'secret', 'secret', :c, NULL, NULL, NULL, NULL,"
        " 20, NULL, NULL, 300, NULL)"
    )
    outcomes = {
        "bob": await messaging_call(app_engine, None, found, u=bob.user_id, s=bob.session_id, c=None),
        "mallory": await messaging_call(app_engine, None, found, u=mallory.user_id, s=mallory.session_id, c=None),
        "mallory, naming the group": await messaging_call(
            app_engine, None, found, u=mallory.user_id, s=mallory.session_id, c=group
        ),
        "mallory as bob": await messaging_call(app_engine, None, found, u=bob.user_id, s=mallory.session_id, c=None),
        "no session": await messaging_call(app_engine, None, found, u=bob.user_id, s=None, c=None),
    }
    assert outcomes == {
        "bob": ["the secret plan"],
        "mallory": [],
        "mallory, naming the group": [],
        "mallory as bob": INVALID_TOKEN,
        "no session": INVALID_TOKEN,
    }


async def test_read_history_reads_only_within_the_sessions_own_window(
    client: httpx.AsyncClient, app_engine: AsyncEngine, world: World
) -> None:
    group = await _group(app_engine, world)
    alice, bob, mallory = world.alice, world.bob, world.mallory
    before = (await send(client, alice, group, "before bob left"))["id"]
    left = await client.post(f"/v1/conversations/{group}/leave", headers=bob.headers)
    assert left.status_code == 204, left.text
    after = (await send(client, alice, group, "after bob left"))["id"]
    read = (
        "SELECT coalesce((SELECT array_agg(x ->> 'content') FROM json_array_elements(items::json) x), '{}')"
        " FROM messaging.read_history(:u, :s, NULL, :c, NULL, NULL, :around, 50)"
    )
    outcomes = {
        "alice": await messaging_call(
            app_engine, None, read, u=alice.user_id, s=alice.session_id, c=group, around=None
        ),
        "bob, who left": await messaging_call(
            app_engine, None, read, u=bob.user_id, s=bob.session_id, c=group, around=None
        ),
        "bob, around a message after he left": await messaging_call(
            app_engine, None, read, u=bob.user_id, s=bob.session_id, c=group, around=after
        ),
        "bob, around one before": await messaging_call(
            app_engine, None, read, u=bob.user_id, s=bob.session_id, c=group, around=before
        ),
        "mallory": await messaging_call(
            app_engine, None, read, u=mallory.user_id, s=mallory.session_id, c=group, around=None
        ),
        "mallory as alice": await messaging_call(
            app_engine, None, read, u=alice.user_id, s=mallory.session_id, c=group, around=None
        ),
    }
    assert outcomes == {
        "alice": ["after bob left", "before bob left"],
        "bob, who left": ["before bob left"],
        "bob, around a message after he left": "RM404 message-not-found",
        "bob, around one before": ["before bob left"],
        "mallory": GONE,
        "mallory as alice": INVALID_TOKEN,
    }
