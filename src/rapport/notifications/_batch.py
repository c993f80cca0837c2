"""A batch's notifications recorded together: a fixed handful of statements per batch,
whatever the number of people (docs/decisions/0018).

Per batch, not per person: the recipients' languages, choices and settings are read in one
statement each, their unread bundles in one, the bundles that grow are updated in one and
the new notifications inserted in one, and the delivery jobs and digests that follow are
enqueued in one each. A group of 60 people away, 40 messages in a batch: once per batch
rather than 2,400 times a round of five statements (60 bundles updated in one).

What it decides is what `_consumer.record` decides for one intent; the consumer falls
back to that, intent by intent, when a batch's statements are refused (a bug shows up as
one logged intent, not as a stalled pipeline).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel import jobs
from rapport.kernel.ids import uuid7
from rapport.notifications import _compose, _preferences
from rapport.notifications._compose import Template
from rapport.notifications._preferences import DEFAULT_SETTINGS, NotificationSettings, Preference
from rapport.notifications._rules import Decision, Intent
from rapport.social import service as social_service

_USERS = ARRAY(PG_UUID(as_uuid=True))


@dataclass(frozen=True)
class Recipient:
    language: str
    settings: NotificationSettings
    preferences: tuple[Preference, ...]
    # An active push subscription on some device: without one, a push has nowhere to go,
    # and a job per notification to find that out is what a message to a large channel
    # would cost for every member without the app.
    has_push_device: bool = False


@dataclass(frozen=True)
class Planned:
    """An intent (standing for `count` events of one batch) and what becomes of it."""

    intent: Intent
    count: int
    decision: Decision
    recipient: Recipient


_SETTINGS = text(
    """
    SELECT user_id, time_zone, quiet_start, quiet_end, digest_delay_minutes, email_digest
      FROM notifications.settings WHERE user_id = ANY(:users)
    """
).bindparams(bindparam("users", type_=_USERS))
_PUSH_DEVICES = text(
    "SELECT DISTINCT user_id FROM notifications.push_subscriptions WHERE user_id = ANY(:users) AND is_active"
).bindparams(bindparam("users", type_=_USERS))
_PREFERENCES = text(
    "SELECT user_id, type, category, channel, enabled FROM notifications.preferences"
    " WHERE user_id = ANY(:users) ORDER BY id"
).bindparams(bindparam("users", type_=_USERS))


async def recipients(db: AsyncConnection, user_ids: Collection[UUID]) -> dict[UUID, Recipient]:
    """Each person's language (from their profile, through the social domain), settings,
    choices and whether they have a push device: four statements for everyone."""
    users = list(user_ids)
    saved = {
        row.user_id: NotificationSettings(
            time_zone=row.time_zone,
            quiet_start=row.quiet_start,
            quiet_end=row.quiet_end,
            digest_delay_minutes=row.digest_delay_minutes,
            email_digest=row.email_digest,
        )
        for row in await db.execute(_SETTINGS, {"users": users})
    }
    chosen: dict[UUID, list[Preference]] = {}
    for row in await db.execute(_PREFERENCES, {"users": users}):
        chosen.setdefault(row.user_id, []).append(
            Preference(type=row.type, category=row.category, channel=row.channel, enabled=row.enabled)
        )
    languages = await social_service.list_languages(db, user_ids=users)
    with_push = {row.user_id for row in await db.execute(_PUSH_DEVICES, {"users": users})}
    return {
        user_id: Recipient(
            language=_compose.language_of(languages.get(user_id)),
            settings=saved.get(user_id, DEFAULT_SETTINGS),
            preferences=tuple(chosen.get(user_id, ())),
            has_push_device=user_id in with_push,
        )
        for user_id in users
    }


def channels_of(recipient: Recipient, intent: Intent) -> set[str]:
    """The channels the person chose for the intent, less push when no device of theirs
    can receive one."""
    channels: set[str] = set(_preferences.effective_channels(recipient.preferences, intent.type, intent.category))
    if not recipient.has_push_device:
        channels.discard("push")
    return channels


# The newest unread notification of each (person, group) asked about: the bundle that grows.
_UNREAD_OF_GROUPS = text(
    """
    SELECT DISTINCT ON (n.user_id, n.group_key) n.user_id, n.group_key, n.id, n.bundle_count
      FROM unnest(CAST(:users AS uuid[]), CAST(:groups AS text[])) AS k(user_id, group_key)
      JOIN notifications.notifications n ON n.user_id = k.user_id AND n.group_key = k.group_key AND NOT n.is_read
     ORDER BY n.user_id, n.group_key, n.created_at DESC, n.id DESC
    """
)
# A bundle read since it was looked at (by its person, at that moment) is left alone: the
# intent becomes a new notification instead, as one event alone would.
_BUNDLE_MANY = text(
    """
    UPDATE notifications.notifications n
       SET bundle_count = n.bundle_count + v.count, title = v.title, body = v.body, priority = v.priority,
           actor_id = v.actor_id, related_id = v.related_id, data = CAST(v.data AS jsonb),
           source_position = v.source_position, created_at = now()
      FROM unnest(CAST(:ids AS uuid[]), CAST(:counts AS integer[]), CAST(:titles AS text[]),
                  CAST(:bodies AS text[]), CAST(:priorities AS text[]), CAST(:actors AS uuid[]),
                  CAST(:related AS uuid[]), CAST(:datas AS text[]), CAST(:positions AS bigint[]))
           AS v(id, count, title, body, priority, actor_id, related_id, data, source_position)
     WHERE n.id = v.id AND NOT n.is_read AND n.source_position < v.source_position
    RETURNING n.id
    """
)
_INSERT_MANY = text(
    """
    INSERT INTO notifications.notifications (
        id, user_id, type, category, priority, title, body, action_url, actor_id, conversation_id,
        related_kind, related_id, data, group_key, bundle_count, source_position, is_read, read_at)
    SELECT v.id, v.user_id, v.type, v.category, v.priority, v.title, v.body, v.action_url, v.actor_id,
           v.conversation_id, v.related_kind, v.related_id, CAST(v.data AS jsonb), v.group_key, v.count,
           v.source_position, v.is_read, CASE WHEN v.is_read THEN now() END
      FROM unnest(CAST(:ids AS uuid[]), CAST(:users AS uuid[]), CAST(:types AS text[]), CAST(:categories AS text[]),
                  CAST(:priorities AS text[]), CAST(:titles AS text[]), CAST(:bodies AS text[]),
                  CAST(:urls AS text[]), CAST(:actors AS uuid[]), CAST(:conversations AS uuid[]),
                  CAST(:kinds AS text[]), CAST(:related AS uuid[]), CAST(:datas AS text[]), CAST(:groups AS text[]),
                  CAST(:counts AS integer[]), CAST(:positions AS bigint[]), CAST(:reads AS boolean[]))
           AS v(id, user_id, type, category, priority, title, body, action_url, actor_id, conversation_id,
                related_kind, related_id, data, group_key, count, source_position, is_read)
    ON CONFLICT DO NOTHING
    RETURNING id
    """
)
_REARM_PUSH_MANY = text(
    """
    UPDATE notifications.push_delivery_log
       SET status = 'pending', http_status = NULL, error = NULL, sent_at = NULL, time_to_deliver_ms = NULL,
           created_at = now()
     WHERE notification_id = ANY(:ids) AND status IN ('sent', 'delivered', 'failed')
    """
).bindparams(bindparam("ids", type_=_USERS))
_PENDING_DIGESTS = text(
    "SELECT DISTINCT user_id FROM notifications.email_notifications"
    " WHERE user_id = ANY(:users) AND kind = 'digest' AND status = 'pending'"
).bindparams(bindparam("users", type_=_USERS))
_NEW_DIGESTS = text(
    """
    INSERT INTO notifications.email_notifications (id, user_id, kind, notification_ids, subject, status, due_at)
    SELECT v.id, v.user_id, 'digest', '{}', '', 'pending', v.due_at
      FROM unnest(CAST(:ids AS uuid[]), CAST(:users AS uuid[]), CAST(:due AS timestamptz[])) AS v(id, user_id, due_at)
    """
)


@dataclass
class _Row:
    """A notification about to be written: the columns, and the planned intent it is for."""

    planned: Planned
    id: UUID
    title: str
    body: str
    data: str
    bundle_of: UUID | None  # the unread notification it adds to, if any


class _Templates:
    """Templates read once per batch, per (type, channel, language)."""

    def __init__(self, db: AsyncConnection) -> None:
        self._db = db
        self._found: dict[tuple[str, str], Template] = {}

    async def render(self, type: str, language: str, context: dict[str, Any]) -> tuple[str, str]:
        key = (type, language)
        if key not in self._found:
            self._found[key] = await _compose.get_template(self._db, type=type, channel="in_app", language=language)
        rendered = _compose.render(self._found[key], context)
        return rendered.subject or rendered.text.split("\n", 1)[0], rendered.text


async def _row(planned: Planned, templates: _Templates, *, total: int, bundle_of: UUID | None) -> _Row:
    intent = planned.intent
    context: dict[str, Any] = {**intent.context, "count": total, "action_url": intent.url or ""}
    title, body = await templates.render(intent.type, planned.recipient.language, context)
    data = orjson.dumps({key: value for key, value in context.items() if isinstance(value, str)}).decode()
    return _Row(planned, uuid7() if bundle_of is None else bundle_of, title, body, data, bundle_of)


async def record_many(db: AsyncConnection, planned: Sequence[Planned], *, now: datetime) -> None:
    """Insert or bundle every planned notification and enqueue what follows, in a few
    statements (see the module's docstring)."""
    from rapport.notifications import tasks

    if not planned:
        return
    templates = _Templates(db)
    grouped = [p for p in planned if p.intent.group_key is not None and p.decision.in_app]
    existing: dict[tuple[UUID, str], tuple[UUID, int]] = {}
    if grouped:
        rows = await db.execute(
            _UNREAD_OF_GROUPS,
            {"users": [p.intent.user_id for p in grouped], "groups": [p.intent.group_key for p in grouped]},
        )
        existing = {(row.user_id, row.group_key): (row.id, row.bundle_count) for row in rows}

    bundles: list[_Row] = []
    fresh: list[_Row] = []
    for p in planned:
        found = existing.get((p.intent.user_id, p.intent.group_key or "")) if p.decision.in_app else None
        if found is not None:
            bundles.append(await _row(p, templates, total=found[1] + p.count, bundle_of=found[0]))
        else:
            fresh.append(await _row(p, templates, total=p.count, bundle_of=None))

    grown: set[UUID] = set()
    if bundles:
        result = await db.execute(
            _BUNDLE_MANY,
            {
                "ids": [r.id for r in bundles],
                "counts": [r.planned.count for r in bundles],
                "titles": [r.title for r in bundles],
                "bodies": [r.body for r in bundles],
                "priorities": [r.planned.intent.priority for r in bundles],
                "actors": [r.planned.intent.actor_id for r in bundles],
                "related": [r.planned.intent.related_id for r in bundles],
                "datas": [r.data for r in bundles],
                "positions": [r.planned.intent.source_position for r in bundles],
            },
        )
        grown = {row[0] for row in result}
        # Read (or replayed past) since the look: a notification of its own instead.
        unread_since = [r.planned for r in bundles if r.id not in grown]
        fresh.extend([await _row(p, templates, total=p.count, bundle_of=None) for p in unread_since])
    made: set[UUID] = set()
    if fresh:
        result = await db.execute(
            _INSERT_MANY,
            {
                "ids": [r.id for r in fresh],
                "users": [r.planned.intent.user_id for r in fresh],
                "types": [r.planned.intent.type for r in fresh],
                "categories": [r.planned.intent.category for r in fresh],
                "priorities": [r.planned.intent.priority for r in fresh],
                "titles": [r.title for r in fresh],
                "bodies": [r.body for r in fresh],
                "urls": [r.planned.intent.url for r in fresh],
                "actors": [r.planned.intent.actor_id for r in fresh],
                "conversations": [r.planned.intent.conversation_id for r in fresh],
                "kinds": [r.planned.intent.related_kind for r in fresh],
                "related": [r.planned.intent.related_id for r in fresh],
                "datas": [r.data for r in fresh],
                "groups": [r.planned.intent.group_key for r in fresh],
                "counts": [r.planned.count for r in fresh],
                "positions": [r.planned.intent.source_position for r in fresh],
                "reads": [not r.planned.decision.in_app for r in fresh],
            },
        )
        made = {row[0] for row in result}
    await _follow(
        db,
        [r for r in bundles if r.id in grown],
        [r for r in fresh if r.id in made],
        tasks=tasks,
        now=now,
    )


async def _follow(db: AsyncConnection, grown: list[_Row], made: list[_Row], *, tasks: Any, now: datetime) -> None:
    """The deliveries of what was written: push (again, once, for a bundle that grew), SMS
    for a new one, e-mail at once (security), and a digest for whoever has none waiting."""
    from rapport.notifications._consumer import new_email

    rearmed = [r.id for r in grown if r.planned.decision.push]
    if rearmed:
        await db.execute(_REARM_PUSH_MANY, {"ids": rearmed})
    queued: list[tuple[jobs.Task, dict[str, Any], datetime | None]] = []
    for r in [*grown, *made]:
        decision = r.planned.decision
        if decision.push:
            queued.append((tasks.push, {"notification_id": str(r.id)}, decision.push_at))
        if decision.sms and r.bundle_of is None:
            queued.append((tasks.sms, {"notification_id": str(r.id)}, decision.push_at))
        if decision.email_now:
            user_id = r.planned.intent.user_id
            email_id = await new_email(db, user_id=user_id, kind="notification", ids=[r.id], due_at=now)
            queued.append((tasks.email, {"email_id": str(email_id)}, None))
    wanting = {r.planned.intent.user_id: r.planned for r in [*grown, *made] if r.planned.decision.digest}
    if wanting:
        waiting = {row[0] for row in await db.execute(_PENDING_DIGESTS, {"users": list(wanting)})}
        due = {
            user_id: now + timedelta(minutes=p.recipient.settings.digest_delay_minutes)
            for user_id, p in wanting.items()
            if user_id not in waiting
        }
        if due:
            ids = [uuid7() for _ in due]
            await db.execute(_NEW_DIGESTS, {"ids": ids, "users": list(due), "due": list(due.values())})
            digests = zip(ids, due.values(), strict=True)
            queued.extend((tasks.email_digest, {"email_id": str(email_id)}, at) for email_id, at in digests)
    await jobs.enqueue_many(db, queued)
