"""The client's stream against a WebSocket server speaking the realtime protocol over the
real API (stream_bridge.py): typed events with positions, the token never in the URL,
pings answered, and reconnection from the last position with no gap and no duplicate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from rapport.client import (
    CaughtUp,
    Client,
    Connected,
    Event,
    Forbidden,
    Presence,
    Resync,
    Stream,
    StreamClosed,
    StreamEvent,
    TokenPair,
    Typing,
)
from tests.client.conftest import FAST
from tests.client.stream_bridge import StreamBridge
from tests.support import Persona

pytestmark = pytest.mark.module_database


@pytest.fixture
async def alice_streams(server_url: str, bridge: StreamBridge, alice: Persona) -> AsyncIterator[Client]:
    async with Client(server_url, stream_url=bridge.url, backoff=FAST, heartbeat_timeout=5) as client:
        await client.login(alice.email, alice.password)
        yield client


async def next_of(stream: Stream, kind: type[StreamEvent], *, within: float = 5.0) -> StreamEvent:
    async with asyncio.timeout(within):
        async for item in stream:
            if isinstance(item, kind):
                return item
    raise AssertionError(f"the stream ended before a {kind.__name__}")


async def messages_created(stream: Stream, count: int, *, within: float = 10.0) -> list[Event]:
    found: list[Event] = []
    async with asyncio.timeout(within):
        async for item in stream:
            if isinstance(item, Event) and item.type == "message.created":
                found.append(item)
                if len(found) == count:
                    return found
    raise AssertionError(f"the stream ended after {len(found)} of {count} messages")


async def all_positions(client: Client) -> list[int]:
    """Every event position the server holds for the client's user, from /v1/sync."""
    positions: list[int] = []
    page = await client.sync(0, limit=1000)
    positions += [e.position for e in page.events]
    while page.more:
        page = await client.sync(page.position, limit=1000)
        positions += [e.position for e in page.events]
    return positions


async def test_events_arrive_typed_with_their_positions(
    alice_streams: Client, bob_client: Client, bridge: StreamBridge, bob: Persona
) -> None:
    async with alice_streams.stream() as stream:
        connected = await next_of(stream, Connected)
        assert isinstance(connected, Connected) and str(connected.user_id) == str((await alice_streams.me()).id)
        room = await alice_streams.create_group("Live", [bob.user_id])
        said = await bob_client.send(room.id, "hello alice")
        [event] = await messages_created(stream, 1)
        assert (event.scope.kind, event.scope.id, event.payload["message_id"]) == (
            "conversation",
            room.id,
            str(said.id),
        )
        assert str(event.actor_id) == bob.user_id
        assert stream.position == event.position

    # The token travelled as a subprotocol, never in the URL.
    [handshake] = bridge.handshakes
    assert handshake.subprotocols[0] == "rapport.v1"
    assert handshake.subprotocols[1].startswith("rapport.bearer.") and len(handshake.subprotocols[1]) > 40
    assert "bearer" not in handshake.path and "token" not in handshake.path


async def test_pings_are_answered(server_url: str, alice: Persona) -> None:
    async with (
        StreamBridge(server_url, ping_every=0.05) as pinging,
        Client(server_url, stream_url=pinging.url, backoff=FAST) as client,
    ):
        await client.login(alice.email, alice.password)
        async with client.stream() as stream:
            await next_of(stream, CaughtUp)
            # Pings come every 50 ms; each is answered before the next frame is read.
            await asyncio.sleep(0.5)
            assert pinging.pongs >= 3


async def test_a_dropped_stream_resumes_with_no_gap_and_no_duplicate(
    alice_streams: Client, bob_client: Client, bridge: StreamBridge, bob: Persona
) -> None:
    room = await alice_streams.create_group("Resume", [bob.user_id])
    async with alice_streams.stream(since=0) as stream:
        await next_of(stream, CaughtUp)
        before = [await bob_client.send(room.id, f"before {n}") for n in range(3)]
        received = await messages_created(stream, 3)
        last_seen = received[-1].position

        # The network fails, and the server is away while bob goes on talking.
        bridge.refusing = True
        bridge.drop()
        during = [await bob_client.send(room.id, f"during {n}") for n in range(3)]
        await asyncio.sleep(0.3)  # reconnection attempts are refused meanwhile
        bridge.refusing = False

        received += await messages_created(stream, 3)
        after = await bob_client.send(room.id, "after")
        received += await messages_created(stream, 1)

        positions = [e.position for e in received]
        assert positions == sorted(set(positions))  # strictly increasing: no duplicate
        assert [e.payload["message_id"] for e in received] == [str(m.id) for m in [*before, *during, after]]
        # The reconnection asked for exactly what followed the last event received.
        assert bridge.handshakes[0].since == 0
        assert bridge.handshakes[-1].since == last_seen
        assert stream.connections == 2

        # Nothing was skipped: the stream delivered every event the server holds for alice.
        delivered = [e.position for e in received]
        held = [p for p in await all_positions(alice_streams) if p >= delivered[0]]
        events_seen = [e.position async for e in _drain(stream) if isinstance(e, Event)]
        assert sorted(set(delivered + events_seen)) == held


async def _drain(stream: Stream) -> AsyncIterator[StreamEvent]:
    """What the stream already holds, without waiting for more."""
    while True:
        try:
            async with asyncio.timeout(0.3):
                yield await anext(stream)
        except TimeoutError:
            return


async def test_a_send_over_the_socket_is_acknowledged_with_the_message(
    alice_streams: Client, bob_client: Client, bob: Persona
) -> None:
    room = await alice_streams.create_group("Socket", [bob.user_id])
    async with alice_streams.stream():
        message = await alice_streams.stream_send(room.id, "over the socket")
        assert message.content == "over the socket" and message.client_message_id
        assert [m.id async for m in bob_client.history(room.id)] == [message.id]


async def test_a_send_cut_off_before_its_ack_is_sent_again_and_made_once(
    alice_streams: Client, bob_client: Client, bridge: StreamBridge, bob: Persona
) -> None:
    room = await alice_streams.create_group("Cut", [bob.user_id])
    async with alice_streams.stream() as stream:
        await next_of(stream, CaughtUp)
        bridge.swallow_next_send = True
        message = await stream.send_message(room.id, "exactly once")
        # Sent twice (before and after the reconnection), made once.
        assert len(bridge.sends) == 2
        assert bridge.sends[0]["message"]["client_message_id"] == bridge.sends[1]["message"]["client_message_id"]
        assert stream.connections == 2
        assert [m.id async for m in bob_client.history(room.id)] == [message.id]


async def test_a_refused_send_raises_the_problem(alice_streams: Client, bob_client: Client, alice: Persona) -> None:
    bob = await bob_client.me()
    news = await alice_streams.create_conversation("broadcast", name="News", participant_ids=[bob.id])
    async with Client(alice_streams.base_url, stream_url=alice_streams.stream_url, backoff=FAST) as bobs:
        bobs.use_tokens(bob_client.tokens)  # type: ignore[arg-type]
        async with bobs.stream():
            with pytest.raises(Forbidden) as refused:
                await bobs.stream_send(news.id, "may I?")
            assert refused.value.slug == "cannot-send"


async def test_read_markers_over_the_socket(alice_streams: Client, bob_client: Client, bob: Persona) -> None:
    room = await bob_client.create_group("Read", [str((await alice_streams.me()).id)])
    message = await bob_client.send(room.id, "read me")
    async with alice_streams.stream() as stream:
        state = await stream.mark_read(room.id, message.id)
        assert (state.read_seq, state.unread_count) == (message.seq, 0)


async def test_resync_is_surfaced_and_the_stream_goes_on(
    alice_streams: Client, bob_client: Client, bridge: StreamBridge, bob: Persona
) -> None:
    room = await alice_streams.create_group("Old", [bob.user_id])
    old = await bob_client.send(room.id, "long ago")
    # Events take their position a moment after their commit (the outbox's ordering).
    async with asyncio.timeout(5):
        while True:
            page = await alice_streams.sync(0)
            if str(old.id) in [e.payload.get("message_id") for e in page.events]:
                break
            await asyncio.sleep(0.02)
    horizon = page.position
    bridge.horizon = horizon  # events up to here are "no longer kept"
    async with alice_streams.stream(since=1) as stream:
        resync = await next_of(stream, Resync)
        assert isinstance(resync, Resync) and resync.position == horizon
        new = await bob_client.send(room.id, "just now")
        [event] = await messages_created(stream, 1)
        assert event.payload["message_id"] == str(new.id) != str(old.id)
        assert event.position > horizon


async def test_typing_and_presence_are_typed(
    alice_streams: Client, bob_client: Client, bridge: StreamBridge, bob: Persona
) -> None:
    room = await alice_streams.create_group("Typing", [bob.user_id])
    async with Client(alice_streams.base_url, stream_url=bridge.url, backoff=FAST) as bobs:
        bobs.use_tokens(bob_client.tokens)  # type: ignore[arg-type]
        async with alice_streams.stream() as alices, bobs.stream() as bobs_stream:
            await next_of(alices, CaughtUp)
            await next_of(bobs_stream, CaughtUp)
            assert await bobs_stream.typing(room.id)
            typing = await next_of(alices, Typing)
            assert isinstance(typing, Typing) and (typing.conversation_id, str(typing.user_id)) == (
                room.id,
                bob.user_id,
            )
            await bobs_stream.set_presence("busy")
            presence = await next_of(alices, Presence)
            assert isinstance(presence, Presence) and presence.status == "busy"


async def test_a_revoked_session_ends_the_stream(alice_streams: Client, bridge: StreamBridge) -> None:
    stream = alice_streams.stream()
    await next_of(stream, CaughtUp)
    await bridge.close_all(4000, "session-revoked")
    with pytest.raises(StreamClosed) as ended:
        await next_of(stream, Event)
    assert (ended.value.slug, ended.value.code) == ("session-revoked", 4000)


async def test_a_refused_token_is_refreshed_and_the_stream_reconnects(
    alice_streams: Client, bridge: StreamBridge
) -> None:
    real = alice_streams.tokens
    assert real is not None
    alice_streams.use_tokens(TokenPair.model_validate({**real.model_dump(), "access_token": "x.y.z"}))
    async with alice_streams.stream() as stream:
        await next_of(stream, Connected)
    assert len(bridge.handshakes) == 2  # refused with 4401, then refreshed and accepted
    assert alice_streams.tokens is not None and alice_streams.tokens.access_token != "x.y.z"


async def test_stream_send_needs_a_stream(alice_client: Client) -> None:
    with pytest.raises(StreamClosed) as none:
        await alice_client.stream_send("00000000-0000-0000-0000-000000000000", "hi")
    assert none.value.slug == "no-stream"
