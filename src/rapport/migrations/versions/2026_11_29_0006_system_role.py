"""System work as its own database role.

Why: `auth.is_system()` trusted the setting `rapport.system`, which any `rapport_app`
connection could switch on, so one injected statement in a user's transaction could read
every account; now it holds only on `rapport_worker`'s connections, and the verified badge,
the one thing a user's transaction elevated itself for, is granted by a definer function
that checks the caller is an administrator.

Revision ID: 2026_11_29_0006
Revises: 2026_11_21_0005
Create Date: 2026-11-29
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_29_0006"
down_revision = "2026_11_21_0005"
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
        -- session_user, not current_user: inside a SECURITY DEFINER function current_user
        -- is the function's owner, while session_user stays the role that logged in, and
        -- only a superuser can change it (SET SESSION AUTHORIZATION). rapport_app is not a
        -- member of rapport_worker (provisioning checks), so it can neither log in as it
        -- through an injected statement nor SET ROLE to it. The setting stays so that a
        -- system transaction can drop to one user's context (rapport.kernel.db.act_as).
        CREATE OR REPLACE FUNCTION auth.is_system() RETURNS boolean
            LANGUAGE sql STABLE PARALLEL SAFE
            AS $$
                SELECT session_user = 'rapport_worker'
                   AND coalesce(current_setting('rapport.system', true), '') = 'on'
            $$;
        COMMENT ON FUNCTION auth.is_system() IS
            'Whether the current transaction does system work: connected as rapport_worker '
            'with rapport.system = on. Never true on rapport_app''s connections.';

        -- An administrator grants or withdraws the badge within their own transaction.
        -- The check is the database's, like every other rule about who may change what:
        -- no user transaction needs to become system work for it.
        CREATE FUNCTION social.set_verified_badge(target uuid, verified boolean)
            RETURNS SETOF social.profiles
            LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
            BEGIN
                IF NOT EXISTS (
                    SELECT 1 FROM auth.users
                     WHERE id = auth.current_user_id() AND is_admin
                       AND status = 'active' AND deleted_at IS NULL
                ) THEN
                    RAISE EXCEPTION 'only administrators may change the verified badge'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                RETURN QUERY
                    UPDATE social.profiles SET is_verified = verified
                     WHERE user_id = target
                    RETURNING *;
            END
            $$;
        COMMENT ON FUNCTION social.set_verified_badge(uuid, boolean) IS
            'Grant or withdraw the verified badge; the acting user must be an active '
            'administrator. Returns the profile, or no row when there is none.';
        REVOKE ALL ON FUNCTION social.set_verified_badge(uuid, boolean) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION social.set_verified_badge(uuid, boolean) TO rapport_app;

        -- The function above runs as rapport_owner, whom the forced policies bind too.
        ALTER POLICY profiles_update ON social.profiles
            USING (user_id = auth.current_user_id() OR auth.is_system() OR kernel.in_definer())
            WITH CHECK (user_id = auth.current_user_id() OR auth.is_system() OR kernel.in_definer());
        """
    )


def downgrade() -> None:
    run_sql(
        """
        ALTER POLICY profiles_update ON social.profiles
            USING (user_id = auth.current_user_id() OR auth.is_system())
            WITH CHECK (user_id = auth.current_user_id() OR auth.is_system());
        DROP FUNCTION social.set_verified_badge(uuid, boolean);
        CREATE OR REPLACE FUNCTION auth.is_system() RETURNS boolean
            LANGUAGE sql STABLE PARALLEL SAFE
            AS $$ SELECT coalesce(current_setting('rapport.system', true), '') = 'on' $$;
        COMMENT ON FUNCTION auth.is_system() IS
            'Whether the current transaction does system work (rapport.system = on).';
        """
    )
