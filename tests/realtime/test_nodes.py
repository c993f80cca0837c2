"""Two nodes on one database, their bus NATS or Redis (real servers, tests/realtime/servers.py):
two `rapport serve` of one worker each, `RAPPORT_NATS_URL` or `RAPPORT_REDIS_URL` set.

A message sent through one node's HTTP reaches a socket the other node holds: the commit
is announced on the bus, and the other node's feed reads it from the database. Presence
and typing are never stored: they cross from one node to the other over the bus alone,
so their arrival shows that each node publishes on it and hears the other."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import URL

from rapport.kernel.provisioning import DatabaseUrls
from rapport.realtime._bus import BaseBus, Signal
from rapport.realtime._bus_nats import NatsBus
from rapport.realtime._bus_redis import RedisBus
from tests.realtime.support import Follower, Server, create_group, send_message
from tests.support import Persona, befriend

pytestmark = pytest.mark.module_database

Person = Callable[..., Awaitable[Persona]]


@dataclass
class Nodes:
    a: Server
    b: Server
    transport: str
    bus_url: str


@pytest.fixture(scope="module", params=["nats", "redis"])
def nodes(
    request: pytest.FixtureRequest,
    admin_url: URL,
    module_database: DatabaseUrls,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Nodes]:
    """Two nodes of one worker each on the module's database and one bus; started together."""
    transport: str = request.param
    url: str = request.getfixturevalue(f"{transport}_url")
    setting = {"RAPPORT_NATS_URL": url} if transport == "nats" else {"RAPPORT_REDIS_URL": url}
    pair = [
        Server(admin_url, module_database, tmp_path_factory.mktemp(f"{transport}-{name}"), workers=1, **setting)
        for name in ("a", "b")
    ]
    try:
        for node in pair:
            node.launch()
        for node in pair:
            node.wait_started()
        yield Nodes(pair[0], pair[1], transport, url)
    finally:
        for node in pair:
            node.stop()


@pytest.fixture(scope="module")
def server(nodes: Nodes) -> Server:
    """Node A: the `http` and `person` fixtures of tests/realtime/conftest.py talk to it."""
    return nodes.a


class Tap:
    """A third process on the bus, hearing what the nodes send on it."""

    def __init__(self, bus: BaseBus) -> None:
        self.bus = bus
        self.announcements = 0
        self.signals: list[Signal] = []
        bus.listen(self.signals.append)

    def announced(self) -> None:
        self.announcements += 1

    def senders(self, kind: str) -> set[str]:
        """The processes that sent signals of this kind."""
        return {str(s.get("p")) for s in self.signals if s.get("k") == kind}


@pytest.fixture
async def tap(nodes: Nodes) -> AsyncIterator[Tap]:
    bus: BaseBus = NatsBus(nodes.bus_url) if nodes.transport == "nats" else RedisBus(nodes.bus_url)
    heard = Tap(bus)
    await bus.start(heard.announced)
    yield heard
    await bus.close()


async def presence_of(follower: Follower, persona: Persona, status: str) -> dict[str, Any]:
    """The first presence frame saying that `persona` is `status` (others skipped)."""
    while True:
        frame = (await follower.until("presence"))[-1]
        if (frame["user_id"], frame["status"]) == (persona.user_id, status):
            return frame


def created(message_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f["event"]["type"] == "message.created" and f["event"]["payload"]["message_id"] == message_id


async def test_a_message_sent_through_one_node_reaches_a_socket_on_the_other(
    nodes: Nodes, http: httpx.AsyncClient, person: Person, tap: Tap
) -> None:
    alice, bob = await person("alice"), await person("bob")
    group = await create_group(http, alice, bob)
    bobs = await Follower.open(nodes.b, bob)
    alices = await Follower.open(nodes.a, alice)
    assert nodes.b.worker_holding(bobs.local_port) in nodes.b.workers()
    announced = tap.announcements

    sent = await send_message(http, alice, group, "Seeds are in the shed")

    for follower in (bobs, alices):
        frame = (await follower.events_until(created(sent["id"])))[-1]
        assert frame["event"]["scope"] == {"kind": "conversation", "id": group}
        assert frame["event"]["payload"]["message_id"] == sent["id"]
    assert tap.announcements > announced  # node A told the others on the bus

    # And the other way: sent through node B, heard on node A.
    async with httpx.AsyncClient(base_url=nodes.b.url, timeout=10) as http_b:
        answer = await send_message(http_b, bob, group, "Thank you")
    assert (await alices.events_until(created(answer["id"])))[-1]["position"] > frame["position"]


async def test_presence_and_typing_on_one_node_reach_the_other(
    nodes: Nodes, http: httpx.AsyncClient, person: Person, tap: Tap
) -> None:
    alice, bob = await person("alice"), await person("bob")
    await befriend(http, alice, bob)
    group = await create_group(http, alice, bob)
    bobs = await Follower.open(nodes.b, bob)
    alices = await Follower.open(nodes.a, alice)

    await presence_of(bobs, alice, "online")
    await alices.send({"type": "presence", "status": "away"})
    await presence_of(bobs, alice, "away")

    await alices.send({"type": "typing", "conversation_id": group, "typing": True})
    typing = (await bobs.until("typing"))[-1]
    assert (typing["user_id"], typing["conversation_id"], typing["typing"]) == (alice.user_id, group, True)
    # Both nodes spoke on this bus: bob's arrival on B, alice's on A.
    assert len(tap.senders("presence")) == 2
