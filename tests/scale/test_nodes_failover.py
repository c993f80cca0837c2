"""Three Rapport nodes on the environment of tests/scale/environment.py (primary, streaming
replica, PgBouncer, NATS), started once for the module; the tests run in this order, the
last one failing the primary over to the replica.

Three people talk in one group, each connected by WebSocket to a different node:

- every message sent through the nodes reaches every socket once, in order;
- a node killed outright while messages flow: its sockets reconnect to another node with
  their last position and still end with every message once (the node stays down);
- a read right after a write, through a node whose reads go to the replica, returns the
  write, even while the replica replays nothing;
- the primary stopped and the replica promoted (docs/OPERATIONS.md, "Failover") while
  sends keep coming: the nodes carry on through PgBouncer, and everything acknowledged
  before and during the switch is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, WebSocketException

from rapport.identity import service as identity
from rapport.kernel.runtime import one_off_runtime
from tests.realtime.support import Follower, Server, create_group
from tests.scale.environment import Environment, fail_over, start_environment
from tests.support import PASSWORD, Persona, create_verified_user, make_settings, sign_in

# The switch of the last test takes a few seconds; sends retried for at most this long.
FAILOVER_RETRY_S = 60.0
_words = itertools.count()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    environment = start_environment(tmp_path_factory.mktemp("scale"))
    try:
        yield environment
    finally:
        environment.stop()


@dataclass
class Room:
    """The group, and who is in it: person i connects to node i."""

    id: str
    people: list[Persona]


@pytest.fixture(scope="module")
async def room(world: Environment) -> Room:
    names = ("alice", "bob", "carol")
    async with one_off_runtime(make_settings(), world.urls.direct, authenticate=identity.authenticate) as runtime:
        for name in names:
            await create_verified_user(runtime, f"{name}@example.com")
    async with httpx.AsyncClient(base_url=world.nodes[0].url, timeout=30) as http:
        people = [
            await sign_in(http, Persona(name=name, email=f"{name}@example.com", password=PASSWORD)) for name in names
        ]
        group = await create_group(http, people[0], people[1], people[2])
    return Room(group, people)


@pytest.fixture
async def clients(world: Environment) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One HTTP client per node, in the nodes' order."""
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(httpx.AsyncClient(base_url=node.url, timeout=30)) for node in world.nodes
        ]


@dataclass
class Reader:
    """A person's WebSocket, moved to the next node of `nodes` when its node goes away,
    resuming from the last position it was sent."""

    person: Persona
    group: str
    nodes: list[Server]
    follower: Follower | None = None
    position: int | None = None
    positions: list[int] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    connected_to: list[Server] = field(default_factory=list)

    async def connect(self) -> None:
        last_error: Exception | None = None
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            try:
                self.follower = await Follower.open(node, self.person, since=self.position)
            except (OSError, WebSocketException, TimeoutError) as exc:
                # The node went away (or is going): the next one.
                last_error = exc
                continue
            if self.position is None:
                self.position = int(self.follower.ready["position"])
            self.connected_to.append(node)
            return
        raise AssertionError(f"{self.person.name} could connect to no node: {last_error!r}")

    async def read_until(self, wanted: set[str], within: float = 30.0) -> None:
        """Read until every message of `wanted` has come (reconnecting when the node goes)."""
        async with asyncio.timeout(within):
            while not wanted <= self.received():
                await self.step(within)

    async def step(self, within: float) -> None:
        """One frame, or a new connection when the node closed this one."""
        assert self.follower is not None
        try:
            frame = await self.follower.frame(within)
        except ConnectionClosed:
            await self.connect()
            return
        if frame["type"] != "event":
            return
        self.position = int(frame["position"])
        self.positions.append(self.position)
        event = frame["event"]
        if event["type"] == "message.created" and event["scope"]["id"] == self.group:
            self.messages.append(event["payload"])

    def received(self) -> set[str]:
        return {str(m["message_id"]) for m in self.messages}

    def check_once_in_order(self, sent: set[str]) -> None:
        """Each message once, positions strictly increasing, the conversation's numbers
        without a gap."""
        ids = [str(m["message_id"]) for m in self.messages]
        assert len(ids) == len(set(ids)), f"{self.person.name} received a message twice"
        assert sent <= set(ids)
        assert all(a < b for a, b in itertools.pairwise(self.positions)), self.positions
        seqs = [int(m["seq"]) for m in self.messages]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs

    async def close(self) -> None:
        if self.follower is not None:
            with contextlib.suppress(ConnectionClosed):
                await self.follower.close()


async def readers(world: Environment, room: Room) -> list[Reader]:
    """Person i on node i, moving on to the next nodes in turn."""
    made = []
    for i, person in enumerate(room.people):
        order = world.nodes[i:] + world.nodes[:i]
        reader = Reader(person, room.id, order)
        await reader.connect()
        made.append(reader)
    return made


async def send(http: httpx.AsyncClient, person: Persona, group: str, content: str) -> httpx.Response:
    return await http.post(f"/v1/conversations/{group}/messages", headers=person.headers, json={"content": content})


async def sent_id(http: httpx.AsyncClient, person: Persona, group: str, content: str) -> str:
    response = await send(http, person, group, content)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_a_message_through_any_node_reaches_every_node_once_in_order(
    world: Environment, room: Room, clients: list[httpx.AsyncClient]
) -> None:
    everyone = await readers(world, room)

    async def talk(i: int) -> list[str]:
        return [await sent_id(clients[i], room.people[i], room.id, f"note {i}-{n}") for n in range(10)]

    # The three send at once, each through the node it is connected to.
    sent = {message for each in await asyncio.gather(*(talk(i) for i in range(3))) for message in each}

    for reader in everyone:
        await reader.read_until(sent)
        reader.check_once_in_order(sent)
    orders = [[str(m["message_id"]) for m in reader.messages] for reader in everyone]
    assert orders[0] == orders[1] == orders[2]  # one order for all, whichever node
    for reader in everyone:
        await reader.close()


async def test_a_node_killed_mid_stream_loses_nothing_for_its_sockets(
    world: Environment, room: Room, clients: list[httpx.AsyncClient]
) -> None:
    alice, bob, carol = await readers(world, room)
    doomed = world.nodes[2]
    assert carol.connected_to == [doomed]
    sent: list[str] = []

    midway, killed = asyncio.Event(), asyncio.Event()

    async def flow() -> None:
        # Through the two nodes that stay: every send is acknowledged. Half goes before the
        # kill and half after it, so the kill falls mid-stream whatever the timing.
        for n in range(40):
            if n == 20:
                await killed.wait()
            i = n % 2
            sent.append(await sent_id(clients[i], room.people[i], room.id, f"flow {n}"))

    async def kill_when_carol_is_midway() -> None:
        await midway.wait()
        await asyncio.to_thread(doomed.kill)
        killed.set()

    async def carol_reads() -> None:
        # Reads until the flow ended and she has all of it (her node dies on the way).
        while not (flowing.done() and set(sent) <= carol.received()):
            with contextlib.suppress(TimeoutError):
                await carol.step(0.5)
            if len(carol.messages) >= 10:
                midway.set()

    flowing = asyncio.ensure_future(flow())
    await asyncio.wait_for(asyncio.gather(flowing, kill_when_carol_is_midway(), carol_reads()), 60)

    assert doomed.process is not None and doomed.process.poll() is not None
    # She was on the killed node, and read the second half on another.
    assert carol.connected_to[0] is doomed and len(carol.connected_to) >= 2
    assert doomed not in carol.connected_to[1:]
    for reader in (alice, bob, carol):
        await reader.read_until(set(sent))
        reader.check_once_in_order(set(sent))
        await reader.close()


async def test_a_read_right_after_a_write_returns_it_through_a_node_reading_the_replica(
    world: Environment, room: Room, clients: list[httpx.AsyncClient]
) -> None:
    alice = room.people[0]
    cluster = world.cluster
    cluster.sql(cluster.replica_port, "SELECT pg_wal_replay_pause()")
    try:
        # The replica now stays behind every write until resumed: the write can be read
        # back only from the primary, or once the replica has reached it.
        word = f"marigold{next(_words)}"
        written = await sent_id(clients[1], alice, room.id, f"the {word} seedlings are up")
        history = await clients[1].get(f"/v1/conversations/{room.id}/messages", headers=alice.headers)
        assert history.status_code == 200, history.text
        assert history.json()["items"][0]["id"] == written
        found = await clients[1].get("/v1/messages/search", params={"q": word}, headers=alice.headers)
        assert found.status_code == 200, found.text
        assert [item["id"] for item in found.json()["items"]] == [written]
    finally:
        cluster.sql(cluster.replica_port, "SELECT pg_wal_replay_resume()")
    # The nodes do read from the replica: their pools hold connections there.
    readers_there = cluster.sql(
        cluster.replica_port,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = 'rapport' AND usename = 'rapport_app'",
    )
    assert int(readers_there) > 0


async def test_the_nodes_carry_on_after_the_replica_is_promoted(
    world: Environment, room: Room, clients: list[httpx.AsyncClient]
) -> None:
    # The two nodes still running (the third was killed above); carol's socket is on the
    # first of them.
    live = [i for i, node in enumerate(world.nodes) if node.process is not None and node.process.poll() is None]
    assert len(live) == 2
    everyone = await readers(world, room)
    before = [await sent_id(clients[i], room.people[i], room.id, f"before {i}") for i in live]

    # Sends keep coming through both nodes while the switch happens, each retried until
    # it is acknowledged.
    answers: list[str] = []
    during: list[str] = []
    switching = asyncio.ensure_future(asyncio.to_thread(fail_over, world))
    n = 0
    while not switching.done() or n < 4:
        i = live[n % 2]
        during.append(await sent_with_retry(clients[i], room.people[i], room.id, f"during {n}", answers))
        n += 1
    await switching
    # A send that failed while the database changed said so, as a server error, not a bug.
    assert not [answer for answer in answers if answer.startswith("500")], answers
    # The new primary serves both nodes: the next sends need no retry.
    after = during + [await sent_id(clients[i], room.people[i], room.id, f"after {i}") for i in live]

    for reader in everyone:
        await reader.read_until(set(before) | set(after))
        reader.check_once_in_order(set(before) | set(after))
        await reader.close()
    history = await clients[live[0]].get(
        f"/v1/conversations/{room.id}/messages", params={"limit": 100}, headers=room.people[2].headers
    )
    assert history.status_code == 200, history.text
    assert set(before) | set(after) <= {item["id"] for item in history.json()["items"]}
    assert world.cluster.sql(world.cluster.replica_port, "SELECT pg_is_in_recovery()") == "f"


async def sent_with_retry(
    http: httpx.AsyncClient, person: Persona, group: str, content: str, answers: list[str]
) -> str:
    """A send retried while the switch happens (the same client id each time, so a send
    that went through but whose answer was lost is not made twice); what each failed try
    got goes to `answers`."""
    deadline = time.monotonic() + FAILOVER_RETRY_S
    body = {"content": content, "client_message_id": f"failover-{content}"}
    while True:
        try:
            response = await http.post(f"/v1/conversations/{group}/messages", headers=person.headers, json=body)
            if response.status_code in (200, 201):
                return str(response.json()["id"])
            answers.append(f"{response.status_code} {response.text[:300]}")
        except httpx.HTTPError as exc:
            answers.append(repr(exc))
        if time.monotonic() > deadline:
            raise AssertionError(f"no send went through within {FAILOVER_RETRY_S} s after the failover: {answers}")
        await asyncio.sleep(0.25)
