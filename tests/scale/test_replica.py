"""Reads that tolerate lag go to the streaming replica, and a person still reads their own
writes (docs/decisions/0029): against a real primary and replica (tests/scale/cluster.py),
the app in this process configured with RAPPORT_DATABASE_REPLICA_URL."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from rapport.app import create_app
from rapport.kernel.runtime import Runtime
from tests.realtime.support import create_group, send_message
from tests.scale.cluster import Cluster, ClusterUrls
from tests.support import STARTUP_TIMEOUT_S, Persona, befriend, create_verified_user, make_settings, sign_in

HISTORY = "messaging.read_history"
PEOPLE_SEARCH = "social.search_profiles"


@dataclass
class World:
    app: FastAPI
    http: httpx.AsyncClient
    alice: Persona
    bob: Persona
    group: str


@pytest.fixture(scope="module")
async def world(cluster: Cluster, cluster_database: ClusterUrls) -> AsyncIterator[World]:
    # Every statement the replica runs goes to its log (ReplicaLog).
    cluster.sql(cluster.replica_port, "ALTER SYSTEM SET log_statement = 'all'")
    cluster.sql(cluster.replica_port, "SELECT pg_reload_conf()")
    settings = make_settings(
        database_replica_url=cluster_database.replica.render_as_string(hide_password=False),
        # Long enough for a replica on this machine to catch up under a loaded test run,
        # short enough that a paused one costs the tests little.
        database_replica_wait_ms=500,
        # Each read tries the replica again: the test that stops it starts it again.
        database_replica_retry_seconds=0,
    )
    app = create_app(
        settings, database_url=cluster_database.direct.app, system_database_url=cluster_database.direct.worker
    )
    async with LifespanManager(app, startup_timeout=STARTUP_TIMEOUT_S, shutdown_timeout=STARTUP_TIMEOUT_S):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://rapport.test") as http:
            runtime: Runtime = app.state.runtime
            people = []
            for name in ("alice", "bob"):
                persona = Persona(name=name, email=f"{name}@example.com", password="correct horse battery staple")
                await create_verified_user(runtime, persona.email, persona.password)
                people.append(await sign_in(http, persona))
            alice, bob = people
            await befriend(http, alice, bob)
            group = await create_group(http, alice, bob)
            yield World(app=app, http=http, alice=alice, bob=bob, group=group)


class ReplicaLog:
    """The replica's server log, which records every statement it runs (log_statement):
    what a read ran there shows in it at once."""

    def __init__(self, cluster: Cluster) -> None:
        self.path = cluster.replica_dir / "server.log"
        self.start = self.path.stat().st_size

    def ran(self, fragment: str) -> bool:
        with self.path.open("rb") as log:
            log.seek(self.start)
            return fragment.encode() in log.read()


@contextmanager
def replay_paused(cluster: Cluster) -> Iterator[None]:
    cluster.sql(cluster.replica_port, "SELECT pg_wal_replay_pause()")
    try:
        while cluster.sql(cluster.replica_port, "SELECT pg_get_wal_replay_pause_state()") != "paused":
            time.sleep(0.01)
        yield
    finally:
        cluster.sql(cluster.replica_port, "SELECT pg_wal_replay_resume()")


def on_replica(cluster: Cluster, database: str, message_id: str) -> bool:
    found = cluster.sql(
        cluster.replica_port, f"SELECT count(*) FROM messaging.messages WHERE id = '{message_id}'", database
    )
    return int(found) > 0


async def history(world: World, reader: Persona) -> list[str]:
    response = await world.http.get(f"/v1/conversations/{world.group}/messages", headers=reader.headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_a_person_reads_their_own_write_while_the_replica_lags(
    world: World, cluster: Cluster, cluster_database: ClusterUrls
) -> None:
    database = str(cluster_database.direct.app.database)
    with replay_paused(cluster):
        sent = await send_message(world.http, world.alice, world.group, "Written while the replica waits")
        lagging = not on_replica(cluster, database, sent["id"])
        seen = await history(world, world.alice)

    assert (lagging, sent["id"] in seen) == (True, True)


async def test_a_search_right_after_a_write_finds_it_while_the_replica_lags(world: World, cluster: Cluster) -> None:
    word = f"zq{uuid.uuid4().hex[:8]}"
    with replay_paused(cluster):
        sent = await send_message(world.http, world.bob, world.group, f"the word {word} once")
        found = await world.http.get("/v1/messages/search", params={"q": word}, headers=world.bob.headers)

    assert found.status_code == 200, found.text
    assert [item["id"] for item in found.json()["items"]] == [sent["id"]]


async def test_history_is_read_from_the_replica_once_it_has_caught_up(world: World, cluster: Cluster) -> None:
    sent = await send_message(world.http, world.alice, world.group, "Replayed before the read")
    cluster.wait_for_replay()
    log = ReplicaLog(cluster)

    seen = await history(world, world.bob)

    assert (sent["id"] in seen, log.ran(HISTORY)) == (True, True)


async def test_people_search_is_read_from_the_replica(world: World, cluster: Cluster) -> None:
    cluster.wait_for_replay()
    log = ReplicaLog(cluster)

    found = await world.http.get("/v1/users/search", params={"q": "bob"}, headers=world.alice.headers)

    assert (found.status_code, log.ran(PEOPLE_SEARCH)) == (200, True)


async def test_reads_go_to_the_primary_while_the_replica_is_down(world: World, cluster: Cluster) -> None:
    cluster.wait_for_replay()
    cluster.stop_replica()
    try:
        sent = await send_message(world.http, world.alice, world.group, "Written with the replica down")
        seen = await history(world, world.bob)
        searched = await world.http.get("/v1/users/search", params={"q": "bob"}, headers=world.alice.headers)
    finally:
        cluster.start_replica()

    assert (sent["id"] in seen, searched.status_code) == (True, 200)


async def test_a_promoted_replica_is_read_no_more(world: World, cluster: Cluster) -> None:
    # Last in the module: the replica stops following the primary for good.
    cluster.wait_for_replay()
    cluster.promote_replica()
    sent = await send_message(world.http, world.alice, world.group, "Written after the replica left")

    seen = await history(world, world.bob)

    assert sent["id"] in seen
