"""The `analytics` schema's report tables as SQLAlchemy Core sees them, mirroring migration
2026_11_30_0046 (its CHECKs, policies, the rollup, the experiments' and funnels' definer
functions and the `views` schema live there only; tests/kernel/test_catalogue.py compares
the two). rapport.analytics._rollups, _retention, _funnels and _experiments read and write
them in SQL."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import BigInteger, Column, Date, ForeignKey, Integer, Table, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB, UUID

from rapport.kernel.models import NOW, metadata, timestamp, user_column, uuid_column

# The values the CHECK constraints allow.
Metric = Literal[
    "events",
    "events_by_name",
    "active_users",
    "sessions",
    "new_users",
    "messages_sent",
    "active_senders",
    "conversations_created",
    "files_uploaded",
    "bytes_uploaded",
]
CohortPeriod = Literal["day", "week"]
TestStatus = Literal["running", "stopped"]

# One figure per UTC day, replaced whole by analytics.rollup_day.
daily_metrics = Table(
    "daily_metrics",
    metadata,
    Column("day", Date, primary_key=True),
    Column("metric", Text, primary_key=True),
    Column("dimension", Text, primary_key=True, server_default=""),
    Column("value", BigInteger, nullable=False),
    timestamp("computed_at", nullable=False, server_default=NOW),
    schema="analytics",
)

feature_usage = Table(
    "feature_usage",
    metadata,
    Column("day", Date, primary_key=True),
    Column("feature", Text, primary_key=True),
    Column("uses", BigInteger, nullable=False),
    Column("users", BigInteger, nullable=False),
    timestamp("computed_at", nullable=False, server_default=NOW),
    schema="analytics",
)

user_retention = Table(
    "user_retention",
    metadata,
    Column("cohort_period", Text, primary_key=True),
    Column("cohort_start", Date, primary_key=True),
    Column("cohort_size", Integer, nullable=False),
    Column("retained_day_1", Integer),
    Column("retained_day_7", Integer),
    Column("retained_day_30", Integer),
    timestamp("computed_at", nullable=False, server_default=NOW),
    schema="analytics",
)

funnels = Table(
    "funnels",
    metadata,
    uuid_column("id", primary_key=True),
    Column("key", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("window_seconds", Integer, nullable=False),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    UniqueConstraint("key"),
    schema="analytics",
)

funnel_events = Table(
    "funnel_events",
    metadata,
    Column(
        "funnel_id",
        UUID(as_uuid=True),
        ForeignKey("analytics.funnels.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("step", Integer, primary_key=True, autoincrement=False),
    Column("event_name", Text, nullable=False),
    schema="analytics",
)

ab_tests = Table(
    "ab_tests",
    metadata,
    uuid_column("id", primary_key=True),
    Column("key", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("variants", JSONB, nullable=False),
    Column("conversion_event", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="running"),
    timestamp("started_at", nullable=False, server_default=NOW),
    timestamp("stopped_at"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    UniqueConstraint("key"),
    schema="analytics",
)

# Written by analytics.expose: who saw which variant, first time.
ab_test_exposures = Table(
    "ab_test_exposures",
    metadata,
    Column(
        "test_id",
        UUID(as_uuid=True),
        ForeignKey("analytics.ab_tests.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    user_column("user_id", primary_key=True),
    Column("variant", Text, nullable=False),
    timestamp("exposed_at", nullable=False, server_default=NOW),
    schema="analytics",
)
