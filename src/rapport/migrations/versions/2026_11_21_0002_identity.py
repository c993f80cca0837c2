"""Identity: accounts, external identities, sessions, refresh tokens, one-time codes,
TOTP, API keys, sign-in history, security events and sign-in throttling.

Why: the first domain; every other one keys its rows by auth.users.id.

Revision ID: 2026_11_21_0002
Revises: 2026_11_21_0001
Create Date: 2026-11-21
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_21_0002"
down_revision = "2026_11_21_0001"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    # The raw asyncpg connection: None only once the connection is closed, never in a migration.
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


# Tables whose rows belong to one user, by the column naming that user.
_OWNED = {
    "users": "id",
    "identities": "user_id",
    "sessions": "user_id",
    "refresh_tokens": "user_id",
    "otp_verifications": "user_id",
    "totp_credentials": "user_id",
    "recovery_codes": "user_id",
    "api_keys": "user_id",
    "login_history": "user_id",
    "security_events": "user_id",
}
# Append-only records: the app may add and read them, never rewrite them.
_APPEND_ONLY = {"login_history", "security_events"}


def upgrade() -> None:
    run_sql(
        """
        CREATE TABLE auth.users (
            id uuid NOT NULL,
            email text NOT NULL,
            password_hash text,
            status text NOT NULL DEFAULT 'pending',
            is_admin boolean NOT NULL DEFAULT false,
            email_verified_at timestamptz,
            failed_login_attempts integer NOT NULL DEFAULT 0,
            locked_until timestamptz,
            last_login_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            deleted_at timestamptz,
            CONSTRAINT pk_users PRIMARY KEY (id),
            CONSTRAINT ck_users_email_normalised CHECK (
                email = lower(btrim(email)) AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$'
                AND length(email) <= 320),
            CONSTRAINT ck_users_status CHECK (
                status IN ('pending', 'active', 'suspended', 'banned', 'deleted')),
            CONSTRAINT ck_users_failed_login_attempts CHECK (failed_login_attempts >= 0)
        );
        COMMENT ON TABLE auth.users IS 'Accounts: one per person, keyed by a UUIDv7.';
        COMMENT ON COLUMN auth.users.email IS 'Trimmed and lower-cased at the edge; the CHECK enforces it.';
        COMMENT ON COLUMN auth.users.password_hash IS
            'argon2id (PHC string); bcrypt ($2b$) hashes still verify and are rehashed on sign-in. '
            'NULL for accounts that sign in only through an external provider.';
        COMMENT ON COLUMN auth.users.locked_until IS 'Sign-in refused until then after repeated failures.';
        -- Serves rapport.identity._accounts.get_user_by_email (sign-in, registration, reset).
        CREATE UNIQUE INDEX ux_users_email_live ON auth.users (email) WHERE deleted_at IS NULL;

        CREATE TABLE auth.identities (
            id uuid NOT NULL,
            user_id uuid NOT NULL,
            provider text NOT NULL,
            subject text NOT NULL,
            email text,
            created_at timestamptz NOT NULL DEFAULT now(),
            last_login_at timestamptz,
            CONSTRAINT pk_identities PRIMARY KEY (id),
            CONSTRAINT fk_identities_user_id_users FOREIGN KEY (user_id)
                REFERENCES auth.users (id) ON DELETE CASCADE,
            CONSTRAINT uq_identities_provider_subject UNIQUE (provider, subject),
            CONSTRAINT ck_identities_subject_length CHECK (length(subject) BETWEEN 1 AND 255)
        );
        COMMENT ON TABLE auth.identities IS
            'External sign-in identities (OpenID Connect provider and subject) of an account.';
        -- Serves the foreign key and listing one user's identities.
        CREATE INDEX ix_identities_user_id ON auth.identities (user_id);

        CREATE TABLE auth.sessions (
            id uuid NOT NULL,
            user_id uuid NOT NULL,
            device_type text NOT NULL DEFAULT 'unknown',
            device_name text,
            user_agent text,
            ip_address inet,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            last_active_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            revoked_at timestamptz,
            revoked_reason text,
            CONSTRAINT pk_sessions PRIMARY KEY (id),
            CONSTRAINT fk_sessions_user_id_users FOREIGN KEY (user_id)
                REFERENCES auth.users (id) ON DELETE CASCADE,
            CONSTRAINT ck_sessions_device_type CHECK (
                device_type IN ('mobile', 'tablet', 'desktop', 'web', 'unknown')),
            CONSTRAINT ck_sessions_revoked_reason CHECK (revoked_reason IN (
                'logout', 'revoked', 'password_changed', 'password_reset',
                'refresh_token_reuse', 'account_disabled'))
        );
        COMMENT ON TABLE auth.sessions IS 'One signed-in device: its refresh tokens rotate within it.';
        -- Serves rapport.identity._sessions.list_sessions: one user's sessions, newest first (ids are UUIDv7).
        CREATE INDEX ix_sessions_user_id ON auth.sessions (user_id, id DESC);

        CREATE TABLE auth.refresh_tokens (
            id uuid NOT NULL,
            session_id uuid NOT NULL,
            user_id uuid NOT NULL,
            token_hash bytea NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            used_at timestamptz,
            CONSTRAINT pk_refresh_tokens PRIMARY KEY (id),
            CONSTRAINT fk_refresh_tokens_session_id_sessions FOREIGN KEY (session_id)
                REFERENCES auth.sessions (id) ON DELETE CASCADE,
            CONSTRAINT fk_refresh_tokens_user_id_users FOREIGN KEY (user_id)
                REFERENCES auth.users (id) ON DELETE CASCADE,
            CONSTRAINT uq_refresh_tokens_token_hash UNIQUE (token_hash),
            CONSTRAINT ck_refresh_tokens_token_hash_length CHECK (length(token_hash) = 32)
        );
        COMMENT ON TABLE auth.refresh_tokens IS
            'Every refresh token a session was given, as SHA-256. A used one that comes back '
            'is a stolen one: the session is revoked.';
        COMMENT ON COLUMN auth.refresh_tokens.used_at IS 'When it was exchanged for the next one.';
        -- Serves the foreign key and deleting one session's tokens.
        CREATE INDEX ix_refresh_tokens_session_id ON auth.refresh_tokens (session_id);
        -- Serves the foreign key (account deletion).
        CREATE INDEX ix_refresh_tokens_user_id ON auth.refresh_tokens (user_id);

        CREATE TABLE auth.otp_verifications (
            id uuid NOT NULL,
            user_id uuid NOT NULL,
            purpose text NOT NULL,
            identifier text NOT NULL,
            code_hash bytea NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            max_attempts integer NOT NULL,
            expires_at timestamptz NOT NULL,
            consumed_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_otp_verifications PRIMARY KEY (id),
            CONSTRAINT fk_otp_verifications_user_id_users FOREIGN KEY (user_id)
                REFERENCES auth.users (id) ON DELETE CASCADE,
            CONSTRAINT ck_otp_verifications_purpose CHECK (
                purpose IN ('email_verification', 'password_reset')),
            CONSTRAINT ck_otp_verifications_attempts CHECK (attempts >= 0)
        );
        COMMENT ON TABLE auth.otp_verifications IS
            'One-time codes sent by e-mail, stored as HMAC-SHA256 under the server key.';
        COMMENT ON COLUMN auth.otp_verifications.identifier IS 'The address the code was sent to.';
        -- Serves rapport.identity._accounts._spend_code: the newest live code of one purpose for one user.
        CREATE INDEX ix_otp_verifications_user_purpose
            ON auth.otp_verifications (user_id, purpose, created_at DESC);

        CREATE TABLE auth.totp_credentials (
            user_id uuid NOT NULL,
            secret_encrypted bytea NOT NULL,
            confirmed_at timestamptz,
            last_used_step bigint,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_totp_credentials PRIMARY KEY (user_id),
            CONSTRAINT fk_totp_credentials_user_id_users FOREIGN KEY (user_id)
                REFERENCES auth.users (id) ON DELETE CASCADE
        );
        COMMENT ON TABLE auth.totp_credentials IS
            'TOTP (RFC 6238) secrets, AES-GCM encrypted under the server key. Two-factor sign-in '
            'is on once confirmed_at is set.';
        COMMENT ON COLUMN auth.totp_credentials.last_used_step IS
            'The last accepted time step: a code is never accepted twice.';

        CREATE TABLE auth.recovery_codes (
            id uuid NOT NULL,
            user_id uuid NOT NULL,
            code_hash bytea NOT NULL,
            used_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_recovery_codes PRIMARY KEY (id),
            CONSTRAINT fk_recovery_codes_user_id_users FOREIGN KEY (user_id)
                REFERENCES auth.users (id) ON DELETE CASCADE
        );
        COMMENT ON TABLE auth.recovery_codes IS 'Single-use two-factor recovery codes, SHA-256.';
        -- Serves the foreign key and matching a code among one user's.
        CREATE INDEX ix_recovery_codes_user_id ON auth.recovery_codes (user_id);

        CREATE TABLE auth.api_keys (
            id uuid NOT NULL,
            user_id uuid NOT NULL,
            name text NOT NULL,
            prefix text NOT NULL,
            key_hash bytea NOT NULL,
            expires_at timestamptz,
            last_used_at timestamptz,
            revoked_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_api_keys PRIMARY KEY (id),
            CONSTRAINT fk_api_keys_user_id_users FOREIGN KEY (user_id)
                REFERENCES auth.users (id) ON DELETE CASCADE,
            CONSTRAINT uq_api_keys_key_hash UNIQUE (key_hash),
            CONSTRAINT ck_api_keys_name_length CHECK (length(name) BETWEEN 1 AND 100)
        );
        COMMENT ON TABLE auth.api_keys IS
            'Keys for bots and scripts; shown once, stored as SHA-256.';
        COMMENT ON COLUMN auth.api_keys.prefix IS 'The first characters of the key, to tell keys apart.';
        -- Serves rapport.identity._api_keys.list_api_keys: one user's keys, newest first.
        CREATE INDEX ix_api_keys_user_id ON auth.api_keys (user_id, id DESC);

        CREATE TABLE auth.login_history (
            id uuid NOT NULL,
            user_id uuid NOT NULL,
            session_id uuid,
            method text NOT NULL,
            succeeded boolean NOT NULL,
            failure_reason text,
            ip_address inet,
            user_agent text,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_login_history PRIMARY KEY (id),
            CONSTRAINT fk_login_history_user_id_users FOREIGN KEY (user_id)
                REFERENCES auth.users (id) ON DELETE CASCADE,
            CONSTRAINT fk_login_history_session_id_sessions FOREIGN KEY (session_id)
                REFERENCES auth.sessions (id) ON DELETE SET NULL
        );
        COMMENT ON TABLE auth.login_history IS 'Every sign-in attempt on an existing account.';
        -- Serves rapport.identity._history.list_login_history: one user's attempts, newest first.
        CREATE INDEX ix_login_history_user_id ON auth.login_history (user_id, id DESC);
        -- Serves the foreign key (session deletion).
        CREATE INDEX ix_login_history_session_id ON auth.login_history (session_id)
            WHERE session_id IS NOT NULL;

        CREATE TABLE auth.security_events (
            id uuid NOT NULL,
            user_id uuid NOT NULL,
            event_type text NOT NULL,
            severity text NOT NULL DEFAULT 'info',
            ip_address inet,
            user_agent text,
            details jsonb NOT NULL DEFAULT '{}',
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_security_events PRIMARY KEY (id),
            CONSTRAINT fk_security_events_user_id_users FOREIGN KEY (user_id)
                REFERENCES auth.users (id) ON DELETE CASCADE,
            CONSTRAINT ck_security_events_severity CHECK (severity IN ('info', 'warning', 'critical'))
        );
        COMMENT ON TABLE auth.security_events IS
            'What changed an account''s security: password, two-factor, keys, token reuse, locks.';
        -- Serves rapport.identity._history.list_security_events: one user's events, newest first.
        CREATE INDEX ix_security_events_user_id ON auth.security_events (user_id, id DESC);

        CREATE TABLE auth.login_throttle (
            key text NOT NULL,
            failures integer NOT NULL DEFAULT 0,
            window_started_at timestamptz NOT NULL DEFAULT now(),
            locked_until timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_login_throttle PRIMARY KEY (key)
        );
        COMMENT ON TABLE auth.login_throttle IS
            'Failed sign-ins per e-mail (hashed) and per client IP. Keyed by the address typed, '
            'not by account, so an unknown address locks exactly like a known one.';
        """
    )
    for table, owner_column in _OWNED.items():
        privileges = "SELECT, INSERT" if table in _APPEND_ONLY else "SELECT, INSERT, UPDATE, DELETE"
        run_sql(
            f"""
            ALTER TABLE auth.{table} ENABLE ROW LEVEL SECURITY;
            ALTER TABLE auth.{table} FORCE ROW LEVEL SECURITY;
            CREATE POLICY {table}_owner ON auth.{table}
                USING ({owner_column} = auth.current_user_id())
                WITH CHECK ({owner_column} = auth.current_user_id());
            CREATE POLICY {table}_system ON auth.{table}
                USING (auth.is_system()) WITH CHECK (auth.is_system());
            GRANT {privileges} ON auth.{table} TO rapport_app, rapport_worker;
            """
        )
    run_sql(
        """
        ALTER TABLE auth.login_throttle ENABLE ROW LEVEL SECURITY;
        ALTER TABLE auth.login_throttle FORCE ROW LEVEL SECURITY;
        CREATE POLICY login_throttle_system ON auth.login_throttle
            USING (auth.is_system()) WITH CHECK (auth.is_system());
        -- A signed-in user's own two-factor failures (turning two-factor off or renewing
        -- recovery codes) count under the same key as at sign-in.
        CREATE POLICY login_throttle_own_mfa ON auth.login_throttle
            USING (key = 'mfa:' || auth.current_user_id())
            WITH CHECK (key = 'mfa:' || auth.current_user_id());
        GRANT SELECT, INSERT, UPDATE, DELETE ON auth.login_throttle TO rapport_app, rapport_worker;
        """
    )
    for table in ("users", "sessions", "totp_credentials", "api_keys", "login_throttle"):
        run_sql(
            f"""
            CREATE TRIGGER tr_{table}_updated_at BEFORE UPDATE ON auth.{table}
                FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();
            """
        )
    # A user may change their own password through their own policy, but never the
    # columns that decide what they may do: only system work (sign-in bookkeeping,
    # verification, administration) touches those.
    run_sql(
        """
        CREATE FUNCTION auth.guard_account_columns() RETURNS trigger
            LANGUAGE plpgsql
            AS $$
            BEGIN
                IF NOT auth.is_system() AND (
                    NEW.id, NEW.email, NEW.status, NEW.is_admin, NEW.email_verified_at,
                    NEW.failed_login_attempts, NEW.locked_until, NEW.deleted_at
                ) IS DISTINCT FROM (
                    OLD.id, OLD.email, OLD.status, OLD.is_admin, OLD.email_verified_at,
                    OLD.failed_login_attempts, OLD.locked_until, OLD.deleted_at
                ) THEN
                    RAISE EXCEPTION 'only system work may change an account''s identity, status or privileges'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                RETURN NEW;
            END
            $$;
        COMMENT ON FUNCTION auth.guard_account_columns() IS
            'BEFORE UPDATE on auth.users: outside system work, only password_hash and '
            'last_login_at may change.';
        CREATE TRIGGER tr_users_guard_columns BEFORE UPDATE ON auth.users
            FOR EACH ROW EXECUTE FUNCTION auth.guard_account_columns();
        """
    )
    # Changes to accounts and their credentials are audited; secret columns redacted.
    run_sql(
        """
        -- Sign-in bookkeeping (last_login_at, failure counters) is in login_history instead.
        CREATE TRIGGER tr_users_audit AFTER INSERT OR DELETE
            OR UPDATE OF email, password_hash, status, is_admin, email_verified_at, deleted_at
            ON auth.users FOR EACH ROW EXECUTE FUNCTION audit.record_change('password_hash');
        CREATE TRIGGER tr_identities_audit
            AFTER INSERT OR DELETE OR UPDATE OF user_id, provider, subject ON auth.identities
            FOR EACH ROW EXECUTE FUNCTION audit.record_change();
        -- Use (last_used_step, last_used_at) is not a change worth a record on every request.
        CREATE TRIGGER tr_totp_credentials_audit
            AFTER INSERT OR DELETE OR UPDATE OF confirmed_at ON auth.totp_credentials
            FOR EACH ROW EXECUTE FUNCTION audit.record_change('secret_encrypted');
        CREATE TRIGGER tr_api_keys_audit
            AFTER INSERT OR DELETE OR UPDATE OF name, expires_at, revoked_at ON auth.api_keys
            FOR EACH ROW EXECUTE FUNCTION audit.record_change('key_hash');
        """
    )


def downgrade() -> None:
    run_sql(
        """
        DROP TABLE auth.login_throttle;
        DROP TABLE auth.security_events;
        DROP TABLE auth.login_history;
        DROP TABLE auth.api_keys;
        DROP TABLE auth.recovery_codes;
        DROP TABLE auth.totp_credentials;
        DROP TABLE auth.otp_verifications;
        DROP TABLE auth.refresh_tokens;
        DROP TABLE auth.sessions;
        DROP TABLE auth.identities;
        DROP TABLE auth.users;
        DROP FUNCTION auth.guard_account_columns();
        """
    )
