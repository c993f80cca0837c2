"""The pairing tables of the `coparenting` schema as SQLAlchemy Core sees them, mirroring
migration 2026_11_30_0027 and 0043's columns (its indexes, CHECKs, policies, the view
coparenting.user_pairing_status and the function coparenting.claim_pairing live there
only; tests/kernel/test_catalogue.py compares the two)."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import BigInteger, Column, ForeignKey, LargeBinary, Table, Text
from sqlalchemy.dialects.postgresql import JSONB, UUID

from rapport.kernel.models import EMPTY_OBJECT, NOW, metadata, timestamp, user_column, uuid_column

# The values the CHECK constraints allow.
PairingStatus = Literal["pending", "active", "canceled", "expired"]
InviteType = Literal["email", "link", "code"]
PairingAction = Literal["created", "accepted", "canceled", "expired", "accept_failed", "imported"]

pairing_sessions = Table(
    "pairing_sessions",
    metadata,
    uuid_column("id", primary_key=True),
    Column("pairing_code", Text),
    user_column("parent_a_id", nullable=True, ondelete="SET NULL"),
    user_column("parent_b_id", nullable=True, ondelete="SET NULL"),
    Column("parent_b_email", Text),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("invite_type", Text, nullable=False),
    Column("invite_token_hash", LargeBinary),
    Column("invited_by_name", Text),
    timestamp("expires_at", nullable=False),
    timestamp("accepted_at"),
    timestamp("canceled_at"),
    Column("shared_room_id", UUID(as_uuid=True), ForeignKey("messaging.conversations.id", ondelete="SET NULL")),
    timestamp("announced_at"),
    timestamp("mediation_announced_at"),
    timestamp("ended_announced_at"),
    Column("legacy_invitation_id", BigInteger),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="coparenting",
)

# Append-only; failed attempts to accept name no pairing.
pairing_audit_log = Table(
    "pairing_audit_log",
    metadata,
    uuid_column("id", primary_key=True),
    Column("pairing_id", UUID(as_uuid=True), ForeignKey("coparenting.pairing_sessions.id", ondelete="CASCADE")),
    user_column("actor_id", nullable=True, ondelete="SET NULL"),
    Column("action", Text, nullable=False),
    Column("details", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="coparenting",
)
