"""The `access` schema as SQLAlchemy Core tables for queries: permission domains,
permissions, roles, the permissions each role holds, and grants of roles to people.
Migration 2026_11_30_0036 creates them with their policies and functions
(access.has_permission, access.holders_of); these mirror their columns
(tests/kernel/test_catalogue.py)."""

from sqlalchemy import Boolean, Column, ForeignKey, Table, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import UUID

from rapport.kernel.models import NOW, metadata, timestamp, user_column, uuid_column

domains = Table(
    "domains",
    metadata,
    Column("prefix", Text, primary_key=True),
    Column("description", Text, nullable=False),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="access",
)

permissions = Table(
    "permissions",
    metadata,
    Column("name", Text, primary_key=True),
    Column("domain", Text, ForeignKey("access.domains.prefix"), nullable=False),
    Column("action", Text, nullable=False),
    Column("description", Text, nullable=False),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="access",
)

roles = Table(
    "roles",
    metadata,
    uuid_column("id", primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=text("''::text")),
    Column("is_builtin", Boolean, nullable=False, server_default=text("false")),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    UniqueConstraint("name"),
    schema="access",
)

role_permissions = Table(
    "role_permissions",
    metadata,
    Column("role_id", UUID(as_uuid=True), ForeignKey("access.roles.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "permission", Text, ForeignKey("access.permissions.name", ondelete="CASCADE"), nullable=False, primary_key=True
    ),
    schema="access",
)

grants = Table(
    "grants",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("user_id"),
    Column("role_id", UUID(as_uuid=True), ForeignKey("access.roles.id", ondelete="CASCADE"), nullable=False),
    Column(
        "conversation_id",
        UUID(as_uuid=True),
        ForeignKey("messaging.conversations.id", ondelete="CASCADE"),
        nullable=True,
    ),
    user_column("granted_by", nullable=True, ondelete="SET NULL"),
    timestamp("created_at", nullable=False, server_default=NOW),
    UniqueConstraint(
        "user_id", "role_id", "conversation_id", name="uq_grants_scope", postgresql_nulls_not_distinct=True
    ),
    schema="access",
)
