"""Blocks hide the blocker; definer functions check their caller.

Why: a blocked person could still read the blocker's profile, learn of the block from a
403, and tell a private account from a missing one through `PUT /v1/blocks/{id}`; and
SECURITY DEFINER functions answered out of context (`social.user_id_for_username` with no
user set, `social.pair_contacts` from a long-accepted request after a removal).

- `social.blocked_by(blocker)` tells whether someone blocks the acting user, and
  `social.can_see_profile` refuses them: every policy and function built on it (profiles,
  their parts, statuses, lookups by username) hides the blocker from the blocked person,
  exactly as a private profile is hidden.
- `social.user_id_for_username` finds only a profile the caller may see;
  `social.is_blocked` and `social.are_contacts` answer false, not NULL, with no user set.
- `social.pair_contacts` pairs only after a request accepted in the same transaction, by
  the caller, who was asked; an answered request no longer changes (a trigger), so an old
  one cannot be made to look fresh.
- `social.blocks.blocked_id` loses its foreign key: a block on an id with no account is
  stored like any other, so blocking answers the same whether an account exists or not;
  a trigger removes the blocks naming an account when it is deleted.
- No SECURITY DEFINER function in auth, social, kernel or audit stays executable by
  PUBLIC: those it was granted to through PUBLIC are granted to rapport_app and
  rapport_worker instead, trigger functions to nobody.

Revision ID: 2026_11_29_0008
Revises: 2026_11_29_0007
Create Date: 2026-11-29
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_29_0008"
down_revision = "2026_11_29_0007"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    # The raw asyncpg connection: None only once the connection is closed, never in a migration.
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


# The definer functions that migrations 0003 to 0005 left executable by PUBLIC, and that
# the server's roles call (trigger functions are left out: a trigger needs no grant).
_CALLED_BY_THE_SERVER = (
    "social.is_blocked(uuid, uuid)",
    "social.are_contacts(uuid, uuid)",
    "social.pair_contacts(uuid, uuid)",
    "social.unpair_contacts(uuid)",
    "social.profile_visible(uuid)",
    "social.user_id_for_username(text)",
)
_TRIGGER_FUNCTIONS = (
    "social.create_profile_for_user()",
    "social.link_contacts_on_verification()",
    "social.log_profile_changes()",
)


def upgrade() -> None:
    run_sql(
        """
        -- False, not NULL, with no user set: an answer, whoever asks.
        CREATE OR REPLACE FUNCTION social.is_blocked(a uuid, b uuid) RETURNS boolean
            LANGUAGE sql STABLE SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
                -- Answered only about the acting user's own pairs (or for system work):
                -- who blocks whom is nobody else's business.
                SELECT (coalesce(auth.current_user_id() IN (a, b), false) OR auth.is_system()) AND EXISTS (
                    SELECT 1 FROM social.blocks
                     WHERE (blocker_id = a AND blocked_id = b) OR (blocker_id = b AND blocked_id = a)
                )
            $$;
        CREATE OR REPLACE FUNCTION social.are_contacts(a uuid, b uuid) RETURNS boolean
            LANGUAGE sql STABLE SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
                SELECT (coalesce(auth.current_user_id() IN (a, b), false) OR auth.is_system())
                   AND EXISTS (SELECT 1 FROM social.contacts WHERE owner_id = a AND contact_user_id = b)
            $$;

        -- Whether `blocker` blocks the acting user: the one fact about a block the blocked
        -- person's visibility needs (they still cannot read the block itself).
        CREATE FUNCTION social.blocked_by(blocker uuid) RETURNS boolean
            LANGUAGE sql STABLE SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
                SELECT EXISTS (SELECT 1 FROM social.blocks b
                                WHERE b.blocker_id = blocker AND b.blocked_id = auth.current_user_id())
            $$;
        COMMENT ON FUNCTION social.blocked_by(uuid) IS
            'Whether blocker blocks the acting user (false with no user set).';

        -- A blocker is invisible to the person blocked, whatever their visibility; the
        -- blocker still sees the person they block (to know whom they block, and unblock).
        -- No SET search_path: a function with one is never inlined, and inlined into the
        -- row-level security qual this rule costs a quarter of a call per row (1.8 ms for
        -- a page of 21 profiles at 1M, 0.5 ms inlined). It is not a definer function, so
        -- it runs with the caller's rights anyway, and every name in it is qualified
        -- (pg_catalog is searched first; pg_temp is never searched for functions or
        -- operators).
        CREATE OR REPLACE FUNCTION social.can_see_profile(owner uuid, visibility text) RETURNS boolean
            LANGUAGE sql STABLE
            AS $$
                SELECT auth.is_system()
                    OR owner = auth.current_user_id()
                    OR (auth.current_user_id() IS NOT NULL
                        AND (visibility = 'public'
                             OR (visibility = 'contacts' AND social.are_contacts(owner, auth.current_user_id())
                                 AND NOT social.is_blocked(owner, auth.current_user_id())))
                        AND NOT social.blocked_by(owner))
            $$;

        -- Only a profile the caller may see: with no user set, or for a private profile,
        -- a lookup by username says nothing an invisible profile would not.
        CREATE OR REPLACE FUNCTION social.user_id_for_username(name text) RETURNS uuid
            LANGUAGE sql STABLE SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
                SELECT p.user_id FROM social.profiles p
                 WHERE lower(p.username) = lower(name) AND social.can_see_profile(p.user_id, p.profile_visibility)
            $$;
        COMMENT ON FUNCTION social.user_id_for_username(text) IS
            'The account with this username (any case) if the acting user may see its profile, else NULL.';

        -- An answered or cancelled request is history: it never changes again, and its
        -- responded_at is the moment its status left 'pending', whatever the writer sends.
        CREATE FUNCTION social.guard_contact_request_answer() RETURNS trigger
            LANGUAGE plpgsql
            SET search_path = pg_catalog, pg_temp
            AS $$
            BEGIN
                IF OLD.status <> 'pending' AND NOT auth.is_system() AND NOT kernel.in_definer() THEN
                    RAISE EXCEPTION 'an answered or cancelled contact request does not change'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                IF NEW.status IS DISTINCT FROM OLD.status THEN
                    NEW.responded_at := now();
                ELSE
                    NEW.responded_at := OLD.responded_at;
                END IF;
                RETURN NEW;
            END
            $$;
        CREATE TRIGGER tr_contact_requests_guard_answer BEFORE UPDATE ON social.contact_requests
            FOR EACH ROW EXECUTE FUNCTION social.guard_contact_request_answer();

        -- The legitimate path accepts a pending request and pairs in one transaction. A
        -- request accepted before (and a contact removed since, or a block lifted) pairs
        -- nobody: responded_at is now() only for a request accepted in this transaction.
        CREATE OR REPLACE FUNCTION social.pair_contacts(a uuid, b uuid) RETURNS void
            LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
            DECLARE
                caller uuid := auth.current_user_id();
            BEGIN
                IF caller IS NULL OR caller NOT IN (a, b) THEN
                    RAISE EXCEPTION 'only one of the two people may pair them' USING ERRCODE = 'insufficient_privilege';
                END IF;
                IF NOT EXISTS (
                    SELECT 1 FROM social.contact_requests r
                     WHERE r.status = 'accepted' AND r.responded_at = now() AND r.addressee_id = caller
                       AND ((r.requester_id = a AND r.addressee_id = b) OR (r.requester_id = b AND r.addressee_id = a))
                ) THEN
                    RAISE EXCEPTION 'the caller accepted no request between them in this transaction'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                IF social.is_blocked(a, b) THEN
                    RAISE EXCEPTION 'one of them blocks the other' USING ERRCODE = 'insufficient_privilege';
                END IF;
                INSERT INTO social.contacts (id, owner_id, contact_user_id)
                VALUES (kernel.uuid7_like(), a, b), (kernel.uuid7_like(), b, a)
                ON CONFLICT (owner_id, contact_user_id) WHERE contact_user_id IS NOT NULL DO NOTHING;
            END
            $$;
        COMMENT ON FUNCTION social.pair_contacts(uuid, uuid) IS
            'Make a and b each other''s contacts; only the one who accepted a request between them, '
            'in the transaction that accepted it.';

        -- Blocking answers alike whether an account exists or not, so a block may name an
        -- id that has none (nobody can see it but the blocker). The foreign key's cascade
        -- becomes a trigger.
        ALTER TABLE social.blocks DROP CONSTRAINT fk_blocks_blocked_id_users;
        COMMENT ON COLUMN social.blocks.blocked_id IS
            'Any id the blocker gave, an account or not (no foreign key: see migration 0008).';
        CREATE FUNCTION social.forget_blocks_of_deleted_user() RETURNS trigger
            LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
            BEGIN
                DELETE FROM social.blocks WHERE blocked_id = OLD.id;
                RETURN NULL;
            END
            $$;
        COMMENT ON FUNCTION social.forget_blocks_of_deleted_user() IS
            'What ON DELETE CASCADE did for social.blocks.blocked_id.';
        CREATE TRIGGER tr_users_forget_blocks AFTER DELETE ON auth.users
            FOR EACH ROW EXECUTE FUNCTION social.forget_blocks_of_deleted_user();

        -- No definer function is anybody's to call: the roles that held one through PUBLIC
        -- keep it by name, trigger functions go to nobody (a trigger needs no grant).
        DO $$
            DECLARE
                fn record;
            BEGIN
                FOR fn IN
                    SELECT p.oid::regprocedure AS signature, p.prorettype = 'trigger'::regtype AS is_trigger
                      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                     WHERE p.prosecdef AND n.nspname IN ('auth', 'social', 'kernel', 'audit')
                       AND has_function_privilege('public', p.oid, 'EXECUTE')
                LOOP
                    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', fn.signature);
                    IF NOT fn.is_trigger THEN
                        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO rapport_app, rapport_worker', fn.signature);
                    END IF;
                END LOOP;
            END
        $$;

        -- One page comes back (at most 201 rows), not PostgreSQL's default guess of 1000:
        -- with that guess a small table is read whole and can_see_profile, which now
        -- asks about blocks, runs on every row instead of on the page's.
        ALTER FUNCTION social.search_profiles(text[], text, integer, integer, uuid, integer) ROWS 50;
        """
    )


def downgrade() -> None:
    grants = "\n".join(
        f"REVOKE EXECUTE ON FUNCTION {fn} FROM rapport_app, rapport_worker;\nGRANT EXECUTE ON FUNCTION {fn} TO PUBLIC;"
        for fn in _CALLED_BY_THE_SERVER
    )
    trigger_grants = "\n".join(f"GRANT EXECUTE ON FUNCTION {fn} TO PUBLIC;" for fn in _TRIGGER_FUNCTIONS)
    run_sql(
        f"""
        ALTER FUNCTION social.search_profiles(text[], text, integer, integer, uuid, integer) ROWS 1000;
        DROP TRIGGER tr_users_forget_blocks ON auth.users;
        DROP FUNCTION social.forget_blocks_of_deleted_user();
        DELETE FROM social.blocks b WHERE NOT EXISTS (SELECT 1 FROM auth.users u WHERE u.id = b.blocked_id);
        COMMENT ON COLUMN social.blocks.blocked_id IS NULL;
        ALTER TABLE social.blocks ADD CONSTRAINT fk_blocks_blocked_id_users FOREIGN KEY (blocked_id)
            REFERENCES auth.users (id) ON DELETE CASCADE;

        CREATE OR REPLACE FUNCTION social.pair_contacts(a uuid, b uuid) RETURNS void
            LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
            DECLARE
                caller uuid := auth.current_user_id();
            BEGIN
                IF caller IS NULL OR caller NOT IN (a, b) THEN
                    RAISE EXCEPTION 'only one of the two people may pair them' USING ERRCODE = 'insufficient_privilege';
                END IF;
                IF NOT EXISTS (
                    SELECT 1 FROM social.contact_requests r
                     WHERE r.status = 'accepted'
                       AND ((r.requester_id = a AND r.addressee_id = b) OR (r.requester_id = b AND r.addressee_id = a))
                ) THEN
                    RAISE EXCEPTION 'no accepted request between them' USING ERRCODE = 'insufficient_privilege';
                END IF;
                IF social.is_blocked(a, b) THEN
                    RAISE EXCEPTION 'one of them blocks the other' USING ERRCODE = 'insufficient_privilege';
                END IF;
                INSERT INTO social.contacts (id, owner_id, contact_user_id)
                VALUES (kernel.uuid7_like(), a, b), (kernel.uuid7_like(), b, a)
                ON CONFLICT (owner_id, contact_user_id) WHERE contact_user_id IS NOT NULL DO NOTHING;
            END
            $$;
        COMMENT ON FUNCTION social.pair_contacts(uuid, uuid) IS
            'Make a and b each other''s contacts; needs an accepted request between them.';

        DROP TRIGGER tr_contact_requests_guard_answer ON social.contact_requests;
        DROP FUNCTION social.guard_contact_request_answer();

        CREATE OR REPLACE FUNCTION social.user_id_for_username(name text) RETURNS uuid
            LANGUAGE sql STABLE SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$ SELECT user_id FROM social.profiles WHERE lower(username) = lower(name) $$;
        COMMENT ON FUNCTION social.user_id_for_username(text) IS
            'The account with this username (any case), or NULL; visibility is the caller''s to check.';

        CREATE OR REPLACE FUNCTION social.can_see_profile(owner uuid, visibility text) RETURNS boolean
            LANGUAGE sql STABLE
            SET search_path = pg_catalog, pg_temp
            AS $$
                SELECT auth.is_system()
                    OR owner = auth.current_user_id()
                    OR (auth.current_user_id() IS NOT NULL AND (
                            visibility = 'public'
                         OR (visibility = 'contacts' AND social.are_contacts(owner, auth.current_user_id())
                             AND NOT social.is_blocked(owner, auth.current_user_id()))))
            $$;
        DROP FUNCTION social.blocked_by(uuid);
        CREATE OR REPLACE FUNCTION social.is_blocked(a uuid, b uuid) RETURNS boolean
            LANGUAGE sql STABLE SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
                -- Answered only about the acting user's own pairs (or for system work):
                -- who blocks whom is nobody else's business.
                SELECT (auth.current_user_id() IN (a, b) OR auth.is_system()) AND EXISTS (
                    SELECT 1 FROM social.blocks
                     WHERE (blocker_id = a AND blocked_id = b) OR (blocker_id = b AND blocked_id = a)
                )
            $$;
        CREATE OR REPLACE FUNCTION social.are_contacts(a uuid, b uuid) RETURNS boolean
            LANGUAGE sql STABLE SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
                SELECT (auth.current_user_id() IN (a, b) OR auth.is_system())
                   AND EXISTS (SELECT 1 FROM social.contacts WHERE owner_id = a AND contact_user_id = b)
            $$;

        {grants}
        {trigger_grants}
        """
    )
