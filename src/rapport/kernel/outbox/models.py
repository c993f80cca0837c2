"""kernel.events as Core sees it, mirroring migration 2026_11_29_0011 (its index, CHECKs,
policies and numbering trigger live there only). The statements are in `_events`."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import BigInteger, Column, Table, Text
from sqlalchemy.dialects.postgresql import JSONB, UUID

from rapport.kernel.models import EMPTY_OBJECT, NOW, metadata, timestamp

# The values ck_events_scope_kind allows: who may receive an event.
ScopeKind = Literal["conversation", "user"]

# rapport_app may insert; only rapport_worker reads. The trigger kernel.events_position()
# sets `position`, so Core must neither send one nor ask for it back (RETURNING would need
# the SELECT the server's role does not have).
events = Table(
    "events",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("scope_kind", Text, nullable=False),
    Column("scope_id", UUID(as_uuid=True), nullable=False),
    Column("type", Text, nullable=False),
    Column("payload", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    Column("actor_id", UUID(as_uuid=True)),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="kernel",
)
