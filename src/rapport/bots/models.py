"""The `bots` schema's tables as SQLAlchemy Core sees them, mirroring migrations
2026_11_30_0038 and 0040 (their indexes, CHECKs, policies and functions live there only;
tests/kernel/test_catalogue.py compares the two)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    LargeBinary,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from rapport.kernel.models import NOW, metadata, reader_cursor_table, timestamp, user_column, uuid_column

bots = Table(
    "bots",
    metadata,
    # The bot's own account (auth.users, kind bot).
    user_column("id", primary_key=True),
    # NULL: a platform bot, managed by the administrators.
    user_column("owner_id", nullable=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("webhook_url", Text, nullable=False),
    # AES-GCM under the keyring's bots.webhook-secret key (rapport.bots._webhooks).
    Column("webhook_secret", LargeBinary, nullable=False),
    # The secret the last rotation replaced, which also signs deliveries until the moment
    # after it (migration 2026_11_30_0040; both NULL, or both set).
    Column("previous_webhook_secret", LargeBinary),
    timestamp("previous_webhook_secret_until"),
    Column("receives", Text, nullable=False, server_default="mentions"),
    Column("is_visible_to_guests", Boolean, nullable=False, server_default=false()),
    Column("status", Text, nullable=False, server_default="active"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="bots",
)

robot_interactions = Table(
    "robot_interactions",
    metadata,
    uuid_column("id", primary_key=True),
    Column("bot_id", UUID(as_uuid=True), ForeignKey("bots.bots.id", ondelete="CASCADE"), nullable=False),
    Column(
        "conversation_id",
        UUID(as_uuid=True),
        ForeignKey("messaging.conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    uuid_column("message_id"),
    Column("event_type", Text, nullable=False),
    Column("event_position", BigInteger, nullable=False),
    Column("request_data", JSONB, nullable=False),
    Column("observation_data", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("response_data", JSONB),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("error_message", Text),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("http_status", Integer),
    Column("duration_ms", Integer),
    timestamp("started_at", nullable=False, server_default=NOW),
    timestamp("completed_at"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    UniqueConstraint("bot_id", "message_id"),
    schema="bots",
)

cursor = reader_cursor_table("cursor", schema="bots")
