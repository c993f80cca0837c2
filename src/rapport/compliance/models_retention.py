"""The `compliance` schema's retention tables as SQLAlchemy Core sees them, mirroring
migration 2026_11_30_0025 (its CHECKs, policies, index and the definer functions of
retention and repairs live there only; tests/kernel/test_catalogue.py compares the two).
rapport.compliance._retention reads and writes them in SQL."""

from __future__ import annotations

from sqlalchemy import Column, Table, Text
from sqlalchemy.dialects.postgresql import INTERVAL, JSONB

from rapport.kernel.models import EMPTY_OBJECT, NOW, metadata, timestamp, uuid_column

# A deployment's horizons: a row overrides a policy's default (rapport.compliance._policies).
retention_policies = Table(
    "retention_policies",
    metadata,
    Column("name", Text, primary_key=True),
    Column("keep", INTERVAL),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="compliance",
)

# Each run of the policies, and what each removed.
retention_runs = Table(
    "retention_runs",
    metadata,
    uuid_column("id", primary_key=True),
    timestamp("started_at", nullable=False),
    timestamp("finished_at"),
    Column("removed", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    Column("error", Text),
    schema="compliance",
)
