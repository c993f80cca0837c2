"""The `auth` schema's tables, as SQLAlchemy Core tables for queries.

The migrations create them (with their policies, triggers and comments); these mirror
the columns the code reads and writes.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import INET, JSONB, UUID

from rapport.kernel.models import metadata


def _ts(name: str, *, nullable: bool = True) -> Column:
    return Column(name, DateTime(timezone=True), nullable=nullable)


def _user_fk() -> Column:
    return Column("user_id", UUID(as_uuid=True), ForeignKey("auth.users.id", ondelete="CASCADE"), nullable=False)


users = Table(
    "users",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("email", Text, nullable=False),
    Column("password_hash", Text),
    Column("status", Text, nullable=False),
    Column("is_admin", Boolean, nullable=False),
    _ts("email_verified_at"),
    Column("failed_login_attempts", Integer, nullable=False),
    _ts("locked_until"),
    _ts("last_login_at"),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    _ts("deleted_at"),
    schema="auth",
)

identities = Table(
    "identities",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    _user_fk(),
    Column("provider", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("email", Text),
    _ts("created_at", nullable=False),
    _ts("last_login_at"),
    schema="auth",
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    _user_fk(),
    Column("device_type", Text, nullable=False),
    Column("device_name", Text),
    Column("user_agent", Text),
    Column("ip_address", INET),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    _ts("last_active_at", nullable=False),
    _ts("expires_at", nullable=False),
    _ts("revoked_at"),
    Column("revoked_reason", Text),
    schema="auth",
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("session_id", UUID(as_uuid=True), ForeignKey("auth.sessions.id", ondelete="CASCADE"), nullable=False),
    _user_fk(),
    Column("token_hash", LargeBinary, nullable=False),
    _ts("created_at", nullable=False),
    _ts("expires_at", nullable=False),
    _ts("used_at"),
    schema="auth",
)

otp_verifications = Table(
    "otp_verifications",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    _user_fk(),
    Column("purpose", Text, nullable=False),
    Column("identifier", Text, nullable=False),
    Column("code_hash", LargeBinary, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    _ts("expires_at", nullable=False),
    _ts("consumed_at"),
    _ts("created_at", nullable=False),
    schema="auth",
)

totp_credentials = Table(
    "totp_credentials",
    metadata,
    Column("user_id", UUID(as_uuid=True), ForeignKey("auth.users.id", ondelete="CASCADE"), primary_key=True),
    Column("secret_encrypted", LargeBinary, nullable=False),
    _ts("confirmed_at"),
    Column("last_used_step", BigInteger),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    schema="auth",
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    _user_fk(),
    Column("code_hash", LargeBinary, nullable=False),
    _ts("used_at"),
    _ts("created_at", nullable=False),
    schema="auth",
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    _user_fk(),
    Column("name", Text, nullable=False),
    Column("prefix", Text, nullable=False),
    Column("key_hash", LargeBinary, nullable=False),
    _ts("expires_at"),
    _ts("last_used_at"),
    _ts("revoked_at"),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    schema="auth",
)

login_history = Table(
    "login_history",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    _user_fk(),
    Column("session_id", UUID(as_uuid=True), ForeignKey("auth.sessions.id", ondelete="SET NULL")),
    Column("method", Text, nullable=False),
    Column("succeeded", Boolean, nullable=False),
    Column("failure_reason", Text),
    Column("ip_address", INET),
    Column("user_agent", Text),
    _ts("created_at", nullable=False),
    schema="auth",
)

security_events = Table(
    "security_events",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    _user_fk(),
    Column("event_type", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("ip_address", INET),
    Column("user_agent", Text),
    Column("details", JSONB, nullable=False),
    _ts("created_at", nullable=False),
    schema="auth",
)

login_throttle = Table(
    "login_throttle",
    metadata,
    Column("key", Text, primary_key=True),
    Column("failures", Integer, nullable=False),
    _ts("window_started_at", nullable=False),
    _ts("locked_until"),
    _ts("updated_at", nullable=False),
    schema="auth",
)
