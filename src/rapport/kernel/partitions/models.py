"""kernel.monthly_partitions as Core sees it, mirroring migration 2026_11_29_0012 (its
CHECK, policies and the function kernel.ensure_partitions() live there only)."""

from __future__ import annotations

from sqlalchemy import Column, Integer, Table, text
from sqlalchemy.dialects.postgresql import REGCLASS

from rapport.kernel.models import NOW, metadata, timestamp

# Written by migrations only (as rapport_owner); rapport_worker may read it.
monthly_partitions = Table(
    "monthly_partitions",
    metadata,
    Column("parent", REGCLASS, primary_key=True),
    Column("months_ahead", Integer, nullable=False, server_default=text("3")),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="kernel",
)
