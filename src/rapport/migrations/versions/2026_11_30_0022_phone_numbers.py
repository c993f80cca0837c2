"""Phone numbers: sign up, verify and sign in with a phone.

Why: seed 004's accounts have a unique phone number, verified by an SMS code, and its
one-time codes go to an e-mail address or a phone; messaging apps are commonly
phone-first. An account now has an e-mail address, a phone number, or both.

Revision ID: 2026_11_30_0022
Revises: 2026_11_30_0021
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0022"
down_revision = "2026_11_30_0021"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


# The guard of 2026_11_21_0002, with the columns named here; {phone} is where the phone's
# columns go (empty for the downgrade).
_GUARD = """
CREATE OR REPLACE FUNCTION auth.guard_account_columns() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        IF NOT auth.is_system() AND (
            NEW.id, NEW.email, NEW.status, NEW.is_admin, NEW.email_verified_at,
            NEW.failed_login_attempts, NEW.locked_until, NEW.deleted_at{new}
        ) IS DISTINCT FROM (
            OLD.id, OLD.email, OLD.status, OLD.is_admin, OLD.email_verified_at,
            OLD.failed_login_attempts, OLD.locked_until, OLD.deleted_at{old}
        ) THEN
            RAISE EXCEPTION 'only system work may change an account''s identity, status or privileges'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END
    $$;
"""

# 2026_11_21_0003's profile for a new account, named after the e-mail's local part; an
# account with a phone alone is named "user" (made unique), never after its number.
_CREATE_PROFILE = """
CREATE OR REPLACE FUNCTION social.create_profile_for_user() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        local_part text := {local_part};
        chosen text := social.generate_unique_username(local_part);
    BEGIN
        INSERT INTO social.profiles (user_id, username, display_name)
        VALUES (NEW.id, chosen, left({display_name}, 80));
        INSERT INTO social.settings (user_id) VALUES (NEW.id);
        RETURN NULL;
    END
    $$;
"""


def upgrade() -> None:
    run_sql(
        r"""
        ALTER TABLE auth.users ALTER COLUMN email DROP NOT NULL;
        ALTER TABLE auth.users ADD COLUMN phone_number text;
        ALTER TABLE auth.users ADD COLUMN phone_verified_at timestamptz;
        ALTER TABLE auth.users
            ADD CONSTRAINT ck_users_phone_number_e164 CHECK (phone_number ~ '^\+[1-9][0-9]{6,14}$'),
            ADD CONSTRAINT ck_users_email_or_phone CHECK (email IS NOT NULL OR phone_number IS NOT NULL),
            ADD CONSTRAINT ck_users_phone_verified_number CHECK (phone_verified_at IS NULL OR phone_number IS NOT NULL);
        COMMENT ON COLUMN auth.users.email IS
            'Trimmed and lower-cased at the edge; the CHECK enforces it. NULL for an account registered '
            'with a phone number.';
        COMMENT ON COLUMN auth.users.phone_number IS
            'E.164 (+ and up to 15 digits), normalised by the phonenumbers library at the edge. Set by '
            'registering with it (then unverified until the SMS code comes back) or by verifying a new '
            'number with its code; a number being added waits in auth.otp_verifications, not here.';
        COMMENT ON COLUMN auth.users.phone_verified_at IS
            'When the number was proven by an SMS code (seed 004''s phone_verified). Only a verified '
            'number signs in, receives codes for a second factor or is found by others.';
        -- Serves rapport.identity._phone_codes and rapport.identity._phone_signin: the account of a
        -- number (sign-in by phone, registration, codes); one live account per number.
        CREATE UNIQUE INDEX ux_users_phone_number_live ON auth.users (phone_number)
            WHERE deleted_at IS NULL AND phone_number IS NOT NULL;

        ALTER TABLE auth.otp_verifications ADD COLUMN identifier_type text NOT NULL DEFAULT 'email';
        ALTER TABLE auth.otp_verifications DROP CONSTRAINT ck_otp_verifications_purpose;
        ALTER TABLE auth.otp_verifications
            ADD CONSTRAINT ck_otp_verifications_purpose CHECK (purpose IN (
                'email_verification', 'password_reset', 'phone_verification', 'phone_change', 'sign_in',
                'second_factor')),
            -- The kind and the form of the identifier in one rule: an address has an @, a
            -- number is E.164.
            ADD CONSTRAINT ck_otp_verifications_identifier CHECK (
                (identifier_type = 'email' AND identifier LIKE '%@%')
                OR (identifier_type = 'phone' AND identifier ~ '^\+[1-9][0-9]{6,14}$'));
        COMMENT ON TABLE auth.otp_verifications IS
            'One-time codes sent by e-mail or SMS, stored as HMAC-SHA256 under the server key.';
        COMMENT ON COLUMN auth.otp_verifications.identifier IS
            'The address or number the code was sent to (for phone_change, the number being added).';
        COMMENT ON COLUMN auth.otp_verifications.identifier_type IS
            'email or phone (seed 004): what the identifier is.';
        -- Serves rapport.identity._phone_codes.retire_codes_for_number: the live codes other
        -- accounts hold for a number that has just been verified.
        CREATE INDEX ix_otp_verifications_identifier
            ON auth.otp_verifications (identifier, identifier_type, expires_at DESC);

        ALTER TABLE auth.totp_credentials ADD COLUMN sms_fallback boolean NOT NULL DEFAULT false;
        COMMENT ON COLUMN auth.totp_credentials.sms_fallback IS
            'Whether a code sent by SMS to the verified number may stand in for the authenticator '
            'app at sign-in (weaker: SIM swaps and interception). Off unless the owner turns it on.';

        CREATE TABLE auth.sms_daily_usage (
            day date NOT NULL,
            sent integer NOT NULL DEFAULT 0,
            CONSTRAINT pk_sms_daily_usage PRIMARY KEY (day),
            CONSTRAINT ck_sms_daily_usage_sent CHECK (sent >= 0)
        );
        COMMENT ON TABLE auth.sms_daily_usage IS
            'SMS messages identity queued per UTC day, against the deployment''s daily cap '
            '(RAPPORT_SMS_PER_DAY): SMS cost money and are a target of SMS pumping.';
        ALTER TABLE auth.sms_daily_usage ENABLE ROW LEVEL SECURITY;
        ALTER TABLE auth.sms_daily_usage FORCE ROW LEVEL SECURITY;
        CREATE POLICY sms_daily_usage_system ON auth.sms_daily_usage
            USING (auth.is_system()) WITH CHECK (auth.is_system());
        GRANT SELECT, INSERT, UPDATE, DELETE ON auth.sms_daily_usage TO rapport_app, rapport_worker;

        -- A signed-in user's own lookups of phone numbers spend their own budget.
        CREATE POLICY rate_limits_own_phone_lookups ON auth.rate_limits
            USING (key = 'phone-lookups:' || auth.current_user_id())
            WITH CHECK (key = 'phone-lookups:' || auth.current_user_id());

        DROP TRIGGER tr_users_audit ON auth.users;
        CREATE TRIGGER tr_users_audit AFTER INSERT OR DELETE
            OR UPDATE OF email, password_hash, status, is_admin, email_verified_at, deleted_at,
                         phone_number, phone_verified_at
            ON auth.users FOR EACH ROW EXECUTE FUNCTION audit.record_change('password_hash');

        ALTER TABLE social.settings ADD COLUMN phone_discoverability text NOT NULL DEFAULT 'nobody';
        ALTER TABLE social.settings ADD CONSTRAINT ck_settings_phone_discoverability
            CHECK (phone_discoverability IN ('everyone', 'contacts', 'nobody'));
        COMMENT ON COLUMN social.settings.phone_discoverability IS
            'Who finds this account by its verified phone number: everyone, its contacts, or nobody '
            '(the default). To anyone it does not admit, the number looks like one with no account.';
        GRANT UPDATE (phone_discoverability) ON social.settings TO rapport_app, rapport_worker;

        -- The accounts behind some numbers, among those whose owners let the acting user
        -- find them; the other numbers, with an account or not, are simply not in the answer.
        CREATE FUNCTION social.find_by_phone(numbers text[])
            RETURNS TABLE (phone_number text, user_id uuid)
            LANGUAGE sql STABLE SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
                SELECT u.phone_number, u.id
                  FROM auth.users u
                  JOIN social.settings s ON s.user_id = u.id
                 WHERE u.phone_number = ANY (numbers)
                   AND u.deleted_at IS NULL AND u.status = 'active' AND u.phone_verified_at IS NOT NULL
                   AND auth.current_user_id() IS NOT NULL AND u.id <> auth.current_user_id()
                   AND (s.phone_discoverability = 'everyone'
                        OR (s.phone_discoverability = 'contacts'
                            AND social.are_contacts(u.id, auth.current_user_id())))
                   AND NOT social.is_blocked(u.id, auth.current_user_id())
            $$;
        COMMENT ON FUNCTION social.find_by_phone(text[]) IS
            'Accounts with these verified numbers that the acting user may find by phone '
            '(social.settings.phone_discoverability, blocks either way); nothing for the others.';
        REVOKE ALL ON FUNCTION social.find_by_phone(text[]) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION social.find_by_phone(text[]) TO rapport_app;
        """
    )
    run_sql(
        _GUARD.format(new=", NEW.phone_number, NEW.phone_verified_at", old=", OLD.phone_number, OLD.phone_verified_at")
    )
    run_sql(
        _CREATE_PROFILE.format(
            local_part="coalesce(split_part(NEW.email, '@', 1), 'user')",
            display_name="CASE WHEN NEW.email IS NULL THEN chosen ELSE local_part END",
        )
    )


def downgrade() -> None:
    run_sql(_CREATE_PROFILE.format(local_part="split_part(NEW.email, '@', 1)", display_name="local_part"))
    run_sql(_GUARD.format(new="", old=""))
    run_sql(
        """
        DROP FUNCTION social.find_by_phone(text[]);
        ALTER TABLE social.settings DROP COLUMN phone_discoverability;

        DROP TRIGGER tr_users_audit ON auth.users;
        CREATE TRIGGER tr_users_audit AFTER INSERT OR DELETE
            OR UPDATE OF email, password_hash, status, is_admin, email_verified_at, deleted_at
            ON auth.users FOR EACH ROW EXECUTE FUNCTION audit.record_change('password_hash');

        DROP POLICY rate_limits_own_phone_lookups ON auth.rate_limits;
        DELETE FROM auth.rate_limits WHERE key LIKE 'phone-lookups:%' OR key LIKE 'sms-%';
        DROP TABLE auth.sms_daily_usage;
        ALTER TABLE auth.totp_credentials DROP COLUMN sms_fallback;

        DROP INDEX auth.ix_otp_verifications_identifier;
        DELETE FROM auth.otp_verifications WHERE identifier_type <> 'email'
            OR purpose NOT IN ('email_verification', 'password_reset');
        ALTER TABLE auth.otp_verifications DROP CONSTRAINT ck_otp_verifications_identifier;
        ALTER TABLE auth.otp_verifications DROP CONSTRAINT ck_otp_verifications_purpose;
        ALTER TABLE auth.otp_verifications ADD CONSTRAINT ck_otp_verifications_purpose CHECK (
            purpose IN ('email_verification', 'password_reset'));
        ALTER TABLE auth.otp_verifications DROP COLUMN identifier_type;
        COMMENT ON TABLE auth.otp_verifications IS
            'One-time codes sent by e-mail, stored as HMAC-SHA256 under the server key.';
        COMMENT ON COLUMN auth.otp_verifications.identifier IS 'The address the code was sent to.';

        -- Accounts with a phone alone cannot be kept without an e-mail address.
        DELETE FROM auth.users WHERE email IS NULL;
        DROP INDEX auth.ux_users_phone_number_live;
        ALTER TABLE auth.users DROP CONSTRAINT ck_users_phone_verified_number;
        ALTER TABLE auth.users DROP CONSTRAINT ck_users_email_or_phone;
        ALTER TABLE auth.users DROP CONSTRAINT ck_users_phone_number_e164;
        ALTER TABLE auth.users DROP COLUMN phone_verified_at;
        ALTER TABLE auth.users DROP COLUMN phone_number;
        ALTER TABLE auth.users ALTER COLUMN email SET NOT NULL;
        COMMENT ON COLUMN auth.users.email IS 'Trimmed and lower-cased at the edge; the CHECK enforces it.';
        """
    )
