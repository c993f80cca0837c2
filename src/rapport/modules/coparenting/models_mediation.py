"""The mediation tables of the `coparenting` schema as SQLAlchemy Core sees them, mirroring
migration 2026_11_30_0028 (its indexes, CHECKs, policies, the trigger function
coparenting.count_outcome and the view intervention_stats_with_rate live there only)."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Column, ForeignKey, Integer, Numeric, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from rapport.kernel.models import EMPTY_TEXT_ARRAY, NOW, metadata, timestamp, user_column, uuid_column

# The values the CHECK constraints allow.
TriggerType = Literal["topic", "phrase", "pattern"]
Outcome = Literal["accepted", "modified", "rejected", "ignored"]
Engine = Literal["local", "llm"]
ToneTendency = Literal["direct", "formal", "casual", "warm", "tense"]
VocabularyComplexity = Literal["simple", "moderate", "complex"]
EmojiUsage = Literal["none", "minimal", "moderate", "frequent"]

communication_triggers = Table(
    "communication_triggers",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("user_id"),
    Column("trigger_type", Text, nullable=False),
    Column("trigger_value", Text, nullable=False),
    Column("intensity", Numeric(3, 2), nullable=False, server_default="0.5"),
    Column("detection_count", Integer, nullable=False, server_default="0"),
    timestamp("last_detected"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="coparenting",
)

# Pending (outcome NULL) until the person says what they did with the suggestion.
intervention_rewrites = Table(
    "intervention_rewrites",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("user_id"),
    Column(
        "conversation_id",
        UUID(as_uuid=True),
        ForeignKey("messaging.conversations.id", ondelete="SET NULL"),
    ),
    Column("original_text", Text, nullable=False),
    Column("rewrite_text", Text, nullable=False),
    Column("final_text", Text),
    Column("outcome", Text),
    Column("pattern_detected", Text),
    Column("engine", Text, nullable=False),
    timestamp("outcome_at"),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="coparenting",
)

# Written only by the trigger coparenting.count_outcome.
intervention_statistics = Table(
    "intervention_statistics",
    metadata,
    user_column("user_id", primary_key=True),
    Column("total_interventions", Integer, nullable=False, server_default="0"),
    Column("accepted_count", Integer, nullable=False, server_default="0"),
    Column("modified_count", Integer, nullable=False, server_default="0"),
    Column("rejected_count", Integer, nullable=False, server_default="0"),
    Column("ignored_count", Integer, nullable=False, server_default="0"),
    timestamp("last_intervention_at"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="coparenting",
)

# Written only by system work (the job coparenting.learn_profile).
communication_profiles = Table(
    "communication_profiles",
    metadata,
    user_column("user_id", primary_key=True),
    Column("tone_tendencies", ARRAY(Text), nullable=False, server_default=EMPTY_TEXT_ARRAY),
    Column("avg_message_length", Integer, nullable=False, server_default="0"),
    Column("vocabulary_complexity", Text, nullable=False),
    Column("emoji_usage", Text, nullable=False),
    Column("messages_analysed", Integer, nullable=False, server_default="0"),
    Column("profile_version", Integer, nullable=False, server_default="1"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="coparenting",
)
