"""The extended profile parts, devices and status updates, as SQLAlchemy Core tables for
queries; migration 2026_11_21_0004 creates them with their policies and triggers. The
record of reads of the sensitive parts is the audit schema's:
`rapport.kernel.models.sensitive_data_access`."""

import uuid
from typing import Any

from sqlalchemy import Boolean, Column, Date, ForeignKey, Numeric, SmallInteger, Table, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from rapport.kernel.models import EMPTY_TEXT_ARRAY, NOW, metadata, timestamp


def _owner(*, primary_key: bool = False) -> Column[uuid.UUID]:
    return Column(
        "user_id",
        UUID(as_uuid=True),
        ForeignKey("auth.users.id", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
    )


def _part(name: str, *columns: Column[Any]) -> Table:
    return Table(
        name,
        metadata,
        _owner(primary_key=True),
        *columns,
        timestamp("created_at", nullable=False, server_default=NOW),
        timestamp("updated_at", nullable=False, server_default=NOW),
        schema="social",
    )


user_demographics = _part(
    "user_demographics",
    Column("preferred_name", Text),
    Column("pronouns", Text),
    Column("gender_identity", Text),
    Column("birthdate", Date),
    Column("relationship_status", Text),
    Column("number_of_children", SmallInteger),
    Column("city", Text),
    Column("region", Text),
    Column("country", Text),
)

user_employment = _part(
    "user_employment",
    Column("employment_status", Text),
    Column("occupation", Text),
    Column("employer", Text),
    Column("industry", Text),
    Column("work_schedule", Text),
    Column("schedule_notes", Text),
    Column("commute_minutes", SmallInteger),
    Column("works_remotely", Boolean),
)

user_health_context = _part(
    "user_health_context",
    Column("physical_conditions", Text),
    Column("mental_health_conditions", Text),
    Column("medications", Text),
    Column("treatment", Text),
    Column("recovery_notes", Text),
    Column("accessibility_needs", Text),
)

user_financials = _part(
    "user_financials",
    Column("income_range", Text),
    Column("housing_status", Text),
    Column("monthly_housing_cost", Numeric(12, 2)),
    Column("child_support_status", Text),
    Column("child_support_amount", Numeric(12, 2)),
    Column("currency", Text),
    Column("debt_notes", Text),
    Column("financial_notes", Text),
)

user_background = _part(
    "user_background",
    Column("culture", Text),
    Column("ethnicity", Text),
    Column("religion", Text),
    Column("hometown", Text),
    Column("education_level", Text),
    Column("field_of_study", Text),
    Column("languages", ARRAY(Text), nullable=False, server_default=EMPTY_TEXT_ARRAY),
)

devices = Table(
    "devices",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    _owner(),
    Column("device_type", Text, nullable=False),
    Column("platform", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("app_version", Text),
    Column("os_version", Text),
    timestamp("last_seen_at", nullable=False, server_default=NOW),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="social",
)

status_updates = Table(
    "status_updates",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    _owner(),
    Column("content", Text),
    Column("media_url", Text),
    Column("background_color", Text),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("expires_at", nullable=False, server_default=text("now() + interval '24 hours'")),
    schema="social",
)
