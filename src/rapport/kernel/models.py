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

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Identity, MetaData, Table, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
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
    schema="audit",
)

# Reads and writes of sensitive data, written only by audit.record_sensitive_access()
# and audit.record_sensitive_write() (made in 2026_11_21_0004; the audit schema's own
# since 2026_11_29_0009). No foreign keys: the record outlives what it describes.
sensitive_data_access = Table(
    "sensitive_data_access",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("accessed_by", UUID(as_uuid=True)),
    Column("table_name", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("fields", ARRAY(Text), nullable=False, server_default=EMPTY_TEXT_ARRAY),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="audit",
)
