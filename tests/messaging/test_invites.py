"""Invite links: POST/GET /v1/conversations/{id}/invites, DELETE
/v1/conversations/{id}/invites/{invite_id}, and POST /v1/invites/{token}/join.

A wrong, expired, used-up or revoked link answers 404 `invite-not-found`, all alike.
Alice owns the conversation and makes the links; carol and mallory follow them."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from tests.messaging.support import make_conversation, send
from tests.messaging.test_conversations import CONVERSATIONS, block, create, events, refused
from tests.support import Persona

pytestmark = pytest.mark.module_database


def invites_of(conversation_id: Any) -> str:
    return f"{CONVERSATIONS}/{conversation_id}/invites"


async def make_invite(client: httpx.AsyncClient, maker: Persona, conversation_id: Any, **body: Any) -> dict[str, Any]:
    response = await client.post(invites_of(conversation_id), headers=maker.headers, json=body)
    assert response.status_code == 201, response.text
    invite: dict[str, Any] = response.json()
    return invite


async def join(client: httpx.AsyncClient, persona: Persona, token: str) -> httpx.Response:
    return await client.post(f"/v1/invites/{token}/join", headers=persona.headers)


async def listed(client: httpx.AsyncClient, persona: Persona, conversation_id: Any) -> list[dict[str, Any]]:
    response = await client.get(invites_of(conversation_id), headers=persona.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def expire(database: DatabaseUrls, invite_id: str) -> None:
    """Move a link's expiry into the past, as time would (no role of the server may)."""
    conn = await asyncpg.connect(asyncpg_dsn(database.admin.set(database=database.app.database)))
    try:
        await conn.execute(
            "UPDATE messaging.invites SET expires_at = now() - interval '1 second' WHERE id = $1", invite_id
        )
    finally:
        await conn.close()


# Making and listing


async def test_a_link_is_made_with_its_token_shown_once(client, app_engine, alice):
    conversation = await make_conversation(app_engine, alice)
    invite = await make_invite(client, alice, conversation, max_uses=5, expires_in_seconds=3600)
    assert invite["token"].startswith("rci_") and len(invite["token"]) > 40
    assert (invite["max_uses"], invite["uses"], invite["is_live"], invite["created_by"]) == (5, 0, True, alice.user_id)
    expires = datetime.fromisoformat(invite["expires_at"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    [shown] = await listed(client, alice, conversation)
    assert shown["id"] == invite["id"] and "token" not in shown


async def test_only_the_tokens_hash_is_kept(client, database, app_engine, alice):
    conversation = await make_conversation(app_engine, alice)
    invite = await make_invite(client, alice, conversation)
    conn = await asyncpg.connect(asyncpg_dsn(database.admin.set(database=database.app.database)))
    try:
        stored = await conn.fetchval("SELECT token_hash FROM messaging.invites WHERE id = $1", invite["id"])
    finally:
        await conn.close()
    assert stored == hashlib.sha256(invite["token"].encode()).digest()


async def test_a_link_may_expire_at_a_given_time(client, app_engine, alice):
    conversation = await make_conversation(app_engine, alice)
    when = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    invite = await make_invite(client, alice, conversation, expires_at=when.isoformat())
    assert datetime.fromisoformat(invite["expires_at"]) == when


async def test_links_are_listed_newest_first_in_pages(client, app_engine, alice):
    conversation = await make_conversation(app_engine, alice)
    made = [await make_invite(client, alice, conversation) for _ in range(3)]
    first = (await client.get(invites_of(conversation), headers=alice.headers, params={"limit": 2})).json()
    rest = (
        await client.get(invites_of(conversation), headers=alice.headers, params={"limit": 2, "cursor": first["next"]})
    ).json()
    assert [i["id"] for i in first["items"] + rest["items"]] == [i["id"] for i in reversed(made)]


@pytest.mark.parametrize(
    "body",
    [
        {"expires_in_seconds": 10},
        {"expires_in_seconds": 400 * 24 * 3600},
        {"expires_in_seconds": "3600"},
        {"expires_in_seconds": 3600, "expires_at": "2099-01-01T00:00:00Z"},
        {"expires_at": "2000-01-01T00:00:00Z"},
        {"expires_at": "2099-01-01T00:00:00Z"},
        {"expires_at": "2026-12-30T00:00:00"},
        {"expires_at": "tomorrow"},
        {"max_uses": 0},
        {"max_uses": 100_001},
        {"token": "mine"},
    ],
)
async def test_bad_links_are_refused(client, app_engine, alice, body):
    conversation = await make_conversation(app_engine, alice)
    await refused(
        await client.post(invites_of(conversation), headers=alice.headers, json=body), 422, "validation-error"
    )


@pytest.mark.parametrize("role", ["member", "guest", "observer"])
async def test_those_who_may_not_invite_handle_no_links(client, app_engine, alice, bob, role):
    conversation = await make_conversation(app_engine, alice, bob, roles={"bob": role})
    invite = await make_invite(client, alice, conversation)
    await refused(
        await client.post(invites_of(conversation), headers=bob.headers, json={}), 403, "not-allowed-in-conversation"
    )
    await refused(await client.get(invites_of(conversation), headers=bob.headers), 403, "not-allowed-in-conversation")
    revoking = await client.delete(f"{invites_of(conversation)}/{invite['id']}", headers=bob.headers)
    await refused(revoking, 403, "not-allowed-in-conversation")


async def test_a_moderator_makes_links(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob, roles={"bob": "moderator"})
    assert (await make_invite(client, bob, conversation))["created_by"] == bob.user_id


async def test_a_stranger_handles_no_links(client, alice, mallory):
    channel = await create(client, alice, type="channel", name="Open")
    await refused(
        await client.post(invites_of(channel["id"]), headers=mallory.headers, json={}), 404, "conversation-not-found"
    )
    await refused(await client.get(invites_of(channel["id"]), headers=mallory.headers), 404, "conversation-not-found")


async def test_a_direct_conversation_has_no_links(client, alice, bob):
    made = await create(client, alice, type="direct", participant_ids=[bob.user_id])
    response = await client.post(invites_of(made["id"]), headers=alice.headers, json={})
    await refused(response, 409, "direct-conversation-is-two")


# Joining


async def test_following_a_link_joins_as_a_member_who_sees_the_history(client, runtime, app_engine, alice, carol):
    conversation = await make_conversation(app_engine, alice)
    await send(client, alice, conversation, "welcome")
    invite = await make_invite(client, alice, conversation)
    response = await join(client, carol, invite["token"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["membership"]["role"], body["member_count"]) == (str(conversation), "member", 2)
    history = await client.get(f"{CONVERSATIONS}/{conversation}/messages", headers=carol.headers)
    assert [m["content"] for m in history.json()["items"]] == ["welcome"]
    kind, payload = (await events(runtime, conversation))[-1]
    assert (kind, payload["user_id"], payload["invited_by"]) == ("participant.joined", carol.user_id, alice.user_id)
    [shown] = await listed(client, alice, conversation)
    assert shown["uses"] == 1


async def test_following_a_link_again_uses_nothing(client, runtime, app_engine, alice, carol):
    conversation = await make_conversation(app_engine, alice)
    invite = await make_invite(client, alice, conversation, max_uses=2)
    await join(client, carol, invite["token"])
    before = await events(runtime, conversation)
    again = await join(client, carol, invite["token"])
    assert again.status_code == 200
    assert await events(runtime, conversation) == before
    assert (await listed(client, alice, conversation))[0]["uses"] == 1


async def test_a_used_up_link_opens_nothing(client, app_engine, alice, carol, mallory):
    conversation = await make_conversation(app_engine, alice)
    invite = await make_invite(client, alice, conversation, max_uses=1)
    assert (await join(client, carol, invite["token"])).status_code == 200
    await refused(await join(client, mallory, invite["token"]), 404, "invite-not-found")
    assert (await listed(client, alice, conversation))[0]["is_live"] is False


async def test_an_expired_link_opens_nothing(client, database, app_engine, alice, carol):
    conversation = await make_conversation(app_engine, alice)
    invite = await make_invite(client, alice, conversation, expires_in_seconds=60)
    await expire(database, invite["id"])
    await refused(await join(client, carol, invite["token"]), 404, "invite-not-found")
    assert (await listed(client, alice, conversation))[0]["is_live"] is False


async def test_a_revoked_link_opens_nothing(client, app_engine, alice, carol):
    conversation = await make_conversation(app_engine, alice)
    invite = await make_invite(client, alice, conversation)
    revoked = await client.delete(f"{invites_of(conversation)}/{invite['id']}", headers=alice.headers)
    assert revoked.status_code == 204, revoked.text
    again = await client.delete(f"{invites_of(conversation)}/{invite['id']}", headers=alice.headers)
    assert again.status_code == 204
    await refused(await join(client, carol, invite["token"]), 404, "invite-not-found")
    [shown] = await listed(client, alice, conversation)
    assert shown["revoked_at"] is not None and shown["is_live"] is False


async def test_revoking_an_unknown_link_finds_nothing(client, app_engine, alice):
    conversation = await make_conversation(app_engine, alice)
    other = await make_conversation(app_engine, alice)
    elsewhere = await make_invite(client, alice, other)
    for invite_id in (str(uuid7()), elsewhere["id"]):
        response = await client.delete(f"{invites_of(conversation)}/{invite_id}", headers=alice.headers)
        await refused(response, 404, "invite-not-found")


@pytest.mark.parametrize("token", ["rci_wrong", "x", "rci_" + "a" * 43])
async def test_a_wrong_token_opens_nothing(client, app_engine, alice, carol, token):
    conversation = await make_conversation(app_engine, alice)
    await make_invite(client, alice, conversation)
    await refused(await join(client, carol, token), 404, "invite-not-found")


async def test_an_overlong_token_is_refused(client, carol):
    assert (await join(client, carol, "a" * 201)).status_code == 422


async def test_someone_removed_does_not_come_back_by_a_link(client, app_engine, alice, carol):
    conversation = await make_conversation(app_engine, alice, carol)
    invite = await make_invite(client, alice, conversation)
    await client.delete(f"{CONVERSATIONS}/{conversation}/participants/{carol.user_id}", headers=alice.headers)
    await refused(await join(client, carol, invite["token"]), 404, "invite-not-found")


async def test_someone_who_left_comes_back_by_a_link(client, app_engine, alice, carol):
    conversation = await make_conversation(app_engine, alice, carol)
    invite = await make_invite(client, alice, conversation)
    await client.post(f"{CONVERSATIONS}/{conversation}/leave", headers=carol.headers)
    assert (await join(client, carol, invite["token"])).status_code == 200


@pytest.mark.parametrize("who_blocks", ["maker", "joiner"])
async def test_a_link_across_a_block_opens_nothing(client, app_engine, alice, carol, who_blocks):
    conversation = await make_conversation(app_engine, alice)
    invite = await make_invite(client, alice, conversation)
    if who_blocks == "maker":
        await block(client, alice, carol)
    else:
        await block(client, carol, alice)
    await refused(await join(client, carol, invite["token"]), 404, "invite-not-found")


async def test_a_link_dies_when_its_maker_may_no_longer_invite(client, app_engine, alice, bob, carol):
    conversation = await make_conversation(app_engine, alice, bob, roles={"bob": "moderator"})
    invite = await make_invite(client, bob, conversation)
    await client.patch(
        f"{CONVERSATIONS}/{conversation}/participants/{bob.user_id}", headers=alice.headers, json={"role": "member"}
    )
    await refused(await join(client, carol, invite["token"]), 404, "invite-not-found")


async def test_a_link_of_a_deleted_conversation_opens_nothing(client, app_engine, alice, carol):
    conversation = await make_conversation(app_engine, alice)
    invite = await make_invite(client, alice, conversation)
    await client.delete(f"{CONVERSATIONS}/{conversation}", headers=alice.headers)
    await refused(await join(client, carol, invite["token"]), 404, "invite-not-found")


async def test_a_link_of_a_member_who_may_invite_adds_members(client, app_engine, alice, bob, carol):
    conversation = await make_conversation(app_engine, alice, bob)
    await client.patch(
        f"{CONVERSATIONS}/{conversation}/participants/{bob.user_id}", headers=alice.headers, json={"can_invite": True}
    )
    invite = await make_invite(client, bob, conversation)
    joined = await join(client, carol, invite["token"])
    assert (joined.status_code, joined.json()["membership"]["role"]) == (200, "member")


async def test_a_link_to_a_full_conversation_says_so(client, alice, bob, carol):
    made = await create(client, alice, max_participants=2, participant_ids=[bob.user_id])
    invite = await make_invite(client, alice, made["id"])
    await refused(await join(client, carol, invite["token"]), 409, "conversation-full")
    assert (await listed(client, alice, made["id"]))[0]["uses"] == 0
