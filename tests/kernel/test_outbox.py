"""The outbox: a reader that resumes from the position it was given never misses an event,
even one whose transaction took a lower position and committed later; a rolled-back
publish leaves and announces nothing; a commit is announced by the process, coalesced for
the others, and the database itself NOTIFYs nothing (docs/decisions/0015)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from uuid import UUID

import asyncpg
import pytest
from sqlalchemy import text

from rapport.kernel import outbox
from rapport.kernel.db import user_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from rapport.kernel.runtime import Runtime


async def read(runtime: Runtime, position: int, scopes: list[outbox.Scope], limit: int = 100) -> outbox.EventBatch:
    """What a reader gets after `position`, on the worker's role as the reader runs."""
    async with runtime.system_engine.engine.connect() as db:
        return await outbox.read_after(db, position=position, scopes=scopes, limit=limit)


async def read_until_past(
    runtime: Runtime, position: int, scopes: list[outbox.Scope], target: int
) -> tuple[list[outbox.Event], int]:
    """Read and resume until the reader's position passes `target`: another transaction
    anywhere in the cluster may hold the barrier back for a moment."""
    seen: list[outbox.Event] = []
    async with asyncio.timeout(10):
        while position < target:
            batch = await read(runtime, position, scopes, limit=1)
            seen += batch.events
            position = batch.position
            if not batch.events:
                await asyncio.sleep(0.02)
    return seen, position


async def committed_positions(runtime: Runtime) -> list[int]:
    """Every committed event's position, as a naive reader would see them."""
    async with runtime.system_engine.engine.connect() as db:
        return list((await db.execute(text("SELECT position FROM kernel.events ORDER BY position"))).scalars())


@pytest.fixture
async def notifications(database: DatabaseUrls) -> AsyncIterator[asyncio.Queue[str]]:
    """Whatever is NOTIFYed on the channel the outbox's trigger used to notify."""
    heard: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(asyncpg_dsn(database.worker))
    await conn.add_listener("kernel_events", lambda *args: heard.put_nowait(args[3]))
    try:
        yield heard
    finally:
        await conn.close()


async def test_a_reader_never_passes_an_event_that_commits_later_below_its_position(runtime):
    scope = outbox.Scope.conversation(uuid7())
    start = (await read(runtime, 0, [scope])).position

    async with runtime.engine.connect() as a, runtime.engine.connect() as b:
        await a.begin()
        await outbox.publish(a, scope=scope, type="test.a", payload={"n": "a"}, actor_id=None)
        async with b.begin():
            await outbox.publish(b, scope=scope, type="test.b", payload={"n": "b"}, actor_id=None)
        # B has committed above A, which is still running: a naive "after P" would now skip A.
        [position_b] = await committed_positions(runtime)
        between = await read(runtime, start, [scope])
        await a.commit()

    [position_a, _] = await committed_positions(runtime)
    seen, resumed = await read_until_past(runtime, between.position, [scope], position_b)
    assert position_a < position_b
    assert between.events == []
    assert between.position < position_a
    assert [(event.position, event.type) for event in seen] == [(position_a, "test.a"), (position_b, "test.b")]
    assert (await read(runtime, resumed, [scope])).events == []


async def test_a_transaction_s_events_keep_their_order_and_a_full_batch_resumes_after_its_last(runtime):
    scope = outbox.Scope.user(uuid7())
    async with runtime.engine.begin() as db:
        for n in range(3):
            await outbox.publish(db, scope=scope, type="test.n", payload={"n": n}, actor_id=None)

    seen, _ = await read_until_past(runtime, 0, [scope], max(await committed_positions(runtime)))

    assert [event.payload["n"] for event in seen] == [0, 1, 2]


async def test_a_reader_gets_only_the_scopes_it_asks_for(runtime):
    mine, theirs = outbox.Scope.conversation(uuid7()), outbox.Scope.conversation(uuid7())
    async with runtime.engine.begin() as db:
        await outbox.publish(db, scope=theirs, type="test.theirs", payload={}, actor_id=None)
        await outbox.publish(db, scope=mine, type="test.mine", payload={}, actor_id=None)
        await outbox.publish(db, scope=outbox.Scope.user(mine.id), type="test.user", payload={}, actor_id=None)

    seen, _ = await read_until_past(runtime, 0, [mine], max(await committed_positions(runtime)))

    assert [event.type for event in seen] == ["test.mine"]


async def test_a_rolled_back_publish_leaves_no_event_and_announces_nothing(runtime):
    scope = outbox.Scope.conversation(uuid7())
    before = outbox.wakeup.generation
    with pytest.raises(RuntimeError):
        async with user_transaction(runtime.engine, uuid7()) as db:
            await outbox.publish(db, scope=scope, type="test.rolled_back", payload={}, actor_id=None)
            raise RuntimeError("the change failed after its event was written")
    assert outbox.wakeup.generation == before
    async with user_transaction(runtime.engine, uuid7()) as db:
        await outbox.publish(db, scope=scope, type="test.committed", payload={}, actor_id=None)

    assert outbox.wakeup.generation == before + 1
    seen, _ = await read_until_past(runtime, 0, [scope], max(await committed_positions(runtime)))
    assert [event.type for event in seen] == ["test.committed"]


async def test_a_savepoint_rolled_back_takes_its_events_with_it(runtime):
    scope = outbox.Scope.conversation(uuid7())
    async with user_transaction(runtime.engine, uuid7()) as db:
        savepoint = await db.begin_nested()
        await outbox.publish(db, scope=scope, type="test.undone", payload={}, actor_id=None)
        await savepoint.rollback()
        await outbox.publish(db, scope=scope, type="test.kept", payload={}, actor_id=None)

    seen, _ = await read_until_past(runtime, 0, [scope], max(await committed_positions(runtime)))
    assert [event.type for event in seen] == ["test.kept"]


async def test_a_transaction_that_published_nothing_announces_nothing(runtime):
    before = outbox.wakeup.generation
    async with user_transaction(runtime.engine, uuid7()) as db:
        await db.execute(text("SELECT 1"))
    assert outbox.wakeup.generation == before


async def test_committing_events_sends_no_notify_from_the_database(runtime, notifications):
    """Notifying transactions commit one at a time (docs/decisions/0015): the trigger
    numbers events and leaves the telling to the process that committed them."""
    async with user_transaction(runtime.engine, uuid7()) as db:
        await outbox.publish(db, scope=outbox.Scope.user(uuid7()), type="test.quiet", payload={}, actor_id=None)
    await asyncio.sleep(0.3)  # a notification would have arrived by now
    assert notifications.empty()


class RecordingTransport:
    """A transport that records what it is asked to send, and lets the test deliver
    another process's announcement."""

    def __init__(self) -> None:
        self.sent = 0
        self.remote: Callable[[], None] | None = None

    async def start(self, on_remote: Callable[[], None]) -> None:
        self.remote = on_remote

    async def send(self) -> None:
        self.sent += 1

    async def close(self) -> None:
        self.remote = None


async def test_many_announcements_in_a_moment_go_to_other_processes_as_one():
    wakeup = outbox.Wakeup()
    transport = RecordingTransport()
    await wakeup.attach(transport)
    try:
        for _ in range(100):
            wakeup.announce()
        assert wakeup.generation == 100  # this process's readers hear each at once
        await asyncio.sleep(outbox.COALESCE_S * 5)
        assert transport.sent == 1
        wakeup.announce()
        await asyncio.sleep(outbox.COALESCE_S * 5)
        assert transport.sent == 2
    finally:
        await wakeup.detach()


async def test_a_reader_wakes_for_another_process_and_never_misses_an_announcement():
    wakeup = outbox.Wakeup()
    transport = RecordingTransport()
    await wakeup.attach(transport)
    try:
        seen = wakeup.generation
        waiting = asyncio.ensure_future(wakeup.changed(seen, timeout=5))
        await asyncio.sleep(0.01)
        assert transport.remote is not None
        transport.remote()
        seen = await asyncio.wait_for(waiting, 1)
        assert seen == 1
        # Announced while the reader was busy elsewhere: its next wait returns at once.
        wakeup.announce()
        assert await asyncio.wait_for(wakeup.changed(seen, timeout=5), 0.1) == 2
        # Nothing new: the wait ends with the timeout, on the same generation.
        assert await wakeup.changed(2, timeout=0.05) == 2
    finally:
        await wakeup.detach()


async def test_one_row_per_event_whatever_the_audience(runtime):
    async with runtime.engine.begin() as db:
        await outbox.publish(db, scope=outbox.Scope.conversation(uuid7()), type="test.n", payload={}, actor_id=None)

    assert len(await committed_positions(runtime)) == 1


async def test_a_reader_may_not_ask_for_an_empty_batch(runtime):
    with pytest.raises(ValueError):
        await read(runtime, 0, [outbox.Scope.user(UUID(int=1))], limit=0)
