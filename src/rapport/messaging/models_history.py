"""The history of rooms and of people's places in them (seed 003 `messages_history`), as
SQLAlchemy Core sees the tables of migration 2026_11_30_0037. Written only by its
triggers (messaging.record_conversation_change, messaging.record_participant_change):
each row is the previous state at one change."""

from __future__ import annotations

from sqlalchemy import Column, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

from rapport.kernel.models import NOW, metadata, timestamp, user_column, uuid_column
from rapport.messaging.models import conversation_column

conversation_history = Table(
    "conversation_history",
    metadata,
    uuid_column("id", primary_key=True),
    conversation_column(),
    Column("operation", Text, nullable=False),
    user_column("changed_by", nullable=True, ondelete="SET NULL"),
    timestamp("changed_at", nullable=False, server_default=NOW),
    Column("old_row", JSONB, nullable=False),
    schema="messaging",
)

participant_history = Table(
    "participant_history",
    metadata,
    uuid_column("id", primary_key=True),
    conversation_column(),
    user_column("user_id"),
    Column("operation", Text, nullable=False),
    user_column("changed_by", nullable=True, ondelete="SET NULL"),
    timestamp("changed_at", nullable=False, server_default=NOW),
    Column("old_row", JSONB, nullable=False),
    schema="messaging",
)
