"""/v1/stream against a real `rapport serve` with two worker processes: delivery to every
device of every participant and to no one else, across processes; resume with `since`;
client frames answered as HTTP answers them; session and API key revocation; authentication."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.realtime.support import Follower, Server, create_group, open_socket, send_message
from tests.support import Persona

pytestmark = pytest.mark.module_database

Person = Callable[..., Awaitable[Persona]]

# A revocation travels the outbox like any event; on a quiet machine it closes the socket
# in milliseconds (delivery latency is measured in bench/realtime_stream). The bound here
# only says that it happens, with room for a machine busy running other tests.
REVOCATION_REACHES_SOCKETS_S = 10


def message_ids(frames: list[dict[str, Any]]) -> list[str]:
    return [f["event"]["payload"]["message_id"] for f in frames if f["event"]["type"] == "message.created"]


def created(message_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f["event"]["type"] == "message.created" and f["event"]["payload"]["message_id"] == message_id


async def test_a_message_reaches_every_device_of_every_participant_in_both_processes(
    server: Server, http: httpx.AsyncClient, person: Person
) -> None:
    alice, bob, carol = await person("alice"), await person("bob"), await person("carol")
    alice_phone = await person("alice", new_account=False)
    group = await create_group(http, alice, bob)
    followers = [await Follower.open(server, alice), await Follower.open(server, alice_phone)]
    # The processes share one listening socket and whichever is idle first accepts, so on
    # a busy machine one may take many sockets in a row: bob opens devices until both
    # processes hold some.
    bobs = [await Follower.open(server, bob)]
    while {server.worker_holding(f.local_port) for f in bobs} != server.workers() and len(bobs) < 64:
        bobs.append(await Follower.open(server, bob))
    assert {server.worker_holding(f.local_port) for f in bobs} == server.workers()
    carols = await Follower.open(server, carol)

    sent = await send_message(http, alice, group, "The tomatoes are in")

    for follower in [*followers, *bobs]:
        # "From now" may begin a little before the group was made (the outbox's barrier
        # waits for every transaction that was running): those events may come first.
        frame = (await follower.events_until(created(sent["id"])))[-1]
        assert frame["event"]["scope"] == {"kind": "conversation", "id": group}
        assert frame["position"] > follower.ready["position"]
    # Carol hears her own conversation, and nothing of alice's group before it.
    own = await create_group(http, carol, name="Carol's")
    heard = await carols.events_until(lambda f: f["event"]["scope"]["id"] == own)
    assert {f["event"]["scope"]["id"] for f in heard} == {own}


async def test_resume_sends_what_was_missed_then_live_with_no_gap_and_no_duplicate(
    server: Server, http: httpx.AsyncClient, person: Person
) -> None:
    alice, bob = await person("alice"), await person("bob")
    group = await create_group(http, alice, bob)
    bobs = await Follower.open(server, bob)
    first = await send_message(http, alice, group, "one")
    seen = await bobs.events_until(created(first["id"]))
    position = seen[-1]["position"]
    await bobs.close()

    missed = [await send_message(http, alice, group, f"missed {n}") for n in range(3)]
    again = await Follower.open(server, bob, since=position)
    assert again.ready["position"] == position
    caught_up = await again.until("caught_up")
    events = [f for f in caught_up if f["type"] == "event"]
    live = await send_message(http, alice, group, "live")
    # What the database held came before `caught_up`; what committed behind a running
    # transaction's barrier may come just after it, live: together, each exactly once.
    events += await again.events_until(created(live["id"]))
    assert message_ids(events) == [m["id"] for m in missed] + [live["id"]]
    positions = [f["position"] for f in events]
    assert positions == sorted(set(positions)) and positions[0] > position


async def test_a_late_joiner_hears_from_their_join_on(server: Server, http: httpx.AsyncClient, person: Person) -> None:
    alice, bob, carol = await person("alice"), await person("bob"), await person("carol")
    group = await create_group(http, alice, bob)
    carols = await Follower.open(server, carol)
    before = await send_message(http, alice, group, "before carol")
    added = await http.post(
        f"/v1/conversations/{group}/participants", headers=alice.headers, json={"user_id": carol.user_id}
    )
    assert added.status_code == 201, added.text
    after = await send_message(http, alice, group, "after carol")

    frames = await carols.events_until(created(after["id"]))
    assert [f["event"]["type"] for f in frames] == ["participant.joined", "message.created"]
    assert before["id"] not in message_ids(frames)


async def test_send_and_read_frames_are_acknowledged_like_http(
    server: Server, http: httpx.AsyncClient, person: Person
) -> None:
    alice, bob = await person("alice"), await person("bob")
    group = await create_group(http, alice, bob)
    alices = await Follower.open(server, alice)

    frame = {
        "type": "send",
        "ref": "r1",
        "conversation_id": group,
        "message": {"content": "hi", "client_message_id": "c1"},
    }
    await alices.send(frame)
    ack = (await alices.until("ack"))[-1]
    assert (ack["ref"], ack["status"], ack["body"]["content"]) == ("r1", 201, "hi")
    await alices.send({**frame, "ref": "r2"})
    retry = (await alices.until("ack"))[-1]
    assert (retry["ref"], retry["status"], retry["body"]["id"]) == ("r2", 200, ack["body"]["id"])

    bobs = await Follower.open(server, bob)
    await bobs.send({"type": "read", "ref": "r3", "conversation_id": group, "message_id": ack["body"]["id"]})
    read = (await bobs.until("ack"))[-1]
    assert (read["ref"], read["status"]) == ("r3", 200)
    history = await http.get(f"/v1/conversations/{group}/messages", headers=bob.headers)
    assert len(history.json()["items"]) == 1


async def test_bad_frames_are_answered_with_problems_and_the_socket_stays(
    server: Server, http: httpx.AsyncClient, person: Person
) -> None:
    alice, mallory = await person("alice"), await person("mallory")
    group = await create_group(http, alice)
    mallorys = await Follower.open(server, mallory)

    await mallorys.send("{not json")
    assert (await mallorys.until("error"))[-1]["problem"]["type"].endswith(":malformed-json")
    await mallorys.send({"type": "send", "ref": "r1", "conversation_id": group, "message": {"content": ""}})
    invalid = (await mallorys.until("error"))[-1]
    assert (invalid["ref"], invalid["problem"]["status"]) == ("r1", 422)
    assert invalid["problem"]["type"].endswith(":validation-error")
    await mallorys.send({"type": "dance", "ref": "r2"})
    assert (await mallorys.until("error"))[-1]["problem"]["type"].endswith(":validation-error")
    await mallorys.send({"type": "send", "ref": "r3", "conversation_id": group, "message": {"content": "hi"}})
    refused = (await mallorys.until("error"))[-1]
    assert (refused["ref"], refused["problem"]["status"]) == ("r3", 404)
    assert refused["problem"]["type"].endswith(":conversation-not-found")
    # Still open, and still answering.
    await mallorys.send({"type": "pong"})
    await mallorys.send({"type": "read", "ref": "r4", "conversation_id": group, "message_id": group})
    assert (await mallorys.until("error"))[-1]["ref"] == "r4"


async def test_authentication_by_first_frame_and_refusals(
    server: Server, http: httpx.AsyncClient, person: Person
) -> None:
    alice = await person("alice")
    socket = await open_socket(server)
    await socket.send('{"type":"auth","token":"' + alice.access_token + '"}')
    follower = Follower(socket, {})
    ready = await follower.frame()
    assert (ready["type"], ready["user_id"]) == ("ready", alice.user_id)
    await follower.close()

    wrong = Follower(await open_socket(server), {})
    await wrong.send({"type": "auth", "token": "not-a-token"})
    assert await wrong.closed_with() == 4401
    no_auth = Follower(await open_socket(server), {})
    await no_auth.send({"type": "pong"})
    assert await no_auth.closed_with() == 4401


async def test_revoking_a_session_closes_its_sockets(server: Server, http: httpx.AsyncClient, person: Person) -> None:
    bob = await person("bob")
    bob_phone = await person("bob", new_account=False)
    laptop, phone = await Follower.open(server, bob), await Follower.open(server, bob_phone)
    revoked = await http.delete(f"/v1/auth/sessions/{bob_phone.session_id}", headers=bob.headers)
    assert revoked.status_code == 204, revoked.text

    assert await phone.closed_with(within=REVOCATION_REACHES_SOCKETS_S) == 4000
    told = await laptop.event()
    assert told["event"]["type"] == "session.revoked"
    assert told["event"]["payload"]["session_id"] == bob_phone.session_id
    # The laptop's session holds: its socket stays.
    alice = await person("alice")
    direct = await http.post(
        "/v1/conversations", headers=alice.headers, json={"type": "direct", "participant_ids": [bob.user_id]}
    )
    assert direct.status_code == 201, direct.text
    assert (await laptop.event())["event"]["scope"]["id"] == direct.json()["id"]


async def test_a_revoked_session_cannot_connect(server: Server, http: httpx.AsyncClient, person: Person) -> None:
    bob = await person("bob")
    assert (await http.post("/v1/auth/logout", headers=bob.headers)).status_code == 204
    socket = await open_socket(server, subprotocols=["rapport.v1", f"rapport.bearer.{bob.access_token}"])
    assert await Follower(socket, {}).closed_with() == 4401


async def test_revoking_an_api_key_closes_its_sockets(server: Server, http: httpx.AsyncClient, person: Person) -> None:
    bob = await person("bob")
    keys = []
    for name in ("deploy bot", "backup bot"):
        created = await http.post("/v1/auth/api-keys", headers=bob.headers, json={"name": name})
        assert created.status_code == 201, created.text
        keys.append(created.json())
    revoked_key, kept_key = keys
    laptop = await Follower.open(server, bob)
    bots = [await Follower.open(server, revoked_key["key"]) for _ in range(2)]
    other_bot = await Follower.open(server, kept_key["key"])
    revoked = await http.delete(f"/v1/auth/api-keys/{revoked_key['id']}", headers=bob.headers)
    assert revoked.status_code == 204, revoked.text

    for bot in bots:
        assert await bot.closed_with(within=REVOCATION_REACHES_SOCKETS_S) == 4000
        assert bot.socket.close_reason == "api-key-revoked"
    for follower in (laptop, other_bot):
        told = await follower.event()
        assert (told["event"]["type"], told["event"]["payload"]) == (
            "api_key.revoked",
            {"api_key_id": revoked_key["id"]},
        )
    # The session and the other key hold: their sockets stay.
    alice = await person("alice")
    direct = await http.post(
        "/v1/conversations", headers=alice.headers, json={"type": "direct", "participant_ids": [bob.user_id]}
    )
    assert direct.status_code == 201, direct.text
    for follower in (laptop, other_bot):
        assert (await follower.event())["event"]["scope"]["id"] == direct.json()["id"]
