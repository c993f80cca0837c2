"""Throttles for mailed codes and sign-in per account and client.

Why: e-mailed codes could be guessed without limit, mail sent without limit and one
stranger could lock anyone out; rate limits (token buckets), single-use two-factor
challenges and per-(address, client) locks close these (docs/decisions/0008).

Revision ID: 2026_11_29_0007
Revises: 2026_11_29_0006
Create Date: 2026-11-29
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_29_0007"
down_revision = "2026_11_29_0006"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    # The raw asyncpg connection: None only once the connection is closed, never in a migration.
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


def upgrade() -> None:
    run_sql(
        """
        CREATE TABLE auth.rate_limits (
            key text NOT NULL,
            tat timestamptz NOT NULL,
            CONSTRAINT pk_rate_limits PRIMARY KEY (key)
        );
        COMMENT ON TABLE auth.rate_limits IS
            'One token bucket per rate-limit rule and subject (docs/decisions/0008). The key is the '
            'rule''s name and its subject: an HMAC of an e-mail address (never the address), a client '
            'IP or a user id.';
        COMMENT ON COLUMN auth.rate_limits.tat IS
            'Generic cell rate algorithm: when the bucket is full again. A request is admitted while '
            'this stays at most one window ahead of now; a row whose moment has passed is dead.';
        -- Serves identity._limits sweeping: dead buckets, oldest first.
        CREATE INDEX ix_rate_limits_tat ON auth.rate_limits (tat);
        ALTER TABLE auth.rate_limits ENABLE ROW LEVEL SECURITY;
        ALTER TABLE auth.rate_limits FORCE ROW LEVEL SECURITY;
        CREATE POLICY rate_limits_system ON auth.rate_limits
            USING (auth.is_system()) WITH CHECK (auth.is_system());
        -- A signed-in user's own wrong two-factor codes (turning two-factor off, renewing
        -- recovery codes) spend the same budget as at sign-in.
        CREATE POLICY rate_limits_own_second_factor ON auth.rate_limits
            USING (key = 'second-factor:' || auth.current_user_id())
            WITH CHECK (key = 'second-factor:' || auth.current_user_id());
        GRANT SELECT, INSERT, UPDATE, DELETE ON auth.rate_limits TO rapport_app, rapport_worker;

        CREATE TABLE auth.spent_tokens (
            id uuid NOT NULL,
            expires_at timestamptz NOT NULL,
            CONSTRAINT pk_spent_tokens PRIMARY KEY (id)
        );
        COMMENT ON TABLE auth.spent_tokens IS
            'Single-use tokens (two-factor challenges) already used, by their jti, kept until they '
            'expire: a second use finds its row.';
        -- Serves identity._signin sweeping: expired rows, oldest first.
        CREATE INDEX ix_spent_tokens_expires_at ON auth.spent_tokens (expires_at);
        ALTER TABLE auth.spent_tokens ENABLE ROW LEVEL SECURITY;
        ALTER TABLE auth.spent_tokens FORCE ROW LEVEL SECURITY;
        CREATE POLICY spent_tokens_system ON auth.spent_tokens
            USING (auth.is_system()) WITH CHECK (auth.is_system());
        -- UPDATE only for the row locks of sweeping (FOR UPDATE SKIP LOCKED).
        GRANT SELECT, INSERT, UPDATE, DELETE ON auth.spent_tokens TO rapport_app, rapport_worker;

        -- Serves identity._signin known clients: has this account signed in from this IP?
        CREATE INDEX ix_login_history_known_clients ON auth.login_history (user_id, ip_address, created_at)
            WHERE succeeded;

        -- Wrong second-factor codes now spend a budget in auth.rate_limits, and failed
        -- sign-ins lock per (address, client) pair: the per-account keys are gone.
        DROP POLICY login_throttle_own_mfa ON auth.login_throttle;
        DELETE FROM auth.login_throttle WHERE key LIKE 'mfa:%' OR key LIKE 'email:%';
        COMMENT ON TABLE auth.login_throttle IS
            'Failed sign-ins per (address typed, client IP) pair, keyed by an HMAC (never the '
            'address), and per client IP. Keyed by what was typed, not by account, so an unknown '
            'address locks exactly like a known one; one client''s failures lock only that client.';
        COMMENT ON COLUMN auth.users.locked_until IS
            'Unused since sign-in locks are per (address, client) pair (docs/decisions/0003).';
        """
    )


def downgrade() -> None:
    run_sql(
        """
        COMMENT ON COLUMN auth.users.locked_until IS 'Sign-in refused until then after repeated failures.';
        COMMENT ON TABLE auth.login_throttle IS
            'Failed sign-ins per e-mail (hashed) and per client IP. Keyed by the address typed, '
            'not by account, so an unknown address locks exactly like a known one.';
        DELETE FROM auth.login_throttle WHERE key LIKE 'pair:%';
        CREATE POLICY login_throttle_own_mfa ON auth.login_throttle
            USING (key = 'mfa:' || auth.current_user_id())
            WITH CHECK (key = 'mfa:' || auth.current_user_id());
        DROP INDEX auth.ix_login_history_known_clients;
        DROP TABLE auth.spent_tokens;
        DROP TABLE auth.rate_limits;
        """
    )
