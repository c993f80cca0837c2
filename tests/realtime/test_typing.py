"""Typing indicators across two processes (two Ephemerals, each with its own NOTIFY bus on
the test database): shown to the conversation everywhere, refused silently to strangers
and when the setting is off, ended by a stop or a message, expiring by themselves, and
never more than the limiter lets through."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import UUID

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.actor import Actor
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from rapport.kernel.runtime import Runtime
from rapport.realtime._bus_notify import NotifyBus
from rapport.realtime._ephemeral import Delivery, Ephemeral
from rapport.realtime._typing import BURST, TYPING_TTL_MS, TypingLimiter, wall_ms
from tests.messaging.support import make_conversation
from tests.support import Persona

pytestmark = pytest.mark.module_database


class Process:
    """One server process's Ephemeral, and what its sockets would have been sent."""

    def __init__(self, runtime: Runtime, dsn: str) -> None:
        self.bus = NotifyBus(dsn)
        self.ephemeral = Ephemeral(runtime, self.bus)
        self.delivered: list[Delivery] = []
        self.ephemeral.subscribe(self.delivered.append)

    def typing_frames(self) -> list[dict[str, object]]:
        return [d.frame for d in self.delivered if d.frame["type"] == "typing"]


@pytest.fixture
async def processes(runtime: Runtime, database: DatabaseUrls) -> AsyncIterator[tuple[Process, Process]]:
    first, second = Process(runtime, asyncpg_dsn(database.app)), Process(runtime, asyncpg_dsn(database.app))
    for process in (first, second):
        await process.ephemeral.start()
    yield first, second
    for process in (first, second):
        await process.ephemeral.close()
        await process.bus.close()


def actor(persona: Persona) -> Actor:
    return Actor(user_id=UUID(persona.user_id))


async def eventually_frames(process: Process, count: int, within: float = 5.0) -> list[dict[str, object]]:
    """The typing frames the process delivered, once there are `count`."""
    deadline = asyncio.get_running_loop().time() + within
    while len(process.typing_frames()) < count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{len(process.typing_frames())} of {count} typing frames")
        await asyncio.sleep(0.01)
    return process.typing_frames()


async def test_a_participants_typing_reaches_the_conversation_on_every_process(
    processes: tuple[Process, Process], app_engine: AsyncEngine, alice: Persona, bob: Persona
) -> None:
    here, there = processes
    room = await make_conversation(app_engine, alice, bob)
    assert await here.ephemeral.typing(actor(alice), room, True)
    [frame] = await eventually_frames(there, 1)
    assert [d.conversation_id for d in there.delivered] == [room]
    assert {k: v for k, v in frame.items() if k != "expires_in_ms"} == {
        "type": "typing",
        "conversation_id": str(room),
        "user_id": alice.user_id,
        "typing": True,
    }
    assert 0 < int(str(frame["expires_in_ms"])) <= TYPING_TTL_MS
    assert here.typing_frames() == [{**frame, "expires_in_ms": TYPING_TTL_MS}]


async def test_a_stranger_typing_is_refused_silently(
    processes: tuple[Process, Process], app_engine: AsyncEngine, alice: Persona, bob: Persona, mallory: Persona
) -> None:
    here, there = processes
    room = await make_conversation(app_engine, alice, bob)
    assert not await here.ephemeral.typing(actor(mallory), room, True)
    await asyncio.sleep(0.3)
    assert (here.delivered, there.delivered) == ([], [])


async def test_typing_is_refused_when_the_setting_is_off(
    processes: tuple[Process, Process],
    client: httpx.AsyncClient,
    app_engine: AsyncEngine,
    alice: Persona,
    bob: Persona,
) -> None:
    here, there = processes
    room = await make_conversation(app_engine, alice, bob)
    changed = await client.patch("/v1/settings", headers=alice.headers, json={"typing_indicators_enabled": False})
    assert changed.status_code == 200, changed.text
    assert not await here.ephemeral.typing(actor(alice), room, True)
    await asyncio.sleep(0.3)
    assert there.delivered == []


async def test_a_stop_ends_typing_and_a_repeat_within_a_second_is_not_forwarded(
    processes: tuple[Process, Process], app_engine: AsyncEngine, alice: Persona, bob: Persona
) -> None:
    here, there = processes
    room = await make_conversation(app_engine, alice, bob)
    assert await here.ephemeral.typing(actor(alice), room, True)
    assert not await here.ephemeral.typing(actor(alice), room, True)
    assert await here.ephemeral.typing(actor(alice), room, False)
    frames = await eventually_frames(there, 2)
    assert [(f["typing"], f["expires_in_ms"]) for f in frames][1] == (False, 0)
    assert [f["typing"] for f in frames] == [True, False]


async def test_a_message_sent_ends_typing(
    processes: tuple[Process, Process], app_engine: AsyncEngine, alice: Persona, bob: Persona
) -> None:
    here, there = processes
    room = await make_conversation(app_engine, alice, bob)
    assert await here.ephemeral.typing(actor(alice), room, True)
    here.ephemeral.message_sent(actor(alice).user_id, room)
    frames = await eventually_frames(there, 2)
    assert [f["typing"] for f in frames] == [True, False]


async def test_the_last_socket_closing_ends_typing(
    processes: tuple[Process, Process], app_engine: AsyncEngine, alice: Persona, bob: Persona
) -> None:
    here, there = processes
    room = await make_conversation(app_engine, alice, bob)
    here.ephemeral.device_connected(actor(alice).user_id, "laptop")
    assert await here.ephemeral.typing(actor(alice), room, True)
    here.ephemeral.device_disconnected(actor(alice).user_id, "laptop")
    frames = await eventually_frames(there, 2)
    assert [f["typing"] for f in frames] == [True, False]


async def test_a_signal_that_expired_on_the_way_is_dropped(processes: tuple[Process, Process], alice: Persona) -> None:
    """Receivers keep what is left of an indicator's life, and drop one with none left."""
    here, there = processes
    room = "0193a5b0-0000-7000-8000-000000000001"
    signal = {"k": "typing", "c": room, "u": alice.user_id, "t": True, "ms": TYPING_TTL_MS}
    here.bus.publish({**signal, "at": wall_ms() - TYPING_TTL_MS - 1000})
    here.bus.publish({**signal, "at": wall_ms() - 2000})
    [frame] = await eventually_frames(there, 1)
    await asyncio.sleep(0.2)
    assert len(there.typing_frames()) == 1
    assert 3000 <= int(str(frame["expires_in_ms"])) <= TYPING_TTL_MS - 2000


def test_the_limiter_lets_a_burst_of_changes_through_then_one_a_second() -> None:
    limiter = TypingLimiter()
    alice, room = UUID(int=1), UUID(int=2)
    now = 100.0
    passed = [limiter.admit(alice, room, typing, now=now) for typing in (True, False, True, False, True)]
    assert BURST == 3
    assert passed == [True, True, True, False, False]
    assert limiter.admit(alice, room, False, now=now + 1.0)
    # A repeated state, once a second at most.
    assert not limiter.admit(alice, room, False, now=now + 1.5)
    assert limiter.admit(alice, room, False, now=now + 2.1)


def test_a_stop_with_no_start_is_not_forwarded_and_old_gates_are_forgotten() -> None:
    limiter = TypingLimiter()
    alice, room = UUID(int=1), UUID(int=2)
    assert not limiter.admit(alice, room, False, now=0.0)
    assert limiter.admit(alice, room, True, now=0.0)
    limiter.prune(now=60.0)
    assert len(limiter) == 0
