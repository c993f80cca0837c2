"""The `compliance` schema's tables of exports and deletion requests as SQLAlchemy Core sees
them, mirroring migration 2026_11_30_0024 (its indexes, CHECKs, policies and the functions
compliance.schedule_deletion, compliance.deletion_pending, compliance.cancel_deletion and
compliance.erase_messages live there only; tests/kernel/test_catalogue.py compares the two)."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import BigInteger, Column, LargeBinary, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

from rapport.kernel.models import EMPTY_OBJECT, NOW, metadata, timestamp, user_column, uuid_column

# The values the CHECK constraints allow.
ExportStatus = Literal["pending", "running", "completed", "failed", "expired"]
ConfirmedBy = Literal["password", "recent_sign_in"]

exports = Table(
    "exports",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("user_id"),
    Column("status", Text, nullable=False, server_default="pending"),
    timestamp("requested_at", nullable=False, server_default=NOW),
    timestamp("started_at"),
    timestamp("completed_at"),
    timestamp("expires_at"),
    Column("size_bytes", BigInteger),
    Column("sha256", LargeBinary),
    Column("storage_key", Text),
    Column("sections", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    Column("error", Text),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="compliance",
)

deletion_requests = Table(
    "deletion_requests",
    metadata,
    user_column("user_id", primary_key=True),
    timestamp("requested_at", nullable=False, server_default=NOW),
    timestamp("erase_after", nullable=False),
    Column("confirmed_by", Text, nullable=False),
    schema="compliance",
)
