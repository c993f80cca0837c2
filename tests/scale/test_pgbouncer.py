"""Rapport behind PgBouncer in transaction pooling (docs/decisions/0029): a real `rapport
serve` of two processes whose pools go through PgBouncer, with few server connections so
that clients share them, and whose LISTENers connect straight to PostgreSQL
(RAPPORT_DATABASE_LISTEN_URL). Provisioning and migrations at its start go there too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.realtime.support import Follower, Server, create_group, send_message
from tests.scale.cluster import Cluster, ClusterUrls
from tests.support import Mailbox, Persona, befriend, register_persona, sign_in

# Server connections per database and role: the two processes' pools (request, system,
# hot path) hold far more client connections than this, so they take turns on them.
POOL = 5


@pytest.fixture(scope="module")
def cluster_pool_size() -> int:
    return POOL


@pytest.fixture(scope="module")
def server(
    cluster: Cluster,
    cluster_database: ClusterUrls,
    smtp_server: tuple[Controller, Mailbox],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    controller, _ = smtp_server
    settings = cluster_database.env()
    # rapport_env writes these two from the URLs given: PgBouncer's.
    del settings["RAPPORT_DATABASE_URL"], settings["RAPPORT_DATABASE_NAME"]
    running = Server(
        cluster_database.pooled.admin,
        cluster_database.pooled,
        Path(tmp_path_factory.mktemp("pgbouncer-serve")),
        workers=2,
        RAPPORT_SMTP_HOST="127.0.0.1",
        RAPPORT_SMTP_PORT=str(controller.port),
        **settings,
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


@dataclass
class Pair:
    alice: Persona
    bob: Persona
    group: str


@pytest.fixture(scope="module")
async def pair(server: Server, smtp_server: tuple[Controller, Mailbox]) -> Pair:
    _, mailbox = smtp_server
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        alice = await register_persona(http, mailbox, "alice")
        bob = await register_persona(http, mailbox, "bob")
        # A second session, by signing in with the password.
        bob = await sign_in(http, bob)
        await befriend(http, alice, bob)
        group = await create_group(http, alice, bob)
    return Pair(alice, bob, group)


async def test_a_conversation_works_through_pgbouncer(server: Server, http: httpx.AsyncClient, pair: Pair) -> None:
    follower = await Follower.open(server, pair.bob)
    try:
        sent = await send_message(http, pair.alice, pair.group, "Through the pooler")
        events = await follower.events_until(
            lambda frame: (
                frame["event"]["type"] == "message.created" and frame["event"]["payload"]["message_id"] == sent["id"]
            )
        )
    finally:
        await follower.close()
    page = await http.get(f"/v1/conversations/{pair.group}/messages", headers=pair.bob.headers)
    found = await http.get("/v1/messages/search", params={"q": "pooler"}, headers=pair.bob.headers)

    assert events[-1]["event"]["payload"]["message_id"] == sent["id"]
    assert sent["id"] in [item["id"] for item in page.json()["items"]]
    assert [item["id"] for item in found.json()["items"]] == [sent["id"]]


async def test_many_requests_at_once_share_the_server_connections(http: httpx.AsyncClient, pair: Pair) -> None:
    async def send_and_read(n: int) -> tuple[int, int]:
        sent = await http.post(
            f"/v1/conversations/{pair.group}/messages", headers=pair.alice.headers, json={"content": f"burst {n}"}
        )
        read = await http.get(f"/v1/conversations/{pair.group}/messages", headers=pair.bob.headers)
        return sent.status_code, read.status_code

    answers = await asyncio.gather(*(send_and_read(n) for n in range(40)))

    assert set(answers) == {(201, 200)}


def test_listeners_connect_to_postgresql_itself(
    server: Server, cluster: Cluster, cluster_database: ClusterUrls
) -> None:
    database = str(cluster_database.direct.app.database)
    rows = cluster.sql(
        cluster.primary_port,
        "SELECT pid, usename, query FROM pg_stat_activity "
        f"WHERE datname = '{database}' AND (query LIKE 'LISTEN%' OR query LIKE 'SELECT pg_notify($1, payload)%')",
    ).splitlines()
    listeners = [row.split("|", 2) for row in rows]
    pooled = cluster.pgbouncer_server_pids()

    # The bus of each of the two processes (LISTEN, then its own NOTIFYs), and the job
    # worker's wake-ups.
    assert {role for _, role, _ in listeners} == {"rapport_app", "rapport_worker"}
    assert [pid for pid, _, _ in listeners if int(pid) in pooled] == []
