"""The `encryption` schema's tables as SQLAlchemy Core sees them, mirroring migration
2026_11_30_0048 (its indexes, CHECKs, policies and functions live there only;
tests/kernel/test_catalogue.py compares the two)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, LargeBinary, Table, Text, false
from sqlalchemy.dialects.postgresql import UUID

from rapport.kernel.models import NOW, metadata, timestamp, user_column, uuid_column

devices = Table(
    "devices",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("user_id"),
    Column("name", Text, nullable=False),
    # Public keys only, as raw bytes: X25519 (identity, signed prekey), Ed25519 (signing).
    Column("identity_key", LargeBinary, nullable=False),
    Column("signing_key", LargeBinary, nullable=False),
    Column("signed_prekey_id", BigInteger, nullable=False),
    Column("signed_prekey", LargeBinary, nullable=False),
    Column("signed_prekey_signature", LargeBinary, nullable=False),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="encryption",
)

one_time_prekeys = Table(
    "one_time_prekeys",
    metadata,
    Column(
        "device_id",
        UUID(as_uuid=True),
        ForeignKey("encryption.devices.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key_id", BigInteger, primary_key=True, autoincrement=False),
    user_column("user_id"),
    Column("public_key", LargeBinary, nullable=False),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="encryption",
)

envelopes = Table(
    "envelopes",
    metadata,
    uuid_column("id", primary_key=True),
    Column("device_id", UUID(as_uuid=True), ForeignKey("encryption.devices.id", ondelete="CASCADE"), nullable=False),
    user_column("recipient_id"),
    Column(
        "conversation_id",
        UUID(as_uuid=True),
        ForeignKey("messaging.conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # messaging.messages is partitioned: no foreign key (the conversation's takes it along).
    uuid_column("message_id"),
    Column("seq", BigInteger, nullable=False),
    user_column("sender_id"),
    # No foreign key: a sender may revoke the device before its envelopes are read.
    uuid_column("sender_device_id"),
    Column("type", Text, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("edit", Boolean, nullable=False, server_default=false()),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="encryption",
)
