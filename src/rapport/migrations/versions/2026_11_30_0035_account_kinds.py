"""account kinds: a person, a bot or a guest.

Why: issue 16. Bots (rapport.bots) and the support desk's guests are accounts like any
other, so that every domain's rules (participants, row-level security, API keys,
sessions) apply to them unchanged; `kind` says which they are. Neither has a password,
an e-mail address or a phone number: a bot signs in with its API keys, a guest through
the link that made them, and neither is ever sent mail or SMS.

Revision ID: 2026_11_30_0035
Revises: 2026_11_30_0034
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0035"
down_revision = "2026_11_30_0034"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


def upgrade() -> None:
    run_sql(
        """
        ALTER TABLE auth.users ADD COLUMN kind text NOT NULL DEFAULT 'person',
            ADD CONSTRAINT ck_users_kind CHECK (kind IN ('person', 'bot', 'guest')),
            -- Only a person signs in with a password, and is reached by mail or SMS.
            ADD CONSTRAINT ck_users_kind_without_password CHECK (kind = 'person' OR password_hash IS NULL),
            DROP CONSTRAINT ck_users_email_or_phone,
            ADD CONSTRAINT ck_users_email_or_phone CHECK (kind <> 'person' OR email IS NOT NULL OR phone_number IS NOT NULL);
        COMMENT ON COLUMN auth.users.kind IS
            'person; bot (rapport.bots: signs in with API keys only); guest (a support room''s visitor, '
            'signed in through the link that made them). Bots and guests have no password.';
        """
    )


def downgrade() -> None:
    run_sql(
        """
        DELETE FROM auth.users WHERE kind <> 'person';
        ALTER TABLE auth.users DROP CONSTRAINT ck_users_email_or_phone,
            ADD CONSTRAINT ck_users_email_or_phone CHECK (email IS NOT NULL OR phone_number IS NOT NULL);
        ALTER TABLE auth.users DROP COLUMN kind;
        """
    )
