"""The matches table of the `matching` schema as SQLAlchemy Core sees it, mirroring
migration 2026_11_30_0032 (its indexes, CHECKs, policies, the guard trigger and the
functions matching.decide_match, matching.interest_overlap and
matching.feature_similarity live there only; tests/kernel/test_catalogue.py compares the
two), and the readers' cursor of migration 2026_12_01_0051."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Column, Date, ForeignKey, Numeric, Table, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB, UUID

from rapport.kernel.models import EMPTY_OBJECT, NOW, metadata, reader_cursor_table, timestamp, user_column, uuid_column

# The values the CHECK constraint allows.
MatchStatus = Literal["proposed", "liked", "passed", "mutual"]

matches = Table(
    "matches",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("user_id"),
    user_column("matched_user_id"),
    Column("score", Numeric(4, 3), nullable=False),
    Column("breakdown", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    Column("status", Text, nullable=False, server_default="proposed"),
    Column("for_date", Date, nullable=False),
    timestamp("decided_at"),
    Column("conversation_id", UUID(as_uuid=True), ForeignKey("messaging.conversations.id", ondelete="SET NULL")),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    UniqueConstraint("user_id", "matched_user_id"),
    schema="matching",
)

# Where matching's readers of the outbox have read to (the tag-change reader): system
# work's alone.
cursor = reader_cursor_table("cursor", schema="matching")
