"""Calls, their participants and reports of messages as SQLAlchemy Core sees them,
mirroring migration 2026_11_29_0015 (its indexes, CHECKs, policies and triggers live there
only; tests/kernel/test_catalogue.py compares the two)."""

from __future__ import annotations

import uuid
from typing import Literal

from sqlalchemy import Column, ForeignKey, ForeignKeyConstraint, Integer, Table, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import UUID

from rapport.kernel.models import NOW, metadata, timestamp

# The values the CHECK constraints allow.
CallType = Literal["audio", "video", "screen_share"]
CallStatus = Literal["ringing", "ongoing", "ended", "missed", "declined"]
CallParticipantStatus = Literal["invited", "ringing", "joined", "left", "declined", "missed"]
ReportReason = Literal["spam", "harassment", "hate", "violence", "sexual", "self_harm", "other"]
ReportStatus = Literal["open", "dismissed", "actioned"]

# A call is live while it rings or goes on: at most one per conversation.
LIVE_CALL_STATUSES: tuple[CallStatus, ...] = ("ringing", "ongoing")


def _uuid(name: str, *, primary_key: bool = False) -> Column[uuid.UUID]:
    return Column(name, UUID(as_uuid=True), nullable=False, primary_key=primary_key)


def _user(name: str, *, nullable: bool, primary_key: bool = False, ondelete: str) -> Column[uuid.UUID]:
    """A column naming an account (auth.users.id)."""
    return Column(
        name,
        UUID(as_uuid=True),
        ForeignKey("auth.users.id", ondelete=ondelete),
        nullable=nullable,
        primary_key=primary_key,
    )


def _conversation() -> Column[uuid.UUID]:
    return Column(
        "conversation_id",
        UUID(as_uuid=True),
        ForeignKey("messaging.conversations.id", ondelete="CASCADE"),
        nullable=False,
    )


# Times, answer and duration are stamped by the trigger messaging.guard_call.
calls = Table(
    "calls",
    metadata,
    _uuid("id", primary_key=True),
    _conversation(),
    Column("type", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="ringing"),
    _user("started_by", nullable=True, ondelete="SET NULL"),
    timestamp("started_at", nullable=False, server_default=NOW),
    timestamp("answered_at"),
    timestamp("ended_at"),
    Column("duration_seconds", Integer),
    timestamp("created_at", nullable=False, server_default=NOW),
    UniqueConstraint("conversation_id", "id"),
    schema="messaging",
)

# Rows are made by the trigger messaging.ring_call (and by a person joining later); the
# times are stamped by messaging.guard_call_participant.
call_participants = Table(
    "call_participants",
    metadata,
    _uuid("conversation_id", primary_key=True),
    _uuid("call_id", primary_key=True),
    _user("user_id", nullable=False, primary_key=True, ondelete="CASCADE"),
    Column("status", Text, nullable=False),
    timestamp("joined_at"),
    timestamp("left_at"),
    Column("quality_rating", Integer),
    timestamp("rated_at"),
    timestamp("created_at", nullable=False, server_default=NOW),
    ForeignKeyConstraint(
        ["conversation_id", "call_id"],
        ["messaging.calls.conversation_id", "messaging.calls.id"],
        ondelete="CASCADE",
    ),
    schema="messaging",
)

# The reported message's sender and content are copied by the trigger messaging.guard_report.
reports = Table(
    "reports",
    metadata,
    _uuid("id", primary_key=True),
    _conversation(),
    _uuid("message_id"),
    _user("message_sender_id", nullable=True, ondelete="SET NULL"),
    Column("message_content", Text, nullable=False, server_default=""),
    _user("reporter_id", nullable=True, ondelete="SET NULL"),
    Column("reason", Text, nullable=False),
    Column("details", Text),
    Column("status", Text, nullable=False, server_default="open"),
    _user("resolved_by", nullable=True, ondelete="SET NULL"),
    timestamp("resolved_at"),
    Column("resolution_note", Text),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="messaging",
)
