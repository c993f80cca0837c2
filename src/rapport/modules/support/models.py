"""The `support` schema's tables as SQLAlchemy Core sees them, mirroring migration
2026_11_30_0039 (its indexes, CHECKs, policies, triggers and the functions
support.works_at, support.may_see_room and support.observe_messages live there only;
tests/kernel/test_catalogue.py compares the two)."""

from __future__ import annotations

import uuid
from typing import Literal

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Integer,
    LargeBinary,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.dialects.postgresql import UUID

from rapport.kernel.models import NOW, metadata, reader_cursor_table, timestamp, user_column, uuid_column

# The values the CHECK constraints allow.
Level = Literal["T1", "T2", "T3", "manager"]
RoomStatus = Literal["open", "closed"]
EscalationMode = Literal["new_room", "same_room"]
EscalationStatus = Literal["created", "assigned", "in_progress", "resolved", "cancelled"]

LEVELS: tuple[Level, ...] = ("T1", "T2", "T3", "manager")
OPEN_ESCALATION: tuple[EscalationStatus, ...] = ("created", "assigned", "in_progress")


def room_column(name: str, *, nullable: bool = False, ondelete: str = "CASCADE") -> Column[uuid.UUID]:
    """A column naming a support room (support.rooms.conversation_id)."""
    return Column(
        name, UUID(as_uuid=True), ForeignKey("support.rooms.conversation_id", ondelete=ondelete), nullable=nullable
    )


sla = Table(
    "sla",
    metadata,
    Column("priority", SmallInteger, primary_key=True),
    Column("first_response_minutes", Integer, nullable=False),
    Column("resolution_minutes", Integer, nullable=False),
    user_column("updated_by", nullable=True, ondelete="SET NULL"),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="support",
)

rooms = Table(
    "rooms",
    metadata,
    Column(
        "conversation_id",
        UUID(as_uuid=True),
        ForeignKey("messaging.conversations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    user_column("customer_id", nullable=True, ondelete="SET NULL"),
    Column("issue_id", Text),
    Column("issue_description", Text, nullable=False),
    Column("level", Text, nullable=False, server_default="T1"),
    Column("priority", SmallInteger, nullable=False, server_default="3"),
    Column("guests_allowed", Boolean, nullable=False, server_default=true()),
    Column("max_participants", Integer),
    Column("status", Text, nullable=False, server_default="open"),
    room_column("escalated_from", nullable=True, ondelete="SET NULL"),
    timestamp("opened_at", nullable=False, server_default=NOW),
    timestamp("first_response_at"),
    user_column("first_responder_id", nullable=True, ondelete="SET NULL"),
    timestamp("closed_at"),
    user_column("closed_by", nullable=True, ondelete="SET NULL"),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="support",
)

room_agents = Table(
    "room_agents",
    metadata,
    Column(
        "conversation_id",
        UUID(as_uuid=True),
        ForeignKey("support.rooms.conversation_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    user_column("agent_id", primary_key=True),
    timestamp("joined_at", nullable=False, server_default=NOW),
    schema="support",
)

guest_links = Table(
    "guest_links",
    metadata,
    uuid_column("id", primary_key=True),
    room_column("conversation_id"),
    Column("token_hash", LargeBinary, nullable=False),
    user_column("created_by", nullable=True, ondelete="SET NULL"),
    timestamp("expires_at", nullable=False),
    Column("max_uses", Integer, nullable=False, server_default="1"),
    Column("uses", Integer, nullable=False, server_default="0"),
    timestamp("revoked_at"),
    timestamp("created_at", nullable=False, server_default=NOW),
    UniqueConstraint("token_hash"),
    schema="support",
)

guests = Table(
    "guests",
    metadata,
    user_column("user_id", primary_key=True),
    room_column("conversation_id"),
    Column("link_id", UUID(as_uuid=True), ForeignKey("support.guest_links.id", ondelete="SET NULL")),
    Column("display_name", Text, nullable=False),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="support",
)

escalations = Table(
    "escalations",
    metadata,
    uuid_column("id", primary_key=True),
    room_column("source_room_id"),
    room_column("target_room_id", nullable=True, ondelete="SET NULL"),
    Column("mode", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("from_level", Text, nullable=False),
    Column("to_level", Text, nullable=False),
    Column("priority", SmallInteger, nullable=False, server_default="3"),
    Column("status", Text, nullable=False, server_default="created"),
    user_column("created_by", nullable=True, ondelete="SET NULL"),
    user_column("assigned_to", nullable=True, ondelete="SET NULL"),
    Column("resolution_notes", Text),
    timestamp("assigned_at"),
    timestamp("started_at"),
    timestamp("resolved_at"),
    timestamp("cancelled_at"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="support",
)

# The first-response watcher's place in the outbox: system work's alone.
cursor = reader_cursor_table("cursor", schema="support")
