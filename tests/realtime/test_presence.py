"""Presence across devices and processes (Ephemerals on their own NOTIFY buses over the test
database, with a fast heartbeat): online while any device is, the most present status
wins, invisible looks offline to others, a dead process's people lapse, last seen is
written and read back, and only those the privacy settings allow see any of it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.actor import Actor
from rapport.kernel.db import user_transaction
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from rapport.kernel.runtime import Runtime
from rapport.realtime._bus_notify import NotifyBus
from rapport.realtime._ephemeral import Delivery, Ephemeral
from tests.messaging.support import make_conversation
from tests.support import Persona, befriend, problem_type

pytestmark = pytest.mark.module_database

FAST = {"heartbeat_s": 0.2, "ttl_s": 0.6, "last_seen_every_s": 0.0}


class Process:
    """One server process's Ephemeral, and what its sockets would have been sent."""

    def __init__(self, runtime: Runtime, dsn: str, **timing: float) -> None:
        self.bus = NotifyBus(dsn)
        self.ephemeral = Ephemeral(runtime, self.bus, **{**FAST, **timing})
        self.delivered: list[Delivery] = []
        self.ephemeral.subscribe(self.delivered.append)

    def presence_to(self, persona: Persona) -> list[dict[str, Any]]:
        """The presence frames this process's sockets of `persona` were sent."""
        who = UUID(persona.user_id)
        return [d.frame for d in self.delivered if d.audience is not None and who in d.audience]


@pytest.fixture
async def processes(runtime: Runtime, database: DatabaseUrls) -> AsyncIterator[tuple[Process, Process]]:
    first, second = Process(runtime, asyncpg_dsn(database.app)), Process(runtime, asyncpg_dsn(database.app))
    for process in (first, second):
        await process.ephemeral.start()
    yield first, second
    for process in (first, second):
        await process.ephemeral.close()
        await process.bus.close()


def uid(persona: Persona) -> UUID:
    return UUID(persona.user_id)


def last_status(process: Process, viewer: Persona) -> str | None:
    """The status in the last presence frame `viewer` received from `process`, if any yet
    (on a busy machine the first frame may still be on its way)."""
    frames = process.presence_to(viewer)
    return str(frames[-1]["status"]) if frames else None


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until `check()` holds; fail after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still not so after {within} s")
        await asyncio.sleep(0.01)


async def seen_by(
    runtime: Runtime, ephemeral: Ephemeral, viewer: Persona, *people: Persona
) -> list[tuple[str, datetime | None]]:
    async with user_transaction(runtime.engine, uid(viewer)) as db:
        answers = await ephemeral.presence_of(db, viewer=Actor(uid(viewer)), user_ids=[uid(p) for p in people])
    return [(a.status, a.last_seen_at) for a in answers]


async def settings(client: httpx.AsyncClient, persona: Persona, **changes: Any) -> None:
    changed = await client.patch("/v1/settings", headers=persona.headers, json=changes)
    assert changed.status_code == 200, changed.text


async def test_online_while_any_device_is_connected_on_any_process(
    processes: tuple[Process, Process], client: httpx.AsyncClient, alice: Persona, bob: Persona
) -> None:
    here, there = processes
    await befriend(client, alice, bob)
    there.ephemeral.device_connected(uid(bob), "bob's phone")
    here.ephemeral.device_connected(uid(alice), "laptop")
    await eventually(lambda: len(there.presence_to(bob)) == 1)
    assert there.presence_to(bob) == [
        {"type": "presence", "user_id": alice.user_id, "status": "online", "last_seen_at": None}
    ]
    there.ephemeral.device_connected(uid(alice), "phone")
    here.ephemeral.device_disconnected(uid(alice), "laptop")
    await asyncio.sleep(0.5)  # past two heartbeats: nothing lapses while the phone stays
    assert len(there.presence_to(bob)) == 1
    assert (here.ephemeral.status_of(uid(alice)), there.ephemeral.status_of(uid(alice))) == ("online", "online")
    there.ephemeral.device_disconnected(uid(alice), "phone")
    await eventually(lambda: len(there.presence_to(bob)) == 2)
    offline = there.presence_to(bob)[1]
    assert offline["status"] == "offline"
    assert datetime.now(UTC) - datetime.fromisoformat(offline["last_seen_at"]) < timedelta(seconds=5)
    await eventually(lambda: here.ephemeral.status_of(uid(alice)) == "offline")


async def test_the_most_present_device_wins_and_invisible_looks_offline_to_others(
    processes: tuple[Process, Process], runtime: Runtime, client: httpx.AsyncClient, alice: Persona, bob: Persona
) -> None:
    here, there = processes
    await befriend(client, alice, bob)
    there.ephemeral.device_connected(uid(bob), "bob's phone")
    here.ephemeral.device_connected(uid(alice), "laptop")
    there.ephemeral.device_connected(uid(alice), "phone")
    here.ephemeral.set_status(Actor(uid(alice)), "laptop", "away")
    there.ephemeral.set_status(Actor(uid(alice)), "phone", "busy")
    await eventually(lambda: here.ephemeral.status_of(uid(alice)) == "busy")
    assert await seen_by(runtime, here.ephemeral, bob, alice) == [("busy", None)]
    for process, device in ((here, "laptop"), (there, "phone")):
        process.ephemeral.set_status(Actor(uid(alice)), device, "invisible")
    await eventually(lambda: last_status(there, bob) == "offline")
    await eventually(lambda: here.ephemeral.status_of(uid(alice)) == "invisible")
    [(status, last_seen)] = await seen_by(runtime, here.ephemeral, bob, alice)
    assert status == "offline" and last_seen is not None
    assert await seen_by(runtime, here.ephemeral, alice, alice) == [("invisible", last_seen)]
    assert {frame["status"] for frame in there.presence_to(bob)} <= {"online", "away", "busy", "offline"}


async def test_a_dead_process_people_lapse_after_the_ttl(
    processes: tuple[Process, Process],
    runtime: Runtime,
    database: DatabaseUrls,
    client: httpx.AsyncClient,
    alice: Persona,
    bob: Persona,
) -> None:
    """A process killed outright says nothing: what it said of alice lapses unrefreshed."""
    _, there = processes
    await befriend(client, alice, bob)
    there.ephemeral.device_connected(uid(bob), "bob's phone")
    script = textwrap.dedent(
        """
        import asyncio, sys
        from uuid import UUID
        from rapport.identity import service as identity_service
        from rapport.kernel.db import create_engine, create_system_engine
        from rapport.kernel.runtime import Runtime
        from rapport.realtime._bus_notify import NotifyBus
        from rapport.realtime._ephemeral import Ephemeral
        from tests.support import make_settings

        async def main():
            app_url, worker_url, dsn, user = sys.argv[1:5]
            runtime = Runtime.build(
                make_settings(), create_engine(app_url, pool_size=1),
                system_engine=create_system_engine(worker_url, pool_size=1),
                authenticate=identity_service.authenticate,
            )
            ephemeral = Ephemeral(runtime, NotifyBus(dsn), heartbeat_s=0.2, ttl_s=0.6)
            await ephemeral.start()
            ephemeral.device_connected(UUID(user), "elsewhere")
            await asyncio.sleep(3600)

        asyncio.run(main())
        """
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        database.app.render_as_string(hide_password=False),
        database.worker.render_as_string(hide_password=False),
        asyncpg_dsn(database.app),
        alice.user_id,
        env=dict(os.environ),
    )
    try:
        await eventually(lambda: there.ephemeral.status_of(uid(alice)) == "online", within=30)
        await asyncio.sleep(1.0)  # heartbeats keep it alive past the TTL
        assert there.ephemeral.status_of(uid(alice)) == "online"
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    await eventually(lambda: there.ephemeral.status_of(uid(alice)) == "offline", within=3)
    await eventually(lambda: last_status(there, bob) == "offline")


async def test_a_process_that_stops_lets_the_others_forget_its_people_at_once(
    runtime: Runtime, database: DatabaseUrls, alice: Persona
) -> None:
    # The watcher would keep alice a minute without a refresh: only the goodbye ends her so soon.
    leaving = Process(runtime, asyncpg_dsn(database.app))
    watcher = Process(runtime, asyncpg_dsn(database.app), ttl_s=60.0)
    await watcher.ephemeral.start()
    await leaving.ephemeral.start()
    try:
        leaving.ephemeral.device_connected(uid(alice), "laptop")
        await eventually(lambda: watcher.ephemeral.status_of(uid(alice)) == "online")
        await leaving.ephemeral.close()
        await leaving.bus.close()
        await eventually(lambda: watcher.ephemeral.status_of(uid(alice)) == "offline", within=2.0)
    finally:
        await watcher.ephemeral.close()
        await watcher.bus.close()


async def test_last_seen_is_written_and_read_by_a_process_that_never_saw_them(
    processes: tuple[Process, Process],
    runtime: Runtime,
    database: DatabaseUrls,
    client: httpx.AsyncClient,
    alice: Persona,
    bob: Persona,
) -> None:
    here, _ = processes
    await befriend(client, alice, bob)
    here.ephemeral.device_connected(uid(alice), "laptop")
    await asyncio.sleep(0.3)
    here.ephemeral.device_disconnected(uid(alice), "laptop")
    left = datetime.now(UTC)
    newcomer = Ephemeral(runtime, NotifyBus(asyncpg_dsn(database.app)))  # never started: memory empty

    async def written() -> datetime | None:
        [(_, last_seen)] = await seen_by(runtime, newcomer, bob, alice)
        return last_seen

    last_seen = await written()
    for _ in range(50):  # the next heartbeats write it
        if last_seen is not None:
            break
        await asyncio.sleep(0.1)
        last_seen = await written()
    assert last_seen is not None and abs(last_seen - left) < timedelta(seconds=2)


async def test_status_and_last_seen_follow_the_privacy_settings(
    processes: tuple[Process, Process],
    runtime: Runtime,
    client: httpx.AsyncClient,
    alice: Persona,
    bob: Persona,
    carol: Persona,
) -> None:
    """Contacts by default; everyone or nobody when alice says so; her last seen apart."""
    here, _ = processes
    await befriend(client, alice, bob)
    here.ephemeral.device_connected(uid(alice), "laptop")
    assert await seen_by(runtime, here.ephemeral, bob, alice) == [("online", None)]
    assert await seen_by(runtime, here.ephemeral, carol, alice) == [("offline", None)]
    await settings(client, alice, online_status_visibility="everyone")
    assert await seen_by(runtime, here.ephemeral, carol, alice) == [("online", None)]
    await settings(client, alice, online_status_visibility="nobody")
    assert await seen_by(runtime, here.ephemeral, bob, alice) == [("offline", None)]
    await settings(client, alice, online_status_visibility="contacts", last_seen_visibility="nobody")
    here.ephemeral.device_disconnected(uid(alice), "laptop")
    assert await seen_by(runtime, here.ephemeral, bob, alice) == [("offline", None)]
    [(_, own_last_seen)] = await seen_by(runtime, here.ephemeral, alice, alice)
    assert own_last_seen is not None


async def test_a_block_hides_presence_both_ways(
    processes: tuple[Process, Process], runtime: Runtime, client: httpx.AsyncClient, alice: Persona, mallory: Persona
) -> None:
    here, _ = processes
    for persona in (alice, mallory):
        await settings(client, persona, online_status_visibility="everyone", last_seen_visibility="everyone")
        here.ephemeral.device_connected(uid(persona), "laptop")
    assert await seen_by(runtime, here.ephemeral, mallory, alice) == [("online", None)]
    blocked = await client.put(f"/v1/blocks/{mallory.user_id}", headers=alice.headers)
    assert blocked.status_code == 200, blocked.text
    assert await seen_by(runtime, here.ephemeral, mallory, alice) == [("offline", None)]
    assert await seen_by(runtime, here.ephemeral, alice, mallory) == [("offline", None)]


async def test_changes_are_told_live_only_to_those_allowed(
    processes: tuple[Process, Process],
    client: httpx.AsyncClient,
    app_engine: AsyncEngine,
    alice: Persona,
    bob: Persona,
    carol: Persona,
    mallory: Persona,
) -> None:
    """Contacts hear; people alice talks with hear once her status is for everyone;
    strangers and people she blocks never do."""
    here, there = processes
    await befriend(client, alice, bob)
    await make_conversation(app_engine, alice, carol, mallory)
    blocked = await client.put(f"/v1/blocks/{mallory.user_id}", headers=alice.headers)
    assert blocked.status_code == 200, blocked.text
    for persona in (bob, carol, mallory):
        there.ephemeral.device_connected(uid(persona), f"{persona.name}'s phone")
    here.ephemeral.device_connected(uid(alice), "laptop")
    await eventually(lambda: len(there.presence_to(bob)) == 1)
    await settings(client, alice, online_status_visibility="everyone")
    here.ephemeral.set_status(Actor(uid(alice)), "laptop", "away")
    await eventually(lambda: len(there.presence_to(carol)) == 1)
    await asyncio.sleep(0.2)
    assert [f["status"] for f in there.presence_to(bob)] == ["online", "away"]
    assert [f["status"] for f in there.presence_to(carol)] == ["away"]
    assert there.presence_to(mallory) == []
    assert all(d.audience is None or uid(alice) not in d.audience for d in there.delivered)


async def test_a_status_said_over_http_lapses_unless_repeated(
    processes: tuple[Process, Process], alice: Persona
) -> None:
    here, there = processes
    me = Actor(uid(alice), session_id=UUID(alice.session_id))
    here.ephemeral.put_status(me, "busy")
    await eventually(lambda: there.ephemeral.status_of(uid(alice)) == "busy")
    here.ephemeral.put_status(me, "offline")
    await eventually(lambda: there.ephemeral.status_of(uid(alice)) == "offline")


# The HTTP API


@pytest.fixture
def presence_api(app: FastAPI, processes: tuple[Process, Process]) -> FastAPI:
    """The running app with the presence routes and one of the processes' Ephemeral."""
    from rapport.realtime.api_presence import router

    if not any(getattr(route, "path", None) == "/v1/presence" for route in app.routes):
        app.include_router(router)
    app.state.ephemeral = processes[0].ephemeral
    return app


async def test_get_presence_answers_each_person_as_the_caller_may_see_them(
    presence_api: FastAPI,
    processes: tuple[Process, Process],
    client: httpx.AsyncClient,
    alice: Persona,
    bob: Persona,
    carol: Persona,
) -> None:
    await befriend(client, alice, bob)
    processes[1].ephemeral.device_connected(uid(alice), "phone")
    await eventually(lambda: processes[0].ephemeral.status_of(uid(alice)) == "online")
    stranger = "0193a5b0-0000-7000-8000-000000000009"
    answer = await client.get(
        "/v1/presence", headers=bob.headers, params={"user_ids": f"{alice.user_id},{carol.user_id},{stranger}"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "items": [
            {"user_id": alice.user_id, "status": "online", "last_seen_at": None},
            {"user_id": carol.user_id, "status": "offline", "last_seen_at": None},
            {"user_id": stranger, "status": "offline", "last_seen_at": None},
        ]
    }


async def test_get_presence_refuses_what_is_not_a_list_of_ids(
    presence_api: FastAPI, client: httpx.AsyncClient, bob: Persona
) -> None:
    for query in (
        {"user_ids": "not-an-id"},
        {"user_ids": ","},
        {"user_ids": ",".join(str(UUID(int=n)) for n in range(101))},
    ):
        answer = await client.get("/v1/presence", headers=bob.headers, params=query)
        assert answer.status_code == 422, answer.text
        assert problem_type(answer) == "validation-error"
    assert (await client.get("/v1/presence", params={"user_ids": bob.user_id})).status_code == 401


async def test_put_presence_sets_the_sessions_status(
    presence_api: FastAPI,
    processes: tuple[Process, Process],
    client: httpx.AsyncClient,
    alice: Persona,
) -> None:
    answer = await client.put("/v1/presence", headers=alice.headers, json={"status": "invisible"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"user_id": alice.user_id, "status": "invisible", "last_seen_at": None}
    await eventually(lambda: processes[1].ephemeral.status_of(uid(alice)) == "invisible")
    ended = await client.put("/v1/presence", headers=alice.headers, json={"status": "offline"})
    assert ended.json()["status"] == "offline"
    wrong = await client.put("/v1/presence", headers=alice.headers, json={"status": "sleeping"})
    assert wrong.status_code == 422
