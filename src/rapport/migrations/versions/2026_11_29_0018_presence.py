"""Presence: when each person was last seen, and who may see their status.

Why: presence (online, away, busy, offline with last seen) lives in the memory of the
server processes and travels between them on the bus; only `last_seen_at` outlives a
process, written at most once a minute per person. Who may see a person's status and
last seen is their privacy settings' business (`social.settings.online_status_visibility`
and `last_seen_visibility`: everyone, contacts, nobody), never anyone either of them
blocks; those settings are readable by their owner alone, so three definer functions
answer the cross-user questions:

- `realtime.presence_visibility(subjects)`: for the acting user, which of these people's
  status and last seen they may see, with the last seen they may see.
- `realtime.presence_audience(subject)`: system work only; the people who hear a change
  of someone's status live (their contacts, and the people they take part in a
  conversation with when their status is for everyone), as far as the settings allow.
- `realtime.record_last_seen(users, seen)`: system work only; keeps the latest of each.

Revision ID: 2026_11_29_0018
Revises: 2026_11_29_0017
Create Date: 2026-11-29
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_29_0018"
down_revision = "2026_11_29_0017"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    # The raw asyncpg connection: None only once the connection is closed, never in a migration.
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


UPGRADE = r"""
CREATE SCHEMA realtime;
COMMENT ON SCHEMA realtime IS 'Presence: when each person was last seen. Typing and live statuses are never stored.';
GRANT USAGE ON SCHEMA realtime TO rapport_app, rapport_worker;

-- One row per person ever seen; the row is the timestamp alone, rewritten at most once a
-- minute while they are present, so it carries no created_at/updated_at (and no trigger).
CREATE TABLE realtime.presence (
    user_id uuid NOT NULL,
    last_seen_at timestamptz NOT NULL,
    CONSTRAINT pk_presence PRIMARY KEY (user_id),
    CONSTRAINT fk_presence_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE
);
COMMENT ON TABLE realtime.presence IS
    'When each person was last visibly present (online, away or busy), to the minute; written by the server processes.';

ALTER TABLE realtime.presence ENABLE ROW LEVEL SECURITY;
ALTER TABLE realtime.presence FORCE ROW LEVEL SECURITY;
-- A person reads their own row; others' go through realtime.presence_visibility.
CREATE POLICY presence_own ON realtime.presence FOR SELECT
    USING (user_id = auth.current_user_id() OR auth.is_system() OR kernel.in_definer());
CREATE POLICY presence_definer ON realtime.presence FOR ALL TO rapport_owner USING (true) WITH CHECK (true);
GRANT SELECT ON realtime.presence TO rapport_app, rapport_worker;

-- Whether `visibility` (everyone, contacts, nobody) lets `viewer` see `subject`'s presence.
-- 'contacts' means the viewer is in the subject's contact list; a block either way hides it.
CREATE FUNCTION realtime.presence_allows(visibility text, subject uuid, viewer uuid) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT subject = viewer
            OR ((visibility = 'everyone'
                 OR (visibility = 'contacts' AND EXISTS (
                         SELECT 1 FROM social.contacts c WHERE c.owner_id = subject AND c.contact_user_id = viewer)))
                AND NOT EXISTS (
                    SELECT 1 FROM social.blocks b
                     WHERE (b.blocker_id = subject AND b.blocked_id = viewer)
                        OR (b.blocker_id = viewer AND b.blocked_id = subject)))
    $$;
COMMENT ON FUNCTION realtime.presence_allows(text, uuid, uuid) IS
    'The rule of a presence visibility setting; reads contacts and blocks, so only the definer functions below call it.';
REVOKE ALL ON FUNCTION realtime.presence_allows(text, uuid, uuid) FROM PUBLIC;

-- For the acting user: which of `subjects` they may see the status and the last seen of
-- (a last seen only with the status: "offline, last seen" means nothing without it), and
-- that last seen. Accounts only; anyone else is left out, as is everything with no user set.
CREATE FUNCTION realtime.presence_visibility(subjects uuid[])
    RETURNS TABLE (user_id uuid, sees_status boolean, sees_last_seen boolean, last_seen_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        WITH viewer AS (SELECT auth.current_user_id() AS id),
        seen AS (
            SELECT s.user_id,
                   realtime.presence_allows(s.online_status_visibility, s.user_id, viewer.id) AS sees_status,
                   realtime.presence_allows(s.last_seen_visibility, s.user_id, viewer.id) AS sees_last_seen
              FROM viewer
              JOIN social.settings s ON s.user_id = ANY (subjects)
             WHERE viewer.id IS NOT NULL
        )
        SELECT seen.user_id, seen.sees_status, seen.sees_status AND seen.sees_last_seen,
               CASE WHEN seen.sees_status AND seen.sees_last_seen THEN p.last_seen_at END
          FROM seen LEFT JOIN realtime.presence p ON p.user_id = seen.user_id
    $$;
COMMENT ON FUNCTION realtime.presence_visibility(uuid[]) IS
    'Which of these people the acting user may see the status and last seen of, by their privacy settings and blocks.';

-- Who hears `subject`'s status change live: the people in their contact list, and with a
-- status for everyone also the people they take part in a conversation with; as far as
-- the settings allow, never across a block. Anyone else may still ask (GET /v1/presence).
CREATE FUNCTION realtime.presence_audience(subject uuid)
    RETURNS TABLE (user_id uuid, sees_last_seen boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        status_for text;
        last_seen_for text;
    BEGIN
        IF NOT auth.is_system() THEN
            RAISE EXCEPTION 'presence audiences are system work' USING ERRCODE = 'insufficient_privilege';
        END IF;
        SELECT s.online_status_visibility, s.last_seen_visibility INTO status_for, last_seen_for
          FROM social.settings s WHERE s.user_id = subject;
        IF status_for IS NULL OR status_for = 'nobody' THEN
            RETURN;
        END IF;
        RETURN QUERY
        WITH related AS (
            SELECT c.contact_user_id AS id FROM social.contacts c
             WHERE c.owner_id = subject AND c.contact_user_id IS NOT NULL
            UNION
            SELECT theirs.user_id FROM messaging.participants mine
              JOIN messaging.participants theirs ON theirs.conversation_id = mine.conversation_id
             WHERE status_for = 'everyone' AND mine.user_id = subject AND mine.status IN ('active', 'muted')
               AND theirs.status IN ('active', 'muted')
        )
        SELECT related.id, realtime.presence_allows(last_seen_for, subject, related.id)
          FROM related
         WHERE related.id <> subject AND realtime.presence_allows(status_for, subject, related.id);
    END
    $$;
COMMENT ON FUNCTION realtime.presence_audience(uuid) IS
    'System work: who hears this person''s status change live, and which of them may see their last seen.';

CREATE FUNCTION realtime.record_last_seen(users uuid[], seen timestamptz[]) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        IF NOT auth.is_system() THEN
            RAISE EXCEPTION 'last seen is recorded by the server' USING ERRCODE = 'insufficient_privilege';
        END IF;
        -- An account deleted meanwhile is skipped rather than failing the others.
        INSERT INTO realtime.presence AS p (user_id, last_seen_at)
        SELECT u.id, max(given.at)
          FROM unnest(users, seen) AS given (id, at)
          JOIN auth.users u ON u.id = given.id
         WHERE given.at IS NOT NULL
         GROUP BY u.id
        ON CONFLICT (user_id) DO UPDATE SET last_seen_at = greatest(p.last_seen_at, EXCLUDED.last_seen_at);
    END
    $$;
COMMENT ON FUNCTION realtime.record_last_seen(uuid[], timestamp with time zone[]) IS
    'System work: when these people were last seen; an older time never replaces a newer one.';

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA realtime FROM PUBLIC;
GRANT EXECUTE ON FUNCTION realtime.presence_visibility(uuid[]) TO rapport_app, rapport_worker;
GRANT EXECUTE ON FUNCTION realtime.presence_audience(uuid) TO rapport_worker;
GRANT EXECUTE ON FUNCTION realtime.record_last_seen(uuid[], timestamp with time zone[]) TO rapport_worker;
"""


def upgrade() -> None:
    run_sql(UPGRADE)


def downgrade() -> None:
    run_sql("DROP SCHEMA realtime CASCADE;")
