"""The consumer: an outbox event makes its notifications once, whatever replays it or
however many consumers run; a first start begins at the present; and the rules that
weigh an intent against preferences and quiet hours."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time
from uuid import uuid4

from sqlalchemy import text

from rapport.kernel.db import system_transaction
from rapport.notifications import tasks
from rapport.notifications._consumer import Consumer, collapse, nobody_connected, read_notifying
from rapport.notifications._preferences import NotificationSettings
from rapport.notifications._rules import Intent, decide, quiet_until
from tests.messaging.support import make_conversation, send
from tests.notifications.pipeline.support import Pipeline, job_rows, notifications_of, subscribe


async def test_a_replayed_batch_makes_no_second_notification_and_no_second_job(
    client, app_engine, alice, bob, pipeline: Pipeline, push_service
):
    await pipeline.worker.stop(grace_seconds=2)  # the jobs stay in the queue, to be counted
    await subscribe(pipeline.runtime, bob, push_service.subscribe(application_server_key=None))
    conversation = await make_conversation(app_engine, alice, bob, type="direct")
    async with system_transaction(pipeline.runtime.system_engine) as db:
        before = (await db.execute(text("SELECT position FROM notifications.consumer"))).scalar_one()
    await send(client, alice, conversation, "once")
    await pipeline.consumer.catch_up()

    # The cursor goes back before the event, as if the batch's commit had been lost.
    async with system_transaction(pipeline.runtime.system_engine) as db:
        await db.execute(text("UPDATE notifications.consumer SET position = :p"), {"p": before})
    await pipeline.consumer.catch_up()

    [note] = await notifications_of(pipeline.runtime, bob)
    assert note.bundle_count == 1
    assert len(await job_rows(pipeline.runtime, tasks.push)) == 1
    assert len(await job_rows(pipeline.runtime, tasks.email_digest)) == 1
    await pipeline.use_worker()
    await pipeline.settle()


async def test_no_push_job_for_a_person_without_a_push_device(
    client, app_engine, alice, bob, carol, pipeline: Pipeline, push_service
):
    """A push has nowhere to go without an active subscription: a message to a room makes
    a push job for the member with a device only, and an in-app notification for both."""
    await pipeline.worker.stop(grace_seconds=2)  # the jobs stay in the queue, to be counted
    await subscribe(pipeline.runtime, bob, push_service.subscribe(application_server_key=None))
    room = await make_conversation(app_engine, alice, bob, carol)

    await send(client, alice, room, "who has the app?")
    await pipeline.consumer.catch_up()

    [for_bob] = await notifications_of(pipeline.runtime, bob)
    [for_carol] = await notifications_of(pipeline.runtime, carol)
    async with system_transaction(pipeline.runtime.system_engine) as db:
        pushed = await db.execute(
            text("SELECT payload->>'notification_id' FROM kernel.jobs WHERE task = :task"), {"task": tasks.push.name}
        )
        assert [row[0] for row in pushed] == [str(for_bob.id)]
    assert "who has the app?" in for_carol.body
    await pipeline.use_worker()
    await pipeline.settle()


async def test_consumers_running_together_handle_each_event_once(
    client, app_engine, alice, bob, carol, pipeline: Pipeline
):
    room = await make_conversation(app_engine, alice, bob, carol)
    others = [Consumer(pipeline.runtime.system_engine, connected=nobody_connected, batch=3) for _ in range(2)]
    for n in range(12):
        await send(client, alice, room, f"message {n}")

    await asyncio.gather(pipeline.consumer.catch_up(), *(consumer.catch_up() for consumer in others))

    for persona in (bob, carol):
        [note] = await notifications_of(pipeline.runtime, persona)
        assert note.bundle_count == 12
    await pipeline.settle()


async def test_a_first_start_begins_at_the_present(client, app_engine, alice, bob, pipeline: Pipeline):
    conversation = await make_conversation(app_engine, alice, bob, type="direct")
    await send(client, alice, conversation, "before the pipeline existed")
    # The outbox's barrier is the oldest transaction running anywhere on the server (another
    # test process's too): once the pipeline's cursor has passed the message, so has it.
    await pipeline.consumer.catch_up()

    # A cursor of another name starts afresh, as the pipeline's own did on its first start.
    fresh = Consumer(pipeline.runtime.system_engine, connected=nobody_connected, name="fresh")

    assert await fresh.consume_available() == 0  # events read
    async with system_transaction(pipeline.runtime.system_engine) as db:
        started = (await db.execute(text("SELECT position FROM notifications.consumer WHERE name = 'fresh'"))).scalar()
        sent_at = (await db.execute(text("SELECT max(position) FROM kernel.events"))).scalar()
    assert started >= sent_at


# -- the rules, pure ----------------------------------------------------------------------------


def intent(**changes: object) -> Intent:
    values: dict[str, object] = {
        "user_id": uuid4(),
        "type": "message",
        "category": "social",
        "priority": "normal",
        "source_position": 1,
    }
    values.update(changes)
    return Intent(**values)  # type: ignore[arg-type]


NIGHT = NotificationSettings(time_zone="Europe/Paris", quiet_start=time(22, 0), quiet_end=time(7, 0))
# 23:30 in Paris (UTC+1 in winter).
LATE = datetime(2026, 12, 1, 22, 30, tzinfo=UTC)


def test_quiet_hours_over_midnight_end_the_next_morning_in_the_persons_time_zone():
    assert quiet_until(NIGHT, LATE) == datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    assert quiet_until(NIGHT, datetime(2026, 12, 2, 5, 0, tzinfo=UTC)) == datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    assert quiet_until(NIGHT, datetime(2026, 12, 2, 12, 0, tzinfo=UTC)) is None


def test_quiet_hours_hold_normal_drop_low_and_let_security_through():
    held = decide(intent(), channels={"in_app", "push"}, settings=NIGHT, now=LATE)
    assert held.push and held.push_at == datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    dropped = decide(intent(priority="low"), channels={"in_app", "push"}, settings=NIGHT, now=LATE)
    assert dropped.make and dropped.in_app and not dropped.push
    security = decide(
        intent(type="security", category="security", priority="high"),
        channels={"in_app", "push", "email"},
        settings=NIGHT,
        now=LATE,
    )
    assert security.push and security.push_at is None and security.email_now and not security.digest


def test_the_digest_takes_what_is_shown_in_app_unless_turned_off():
    assert decide(intent(), channels={"in_app"}, settings=NotificationSettings(), now=LATE).digest
    off = NotificationSettings(email_digest=False)
    assert not decide(intent(), channels={"in_app"}, settings=off, now=LATE).digest
    assert not decide(intent(), channels={"push"}, settings=NotificationSettings(), now=LATE).digest
    assert not decide(intent(), channels=set(), settings=NotificationSettings(), now=LATE).make


async def test_a_batch_of_one_groups_messages_is_one_bundle_update_per_person(
    client, app_engine, alice, bob, carol, pipeline: Pipeline, push_service
):
    await pipeline.worker.stop(grace_seconds=2)  # the jobs stay in the queue, to be counted
    for persona in (bob, carol):
        await subscribe(pipeline.runtime, persona, push_service.subscribe(application_server_key=None))
    room = await make_conversation(app_engine, alice, bob, carol)
    async with system_transaction(pipeline.runtime.system_engine) as db:
        position = (await db.execute(text("SELECT position FROM notifications.consumer"))).scalar_one()
    for n in range(7):
        await send(client, alice, room, f"message {n}")
    # Once the outbox's barrier has passed all seven (another test's transaction may hold
    # it back a moment), one batch reads them together.
    async with asyncio.timeout(10):
        while True:
            async with system_transaction(pipeline.runtime.system_engine) as db:
                waiting = await read_notifying(db, position=position, limit=500)
            if len(waiting.events) == 7:
                break
            await asyncio.sleep(0.02)

    assert await pipeline.consumer.consume_batch() == (7, False)

    for persona in (bob, carol):
        [note] = await notifications_of(pipeline.runtime, persona)
        assert note.bundle_count == 7
        assert "message 6" in note.body  # the latest message speaks for the bundle
    # One push per person for the batch, not one per message.
    assert len(await job_rows(pipeline.runtime, tasks.push)) == 2
    await pipeline.use_worker()
    await pipeline.settle()


def test_collapse_keeps_the_latest_intent_of_each_bundle_in_event_order():
    def intent(user: int, group: str | None, position: int) -> Intent:
        return Intent(
            user_id=users[user],
            type="message",
            category="social",
            priority="low",
            source_position=position,
            group_key=group,
        )

    users = [uuid4() for _ in range(2)]
    intents = [
        intent(0, "message:a", 1),
        intent(1, "message:a", 1),
        intent(0, None, 2),
        intent(0, "message:a", 3),
        intent(0, "mention:a", 3),
        intent(1, "message:a", 4),
    ]

    assert collapse(intents) == [(intents[2], 1), (intents[3], 2), (intents[4], 1), (intents[5], 2)]


async def test_a_notification_that_cannot_be_made_is_passed_and_the_rest_of_its_batch_made(
    client, app_engine, alice, bob, carol, pipeline: Pipeline
):
    room = await make_conversation(app_engine, alice, bob, carol)
    broken = text("UPDATE notifications.templates SET body_text = :body WHERE type = 'mention' AND channel = 'in_app'")
    async with system_transaction(pipeline.runtime.system_engine) as db:
        original = (
            await db.execute(
                text("SELECT body_text FROM notifications.templates WHERE type = 'mention' AND channel = 'in_app'")
            )
        ).scalar_one()
        await db.execute(broken, {"body": "{{ a_name_no_notification_gives }}"})
    try:
        await send(client, alice, room, "hello @bob", mentions=[bob.user_id])
        await pipeline.consumer.catch_up()

        assert await notifications_of(pipeline.runtime, bob) == []  # the mention could not be written
        [note] = await notifications_of(pipeline.runtime, carol)
        assert note.type == "message"
    finally:
        async with system_transaction(pipeline.runtime.system_engine) as db:
            await db.execute(broken, {"body": original})
    # The consumer went on: what follows notifies as usual.
    await send(client, alice, room, "and again")
    await pipeline.consumer.catch_up()
    [note] = await notifications_of(pipeline.runtime, bob)
    assert note.type == "message"
    await pipeline.settle()
