"""kernel.jobs as Core sees it, mirroring migration 2026_11_29_0010 (its indexes, CHECKs,
policies and trigger live there only). The queue's statements are in `_queue`."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Column, Integer, Table, Text, text
from sqlalchemy.dialects.postgresql import JSONB, UUID

from rapport.kernel.models import EMPTY_OBJECT, NOW, metadata, timestamp

# The values ck_jobs_status allows: waiting, held by a worker, out of attempts.
JobStatus = Literal["queued", "running", "dead"]

# Readable and writable by rapport_worker only; rapport_app may insert fresh jobs.
jobs = Table(
    "jobs",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("queue", Text, nullable=False),
    Column("task", Text, nullable=False),
    Column("payload", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    Column("status", Text, nullable=False, server_default=text("'queued'::text")),
    timestamp("run_at", nullable=False, server_default=NOW),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("max_attempts", Integer, nullable=False),
    timestamp("locked_at"),
    Column("locked_by", Text),
    Column("last_error", Text),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="kernel",
)
