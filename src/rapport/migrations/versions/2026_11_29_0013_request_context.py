"""One call that sets who acts and checks that their credential still holds.

Why: the hot paths (sending, reading history, the conversation list) do the whole request
in one round trip to PostgreSQL: the security context, the session or API-key check and
the work in one statement. Their SQL functions begin with `auth.act_for_request`, so the
check that a revoked session stops working at once is the same as on every other route
(rapport.identity._sessions.session_is_live, rapport.identity._api_keys).

Revision ID: 2026_11_29_0013
Revises: 2026_11_29_0012
Create Date: 2026-11-29
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_29_0013"
down_revision = "2026_11_29_0012"
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
        -- Not a definer function: it sets the transaction's user, then reads that user's own
        -- session or key under their row-level security, as session_is_live does. A caller
        -- that names a session of someone else finds nothing and is refused.
        CREATE FUNCTION auth.act_for_request(acting_user uuid, session uuid, api_key uuid) RETURNS void
            LANGUAGE plpgsql
            SET search_path = pg_catalog, pg_temp
            AS $$
            BEGIN
                PERFORM set_config('rapport.user_id', acting_user::text, true);
                IF session IS NOT NULL THEN
                    PERFORM 1 FROM auth.sessions s
                     WHERE s.id = session AND s.user_id = acting_user
                       AND s.revoked_at IS NULL AND s.expires_at > now();
                ELSIF api_key IS NOT NULL THEN
                    PERFORM 1 FROM auth.api_keys k
                     WHERE k.id = api_key AND k.user_id = acting_user
                       AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now());
                ELSE
                    RAISE EXCEPTION 'invalid-token' USING ERRCODE = 'RA401';
                END IF;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'invalid-token' USING ERRCODE = 'RA401';
                END IF;
            END
            $$;
        COMMENT ON FUNCTION auth.act_for_request(uuid, uuid, uuid) IS
            'Sets rapport.user_id for the transaction and raises RA401 unless the session (or, '
            'without one, the API key) is the user''s and still live: the start of every '
            'one-round-trip hot path.';
        REVOKE ALL ON FUNCTION auth.act_for_request(uuid, uuid, uuid) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION auth.act_for_request(uuid, uuid, uuid) TO rapport_app;
        """
    )


def downgrade() -> None:
    run_sql("DROP FUNCTION auth.act_for_request(uuid, uuid, uuid);")
