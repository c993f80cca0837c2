"""The `notifications` schema's tables as SQLAlchemy Core sees them, mirroring migration
2026_11_29_0019 (its indexes, CHECKs, policies, the definer function that registers push
subscriptions and the seeded templates live there only; tests/kernel/test_catalogue.py
compares the two)."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    Table,
    Text,
    Time,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from rapport.kernel.models import EMPTY_OBJECT, NOW, metadata, timestamp, user_column, uuid_column

# The values the CHECK constraints allow.
NotificationType = Literal["message", "mention", "reaction", "call", "contact_request", "security", "system", "match"]
Category = Literal["social", "system", "marketing", "security"]
Priority = Literal["low", "normal", "high", "urgent"]
Channel = Literal["in_app", "push", "email", "sms"]
PushProvider = Literal["webpush", "fcm", "apns"]
PushStatus = Literal["pending", "sending", "sent", "delivered", "failed", "gone"]
EmailKind = Literal["notification", "digest"]
EmailStatus = Literal["pending", "sending", "sent", "failed"]
SmsStatus = Literal["pending", "sending", "sent", "failed"]
# A template is for a notification type, or for the e-mail digest.
TemplateType = Literal["message", "mention", "reaction", "call", "contact_request", "security", "system", "digest"]

_EMPTY_UUID_ARRAY = text("'{}'::uuid[]")


def _notification_column() -> Column[object]:
    """The notification a delivery record is for; the record goes with it."""
    return Column(
        "notification_id",
        UUID(as_uuid=True),
        ForeignKey("notifications.notifications.id", ondelete="CASCADE"),
        nullable=False,
    )


# Written by system work only (rapport.notifications._inbox.do_notify); a person reads and
# marks read their own.
notifications = Table(
    "notifications",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("user_id"),
    Column("type", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("priority", Text, nullable=False, server_default="normal"),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False, server_default=""),
    Column("action_url", Text),
    Column("icon_url", Text),
    Column("image_url", Text),
    user_column("actor_id", nullable=True, ondelete="SET NULL"),
    Column("conversation_id", UUID(as_uuid=True), ForeignKey("messaging.conversations.id", ondelete="CASCADE")),
    Column("related_kind", Text),
    uuid_column("related_id", nullable=True),
    Column("data", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    Column("group_key", Text),
    Column("bundle_count", Integer, nullable=False, server_default="1"),
    Column("source_position", BigInteger),
    Column("is_read", Boolean, nullable=False, server_default=false()),
    timestamp("read_at"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("scheduled_for"),
    UniqueConstraint("user_id", "source_position", "type"),
    schema="notifications",
)

# No row: the defaults (rapport.notifications._preferences.DEFAULT_SETTINGS).
settings = Table(
    "settings",
    metadata,
    user_column("user_id", primary_key=True),
    Column("time_zone", Text, nullable=False, server_default="UTC"),
    Column("quiet_start", Time),
    Column("quiet_end", Time),
    Column("digest_delay_minutes", Integer, nullable=False, server_default="60"),
    Column("email_digest", Boolean, nullable=False, server_default=true()),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="notifications",
)

# Unique per person, type or category (or neither) and channel: an expression index in the migration.
preferences = Table(
    "preferences",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("user_id"),
    Column("type", Text),
    Column("category", Text),
    Column("channel", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="notifications",
)

# Inserted only through notifications.register_push_subscription.
push_subscriptions = Table(
    "push_subscriptions",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("user_id"),
    Column("provider", Text, nullable=False),
    Column("endpoint", Text),
    Column("p256dh", Text),
    Column("auth", Text),
    Column("token", Text),
    Column("device_id", UUID(as_uuid=True), ForeignKey("social.devices.id", ondelete="SET NULL")),
    Column("user_agent", Text),
    Column("is_active", Boolean, nullable=False, server_default=true()),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    timestamp("last_used_at"),
    UniqueConstraint("endpoint"),
    UniqueConstraint("provider", "token"),
    schema="notifications",
)

# Delivery records: written by system work, readable by their recipient.
push_delivery_log = Table(
    "push_delivery_log",
    metadata,
    uuid_column("id", primary_key=True),
    _notification_column(),
    user_column("user_id"),
    Column(
        "subscription_id",
        UUID(as_uuid=True),
        ForeignKey("notifications.push_subscriptions.id", ondelete="SET NULL"),
    ),
    Column("provider", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("http_status", Integer),
    Column("error", Text),
    Column("attempts", Integer, nullable=False, server_default="0"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("sent_at"),
    Column("time_to_deliver_ms", Integer),
    timestamp("opened_at"),
    UniqueConstraint("notification_id", "subscription_id"),
    schema="notifications",
)

email_notifications = Table(
    "email_notifications",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("user_id"),
    Column("kind", Text, nullable=False),
    Column("notification_ids", ARRAY(UUID(as_uuid=True)), nullable=False, server_default=_EMPTY_UUID_ARRAY),
    Column("subject", Text),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("error", Text),
    Column("attempts", Integer, nullable=False, server_default="0"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("due_at", nullable=False, server_default=NOW),
    timestamp("sent_at"),
    Column("time_to_deliver_ms", Integer),
    schema="notifications",
)

sms_notifications = Table(
    "sms_notifications",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("user_id"),
    _notification_column(),
    Column("phone", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("provider", Text),
    Column("provider_message_id", Text),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("error", Text),
    Column("attempts", Integer, nullable=False, server_default="0"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("sent_at"),
    Column("time_to_deliver_ms", Integer),
    UniqueConstraint("notification_id"),
    schema="notifications",
)

# System content, seeded by the migration; only system work reads it.
templates = Table(
    "templates",
    metadata,
    uuid_column("id", primary_key=True),
    Column("type", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("language", Text, nullable=False, server_default="en"),
    Column("subject", Text),
    Column("body_text", Text, nullable=False),
    Column("body_html", Text),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    UniqueConstraint("type", "channel", "language"),
    schema="notifications",
)

# The outbox cursor of each reader: system work only.
consumer = Table(
    "consumer",
    metadata,
    Column("name", Text, primary_key=True),
    Column("position", BigInteger, nullable=False, server_default="0"),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="notifications",
)
