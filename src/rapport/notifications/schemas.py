"""Request and response shapes of notifications, preferences and push subscriptions.

Every field has a bound the database also enforces, so that bad input is refused here
with a 422 and never reaches a CHECK constraint (which would be a 500)."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, time
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from rapport.kernel.schemas import JsonUuid, Strict, Text, TimeZone
from rapport.notifications.models import Category, Channel, NotificationType, Priority, PushProvider

# At most this many ids in one request to mark read (a page is at most 200).
MAX_MARK_READ = 200


class NotificationOut(BaseModel):
    id: UUID
    type: NotificationType
    category: Category
    priority: Priority
    title: str
    body: str
    action_url: str | None
    icon_url: str | None
    image_url: str | None
    actor_id: UUID | None = Field(description="Whose action it tells of; null for system notices.")
    conversation_id: UUID | None
    related_kind: str | None = Field(description="What `related_id` names: message, contact_request, session...")
    related_id: UUID | None
    data: dict[str, Any]
    group_key: str | None
    bundle_count: int = Field(description="How many notifications of its group this one stands for.")
    is_read: bool
    read_at: datetime | None
    created_at: datetime = Field(description="When it was made, or when the newest of its bundle joined it.")


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next: str | None = Field(None, description="Pass it as `cursor` for the next (older) page; null at the end.")
    unread_count: int = Field(description="Every unread notification of yours, exactly, whatever the filter.")


class UnreadCount(BaseModel):
    unread_count: int


class NotificationsRead(Strict):
    """`{"ids": [...]}` marks those of yours read (others' and unknown ids are ignored);
    `{"all": true}` marks every one read."""

    ids: Annotated[list[JsonUuid], Field(min_length=1, max_length=MAX_MARK_READ)] | None = None
    all: Literal[True] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> NotificationsRead:
        if (self.ids is None) == (self.all is None):
            raise ValueError('send either "ids" or "all": true')
        return self


# Preferences

_CLOCK = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


def _clock(value: object) -> object:
    if isinstance(value, time):
        return value
    if not isinstance(value, str) or not _CLOCK.fullmatch(value):
        raise ValueError('a local time of day as "HH:MM", such as "22:00"')
    return time.fromisoformat(value)


# A time of day as "HH:MM" in JSON, a datetime.time in Python.
ClockTime = Annotated[
    time,
    BeforeValidator(_clock),
    PlainSerializer(lambda value: value.strftime("%H:%M"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": _CLOCK.pattern, "examples": ["22:00"]}),
]


class QuietHours(Strict):
    """Local times in your time zone; the end may be earlier than the start (over midnight)."""

    start: ClockTime
    end: ClockTime

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours must start and end at different times")
        return self


class ChannelPreference(Strict):
    """Whether a channel is on: for one type, one category, or (neither) every notification.
    The most specific wins: type over category over the channel-wide choice over the defaults."""

    type: NotificationType | None = None
    category: Category | None = None
    channel: Channel
    enabled: bool

    @model_validator(mode="after")
    def _one_scope(self) -> ChannelPreference:
        if self.type is not None and self.category is not None:
            raise ValueError("a preference names a type or a category, not both")
        return self


class PreferencesIn(Strict):
    """The whole of your notification preferences: a field left out takes its default, and
    `channels` replaces every choice made before."""

    time_zone: TimeZone = Field("UTC", description="An IANA time zone, such as Europe/Paris: quiet hours are in it.")
    quiet_hours: QuietHours | None = None
    digest_delay_minutes: int = Field(
        60, ge=5, le=1440, description="How long missed notifications wait before one e-mail gathers them."
    )
    email_digest: bool = Field(True, description="Whether missed notifications are e-mailed as a digest.")
    channels: Annotated[list[ChannelPreference], Field(max_length=200)] = Field(default_factory=list)

    @field_validator("channels")
    @classmethod
    def _distinct(cls, channels: list[ChannelPreference]) -> list[ChannelPreference]:
        scopes = [(c.type, c.category, c.channel) for c in channels]
        if len(set(scopes)) != len(scopes):
            raise ValueError("each type, category and channel may be named once")
        return channels


class PreferencesOut(BaseModel):
    time_zone: str
    quiet_hours: QuietHours | None
    digest_delay_minutes: int
    email_digest: bool
    channels: list[ChannelPreference] = Field(description="Your own choices, as last saved.")
    effective: dict[NotificationType, dict[Channel, bool]] = Field(
        description="For each type of notification with no category of its own, whether each channel is on."
    )


# Push subscriptions

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def _base64url_bytes(value: str) -> bytes:
    if not _BASE64URL.fullmatch(value):
        raise ValueError("must be base64url")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value.rstrip("=")) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError("must be base64url") from error


class WebPushKeys(Strict):
    p256dh: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="The browser's P-256 public key, base64url (RFC 8291)."
    )
    auth: Annotated[str, Field(min_length=1, max_length=100)] = Field(
        description="The browser's 16-byte authentication secret, base64url (RFC 8291)."
    )

    @field_validator("p256dh")
    @classmethod
    def _public_key(cls, value: str) -> str:
        # An uncompressed point on P-256: 0x04, then 32 bytes of x and 32 of y.
        raw = _base64url_bytes(value)
        if len(raw) != 65 or raw[0] != 4:
            raise ValueError("must be an uncompressed P-256 public key (65 bytes, base64url)")
        return value

    @field_validator("auth")
    @classmethod
    def _secret(cls, value: str) -> str:
        if len(_base64url_bytes(value)) != 16:
            raise ValueError("must be 16 bytes, base64url")
        return value


class WebPushSubscriptionIn(Strict):
    """A browser's `PushSubscription.toJSON()`, as `pushManager.subscribe` gave it."""

    endpoint: Annotated[str, Text(2000, pattern=r"^https?://[^\s/?#]+")] = Field(
        description="The push service URL (RFC 8030): https, or http on a development server."
    )
    keys: WebPushKeys
    expiration_time: Annotated[int | None, Field(alias="expirationTime", ge=0)] = Field(
        None, description="Sent by browsers; the push service's 404 or 410 is what retires a subscription."
    )
    user_agent: Annotated[str, Text(500)] | None = None
    device_id: JsonUuid | None = Field(None, description="One of your devices (`POST /v1/devices`) it belongs to.")


class DeviceTokenIn(Strict):
    """A native app's device token: an FCM registration token or an APNs device token."""

    provider: PushProvider = Field(json_schema_extra={"enum": ["fcm", "apns"]})
    token: Annotated[str, Text(4096, pattern=r"^[\x21-\x7e]+$")]
    device_id: JsonUuid | None = Field(None, description="One of your devices (`POST /v1/devices`) it belongs to.")
    user_agent: Annotated[str, Text(500)] | None = None

    @field_validator("provider")
    @classmethod
    def _native(cls, value: PushProvider) -> PushProvider:
        if value == "webpush":
            raise ValueError("a Web Push subscription sends its endpoint and keys, not a token")
        return value


def _subscription_kind(value: Any) -> str:
    return "webpush" if isinstance(value, dict) and "endpoint" in value else "token"


PushSubscriptionIn = Annotated[
    Annotated[WebPushSubscriptionIn, Tag("webpush")] | Annotated[DeviceTokenIn, Tag("token")],
    Discriminator(_subscription_kind),
]


class PushSubscriptionOut(BaseModel):
    id: UUID
    provider: PushProvider
    endpoint: str | None
    token: str | None
    device_id: UUID | None
    user_agent: str | None
    is_active: bool = Field(description="False once the push service said the subscription is gone.")
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None


class VapidPublicKey(BaseModel):
    public_key: str = Field(
        description="The application server key for `pushManager.subscribe({applicationServerKey})`: "
        "an uncompressed P-256 public key, base64url (RFC 8292)."
    )
