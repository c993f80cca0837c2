"""The `analytics` schema's ingestion tables as SQLAlchemy Core sees them, mirroring
migration 2026_11_30_0045 (events, sessions, crashes; the reports' tables are in
models_reports). Their indexes, CHECKs, policies, triggers and functions live there only;
tests/kernel/test_catalogue.py compares the two."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import (
    BigInteger,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from rapport.kernel.models import EMPTY_OBJECT, NOW, metadata, reader_cursor_table, timestamp, user_column, uuid_column

# The values the CHECK constraints allow.
Category = Literal[
    "engagement",
    "conversion",
    "retention",
    "acquisition",
    "monetization",
    "navigation",
    "performance",
    "error",
    "system",
]
Source = Literal["client", "server"]

CATEGORIES: tuple[Category, ...] = (
    "engagement",
    "conversion",
    "retention",
    "acquisition",
    "monetization",
    "navigation",
    "performance",
    "error",
    "system",
)

_UUID7 = text("kernel.uuid7_like()")

# Range-partitioned by month on created_at (kernel.monthly_partitions): Core models the parent.
events = Table(
    "events",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=_UUID7),
    Column("created_at", DateTime(timezone=True), primary_key=True, nullable=False, server_default=NOW),
    timestamp("event_timestamp", nullable=False, server_default=NOW),
    user_column("user_id", nullable=True),
    uuid_column("session_id", nullable=True),
    Column("event_name", Text, nullable=False),
    Column("event_category", Text),
    Column("source", Text, nullable=False, server_default="client"),
    Column("properties", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    Column("platform", Text),
    Column("device_type", Text),
    Column("device_model", Text),
    Column("os_name", Text),
    Column("os_version", Text),
    Column("app_version", Text),
    Column("country", Text),
    Column("region", Text),
    Column("city", Text),
    Column("utm_source", Text),
    Column("utm_medium", Text),
    Column("utm_campaign", Text),
    Column("utm_term", Text),
    Column("utm_content", Text),
    Column("network_type", Text),
    Column("network_quality", Text),
    Column("duration_ms", Integer),
    Column("load_time_ms", Integer),
    schema="analytics",
)

# Written by the trigger analytics.track_sessions as events arrive.
user_sessions = Table(
    "user_sessions",
    metadata,
    uuid_column("session_id", primary_key=True),
    user_column("user_id"),
    timestamp("started_at", nullable=False),
    timestamp("ended_at", nullable=False),
    Column(
        "duration_ms",
        BigInteger,
        Computed("((EXTRACT(epoch FROM (ended_at - started_at)) * (1000)::numeric))::bigint", persisted=True),
    ),
    Column("event_count", Integer, nullable=False, server_default="0"),
    Column("screens_viewed", Integer, nullable=False, server_default="0"),
    Column("platform", Text),
    Column("app_version", Text),
    Column("device_type", Text),
    Column("country", Text),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="analytics",
)

crash_reports = Table(
    "crash_reports",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=_UUID7),
    Column("fingerprint", LargeBinary, nullable=False),
    Column("platform", Text, nullable=False),
    Column("exception_type", Text, nullable=False),
    Column("stack_trace", Text, nullable=False),
    Column("first_app_version", Text),
    Column("last_app_version", Text),
    Column("last_os_version", Text),
    Column("occurrences", BigInteger, nullable=False, server_default="1"),
    timestamp("first_seen", nullable=False, server_default=NOW),
    timestamp("last_seen", nullable=False, server_default=NOW),
    UniqueConstraint("fingerprint"),
    schema="analytics",
)

crash_report_users = Table(
    "crash_report_users",
    metadata,
    Column(
        "crash_id",
        UUID(as_uuid=True),
        ForeignKey("analytics.crash_reports.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    user_column("user_id", primary_key=True),
    Column("occurrences", Integer, nullable=False, server_default="1"),
    Column("last_message", Text),
    timestamp("first_seen", nullable=False, server_default=NOW),
    timestamp("last_seen", nullable=False, server_default=NOW),
    schema="analytics",
)

# The server-event recorder's durable cursor in the outbox.
cursor = reader_cursor_table("cursor", schema="analytics")
