"""The family part of the `coparenting` schema as SQLAlchemy Core tables for queries:
contacts' details (a child's, a co-parent's), shared tasks, and the topic organiser's
rooms, suggestions and cursor. Migration 2026_11_30_0029 creates them with their
policies and triggers; these mirror their columns (tests/kernel/test_catalogue.py)."""

from sqlalchemy import REAL, Boolean, Column, Date, ForeignKey, Table, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from rapport.kernel.models import (
    EMPTY_TEXT_ARRAY,
    NOW,
    metadata,
    reader_cursor_table,
    timestamp,
    user_column,
    uuid_column,
)

_EMPTY_ARRAY = text("'[]'::jsonb")


def _contact_key() -> Column[object]:
    return Column(
        "contact_id", UUID(as_uuid=True), ForeignKey("social.contacts.id", ondelete="CASCADE"), primary_key=True
    )


def _room(*, nullable: bool = False, primary_key: bool = False) -> Column[object]:
    return Column(
        "conversation_id",
        UUID(as_uuid=True),
        ForeignKey("messaging.conversations.id", ondelete="CASCADE"),
        nullable=nullable,
        primary_key=primary_key,
    )


child_details = Table(
    "child_details",
    metadata,
    _contact_key(),
    user_column("user_id"),
    Column("birth_date", Date),
    Column("school", Text),
    Column("grade", Text),
    Column("health_conditions", Text),
    Column("allergies", Text),
    Column("medications", Text),
    Column("healthcare_providers", Text),
    Column("activities", JSONB, nullable=False, server_default=_EMPTY_ARRAY),
    Column("appointments", JSONB, nullable=False, server_default=_EMPTY_ARRAY),
    Column("notes", Text),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="coparenting",
)

coparent_details = Table(
    "coparent_details",
    metadata,
    _contact_key(),
    user_column("user_id"),
    Column("relationship_start", Date),
    Column("separation_date", Date),
    Column("divorce_date", Date),
    Column("lived_together", Boolean),
    Column("custody_arrangement", Text),
    Column("custody_schedule", Text),
    Column("communication_preferences", Text),
    Column("legal_notes", Text),
    Column("relationship_notes", Text),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="coparenting",
)

tasks = Table(
    "tasks",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("user_id"),
    _room(nullable=True),
    Column("title", Text, nullable=False),
    Column("description", Text),
    Column("status", Text, nullable=False, server_default="open"),
    Column("priority", Text, nullable=False, server_default="medium"),
    Column("type", Text, nullable=False, server_default="general"),
    timestamp("due_date"),
    timestamp("completed_at"),
    user_column("assignee_id", nullable=True, ondelete="SET NULL"),
    timestamp("reminded_at"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="coparenting",
)

task_people = Table(
    "task_people",
    metadata,
    Column("task_id", UUID(as_uuid=True), ForeignKey("coparenting.tasks.id", ondelete="CASCADE"), primary_key=True),
    _contact_key(),
    user_column("user_id"),
    Column("name", Text, nullable=False),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="coparenting",
)

topic_rooms = Table(
    "topic_rooms",
    metadata,
    _room(primary_key=True),
    user_column("enabled_by", nullable=True, ondelete="SET NULL"),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="coparenting",
)

topic_suggestions = Table(
    "topic_suggestions",
    metadata,
    uuid_column("id", primary_key=True),
    _room(),
    uuid_column("message_id"),
    user_column("sender_id"),
    Column("kind", Text, nullable=False),
    Column("thread_id", UUID(as_uuid=True), ForeignKey("messaging.threads.id", ondelete="CASCADE")),
    Column("title", Text),
    Column("category", Text),
    Column("terms", ARRAY(Text), nullable=False, server_default=EMPTY_TEXT_ARRAY),
    Column("score", REAL, nullable=False),
    Column("state", Text, nullable=False),
    user_column("decided_by", nullable=True, ondelete="SET NULL"),
    timestamp("decided_at"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="coparenting",
)

topic_cursor = reader_cursor_table("topic_cursor", schema="coparenting")
