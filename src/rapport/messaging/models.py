"""The `messaging` schema's tables as SQLAlchemy Core sees them, mirroring migration
2026_11_29_0014 (its indexes, CHECKs, policies, triggers and functions live there only;
tests/kernel/test_catalogue.py compares the two). The hot paths (send, history, the
conversation list, read markers) are SQL functions called through asyncpg; Core serves
everything else."""

from __future__ import annotations

import uuid
from typing import Literal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    LargeBinary,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID

from rapport.kernel.models import EMPTY_OBJECT, NOW, metadata, timestamp, user_column, uuid_column

# The values the CHECK constraints allow.
ConversationType = Literal["direct", "group", "channel", "broadcast", "support", "escalated"]
ConversationStatus = Literal["active", "archived", "closed"]
ParticipantRole = Literal["owner", "admin", "moderator", "member", "observer", "guest"]
ParticipantStatus = Literal["active", "muted", "removed", "left"]
MessageType = Literal["text", "image", "file", "audio", "video", "location", "system", "bot", "ai", "graph"]
HistoryOperation = Literal["edit", "delete"]
# NULL for an ordinary message (migration 2026_11_30_0037).
DeliveryStatus = Literal["streaming", "batch-delay", "delivered", "failed"]

_EMPTY_UUID_ARRAY = text("'{}'::uuid[]")


def conversation_column(*, primary_key: bool = False) -> Column[uuid.UUID]:
    """The conversation a row belongs to; it goes with the conversation."""
    return Column(
        "conversation_id",
        UUID(as_uuid=True),
        ForeignKey("messaging.conversations.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


conversations = Table(
    "conversations",
    metadata,
    uuid_column("id", primary_key=True),
    Column("type", Text, nullable=False),
    Column("name", Text),
    Column("description", Text),
    Column("avatar_url", Text),
    Column("settings", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    Column("status", Text, nullable=False, server_default="active"),
    Column("is_public", Boolean, nullable=False, server_default=false()),
    Column("is_encrypted", Boolean, nullable=False, server_default=false()),
    Column("max_participants", Integer),
    Column("parent_id", UUID(as_uuid=True), ForeignKey("messaging.conversations.id", ondelete="SET NULL")),
    user_column("creator_id", nullable=True, ondelete="SET NULL"),
    uuid_column("direct_low", nullable=True),
    uuid_column("direct_high", nullable=True),
    Column("member_count", Integer, nullable=False, server_default="0"),
    Column("last_seq", BigInteger, nullable=False, server_default="0"),
    uuid_column("last_message_id", nullable=True),
    timestamp("last_message_at"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    timestamp("deleted_at"),
    schema="messaging",
)

participants = Table(
    "participants",
    metadata,
    conversation_column(primary_key=True),
    user_column("user_id", primary_key=True),
    Column("role", Text, nullable=False, server_default="member"),
    Column("status", Text, nullable=False, server_default="active"),
    Column("can_send", Boolean, nullable=False, server_default=true()),
    Column("can_invite", Boolean, nullable=False, server_default=false()),
    Column("can_see_history", Boolean, nullable=False, server_default=true()),
    Column("history_from_seq", BigInteger, nullable=False, server_default="0"),
    Column("left_seq", BigInteger),
    Column("joined_position", BigInteger, nullable=False, server_default="0"),
    Column("left_position", BigInteger),
    Column("read_seq", BigInteger, nullable=False, server_default="0"),
    Column("delivered_seq", BigInteger, nullable=False, server_default="0"),
    timestamp("read_at"),
    Column("is_muted", Boolean, nullable=False, server_default=false()),
    Column("is_pinned", Boolean, nullable=False, server_default=false()),
    Column("nickname", Text),
    user_column("invited_by", nullable=True, ondelete="SET NULL"),
    timestamp("joined_at", nullable=False, server_default=NOW),
    timestamp("left_at"),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="messaging",
)

threads = Table(
    "threads",
    metadata,
    uuid_column("id", primary_key=True),
    conversation_column(),
    uuid_column("root_message_id", nullable=True),
    Column("title", Text),
    Column("category", Text),
    Column("parent_thread_id", UUID(as_uuid=True), ForeignKey("messaging.threads.id", ondelete="SET NULL")),
    user_column("creator_id", nullable=True, ondelete="SET NULL"),
    Column("message_count", Integer, nullable=False, server_default="0"),
    uuid_column("last_message_id", nullable=True),
    timestamp("last_message_at"),
    timestamp("archived_at"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="messaging",
)

# Range-partitioned by month on created_at; `seq` is set by the trigger
# messaging.sequence_message, `search` is generated.
messages = Table(
    "messages",
    metadata,
    uuid_column("id"),
    conversation_column(primary_key=True),
    Column("seq", BigInteger, primary_key=True, server_default="0", autoincrement=False),
    user_column("sender_id", nullable=True, ondelete="SET NULL"),
    Column("type", Text, nullable=False, server_default="text"),
    Column("content", Text, nullable=False, server_default=""),
    Column("content_metadata", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    Column("client_message_id", Text),
    uuid_column("reply_to_id", nullable=True),
    uuid_column("forwarded_from_id", nullable=True),
    uuid_column("thread_id", nullable=True),
    Column("mentions", ARRAY(UUID(as_uuid=True)), nullable=False, server_default=_EMPTY_UUID_ARRAY),
    Column("moderation_flagged", Boolean, nullable=False, server_default=false()),
    # How many files it carries (media.attachments, written by the send).
    Column("attachment_count", SmallInteger, nullable=False, server_default="0"),
    # A streamed message's state (messaging.stream_message); NULL for an ordinary one.
    Column("delivery_status", Text),
    # Set at the send from the sender (a bot's, unless visible to guests); never changes.
    Column("hidden_from_guests", Boolean, nullable=False, server_default=false()),
    # End-to-end encrypted (migration 2026_11_30_0048): content is '', the text is in
    # encryption.envelopes; set at the insert, never changes.
    Column("content_encrypted", Boolean, nullable=False, server_default=false()),
    timestamp("edited_at"),
    timestamp("deleted_at"),
    uuid_column("deleted_by", nullable=True),
    Column("search", TSVECTOR, Computed("to_tsvector('simple'::regconfig, content)", persisted=True)),
    Column("created_at", DateTime(timezone=True), primary_key=True, nullable=False),
    UniqueConstraint("id", "created_at"),
    schema="messaging",
)

client_messages = Table(
    "client_messages",
    metadata,
    conversation_column(primary_key=True),
    user_column("sender_id", primary_key=True),
    Column("client_message_id", Text, primary_key=True),
    uuid_column("message_id"),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="messaging",
)

# Written only by the trigger messaging.sequence_message.
mentions = Table(
    "mentions",
    metadata,
    user_column("user_id", primary_key=True),
    conversation_column(primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    uuid_column("message_id"),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="messaging",
)

# Written only by the trigger messaging.guard_message_update.
retractions = Table(
    "retractions",
    metadata,
    conversation_column(primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    uuid_column("message_id"),
    timestamp("retracted_at", nullable=False, server_default=NOW),
    schema="messaging",
)

hidden_messages = Table(
    "hidden_messages",
    metadata,
    user_column("user_id", primary_key=True),
    conversation_column(primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    uuid_column("message_id"),
    timestamp("hidden_at", nullable=False, server_default=NOW),
    schema="messaging",
)

# Written only by the trigger messaging.guard_message_update.
message_history = Table(
    "message_history",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    conversation_column(),
    uuid_column("message_id"),
    Column("operation", Text, nullable=False),
    Column("content", Text, nullable=False),
    Column("content_metadata", JSONB, nullable=False),
    uuid_column("changed_by", nullable=True),
    timestamp("changed_at", nullable=False, server_default=NOW),
    schema="messaging",
)

reactions = Table(
    "reactions",
    metadata,
    conversation_column(primary_key=True),
    uuid_column("message_id", primary_key=True),
    user_column("user_id", primary_key=True),
    Column("emoji", Text, primary_key=True),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="messaging",
)

pins = Table(
    "pins",
    metadata,
    conversation_column(primary_key=True),
    uuid_column("message_id", primary_key=True),
    user_column("pinned_by", nullable=True, ondelete="SET NULL"),
    timestamp("pinned_at", nullable=False, server_default=NOW),
    schema="messaging",
)

drafts = Table(
    "drafts",
    metadata,
    user_column("user_id", primary_key=True),
    conversation_column(primary_key=True),
    Column("content", Text, nullable=False),
    uuid_column("reply_to_id", nullable=True),
    uuid_column("thread_id", nullable=True),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="messaging",
)

invites = Table(
    "invites",
    metadata,
    uuid_column("id", primary_key=True),
    conversation_column(),
    Column("token_hash", LargeBinary, nullable=False),
    user_column("created_by", nullable=True, ondelete="SET NULL"),
    timestamp("expires_at"),
    Column("max_uses", Integer),
    Column("uses", Integer, nullable=False, server_default="0"),
    timestamp("revoked_at"),
    timestamp("created_at", nullable=False, server_default=NOW),
    UniqueConstraint("token_hash"),
    schema="messaging",
)

blocked_terms = Table(
    "blocked_terms",
    metadata,
    uuid_column("id", primary_key=True),
    Column("term", Text, nullable=False),
    user_column("created_by", nullable=True, ondelete="SET NULL"),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="messaging",
)

# One row, kept by the trigger messaging.compile_blocked_terms.
moderation = Table(
    "moderation",
    metadata,
    Column("id", Boolean, primary_key=True, server_default=true()),
    Column("pattern", Text),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="messaging",
)
