"""The metadata every domain's tables hang on, with one naming convention for
constraints (the migrations spell the same names), and the kernel's own tables: the
`audit` schema, which the kernel's migrations make and every domain writes through.

Each domain's `models.py` mirrors its migrations: columns, types, nullability, server
defaults, keys and foreign keys. tests/kernel/test_catalogue.py compares the two.
Indexes, CHECK constraints, policies, triggers and functions live in the migrations only.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    LargeBinary,
    MetaData,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, INET, JSONB, UUID
from sqlalchemy.sql.elements import TextClause

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# The server default of created_at, updated_at and other "when it happened" columns.
NOW = text("now()")
# The server default of a column holding an empty JSON object or an empty text array.
EMPTY_OBJECT = text("'{}'::jsonb")
EMPTY_TEXT_ARRAY = text("'{}'::text[]")


def uuid_column(name: str, *, nullable: bool = False, primary_key: bool = False) -> Column[uuid.UUID]:
    """A `uuid` column."""
    return Column(name, UUID(as_uuid=True), nullable=nullable, primary_key=primary_key)


def user_column(
    name: str, *, nullable: bool = False, primary_key: bool = False, ondelete: str = "CASCADE"
) -> Column[uuid.UUID]:
    """A column naming an account (auth.users.id), with what happens when the account goes."""
    return Column(
        name,
        UUID(as_uuid=True),
        ForeignKey("auth.users.id", ondelete=ondelete),
        nullable=nullable,
        primary_key=primary_key,
    )


def timestamp(name: str, *, nullable: bool = True, server_default: TextClause | None = None) -> Column[datetime]:
    """A `timestamptz` column: every time Rapport stores has a zone."""
    return Column(name, DateTime(timezone=True), nullable=nullable, server_default=server_default)


def chain_columns() -> list[Column[Any]]:
    """The columns of an audit table's hash chain (migration 2026_11_30_0023), set by the
    trigger audit.chain_append() on insert."""
    return [
        Column("chain_position", BigInteger, nullable=False),
        Column("content_hash", LargeBinary, nullable=False),
        Column("chain_hash", LargeBinary, nullable=False),
        timestamp("redacted_at"),
    ]


def reader_cursor_table(name: str, *, schema: str) -> Table:
    """A domain's table of durable places in the outbox, one row per reader
    (rapport.kernel.outbox.CursorReader): each reader keeps its own in its own schema,
    system work's alone."""
    return Table(
        name,
        metadata,
        Column("name", Text, primary_key=True),
        Column("position", BigInteger, nullable=False),
        timestamp("updated_at", nullable=False, server_default=NOW),
        schema=schema,
    )


# Written only by the trigger function audit.record_change() (migration 2026_11_21_0001).
record_changes = Table(
    "record_changes",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("schema_name", Text, nullable=False),
    Column("table_name", Text, nullable=False),
    Column("operation", Text, nullable=False),
    Column("old_data", JSONB),
    Column("new_data", JSONB),
    Column("changed_fields", ARRAY(Text)),
    Column("acting_user_id", UUID(as_uuid=True)),
    Column("transaction_id", BigInteger, nullable=False),
    timestamp("occurred_at", nullable=False, server_default=NOW),
    *chain_columns(),
    schema="audit",
)

# Reads and writes of sensitive data, written only by audit.record_sensitive_access()
# and audit.record_sensitive_write() (made in 2026_11_21_0004; the audit schema's own
# since 2026_11_29_0009). No foreign keys: the record outlives what it describes.
sensitive_data_access = Table(
    "sensitive_data_access",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    # NULL only once erasure redacted the row (audit.erase_person).
    Column("user_id", UUID(as_uuid=True)),
    Column("accessed_by", UUID(as_uuid=True)),
    Column("table_name", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("fields", ARRAY(Text), nullable=False, server_default=EMPTY_TEXT_ARRAY),
    timestamp("created_at", nullable=False, server_default=NOW),
    *chain_columns(),
    schema="audit",
)

# The audit tables below are made by the compliance migration (2026_11_30_0023), which
# hash-chains every audit table: each row's place, content hash and chain hash are set by
# the BEFORE INSERT trigger audit.chain_append(); rapport.compliance verifies the chains.

# Where each audit table's chain ends, and where it starts once retention pruned it.
chain_heads = Table(
    "chain_heads",
    metadata,
    Column("table_name", Text, primary_key=True),
    Column("chain_position", BigInteger, nullable=False, server_default=text("0")),
    Column("chain_hash", LargeBinary),
    Column("anchor_position", BigInteger, nullable=False, server_default=text("0")),
    Column("anchor_hash", LargeBinary),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="audit",
)

# Platform administrators' actions, written only by audit.record_admin_action().
admin_actions = Table(
    "admin_actions",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("admin_id", UUID(as_uuid=True)),
    Column("action", Text, nullable=False),
    Column("target_user_id", UUID(as_uuid=True)),
    Column("target", Text),
    Column("reason", Text),
    Column("details", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    timestamp("created_at", nullable=False, server_default=NOW),
    *chain_columns(),
    schema="audit",
)

# Sign-in attempts and security events, copied by trigger from auth.login_history and
# auth.security_events (audit.record_auth_event()).
auth_events = Table(
    "auth_events",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("user_id", UUID(as_uuid=True)),
    Column("event_type", Text, nullable=False),
    Column("succeeded", Boolean),
    Column("ip_address", INET),
    Column("user_agent", Text),
    Column("details", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    timestamp("created_at", nullable=False, server_default=NOW),
    *chain_columns(),
    schema="audit",
)

# Each step of each export of a person's data, written by audit.record_data_export().
data_exports = Table(
    "data_exports",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("export_id", UUID(as_uuid=True), nullable=False),
    Column("user_id", UUID(as_uuid=True)),
    Column("event", Text, nullable=False),
    Column("details", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    timestamp("created_at", nullable=False, server_default=NOW),
    *chain_columns(),
    schema="audit",
)

# Audit rows erasure blanked (audit.erase_person()), with the hash of what each holds since.
redactions = Table(
    "redactions",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("table_name", Text, nullable=False),
    Column("row_id", BigInteger, nullable=False),
    Column("redacted_hash", LargeBinary, nullable=False),
    timestamp("created_at", nullable=False, server_default=NOW),
    *chain_columns(),
    schema="audit",
)

# The audit tables whose rows are hash-chained, in the order verification walks them.
CHAINED_AUDIT_TABLES = (record_changes, sensitive_data_access, admin_actions, auth_events, data_exports, redactions)
