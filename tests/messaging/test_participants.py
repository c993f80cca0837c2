"""Participants: GET/POST /v1/conversations/{id}/participants, PATCH and DELETE
/v1/conversations/{id}/participants/{user_id}, and PATCH /v1/conversations/{id}/me.

Roles rank owner > admin > moderator > member > guest, observer: nobody acts on someone
ranked as high as themself. Alice owns the conversations; bob and carol take part in the
roles each test gives them; mallory is a stranger, or the person acted on."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from rapport.kernel.ids import uuid7
from tests.messaging.support import make_conversation, send
from tests.messaging.test_conversations import CONVERSATIONS, block, create, events, participant_ids, refused
from tests.support import Persona

pytestmark = pytest.mark.module_database


def participants_of(conversation_id: Any) -> str:
    return f"{CONVERSATIONS}/{conversation_id}/participants"


async def add(client: httpx.AsyncClient, adder: Persona, conversation_id: Any, person: Persona | str, **body: Any):
    user_id = person if isinstance(person, str) else person.user_id
    return await client.post(participants_of(conversation_id), headers=adder.headers, json={"user_id": user_id, **body})


async def change(client: httpx.AsyncClient, actor: Persona, conversation_id: Any, person: Persona, **body: Any):
    return await client.patch(f"{participants_of(conversation_id)}/{person.user_id}", headers=actor.headers, json=body)


async def remove(client: httpx.AsyncClient, actor: Persona, conversation_id: Any, person: Persona):
    return await client.delete(f"{participants_of(conversation_id)}/{person.user_id}", headers=actor.headers)


async def role_of(client: httpx.AsyncClient, viewer: Persona, conversation_id: Any, person: Persona) -> str:
    response = await client.get(participants_of(conversation_id), headers=viewer.headers)
    [found] = [p for p in response.json()["items"] if p["user_id"] == person.user_id]
    return str(found["role"])


# Listing


async def test_participants_are_listed_with_role_status_and_permissions(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob, roles={"bob": "observer"})
    response = await client.get(participants_of(conversation), headers=bob.headers)
    assert response.status_code == 200, response.text
    bobs = next(p for p in response.json()["items"] if p["user_id"] == bob.user_id)
    assert {
        key: bobs[key] for key in ("role", "status", "can_send", "can_invite", "can_see_history", "invited_by")
    } == {
        "role": "observer",
        "status": "active",
        "can_send": False,
        "can_invite": False,
        "can_see_history": True,
        "invited_by": alice.user_id,
    }
    assert bobs["joined_at"] and bobs["nickname"] is None


async def test_those_gone_are_listed_by_status_only(client, app_engine, alice, bob, carol):
    conversation = await make_conversation(app_engine, alice, bob, carol)
    await remove(client, alice, conversation, bob)
    await client.post(f"{CONVERSATIONS}/{conversation}/leave", headers=carol.headers)
    assert await participant_ids(client, alice, conversation) == {alice.user_id}
    assert await participant_ids(client, alice, conversation, status="removed") == {bob.user_id}
    assert await participant_ids(client, alice, conversation, status="left") == {carol.user_id}


async def test_participants_come_in_pages(client, app_engine, alice, bob, carol):
    conversation = await make_conversation(app_engine, alice, bob, carol)
    first = (await client.get(participants_of(conversation), headers=alice.headers, params={"limit": 2})).json()
    rest = (
        await client.get(
            participants_of(conversation), headers=alice.headers, params={"limit": 2, "cursor": first["next"]}
        )
    ).json()
    seen = [p["user_id"] for p in first["items"] + rest["items"]]
    assert sorted(seen, reverse=True) == seen and set(seen) == {alice.user_id, bob.user_id, carol.user_id}
    assert rest["next"] is None


async def test_a_stranger_cannot_list_participants(client, alice, mallory):
    channel = await create(client, alice, type="channel", name="Public")
    await refused(
        await client.get(participants_of(channel["id"]), headers=mallory.headers), 404, "conversation-not-found"
    )


async def test_a_bad_status_filter_is_refused(client, app_engine, alice):
    conversation = await make_conversation(app_engine, alice)
    response = await client.get(participants_of(conversation), headers=alice.headers, params={"status": "gone"})
    assert response.status_code == 422, response.text


# Adding


async def test_the_owner_adds_someone_who_is_told_by_an_event(client, runtime, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice)
    response = await add(client, alice, conversation, bob)
    assert response.status_code == 201, response.text
    assert (response.json()["role"], response.json()["invited_by"]) == ("member", alice.user_id)
    kind, payload = (await events(runtime, conversation))[-1]
    assert (kind, payload["user_id"], payload["role"]) == ("participant.joined", bob.user_id, "member")


async def test_adding_someone_already_there_changes_nothing(client, runtime, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    before = await events(runtime, conversation)
    response = await add(client, alice, conversation, bob, role="admin")
    assert (response.status_code, response.json()["role"]) == (200, "member")
    assert await events(runtime, conversation) == before


async def test_the_owner_may_add_an_admin_but_never_an_owner(client, app_engine, alice, bob, carol):
    conversation = await make_conversation(app_engine, alice)
    assert (await add(client, alice, conversation, bob, role="admin")).status_code == 201
    await refused(await add(client, alice, conversation, carol, role="owner"), 403, "not-allowed-in-conversation")


@pytest.mark.parametrize(
    ("adder_role", "role", "allowed"),
    [
        ("admin", "moderator", True),
        ("admin", "admin", False),
        ("moderator", "member", True),
        ("moderator", "moderator", False),
        ("member", "member", False),
        ("guest", "guest", False),
        ("observer", "guest", False),
    ],
)
async def test_who_may_add_whom(client, app_engine, alice, bob, carol, adder_role, role, allowed):
    conversation = await make_conversation(app_engine, alice, bob, roles={"bob": adder_role})
    response = await add(client, bob, conversation, carol, role=role)
    if allowed:
        assert (response.status_code, response.json()["role"]) == (201, role), response.text
    else:
        await refused(response, 403, "not-allowed-in-conversation")


async def test_a_member_given_can_invite_adds_members_and_guests_but_no_more(
    client, app_engine, alice, bob, carol, mallory
):
    conversation = await make_conversation(app_engine, alice, bob)
    granted = await change(client, alice, conversation, bob, can_invite=True)
    assert granted.json()["can_invite"] is True
    assert (await add(client, bob, conversation, carol)).status_code == 201
    assert (await add(client, bob, conversation, mallory, role="guest")).status_code == 201
    await remove(client, alice, conversation, mallory)
    await refused(await add(client, bob, conversation, mallory, role="moderator"), 403, "not-allowed-in-conversation")


async def test_a_stranger_cannot_add_anyone(client, app_engine, alice, bob, mallory):
    conversation = await make_conversation(app_engine, alice)
    await refused(await add(client, mallory, conversation, bob), 404, "conversation-not-found")


async def test_adding_an_unknown_or_blocking_person_is_not_found(client, app_engine, alice, bob, carol):
    conversation = await make_conversation(app_engine, alice)
    await refused(await add(client, alice, conversation, str(uuid7())), 404, "user-not-found")
    await block(client, bob, alice)
    await refused(await add(client, alice, conversation, bob), 404, "user-not-found")
    await block(client, alice, carol)
    await refused(await add(client, alice, conversation, carol), 404, "user-not-found")


async def test_nobody_is_added_past_the_limit(client, alice, bob, carol):
    made = await create(client, alice, max_participants=2, participant_ids=[bob.user_id])
    await refused(await add(client, alice, made["id"], carol), 409, "conversation-full")


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": None},
        {"user_id": "nope"},
        {"role": "boss"},
        {"role": None},
        {"can_see_history": "no"},
        {"nickname": "Bob"},
    ],
)
async def test_bad_additions_are_refused(client, app_engine, alice, bob, body):
    conversation = await make_conversation(app_engine, alice)
    response = await client.post(
        participants_of(conversation), headers=alice.headers, json={"user_id": bob.user_id, **body}
    )
    await refused(response, 422, "validation-error")


# History before joining


async def test_someone_added_without_history_sees_only_what_follows(client, app_engine, alice, carol):
    conversation = await make_conversation(app_engine, alice)
    await send(client, alice, conversation, "before carol")
    added = await add(client, alice, conversation, carol, can_see_history=False)
    assert added.json()["can_see_history"] is False
    history = await client.get(f"{CONVERSATIONS}/{conversation}/messages", headers=carol.headers)
    assert (history.status_code, history.json()["items"]) == (200, [])
    await send(client, alice, conversation, "after carol")
    history = await client.get(f"{CONVERSATIONS}/{conversation}/messages", headers=carol.headers)
    assert [m["content"] for m in history.json()["items"]] == ["after carol"]


async def test_someone_added_with_history_sees_it_all(client, app_engine, alice, carol):
    conversation = await make_conversation(app_engine, alice)
    await send(client, alice, conversation, "before carol")
    await add(client, alice, conversation, carol)
    history = await client.get(f"{CONVERSATIONS}/{conversation}/messages", headers=carol.headers)
    assert [m["content"] for m in history.json()["items"]] == ["before carol"]


async def test_history_can_be_granted_and_withdrawn(client, app_engine, alice, carol):
    conversation = await make_conversation(app_engine, alice)
    await send(client, alice, conversation, "old news")
    await add(client, alice, conversation, carol, can_see_history=False)
    await change(client, alice, conversation, carol, can_see_history=True)
    history = await client.get(f"{CONVERSATIONS}/{conversation}/messages", headers=carol.headers)
    assert [m["content"] for m in history.json()["items"]] == ["old news"]
    await change(client, alice, conversation, carol, can_see_history=False)
    history = await client.get(f"{CONVERSATIONS}/{conversation}/messages", headers=carol.headers)
    assert history.json()["items"] == []


# Changing roles, silencing, removing


async def test_the_owner_makes_someone_an_admin(client, runtime, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    response = await change(client, alice, conversation, bob, role="admin")
    assert (response.status_code, response.json()["role"]) == (200, "admin")
    kind, payload = (await events(runtime, conversation))[-1]
    assert (kind, payload["user_id"], payload["changes"]) == ("participant.changed", bob.user_id, {"role": "admin"})


async def test_an_admin_sets_roles_below_their_own_and_permissions(client, app_engine, alice, bob, carol):
    conversation = await make_conversation(app_engine, alice, bob, carol, roles={"bob": "admin"})
    response = await change(client, bob, conversation, carol, role="moderator", can_send=False, can_invite=True)
    body = response.json()
    assert (body["role"], body["can_send"], body["can_invite"]) == ("moderator", False, True)
    await refused(await change(client, bob, conversation, carol, role="admin"), 403, "not-allowed-in-conversation")


async def test_making_someone_an_observer_silences_them(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    assert (await change(client, alice, conversation, bob, role="observer")).json()["can_send"] is False
    sending = await client.post(f"{CONVERSATIONS}/{conversation}/messages", headers=bob.headers, json={"content": "hi"})
    await refused(sending, 403, "cannot-send")


@pytest.mark.parametrize(
    ("actor_role", "target_role"), [("member", "member"), ("moderator", "admin"), ("admin", "admin")]
)
async def test_nobody_acts_on_someone_ranked_as_high(client, app_engine, alice, bob, carol, actor_role, target_role):
    conversation = await make_conversation(
        app_engine, alice, bob, carol, roles={"bob": actor_role, "carol": target_role}
    )
    await refused(await change(client, bob, conversation, carol, status="muted"), 403, "not-allowed-in-conversation")
    await refused(await remove(client, bob, conversation, carol), 403, "not-allowed-in-conversation")


async def test_a_moderator_silences_and_brings_back_but_sets_no_roles(client, app_engine, alice, bob, carol):
    conversation = await make_conversation(app_engine, alice, bob, carol, roles={"bob": "moderator"})
    assert (await change(client, bob, conversation, carol, status="muted")).json()["status"] == "muted"
    sending = await client.post(
        f"{CONVERSATIONS}/{conversation}/messages", headers=carol.headers, json={"content": "hi"}
    )
    await refused(sending, 403, "cannot-send")
    history = await client.get(f"{CONVERSATIONS}/{conversation}/messages", headers=carol.headers)
    assert history.status_code == 200
    assert (await change(client, bob, conversation, carol, status="active")).json()["status"] == "active"
    await send(client, carol, conversation, "back")
    await refused(await change(client, bob, conversation, carol, role="guest"), 403, "not-allowed-in-conversation")


async def test_a_removed_person_sees_nothing_after_and_is_told(client, runtime, app_engine, alice, bob, carol):
    conversation = await make_conversation(app_engine, alice, bob, carol, roles={"bob": "moderator"})
    await send(client, alice, conversation, "before")
    response = await remove(client, bob, conversation, carol)
    assert response.status_code == 204, response.text
    await send(client, alice, conversation, "after")
    await refused(
        await client.get(f"{CONVERSATIONS}/{conversation}", headers=carol.headers), 404, "conversation-not-found"
    )
    history = await client.get(f"{CONVERSATIONS}/{conversation}/messages", headers=carol.headers)
    assert [m["content"] for m in history.json()["items"]] == ["before"]
    payload = [p for k, p in await events(runtime, conversation) if k == "participant.left"][-1]
    assert (payload["user_id"], payload["status"]) == (carol.user_id, "removed")


async def test_removing_someone_again_or_a_stranger_finds_nobody(client, app_engine, alice, bob, mallory):
    conversation = await make_conversation(app_engine, alice, bob)
    await remove(client, alice, conversation, bob)
    await refused(await remove(client, alice, conversation, bob), 404, "participant-not-found")
    await refused(await change(client, alice, conversation, mallory, status="muted"), 404, "participant-not-found")


async def test_a_removed_person_comes_back_when_added(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    await remove(client, alice, conversation, bob)
    back = await add(client, alice, conversation, bob)
    assert (back.status_code, back.json()["status"]) == (201, "active")


async def test_removing_oneself_is_leaving(client, runtime, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    assert (await remove(client, bob, conversation, bob)).status_code == 204
    assert await participant_ids(client, alice, conversation, status="left") == {bob.user_id}


async def test_on_oneself_only_leaving(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob, roles={"bob": "admin"})
    await refused(await change(client, bob, conversation, bob, role="moderator"), 403, "not-allowed-in-conversation")
    left = await change(client, bob, conversation, bob, status="left")
    assert (left.status_code, left.json()["status"]) == (200, "left")


async def test_others_cannot_be_set_to_have_left(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    await refused(await change(client, alice, conversation, bob, status="left"), 403, "not-allowed-in-conversation")


@pytest.mark.parametrize("body", [{"role": None}, {"status": "gone"}, {"can_send": "yes"}, {"nickname": "x"}])
async def test_bad_changes_are_refused(client, app_engine, alice, bob, body):
    conversation = await make_conversation(app_engine, alice, bob)
    await refused(await change(client, alice, conversation, bob, **body), 422, "validation-error")


async def test_an_empty_change_answers_the_participant(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    response = await change(client, alice, conversation, bob)
    assert (response.status_code, response.json()["role"]) == (200, "member")


async def test_a_stranger_changes_nobody(client, app_engine, alice, bob, mallory):
    conversation = await make_conversation(app_engine, alice, bob)
    await refused(await change(client, mallory, conversation, bob, status="muted"), 404, "conversation-not-found")
    await refused(await remove(client, mallory, conversation, bob), 404, "conversation-not-found")


async def test_in_a_direct_conversation_neither_acts_on_the_other(client, alice, bob):
    made = await create(client, alice, type="direct", participant_ids=[bob.user_id])
    await refused(await remove(client, alice, made["id"], bob), 403, "not-allowed-in-conversation")
    await refused(await change(client, alice, made["id"], bob, status="muted"), 403, "not-allowed-in-conversation")


# Ownership


async def test_ownership_is_handed_over_and_the_giver_becomes_an_admin(client, runtime, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    handed = await change(client, alice, conversation, bob, role="owner")
    assert (handed.status_code, handed.json()["role"]) == (200, "owner")
    assert await role_of(client, bob, conversation, alice) == "admin"
    published = [
        (p["user_id"], p["changes"]) for k, p in await events(runtime, conversation) if k == "participant.changed"
    ]
    assert published == [(bob.user_id, {"role": "owner"}), (alice.user_id, {"role": "admin"})]
    assert (await client.post(f"{CONVERSATIONS}/{conversation}/leave", headers=alice.headers)).status_code == 204


async def test_only_an_owner_hands_over_ownership(client, app_engine, alice, bob, carol):
    conversation = await make_conversation(app_engine, alice, bob, carol, roles={"bob": "admin"})
    await refused(await change(client, bob, conversation, carol, role="owner"), 403, "not-allowed-in-conversation")


async def test_the_last_owner_cannot_leave_while_others_remain(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    await refused(await change(client, alice, conversation, alice, status="left"), 409, "owner-must-hand-over")
    await refused(await remove(client, alice, conversation, alice), 409, "owner-must-hand-over")


# One's own settings


async def test_one_mutes_pins_and_names_oneself(client, runtime, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    response = await client.patch(
        f"{CONVERSATIONS}/{conversation}/me",
        headers=bob.headers,
        json={"is_muted": True, "is_pinned": True, "nickname": "Bobby"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["is_muted"], body["is_pinned"], body["nickname"], body["role"]) == (True, True, "Bobby", "member")
    listed = (await client.get(participants_of(conversation), headers=alice.headers)).json()["items"]
    assert next(p for p in listed if p["user_id"] == bob.user_id)["nickname"] == "Bobby"
    conversation_events = [
        (k, p["changes"]) for k, p in await events(runtime, conversation) if k == "participant.changed"
    ]
    personal = [(k, p["changes"]) for k, p in await events(runtime, bob.user_id, kind="user")]
    assert conversation_events == [("participant.changed", {"nickname": "Bobby"})]
    assert personal == [("participant.changed", {"is_muted": True, "is_pinned": True})]
    pinned_first = (await client.get(CONVERSATIONS, headers=bob.headers)).json()["items"][0]
    assert (pinned_first["is_pinned"], pinned_first["is_muted"]) == (True, True)


async def test_a_nickname_is_cleared_with_null(client, app_engine, alice):
    conversation = await make_conversation(app_engine, alice)
    me = f"{CONVERSATIONS}/{conversation}/me"
    await client.patch(me, headers=alice.headers, json={"nickname": "Al"})
    response = await client.patch(me, headers=alice.headers, json={"nickname": None})
    assert response.json()["nickname"] is None


@pytest.mark.parametrize(
    "body", [{"role": "owner"}, {"read_seq": 5}, {"is_muted": None}, {"nickname": ""}, {"nickname": "x" * 101}]
)
async def test_only_ones_own_settings_change_here(client, app_engine, alice, body):
    conversation = await make_conversation(app_engine, alice)
    response = await client.patch(f"{CONVERSATIONS}/{conversation}/me", headers=alice.headers, json=body)
    await refused(response, 422, "validation-error")


async def test_a_stranger_has_no_settings_in_a_conversation(client, app_engine, alice, mallory):
    conversation = await make_conversation(app_engine, alice)
    response = await client.patch(
        f"{CONVERSATIONS}/{conversation}/me", headers=mallory.headers, json={"is_muted": True}
    )
    await refused(response, 404, "conversation-not-found")
