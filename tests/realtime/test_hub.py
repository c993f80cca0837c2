"""The hub's routing in memory: windows opened and closed by membership events in the
order of their transactions, and a follower that falls behind told to resync and closed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from rapport.kernel.actor import Actor
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Event
from rapport.realtime._connection import QUEUE_LIMIT, Behind, Close, Connection, Delivery
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


def test_a_follower_too_far_behind_is_told_to_resync_and_closed() -> None:
    hub, bob, room = Hub(), uuid7(), uuid7()
    connection = live(hub, bob, {room: Window(joined=tx(1))})
    hub.dispatch([event(tx(20 + n), room) for n in range(QUEUE_LIMIT + 1)], tx(20 + QUEUE_LIMIT + 1))
    items = drain(connection)
    assert [type(item) for item in items] == [Behind, Close]
    assert isinstance(items[1], Close) and items[1].code == 4429
    hub.dispatch([event(tx(5000), room)], tx(5001))
    assert drain(connection) == []
