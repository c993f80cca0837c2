"""Calls, their participants and reports of messages as SQLAlchemy Core sees them,
mirroring migration 2026_11_29_0015 (its indexes, CHECKs, policies and triggers live there
only; tests/kernel/test_catalogue.py compares the two)."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Column, ForeignKeyConstraint, Integer, Table, Text, UniqueConstraint

from rapport.kernel.models import NOW, metadata, timestamp, user_column, uuid_column
from rapport.messaging.models import conversation_column

# The values the CHECK constraints allow.
CallType = Literal["audio", "video", "screen_share"]
CallStatus = Literal["ringing", "ongoing", "ended", "missed", "declined"]
CallParticipantStatus = Literal["invited", "ringing", "joined", "left", "declined", "missed"]
ReportReason = Literal["spam", "harassment", "hate", "violence", "sexual", "self_harm", "other"]
ReportStatus = Literal["open", "dismissed", "actioned"]

# A call is live while it rings or goes on: at most one per conversation.
LIVE_CALL_STATUSES: tuple[CallStatus, ...] = ("ringing", "ongoing")


# Times, answer and duration are stamped by the trigger messaging.guard_call.
calls = Table(
    "calls",
    metadata,
    uuid_column("id", primary_key=True),
    conversation_column(),
    Column("type", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="ringing"),
    user_column("started_by", nullable=True, ondelete="SET NULL"),
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
    uuid_column("conversation_id", primary_key=True),
    uuid_column("call_id", primary_key=True),
    user_column("user_id", nullable=False, primary_key=True, ondelete="CASCADE"),
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
    uuid_column("id", primary_key=True),
    conversation_column(),
    uuid_column("message_id"),
    user_column("message_sender_id", nullable=True, ondelete="SET NULL"),
    Column("message_content", Text, nullable=False, server_default=""),
    user_column("reporter_id", nullable=True, ondelete="SET NULL"),
    Column("reason", Text, nullable=False),
    Column("details", Text),
    Column("status", Text, nullable=False, server_default="open"),
    user_column("resolved_by", nullable=True, ondelete="SET NULL"),
    timestamp("resolved_at"),
    Column("resolution_note", Text),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="messaging",
)
