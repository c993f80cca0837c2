"""Who hears what: from one outbox event to the notifications it makes.

The outbox events that notify:

- `message.created` (a conversation's): every participant who takes part and is not
  connected (realtime presence: no device anywhere) hears of it, as a `message`
  (priority normal in a direct conversation, low elsewhere) or, when the message mentions
  them, as a `mention` (priority high). Never the sender, never someone who muted the
  conversation (`participants.is_muted`), never someone who blocks or is blocked by the
  sender. Bundled per conversation: one unread notification per conversation and person,
  counting the messages.
- `contact_request.received` (the addressee's): the addressee, unless a block stands.
- `reminder.due` (a person's own, published by any domain when something they have to
  do is due, such as a co-parenting task): that person, connected or not, as a `system`
  notification with the payload's headline and detail.
- `account.new_device` and `account.password_changed` (the account's own, published by
  identity), and `account.suspicious_sign_in` (published by location, worded by it):
  the account holder, connected or not, whoever acted (it is often themself): security
  notifications tell of what they did too, so that they notice what they did not.
- `match.proposed` (a person's, published by matching's daily job: the day and how many
  new people): that person, connected or not, as a `match` notification (priority
  normal), one per day however many runs topped it up.
- `match.mutual` (each of the two people's, published by matching when the second like
  makes a match mutual): that person, as a `match` notification (priority high) naming
  the other and leading to their conversation, unless a block stands between them.
  `match.liked` notifies no one: matching publishes it to the person who liked, on their
  own devices, and the person liked is never sent an event of it (a paid tier reads who
  liked them from GET /v1/matching/likes/received).

Each is then weighed against the recipient's preferences (`_preferences.channels_for`,
the most specific choice winning) and settings (`decide`): the row is made when any
channel is on (already read when in-app is off, so that push and e-mail have something
to refer to); push and SMS go out at once, wait for the end of quiet hours (normal and
high priority), or are dropped during them (low priority); security and urgent
notifications ignore quiet hours. E-mail is immediate for security notifications;
every other unread notification waits for the digest, when the person keeps it on.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.errors import NotFound
from rapport.kernel.outbox import Event
from rapport.messaging import service as messaging_service
from rapport.notifications._compose import preview
from rapport.notifications._preferences import NotificationSettings, in_quiet_hours
from rapport.notifications.models import Category, NotificationType, Priority
from rapport.social import service as social_service

# The outbox event types this module turns into notifications; the consumer reads only these.
MESSAGE_CREATED = "message.created"
CONTACT_REQUEST_RECEIVED = "contact_request.received"
NEW_DEVICE = "account.new_device"
PASSWORD_CHANGED = "account.password_changed"
REMINDER_DUE = "reminder.due"
SUSPICIOUS_SIGN_IN = "account.suspicious_sign_in"
MATCH_PROPOSED = "match.proposed"
MATCH_MUTUAL = "match.mutual"
EVENT_TYPES = (
    MESSAGE_CREATED,
    CONTACT_REQUEST_RECEIVED,
    NEW_DEVICE,
    PASSWORD_CHANGED,
    REMINDER_DUE,
    SUSPICIOUS_SIGN_IN,
    MATCH_PROPOSED,
    MATCH_MUTUAL,
)

# Of a list of people, those connected now (a device present anywhere).
Connected = Callable[[Collection[UUID]], set[UUID]]

UNKNOWN_ACTOR = "Someone"


@dataclass(frozen=True)
class Intent:
    """A notification one event means for one person, before their preferences."""

    user_id: UUID
    type: NotificationType
    category: Category
    priority: Priority
    source_position: int
    actor_id: UUID | None = None
    conversation_id: UUID | None = None
    related_kind: str | None = None
    related_id: UUID | None = None
    group_key: str | None = None
    url: str | None = None
    # Strings for the templates (see _compose); `count` and `title`/`body` are added later.
    context: Mapping[str, str] = field(default_factory=dict)


# -- the events -------------------------------------------------------------------------

# social.is_blocked is the check every domain asks (docs/decisions/0009), one call per
# person in one statement.
_BLOCKED = text("SELECT u FROM unnest(CAST(:users AS uuid[])) AS u WHERE social.is_blocked(:actor, u)").bindparams(
    bindparam("users", type_=ARRAY(PG_UUID(as_uuid=True)))
)


async def blocked_among(db: AsyncConnection, *, actor_id: UUID, user_ids: Collection[UUID]) -> set[UUID]:
    """Those of `user_ids` who block the actor or whom the actor blocks (system work)."""
    if not user_ids:
        return set()
    rows = await db.execute(_BLOCKED, {"users": list(user_ids), "actor": actor_id})
    return {row[0] for row in rows}


@dataclass(frozen=True)
class Person:
    """What a notification says of someone, and in which language it speaks to them."""

    name: str
    language_code: str | None


async def profile_of(db: AsyncConnection, user_id: UUID) -> Person | None:
    """Someone's name and language from their profile (system work sees every one), or
    None for no account."""
    try:
        profile = await social_service.access_profile(db, user_id=user_id)
    except NotFound:
        return None
    return Person(name=profile.display_name or UNKNOWN_ACTOR, language_code=profile.language_code)


async def display_name(db: AsyncConnection, user_id: UUID | None) -> str:
    person = await profile_of(db, user_id) if user_id is not None else None
    return person.name if person is not None else UNKNOWN_ACTOR


@dataclass
class Memo:
    """What one batch of events reads once: each conversation's participants, whether a
    sender blocks or is blocked by some people, a sender's name. Within one transaction."""

    participants: dict[UUID, dict[UUID, bool]] = field(default_factory=dict)
    blocked: dict[tuple[UUID, frozenset[UUID]], set[UUID]] = field(default_factory=dict)
    names: dict[UUID, str] = field(default_factory=dict)


async def intents_for(
    db: AsyncConnection, event: Event, *, connected: Connected, memo: Memo | None = None
) -> list[Intent]:
    """The notifications an event means, for whom (system work, in the consumer's
    transaction). Events of other types mean none."""
    if event.type == MESSAGE_CREATED and event.scope_kind == "conversation":
        return await _message_intents(db, event, connected=connected, memo=memo or Memo())
    if event.type == CONTACT_REQUEST_RECEIVED and event.scope_kind == "user":
        return await _contact_request_intents(db, event)
    if event.type in (NEW_DEVICE, PASSWORD_CHANGED) and event.scope_kind == "user":
        return [_security_intent(event)]
    if event.type == REMINDER_DUE and event.scope_kind == "user":
        return [_reminder_intent(event)]
    if event.type == SUSPICIOUS_SIGN_IN and event.scope_kind == "user":
        return [_suspicious_sign_in_intent(event)]
    if event.type == MATCH_PROPOSED and event.scope_kind == "user":
        return _match_proposed_intents(event)
    if event.type == MATCH_MUTUAL and event.scope_kind == "user":
        return await _match_mutual_intents(db, event)
    return []


async def _message_intents(db: AsyncConnection, event: Event, *, connected: Connected, memo: Memo) -> list[Intent]:
    payload = event.payload
    sender_id = _uuid(payload.get("sender_id")) or event.actor_id
    seq = payload.get("seq")
    message_id = _uuid(payload.get("message_id"))
    if sender_id is None or message_id is None or not isinstance(seq, int):
        return []
    conversation_id = event.scope_id
    message = await messaging_service.get_message_audience(
        db,
        conversation_id=conversation_id,
        seq=seq,
        message_id=message_id,
        sender_id=sender_id,
        participants=memo.participants,
    )
    if message is None:
        return []
    candidates = {user_id for user_id, muted in message.muted.items() if not muted}
    if not candidates:
        return []
    candidates -= connected(candidates)
    asked = (sender_id, frozenset(candidates))
    if asked not in memo.blocked:
        memo.blocked[asked] = await blocked_among(db, actor_id=sender_id, user_ids=candidates)
    candidates -= memo.blocked[asked]
    if not candidates:
        return []
    mentioned = {u for u in (_uuid(m) for m in payload.get("mentions") or []) if u is not None}
    direct = message.conversation_type == "direct"
    if sender_id not in memo.names:
        memo.names[sender_id] = await display_name(db, sender_id)
    actor_name = memo.names[sender_id]
    context = {
        "actor_name": actor_name,
        # A direct conversation is named by the person in it, already the actor.
        "conversation_name": "" if direct else (message.conversation_name or ""),
        "preview": preview(message.content),
        "emoji": "",
    }
    url = f"/conversations/{conversation_id}"
    intents = []
    for user_id in sorted(candidates):
        mention = user_id in mentioned
        intents.append(
            Intent(
                user_id=user_id,
                type="mention" if mention else "message",
                category="social",
                priority="high" if mention else ("normal" if direct else "low"),
                source_position=event.position,
                actor_id=sender_id,
                conversation_id=conversation_id,
                related_kind="message",
                related_id=message_id,
                # Mentions bundle apart from plain messages: "3 mentions" must not hide
                # among "40 new messages".
                group_key=f"{'mention' if mention else 'message'}:{conversation_id}",
                url=url,
                context=context,
            )
        )
    return intents


async def _contact_request_intents(db: AsyncConnection, event: Event) -> list[Intent]:
    requester_id = _uuid(event.payload.get("requester_id")) or event.actor_id
    addressee_id = event.scope_id
    if requester_id is None or requester_id == addressee_id:
        return []
    if await blocked_among(db, actor_id=requester_id, user_ids=[addressee_id]):
        return []
    actor_name = await display_name(db, requester_id)
    return [
        Intent(
            user_id=addressee_id,
            type="contact_request",
            category="social",
            priority="normal",
            source_position=event.position,
            actor_id=requester_id,
            related_kind="contact_request",
            related_id=_uuid(event.payload.get("request_id")),
            group_key="contact_requests",
            url="/contacts/requests",
            context={"actor_name": actor_name, "conversation_name": "", "preview": "", "emoji": ""},
        )
    ]


def _security_intent(event: Event) -> Intent:
    payload = event.payload
    what = "new_device" if event.type == NEW_DEVICE else "password_changed"
    device = str(payload.get("device") or payload.get("user_agent") or "an unknown device")
    ip = str(payload.get("ip") or "an unknown address")
    when = event.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if what == "new_device":
        headline = "New sign-in to your account"
        detail = f"Signed in on {device} from {ip} at {when}. If this was not you, change your password."
    else:
        headline = "Your password was changed"
        detail = f"The password was changed at {when} from {ip}. If this was not you, reset it now."
    return Intent(
        user_id=event.scope_id,
        type="security",
        category="security",
        priority="high",
        source_position=event.position,
        actor_id=event.actor_id,
        related_kind="session" if what == "new_device" and payload.get("session_id") else None,
        related_id=_uuid(payload.get("session_id")) if what == "new_device" else None,
        # Never bundled: each sign-in or change is its own warning.
        group_key=None,
        url="/settings/security",
        context={
            "actor_name": "",
            "conversation_name": "",
            "preview": "",
            "emoji": "",
            "headline": headline,
            "detail": detail,
            "event": what,
            "device": device,
            "ip": ip,
            "when": when,
        },
    )


def _suspicious_sign_in_intent(event: Event) -> Intent:
    """A sign-in flagged by location (impossible travel, a risky address): a security
    notification with the headline and detail its payload words."""
    payload = event.payload
    return Intent(
        user_id=event.scope_id,
        type="security",
        category="security",
        priority="high",
        source_position=event.position,
        related_kind="suspicious_location" if payload.get("suspicious_location_id") else None,
        related_id=_uuid(payload.get("suspicious_location_id")),
        # Never bundled: each flagged sign-in is its own warning.
        group_key=None,
        url="/settings/security",
        context={
            "actor_name": "",
            "conversation_name": "",
            "preview": "",
            "emoji": "",
            "headline": str(payload.get("headline") or "Unusual sign-in to your account"),
            "detail": str(payload.get("detail") or ""),
            "event": "suspicious_sign_in",
            "device": "",
            "ip": str(payload.get("ip") or "an unknown address"),
            "when": event.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        },
    )


def _reminder_intent(event: Event) -> Intent:
    payload = event.payload
    return Intent(
        user_id=event.scope_id,
        type="system",
        category="system",
        priority="normal",
        source_position=event.position,
        related_kind=str(payload["related_kind"]) if payload.get("related_kind") else None,
        related_id=_uuid(payload.get("related_id")),
        conversation_id=_uuid(payload.get("conversation_id")),
        # Never bundled: each reminder is its own thing to do.
        group_key=None,
        url=str(payload["url"]) if payload.get("url") else None,
        context={
            "actor_name": "",
            "conversation_name": "",
            "preview": "",
            "emoji": "",
            "headline": str(payload.get("headline") or "A reminder"),
            "detail": str(payload.get("detail") or ""),
        },
    )


def _notice(headline: str, detail: str) -> dict[str, str]:
    return {
        "actor_name": "",
        "conversation_name": "",
        "preview": "",
        "emoji": "",
        "headline": headline,
        "detail": detail,
    }


def _match_proposed_intents(event: Event) -> list[Intent]:
    payload = event.payload
    count = payload.get("count")
    day = str(payload.get("for_date") or "")
    if not isinstance(count, int) or count < 1 or not day:
        return []
    people = "1 new person" if count == 1 else f"{count} new people"
    return [
        Intent(
            user_id=event.scope_id,
            type="match",
            category="social",
            priority="normal",
            source_position=event.position,
            # One notification a day: a run that tops the day up bundles into it.
            group_key=f"match.proposed:{day}",
            url="/matching/daily",
            context=_notice("Your matches for today", f"{people} to meet today."),
        )
    ]


async def _match_mutual_intents(db: AsyncConnection, event: Event) -> list[Intent]:
    payload = event.payload
    other = _uuid(payload.get("user_id"))
    recipient = event.scope_id
    if other is None or other == recipient:
        return []
    if await blocked_among(db, actor_id=other, user_ids=[recipient]):
        return []
    conversation_id = _uuid(payload.get("conversation_id"))
    match_id = _uuid(payload.get("match_id"))
    name = await display_name(db, other)
    return [
        Intent(
            user_id=recipient,
            type="match",
            category="social",
            priority="high",
            source_position=event.position,
            actor_id=other,
            conversation_id=conversation_id,
            related_kind="match" if match_id else None,
            related_id=match_id,
            # Never bundled: each mutual match is its own news.
            group_key=None,
            url=f"/conversations/{conversation_id}" if conversation_id else "/matching/daily",
            context={**_notice("It's a match", f"You and {name} like each other: say hello."), "actor_name": name},
        )
    ]


def _uuid(value: Any) -> UUID | None:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None


# -- preferences and quiet hours ----------------------------------------------------------


def quiet_until(settings: NotificationSettings, now: datetime) -> datetime | None:
    """When the quiet hours holding at `now` end (aware, UTC); None outside them."""
    if not in_quiet_hours(settings, now) or settings.quiet_end is None:
        return None
    try:
        zone = ZoneInfo(settings.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = now.astimezone(zone)
    end = datetime.combine(local.date(), settings.quiet_end, tzinfo=zone)
    if end <= local:
        end = datetime.combine(local.date() + timedelta(days=1), settings.quiet_end, tzinfo=zone)
    return end.astimezone(UTC)


@dataclass(frozen=True)
class Decision:
    """What becomes of an intent, channel by channel."""

    make: bool  # whether a notification row is made at all
    in_app: bool  # shown unread in-app (else made read, for the other channels' sake)
    push: bool
    push_at: datetime | None  # None: at once; else held until quiet hours end
    sms: bool
    email_now: bool  # an e-mail of its own at once (security)
    digest: bool  # to be listed in the next digest e-mail


def decide(intent: Intent, *, channels: Collection[str], settings: NotificationSettings, now: datetime) -> Decision:
    """Apply a person's effective channels, quiet hours and digest setting to an intent. Pure.

    Quiet hours hold push and SMS until they end for normal and high priority, drop them
    for low priority (a group's chatter is not worth waking anyone up later for: it stays
    in-app and in the digest), and do not apply to security or urgent ones. E-mail is
    sent at once for security notifications (when that channel is on); everything else
    unread waits for the digest (`email_digest`, its own setting).
    """
    in_app = "in_app" in channels
    push = "push" in channels
    sms = "sms" in channels
    email = "email" in channels
    push_at: datetime | None = None
    bypass = intent.category == "security" or intent.priority == "urgent"
    quiet_end = quiet_until(settings, now) if (push or sms) and not bypass else None
    if quiet_end is not None:
        if intent.priority == "low":
            push = sms = False
        else:
            push_at = quiet_end
    email_now = email and intent.category == "security"
    digest = settings.email_digest and in_app and not email_now
    make = in_app or push or sms or email_now
    return Decision(make=make, in_app=in_app, push=push, push_at=push_at, sms=sms, email_now=email_now, digest=digest)
