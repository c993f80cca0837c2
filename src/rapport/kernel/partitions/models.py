"""kernel.monthly_partitions as Core sees it, mirroring migrations 2026_11_29_0012 and
2026_12_01_0049 (its CHECKs, policies and the function kernel.ensure_partitions() live
there only)."""

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
    Column("months_behind", Integer, nullable=False, server_default=text("0")),
    schema="kernel",
)
