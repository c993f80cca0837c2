"""The consumer: the outbox read from a durable cursor, turned into notifications and
their delivery jobs (docs/decisions/0018).

One row of `notifications.consumer` holds the position read up to. Each batch runs in
one system transaction (`rapport_worker`): it reads the notifying events after the
cursor, up to the outbox's safe position (docs/decisions/0012), inserts the
notifications they mean, enqueues their delivery jobs (kernel.jobs) and moves the cursor,
all or nothing. A crash before the commit leaves the cursor where it was and nothing
else: the batch is read again and makes the same notifications once. The unique
(user_id, source_position, type) of a notification is a second guard.

One consumer advances at a time, over every process: each batch first takes a
transaction-level advisory lock, and a consumer that does not get it leaves the batch to
the one that has it. (An advisory lock rather than `SELECT ... FOR UPDATE` on the cursor
row: locking a row gives the transaction an id at once, and the outbox's barrier, the
oldest running transaction id, would then stop at the consumer itself.)

It wakes on `rapport.kernel.outbox.wakeup` (events committed in this process, or
announced by another) and on a timer, which covers what nobody announced.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
import structlog
from sqlalchemy import text
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel import jobs
from rapport.kernel.db import SystemEngine, system_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import ORDINAL_BITS, Event, EventBatch, batch_of, wakeup
from rapport.notifications import _batch, _compose, _preferences, _rules
from rapport.notifications._preferences import NotificationSettings
from rapport.notifications._rules import Connected, Decision, Intent
from rapport.notifications.models import Category, EmailKind, NotificationType

log = structlog.get_logger(__name__)

# Someone's presence as realtime knows it: "online", "away", "busy", "invisible" or "offline".
StatusOf = Callable[[UUID], str]

CURSOR = "notifications"
# Read at least this often, announced or not.
POLL_S = 1.0
# After an announced read, once more this soon: the announced events may still have been
# behind the barrier of a transaction that was running (docs/decisions/0012).
RECHECK_S = 0.05
BATCH = 500
# pg_advisory_xact_lock's key for "the notifications consumer advances": any constant
# no other lock in Rapport uses ("notif" in ASCII).
_LOCK_KEY = 0x6E6F74696600

_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(:key)")
_CURSOR = text("SELECT position FROM notifications.consumer WHERE name = :name")
# A first start begins at the current safe position: history from before the pipeline
# existed notifies no one.
_START = text(
    """
    INSERT INTO notifications.consumer (name, position)
    VALUES (:name, (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << :bits) - 1)
    ON CONFLICT (name) DO NOTHING
    """
)
_MOVE = text("UPDATE notifications.consumer SET position = :position, updated_at = now() WHERE name = :name")
# Past every transaction that has ended: what a reader must reach to have read all that
# committed before it asked (transactions still running below it hold it back).
_ENDED_BELOW = text("SELECT (pg_snapshot_xmax(pg_current_snapshot())::text::bigint << :bits) - 1")

# The read of kernel.rapport's outbox after a position, as rapport.kernel.outbox.read_after
# does it (the barrier and the read in one statement, hence one snapshot), for every
# scope but only the types that notify: the consumer never loads the typing-speed stream
# of reactions, receipts and edits.
_READ = text(
    """
    WITH barrier AS (
        SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint << :bits AS safe
    )
    SELECT barrier.safe, e.position, e.scope_kind, e.scope_id, e.type, e.payload, e.actor_id, e.created_at
      FROM barrier
      LEFT JOIN LATERAL (
          SELECT *
            FROM kernel.events
           WHERE position > :after AND position < barrier.safe AND type = ANY(CAST(:types AS text[]))
           ORDER BY position
           LIMIT :limit
      ) e ON true
     ORDER BY e.position
    """
)


async def read_notifying(db: AsyncConnection, *, position: int, limit: int) -> EventBatch:
    """The notifying events after `position`, oldest first, and where to resume (as
    `rapport.kernel.outbox.read_after`)."""
    rows = (
        await db.execute(
            _READ, {"bits": ORDINAL_BITS, "after": position, "types": list(_rules.EVENT_TYPES), "limit": limit}
        )
    ).all()
    return batch_of(rows, after=position, limit=limit)


async def committed_position(db: AsyncConnection) -> int:
    """A position past every event committed so far (once the transactions still running
    below it end, the safe position passes it)."""
    return int((await db.execute(_ENDED_BELOW, {"bits": ORDINAL_BITS})).scalar_one())


# -- what a recipient has chosen --------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    language: str
    settings: NotificationSettings


async def get_recipient(db: AsyncConnection, *, user_id: UUID) -> Recipient:
    profile = await _rules.profile_of(db, user_id)
    code = profile.language_code if profile is not None else None
    settings = await _preferences.get_notification_settings(db, user_id=user_id)
    return Recipient(language=_compose.language_of(code), settings=settings)


async def effective_channels(
    db: AsyncConnection, *, user_id: UUID, type: NotificationType, category: Category
) -> set[str]:
    """The channels a person has on for a type and category: the most specific choice
    wins over the defaults (rapport.notifications._preferences)."""
    return set(await _preferences.channels_for(db, user_id=user_id, type=type, category=category))


# -- recording a notification -------------------------------------------------------------------

_UNREAD_OF_GROUP = text(
    """
    SELECT id, bundle_count FROM notifications.notifications
     WHERE user_id = :user_id AND group_key = :group_key AND NOT is_read
     ORDER BY created_at DESC, id DESC
     LIMIT 1
     FOR UPDATE
    """
)
_BUNDLE = text(
    """
    UPDATE notifications.notifications
       SET bundle_count = bundle_count + :count, title = :title, body = :body, priority = :priority,
           actor_id = :actor_id, related_id = :related_id, data = CAST(:data AS jsonb),
           source_position = :source_position, created_at = now()
     WHERE id = :id AND NOT is_read AND source_position < :source_position
    RETURNING id
    """
)
_INSERT = text(
    """
    INSERT INTO notifications.notifications (
        id, user_id, type, category, priority, title, body, action_url, actor_id, conversation_id,
        related_kind, related_id, data, group_key, bundle_count, source_position, is_read, read_at)
    VALUES (
        :id, :user_id, :type, :category, :priority, :title, :body, :action_url, :actor_id, :conversation_id,
        :related_kind, :related_id, CAST(:data AS jsonb), :group_key, :count, :source_position, :is_read,
        CASE WHEN :is_read THEN now() END)
    ON CONFLICT DO NOTHING
    RETURNING id
    """
)
# A bundle that grew is pushed again, once: its delivery rows start over (a row still
# being sent keeps its state; the job sending it finishes it).
_REARM_PUSH = text(
    """
    UPDATE notifications.push_delivery_log
       SET status = 'pending', http_status = NULL, error = NULL, sent_at = NULL, time_to_deliver_ms = NULL,
           created_at = now()
     WHERE notification_id = :id AND status IN ('sent', 'delivered', 'failed')
    """
)
_PENDING_DIGEST = text(
    "SELECT id FROM notifications.email_notifications WHERE user_id = :user_id AND kind = 'digest' "
    "   AND status = 'pending' LIMIT 1"
)
_NEW_EMAIL = text(
    """
    INSERT INTO notifications.email_notifications (id, user_id, kind, notification_ids, subject, status, due_at)
    VALUES (:id, :user_id, :kind, CAST(:ids AS uuid[]), '', 'pending', :due_at)
    """
)


async def record(
    db: AsyncConnection, intent: Intent, *, decision: Decision, recipient: Recipient, now: datetime, count: int = 1
) -> UUID | None:
    """Insert (or bundle) the notification and enqueue its deliveries, in the consumer's
    transaction; its id, or None when it already existed (a replayed event). `count`: how
    many events of one batch the intent stands for (see `collapse`)."""
    from rapport.notifications import tasks

    existing = None
    if intent.group_key is not None and decision.in_app:
        existing = (
            await db.execute(_UNREAD_OF_GROUP, {"user_id": intent.user_id, "group_key": intent.group_key})
        ).one_or_none()
    total = existing.bundle_count + count if existing is not None else count
    context: dict[str, Any] = {**intent.context, "count": total, "action_url": intent.url or ""}
    rendered = await _compose.compose(
        db, type=intent.type, channel="in_app", language=recipient.language, context=context
    )
    title = rendered.subject or rendered.text.split("\n", 1)[0]
    body = rendered.text
    data = orjson.dumps({key: value for key, value in context.items() if isinstance(value, str)}).decode()
    common = {
        "title": title,
        "body": body,
        "priority": intent.priority,
        "actor_id": intent.actor_id,
        "related_id": intent.related_id,
        "data": data,
        "source_position": intent.source_position,
        "count": count,
    }
    notification_id: UUID | None = None
    bundled = False
    if existing is not None:
        notification_id = (await db.execute(_BUNDLE, {"id": existing.id, **common})).scalar_one_or_none()
        bundled = notification_id is not None
    if notification_id is None:
        notification_id = (
            await db.execute(
                _INSERT,
                {
                    "id": uuid7(),
                    "user_id": intent.user_id,
                    "type": intent.type,
                    "category": intent.category,
                    "action_url": intent.url,
                    "conversation_id": intent.conversation_id,
                    "related_kind": intent.related_kind,
                    "group_key": intent.group_key,
                    "is_read": not decision.in_app,
                    **common,
                },
            )
        ).scalar_one_or_none()
        if notification_id is None:
            return None
    if decision.push:
        if bundled:
            await db.execute(_REARM_PUSH, {"id": notification_id})
        await jobs.enqueue(db, tasks.push, {"notification_id": str(notification_id)}, run_at=decision.push_at)
    if decision.sms and not bundled:
        await jobs.enqueue(db, tasks.sms, {"notification_id": str(notification_id)}, run_at=decision.push_at)
    if decision.email_now:
        email_id = await new_email(db, user_id=intent.user_id, kind="notification", ids=[notification_id], due_at=now)
        await jobs.enqueue(db, tasks.email, {"email_id": str(email_id)})
    if decision.digest:
        delay = timedelta(minutes=recipient.settings.digest_delay_minutes)
        await schedule_digest(db, user_id=intent.user_id, due_at=now + delay)
    return notification_id


async def schedule_digest(db: AsyncConnection, *, user_id: UUID, due_at: datetime) -> None:
    """A digest for this person at `due_at`, unless one is already waiting: that one will
    list this notification too. (Only the consumer schedules digests, one batch at a
    time, so the look and the insert cannot race.)"""
    from rapport.notifications import tasks

    if (await db.execute(_PENDING_DIGEST, {"user_id": user_id})).first() is not None:
        return
    email_id = await new_email(db, user_id=user_id, kind="digest", ids=[], due_at=due_at)
    await jobs.enqueue(db, tasks.email_digest, {"email_id": str(email_id)}, run_at=due_at)


async def new_email(db: AsyncConnection, *, user_id: UUID, kind: EmailKind, ids: list[UUID], due_at: datetime) -> UUID:
    """A pending row of `email_notifications`: one notification mailed at once, or a
    digest whose notifications are listed when it is sent."""
    email_id = uuid7()
    await db.execute(_NEW_EMAIL, {"id": email_id, "user_id": user_id, "kind": kind, "ids": ids, "due_at": due_at})
    return email_id


# -- the consumer -------------------------------------------------------------------------------

# What fails the whole batch, to be read again: the database could not be reached or
# answered with trouble. An event whose rows the database refuses (IntegrityError,
# DataError: a bug that would refuse them again) is passed, logged.
_DATABASE_TROUBLE = (OperationalError, InterfaceError, OSError, TimeoutError)
_REFUSED = (IntegrityError, DataError)


def collapse(intents: list[Intent]) -> list[tuple[Intent, int]]:
    """A batch's intents with those of one bundle (one person, one group key) made one: the
    latest stands for them, with how many it stands for. Forty messages to a busy group
    read in one batch are one update of each member's bundle, not forty: under load,
    batches grow and the cost per message falls. Intents of no group stay one each; the
    order is the events' (a bundle at its latest event's place)."""
    latest: dict[tuple[UUID, str], int] = {}
    counts: dict[tuple[UUID, str], int] = {}
    for i, intent in enumerate(intents):
        if intent.group_key is not None:
            key = (intent.user_id, intent.group_key)
            latest[key] = i
            counts[key] = counts.get(key, 0) + 1
    kept = []
    for i, intent in enumerate(intents):
        if intent.group_key is None:
            kept.append((intent, 1))
        elif latest[(intent.user_id, intent.group_key)] == i:
            kept.append((intent, counts[(intent.user_id, intent.group_key)]))
    return kept


@contextlib.contextmanager
def _passed_when_refused(what: str, **where: Any) -> Iterator[None]:
    """Log and pass what the database refuses (IntegrityError, DataError: a bug that would
    refuse it again) or what fails in Python; let database trouble through, to fail the
    batch."""
    try:
        yield
    except _DATABASE_TROUBLE:
        raise
    except SQLAlchemyError as exc:
        if not isinstance(exc, _REFUSED):
            raise
        log.exception(what.replace("failed", "refused"), **where)
    except Exception:
        log.exception(what, **where)


class Consumer:
    """Reads the outbox into notifications until stopped. `connected` says who of some
    people has a device present now (realtime presence)."""

    def __init__(
        self,
        system_engine: SystemEngine,
        *,
        connected: Connected,
        name: str = CURSOR,
        batch: int = BATCH,
        poll_s: float = POLL_S,
    ) -> None:
        self._engine = system_engine
        self._connected = connected
        self._name = name
        self._batch = batch
        self._poll_s = poll_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="rapport-notifications-consumer")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def consume_batch(self) -> tuple[int, bool] | None:
        """One batch, in one transaction: how many events it read and whether more may
        wait; None when another consumer holds the lock."""
        now = datetime.now(UTC)
        async with system_transaction(self._engine) as db:
            if not (await db.execute(_TRY_LOCK, {"key": _LOCK_KEY})).scalar_one():
                return None
            position = (await db.execute(_CURSOR, {"name": self._name})).scalar_one_or_none()
            if position is None:
                await db.execute(_START, {"name": self._name, "bits": ORDINAL_BITS})
                position = (await db.execute(_CURSOR, {"name": self._name})).scalar_one()
            batch = await read_notifying(db, position=position, limit=self._batch)
            memo = _rules.Memo()
            intents: list[Intent] = []
            for event in batch.events:
                intents.extend(await self._intents(db, event, memo))
            await self._notify_all(db, collapse(intents), now=now)
            if batch.position != position:
                await db.execute(_MOVE, {"name": self._name, "position": batch.position})
        return len(batch.events), len(batch.events) == self._batch

    async def _intents(self, db: AsyncConnection, event: Event, memo: _rules.Memo) -> list[Intent]:
        """What one event means, read in a savepoint: an event that cannot be read into
        intents is logged and passed, rather than holding every later one back. Database
        trouble fails the whole batch, which is read again."""
        intents: list[Intent] = []
        with _passed_when_refused("notifications.event_failed", position=event.position, type=event.type):
            async with db.begin_nested():
                intents = await _rules.intents_for(db, event, connected=self._connected, memo=memo)
        return intents

    async def _notify_all(self, db: AsyncConnection, collapsed: list[tuple[Intent, int]], *, now: datetime) -> None:
        """A batch's intents weighed against their recipients' choices and recorded
        together (rapport.notifications._batch). Should the database refuse the batch's
        statements, or a template fail, each intent is tried alone instead, so that one
        bad notification is logged and passed rather than holding up every other."""
        if not collapsed:
            return
        people = await _batch.recipients(db, {intent.user_id for intent, _ in collapsed})
        planned = []
        for intent, count in collapsed:
            recipient = people[intent.user_id]
            channels = _batch.channels_of(recipient, intent)
            decision = _rules.decide(intent, channels=channels, settings=recipient.settings, now=now)
            if decision.make:
                planned.append(_batch.Planned(intent, count, decision, recipient))
        try:
            async with db.begin_nested():
                await _batch.record_many(db, planned, now=now)
        except _DATABASE_TROUBLE:
            raise
        except Exception:
            log.exception("notifications.batch_refused", intents=len(planned))
            for p in planned:
                await self._notify(db, p.intent, count=p.count, now=now)

    async def _notify(self, db: AsyncConnection, intent: Intent, *, count: int, now: datetime) -> None:
        """One (collapsed) intent weighed against its recipient's choices and recorded, in a
        savepoint: a notification that cannot be made (a broken template) is logged and
        passed."""
        with _passed_when_refused(
            "notifications.intent_failed", position=intent.source_position, user_id=str(intent.user_id)
        ):
            async with db.begin_nested():
                # The person's channels as a batch weighs them (their choices, push only
                # with a device), read for this person alone.
                choices = (await _batch.recipients(db, [intent.user_id]))[intent.user_id]
                channels = _batch.channels_of(choices, intent)
                recipient = await get_recipient(db, user_id=intent.user_id)
                decision = _rules.decide(intent, channels=channels, settings=recipient.settings, now=now)
                if decision.make:
                    await record(db, intent, decision=decision, recipient=recipient, now=now, count=count)

    async def consume_available(self) -> int:
        """Read until the cursor reaches the safe position; how many events were read here."""
        total = 0
        while True:
            done = await self.consume_batch()
            if done is None:
                return total
            count, more = done
            total += count
            if not more:
                return total

    async def catch_up(self, *, within: float = 10.0) -> None:
        """Return once the cursor has passed everything committed before the call, by
        this consumer or another (tests wait on it before looking for notifications).

        Raises:
            TimeoutError: it did not within `within` seconds.
        """
        async with system_transaction(self._engine) as db:
            target = await committed_position(db)
        async with asyncio.timeout(within):
            while True:
                await self.consume_available()
                async with system_transaction(self._engine) as db:
                    reached = (await db.execute(_CURSOR, {"name": self._name})).scalar_one_or_none()
                if reached is not None and reached >= target:
                    return
                await asyncio.sleep(0.02)

    async def _run(self) -> None:
        seen = wakeup.generation
        timeout = self._poll_s
        while True:
            try:
                await self.consume_available()
            except Exception:  # the database went away for a moment: the timer retries
                log.warning("notifications.consumer.read_failed", exc_info=True)
            before = seen
            seen = await wakeup.changed(seen, timeout=timeout)
            timeout = RECHECK_S if seen != before else self._poll_s


def connected_from(status_of: StatusOf) -> Connected:
    """A `Connected` over a realtime presence book's `status_of(user_id)`: someone with a
    device present anywhere (online, away, busy, or invisible: they are there, hiding)."""

    def connected(user_ids: Collection[UUID]) -> set[UUID]:
        return {user_id for user_id in user_ids if status_of(user_id) != "offline"}

    return connected


def nobody_connected(user_ids: Collection[UUID]) -> set[UUID]:
    """Presence unknown (no realtime in this process): everyone counts as away."""
    return set()
