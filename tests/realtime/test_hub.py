"""The hub's routing in memory: windows opened and closed by membership events in the
order of their transactions, a follower that falls behind told to resync and closed, and
frames written straight to a socket only while nothing waits before them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

import orjson
import pytest
from websockets.frames import Frame as WireFrame
from websockets.frames import Opcode
from websockets.streams import StreamReader

from rapport.kernel.actor import Actor
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Event
from rapport.realtime._connection import QUEUE_LIMIT, Behind, Close, Connection, Delivery, Frame, text_frame
from rapport.realtime._hub import Hub


@dataclass
class Window:
    joined: int
    left: int | None = None


@dataclass
class Memberships:
    known_below: int
    windows: dict[UUID, Window] = field(default_factory=dict)


def event(position: int, conversation: UUID, type: str = "message.created", **payload: str) -> Event:
    return Event(
        position=position,
        scope_kind="conversation",
        scope_id=conversation,
        type=type,
        payload=payload,
        actor_id=None,
        created_at=datetime.now(UTC),
    )


def tx(n: int, ordinal: int = 0) -> int:
    return n << 16 | ordinal


def drain(connection: Connection) -> list[object]:
    items: list[object] = []
    while connection._items:
        items.append(connection._items.popleft())
    return items


def live(hub: Hub, user: UUID, windows: dict[UUID, Window]) -> Connection:
    connection = Connection(Actor(user_id=user))
    hub.begin(connection)
    assert hub.go_live(
        connection, memberships=Memberships(known_below=tx(10), windows=windows), caught_up_to=tx(10) - 1
    )
    return connection


def test_a_join_opens_the_window_for_its_whole_transaction_and_a_leave_closes_it_after_its_own() -> None:
    hub, mallory, room = Hub(), uuid7(), uuid7()
    connection = live(hub, mallory, {})
    hub.dispatch(
        [
            event(tx(11, 0), room, "conversation.created"),
            event(tx(11, 1), room, "participant.joined", user_id=str(mallory)),
            event(tx(12), room, message_id="m1"),
            event(tx(13, 0), room, "participant.left", user_id=str(mallory)),
            event(tx(13, 1), room, message_id="same transaction as the leave"),
            event(tx(14), room, message_id="after"),
        ],
        tx(15),
    )
    got = [item.event.position for item in drain(connection) if isinstance(item, Delivery)]
    assert got == [tx(11, 0), tx(11, 1), tx(12), tx(13, 0), tx(13, 1)]


def test_a_feed_behind_the_catch_up_does_not_send_what_the_database_already_sent() -> None:
    # The feed starts at the safe position, which a long transaction anywhere holds back:
    # the follower's catch-up may read further than the feed has dispatched.
    hub, bob, room = Hub(), uuid7(), uuid7()
    hub.position = tx(5)
    connection = Connection(Actor(user_id=bob))
    hub.begin(connection)
    assert hub.go_live(
        connection, memberships=Memberships(known_below=tx(6), windows={room: Window(joined=tx(1))}), caught_up_to=tx(9)
    )
    hub.dispatch([event(tx(n), room) for n in range(6, 12)], tx(12))
    assert [item.position for item in drain(connection) if isinstance(item, Delivery)] == [tx(10), tx(11)]


def test_a_follower_too_far_behind_is_told_to_resync_and_closed() -> None:
    hub, bob, room = Hub(), uuid7(), uuid7()
    connection = live(hub, bob, {room: Window(joined=tx(1))})
    hub.dispatch([event(tx(20 + n), room) for n in range(QUEUE_LIMIT + 1)], tx(20 + QUEUE_LIMIT + 1))
    items = drain(connection)
    assert [type(item) for item in items] == [Behind, Close]
    assert isinstance(items[1], Close) and items[1].code == 4429
    hub.dispatch([event(tx(5000), room)], tx(5001))
    assert drain(connection) == []


class Socket:
    """A socket's transport as the hub writes to it: takes frames while `open_for` allows."""

    def __init__(self, open_for: int = 1_000_000) -> None:
        self.open_for = open_for
        self.frames: list[bytes] = []

    def write(self, frame: bytes) -> bool:
        if len(self.frames) >= self.open_for:
            return False
        self.frames.append(frame)
        return True


def parse_wire(data: bytes) -> list[WireFrame]:
    """Frames as a WebSocket client parses them (the websockets library's own parser)."""
    reader = StreamReader()
    reader.feed_data(data)
    frames = []
    while reader.buffer:
        parser = WireFrame.parse(reader.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as done:
            frames.append(done.value)
    return frames


def positions(frames: list[bytes]) -> list[int]:
    return [orjson.loads(frame.data)["position"] for frame in parse_wire(b"".join(frames))]


async def writer_idle(connection: Connection) -> asyncio.Task[object]:
    """The socket's writer task, waiting on its empty queue."""
    task: asyncio.Task[object] = asyncio.create_task(connection.next_item())
    await asyncio.sleep(0)
    return task


@pytest.mark.parametrize("size", [0, 125, 126, 65_535, 65_536])
def test_a_frame_is_built_once_as_a_client_parses_it(size: int) -> None:
    payload = ("x" * size).encode()
    [frame] = parse_wire(text_frame(payload))
    assert (frame.opcode, frame.fin, frame.rsv1, frame.data) == (Opcode.TEXT, True, False, payload)


async def test_an_idle_socket_is_written_without_its_writer_and_in_order() -> None:
    hub, bob, room = Hub(), uuid7(), uuid7()
    connection = live(hub, bob, {room: Window(joined=tx(1))})
    socket = Socket()
    connection.direct = socket
    writer = await writer_idle(connection)
    hub.dispatch([event(tx(20 + n), room) for n in range(3)], tx(30))
    hub.to_conversation(room, {"type": "typing", "conversation_id": str(room)})
    assert positions(socket.frames[:3]) == [tx(20), tx(21), tx(22)]
    assert orjson.loads(parse_wire(socket.frames[3])[0].data)["type"] == "typing"
    assert connection.sent == tx(22)  # a resync would start after what reached the socket
    assert not writer.done() and drain(connection) == []
    writer.cancel()


async def test_what_the_socket_cannot_take_queues_and_everything_after_it_waits_behind() -> None:
    hub, bob, room = Hub(), uuid7(), uuid7()
    connection = live(hub, bob, {room: Window(joined=tx(1))})
    socket = Socket(open_for=1)
    connection.direct = socket
    writer = await writer_idle(connection)
    hub.dispatch([event(tx(20), room), event(tx(21), room)], tx(22))
    socket.open_for = 1_000_000  # the buffer drained, but tx(21) is still queued
    hub.dispatch([event(tx(22), room)], tx(23))
    assert positions(socket.frames) == [tx(20)]
    first = await writer
    assert isinstance(first, Delivery) and first.position == tx(21)
    assert [item.position for item in drain(connection) if isinstance(item, Delivery)] == [tx(22)]
    # Once the writer waits on an empty queue again, the socket is written directly.
    writer = await writer_idle(connection)
    hub.dispatch([event(tx(23), room)], tx(24))
    assert positions(socket.frames) == [tx(20), tx(23)]
    writer.cancel()


async def test_a_socket_that_takes_nothing_falls_behind_as_a_queue_does() -> None:
    hub, bob, room = Hub(), uuid7(), uuid7()
    connection = live(hub, bob, {room: Window(joined=tx(1))})
    connection.direct = Socket(open_for=2)
    writer = await writer_idle(connection)
    hub.dispatch([event(tx(20 + n), room) for n in range(QUEUE_LIMIT + 3)], tx(20 + QUEUE_LIMIT + 3))
    assert connection.sent == tx(21)
    # The overflow dropped the queue: the writer wakes to the resync, then the close.
    assert isinstance(await writer, Behind)
    assert [type(item) for item in drain(connection)] == [Close]
    assert hub.followers == 0


async def test_a_server_sent_events_follower_has_no_socket_and_always_queues() -> None:
    hub, bob, room = Hub(), uuid7(), uuid7()
    connection = live(hub, bob, {room: Window(joined=tx(1))})
    writer = await writer_idle(connection)
    hub.dispatch([event(tx(20), room)], tx(21))
    item = await writer
    assert isinstance(item, Delivery) and item.position == tx(20)
    assert isinstance(Frame.of({"type": "ping"}).wire, bytes)
