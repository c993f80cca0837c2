"""Co-parenting: the schema, and pairing two parents (seed 000 pairing_sessions).

Why: issue 14. A parent invites the other by e-mail, by link or by a code `LZ-NNNNNN`;
the token of a link or an e-mail is kept only as its SHA-256. Accepting (through
`coparenting.claim_pairing`, since the acceptor cannot see an invitation before it is
theirs) makes the pairing active, at most one per pair of parents, and the service opens
their shared room. Every step is in `coparenting.pairing_audit_log`, and the view
`coparenting.user_pairing_status` answers "whom am I paired with, in which room, and is my
invitation pending or expired". Legacy `invitations` rows are imported idempotently
(`legacy_invitation_id`).

Revision ID: 2026_11_30_0027
Revises: 2026_11_30_0026
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0027"
down_revision = "2026_11_30_0026"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


SCHEMA = r"""
CREATE SCHEMA coparenting;
COMMENT ON SCHEMA coparenting IS 'Co-parenting (seed 000): pairing, mediation, family details, tasks, topics.';
GRANT USAGE ON SCHEMA coparenting TO rapport_app, rapport_worker;

CREATE TABLE coparenting.pairing_sessions (
    id uuid NOT NULL,
    pairing_code text,
    parent_a_id uuid,
    parent_b_id uuid,
    parent_b_email text,
    status text NOT NULL DEFAULT 'pending',
    invite_type text NOT NULL,
    invite_token_hash bytea,
    invited_by_name text,
    expires_at timestamptz NOT NULL,
    accepted_at timestamptz,
    canceled_at timestamptz,
    shared_room_id uuid,
    announced_at timestamptz,
    legacy_invitation_id bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_pairing_sessions PRIMARY KEY (id),
    CONSTRAINT fk_pairing_sessions_parent_a_id_users FOREIGN KEY (parent_a_id)
        REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT fk_pairing_sessions_parent_b_id_users FOREIGN KEY (parent_b_id)
        REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT fk_pairing_sessions_shared_room_id_conversations FOREIGN KEY (shared_room_id)
        REFERENCES messaging.conversations (id) ON DELETE SET NULL,
    CONSTRAINT ck_pairing_sessions_status CHECK (status IN ('pending', 'active', 'canceled', 'expired')),
    CONSTRAINT ck_pairing_sessions_invite_type CHECK (invite_type IN ('email', 'link', 'code')),
    CONSTRAINT ck_pairing_sessions_pairing_code CHECK (pairing_code ~ '^LZ-[0-9]{6}$'),
    CONSTRAINT ck_pairing_sessions_not_self CHECK (parent_a_id <> parent_b_id),
    CONSTRAINT ck_pairing_sessions_secret CHECK (
        CASE invite_type WHEN 'code' THEN pairing_code IS NOT NULL ELSE invite_token_hash IS NOT NULL END),
    CONSTRAINT ck_pairing_sessions_invite_token_hash CHECK (octet_length(invite_token_hash) = 32),
    CONSTRAINT ck_pairing_sessions_parent_b_email CHECK (
        parent_b_email = lower(btrim(parent_b_email)) AND parent_b_email ~ '^[^@[:space:]]+@[^@[:space:]]+$'
        AND length(parent_b_email) <= 320),
    CONSTRAINT ck_pairing_sessions_email_invitee CHECK (
        invite_type <> 'email' OR status <> 'pending' OR parent_b_email IS NOT NULL),
    CONSTRAINT ck_pairing_sessions_invited_by_name CHECK (length(invited_by_name) <= 200),
    CONSTRAINT ck_pairing_sessions_accepted CHECK (status <> 'active' OR accepted_at IS NOT NULL)
);
COMMENT ON TABLE coparenting.pairing_sessions IS
    'Co-parent pairing (seed 000 pairing_sessions): an invitation by e-mail, link or code from parent A, '
    'accepted by parent B, which opens their shared room. Read by its two parents; accepted only through '
    'coparenting.claim_pairing. A parent''s account going leaves the row to the other (SET NULL).';
COMMENT ON COLUMN coparenting.pairing_sessions.pairing_code IS
    'LZ-NNNNNN, for invite_type code: short enough to read aloud, unique among pending invitations.';
COMMENT ON COLUMN coparenting.pairing_sessions.parent_a_id IS 'Who invited (the initiator).';
COMMENT ON COLUMN coparenting.pairing_sessions.parent_b_id IS 'Who accepted; NULL until then.';
COMMENT ON COLUMN coparenting.pairing_sessions.parent_b_email IS
    'The invitee''s address (invite_type email): only an account with this address may accept.';
COMMENT ON COLUMN coparenting.pairing_sessions.invite_token_hash IS
    'SHA-256 of the link or e-mail token (seed 000 invite_token): the token itself is never stored.';
COMMENT ON COLUMN coparenting.pairing_sessions.invited_by_name IS
    'The initiator''s display name when inviting (seed 000 invited_by_username), for the e-mail.';
COMMENT ON COLUMN coparenting.pairing_sessions.shared_room_id IS
    'The two parents'' conversation, made when the invitation is accepted.';
COMMENT ON COLUMN coparenting.pairing_sessions.announced_at IS
    'When the room''s system message saying the acceptor joined was posted (at most once).';
COMMENT ON COLUMN coparenting.pairing_sessions.legacy_invitation_id IS
    'The id of the seed''s legacy invitations row this was imported from: importing again skips it.';
-- Serves coparenting.claim_pairing: a pending code; codes are reused once their invitation has ended.
CREATE UNIQUE INDEX uq_pairing_sessions_pending_code ON coparenting.pairing_sessions (pairing_code)
    WHERE status = 'pending';
-- Serves coparenting.claim_pairing: a link or e-mail token, by its hash.
CREATE UNIQUE INDEX uq_pairing_sessions_invite_token_hash ON coparenting.pairing_sessions (invite_token_hash);
-- One active pairing per pair of parents, whichever of them invited (seed 000 idx_pairing_active).
CREATE UNIQUE INDEX uq_pairing_sessions_active_pair ON coparenting.pairing_sessions (
    least(parent_a_id, parent_b_id), greatest(parent_a_id, parent_b_id)) WHERE status = 'active';
-- Serves rapport.modules.coparenting._legacy_invitations.do_import_invitations: each legacy row once.
CREATE UNIQUE INDEX uq_pairing_sessions_legacy_invitation_id ON coparenting.pairing_sessions (legacy_invitation_id);
-- Serves rapport.modules.coparenting._pairing.get_pairing_status (the initiator's side) and ON DELETE SET NULL.
CREATE INDEX ix_pairing_sessions_parent_a_id ON coparenting.pairing_sessions (parent_a_id, created_at DESC);
-- Serves rapport.modules.coparenting._pairing.get_pairing_status (the acceptor's side) and ON DELETE SET NULL.
CREATE INDEX ix_pairing_sessions_parent_b_id ON coparenting.pairing_sessions (parent_b_id, created_at DESC);
-- Serves the foreign key's ON DELETE SET NULL when a conversation goes.
CREATE INDEX ix_pairing_sessions_shared_room_id ON coparenting.pairing_sessions (shared_room_id);
-- Serves rapport.modules.coparenting._pairing.do_expire_pairings: pending invitations past their time.
CREATE INDEX ix_pairing_sessions_pending_expiry ON coparenting.pairing_sessions (expires_at)
    WHERE status = 'pending';
CREATE TRIGGER set_updated_at BEFORE UPDATE ON coparenting.pairing_sessions
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();

CREATE TABLE coparenting.pairing_audit_log (
    id uuid NOT NULL,
    pairing_id uuid,
    actor_id uuid,
    action text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_pairing_audit_log PRIMARY KEY (id),
    CONSTRAINT fk_pairing_audit_log_pairing_id_pairing_sessions FOREIGN KEY (pairing_id)
        REFERENCES coparenting.pairing_sessions (id) ON DELETE CASCADE,
    CONSTRAINT fk_pairing_audit_log_actor_id_users FOREIGN KEY (actor_id)
        REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT ck_pairing_audit_log_action CHECK (
        action IN ('created', 'accepted', 'canceled', 'expired', 'accept_failed', 'imported')),
    CONSTRAINT ck_pairing_audit_log_details CHECK (
        jsonb_typeof(details) = 'object' AND octet_length(details::text) <= 4000)
);
COMMENT ON TABLE coparenting.pairing_audit_log IS
    'Every step of pairing (seed 000 pairing_audit_log): invited, accepted, canceled, expired, imported, and '
    'each failed attempt to accept (counted to slow down guessing codes). Append-only. Read by the two '
    'parents of the pairing, and by whoever acted.';
COMMENT ON COLUMN coparenting.pairing_audit_log.pairing_id IS 'NULL for a failed attempt: it names no pairing.';
COMMENT ON COLUMN coparenting.pairing_audit_log.actor_id IS 'Who acted; NULL for system work (expiry, import).';
COMMENT ON COLUMN coparenting.pairing_audit_log.details IS
    'What a reader needs besides the action (a reason, an invite type): never a token, a code or an address.';
-- Serves rapport.modules.coparenting._pairing.list_pairing_log: one pairing's steps, oldest first.
CREATE INDEX ix_pairing_audit_log_pairing_id ON coparenting.pairing_audit_log (pairing_id, created_at);
-- Serves rapport.modules.coparenting._pairing.check_attempts (a person's recent failures) and ON DELETE SET NULL.
CREATE INDEX ix_pairing_audit_log_actor_id ON coparenting.pairing_audit_log (actor_id, action, created_at);

-- Policies' rules, as small functions. Not definer functions: they answer for the caller.
CREATE FUNCTION coparenting.is_pairing_parent(parent_a uuid, parent_b uuid) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(auth.current_user_id() IN (parent_a, parent_b), false) $$;
COMMENT ON FUNCTION coparenting.is_pairing_parent(uuid, uuid) IS
    'Whether the acting user is one of these two parents (row-level security of pairing_sessions).';

CREATE FUNCTION coparenting.may_read_pairing(pairing uuid) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$ SELECT EXISTS (SELECT 1 FROM coparenting.pairing_sessions s WHERE s.id = pairing) $$;
COMMENT ON FUNCTION coparenting.may_read_pairing(uuid) IS
    'Whether the caller sees this pairing (under its row-level security): one of its parents, or system work.';

CREATE FUNCTION coparenting.is_paired_with(other uuid) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
        SELECT EXISTS (
            SELECT 1 FROM coparenting.pairing_sessions s
             WHERE s.status = 'active'
               AND ((s.parent_a_id = auth.current_user_id() AND s.parent_b_id = other)
                    OR (s.parent_b_id = auth.current_user_id() AND s.parent_a_id = other)))
    $$;
COMMENT ON FUNCTION coparenting.is_paired_with(uuid) IS
    'Whether the acting user has an active pairing with this person: for other co-parenting tables'' policies.';

-- The transitions a pairing may make, whoever writes: pending to active (accepting, in
-- coparenting.claim_pairing or the import), canceled or expired; active to canceled. A
-- shared room is recorded once, on an active pairing, by a parent who takes part in it.
CREATE FUNCTION coparenting.guard_pairing_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
               (OLD.status = 'pending' AND NEW.status IN ('canceled', 'expired'))
            OR (OLD.status = 'pending' AND NEW.status = 'active' AND (kernel.in_definer() OR auth.is_system()))
            OR (OLD.status = 'active' AND NEW.status = 'canceled')) THEN
            RAISE EXCEPTION 'pairing-not-cancelable' USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.shared_room_id IS DISTINCT FROM OLD.shared_room_id AND NEW.shared_room_id IS NOT NULL
           AND NOT kernel.in_definer() AND NOT auth.is_system()
           AND (OLD.shared_room_id IS NOT NULL OR NEW.status <> 'active'
                OR messaging.participant_role(NEW.shared_room_id) IS NULL) THEN
            RAISE EXCEPTION 'a pairing''s room is set once, to a room of its parents' USING ERRCODE = 'check_violation';
        END IF;
        -- An account that goes takes what named it: the row stays the other parent's.
        IF OLD.parent_a_id IS NOT NULL AND NEW.parent_a_id IS NULL THEN
            NEW.invited_by_name := NULL;
        END IF;
        IF OLD.parent_b_id IS NOT NULL AND NEW.parent_b_id IS NULL THEN
            NEW.parent_b_email := NULL;
        END IF;
        RETURN NEW;
    END
    $$;
COMMENT ON FUNCTION coparenting.guard_pairing_update() IS
    'BEFORE UPDATE trigger of pairing_sessions: the allowed status transitions, the shared room set once, '
    'and a departed parent''s name or address forgotten.';
REVOKE ALL ON FUNCTION coparenting.guard_pairing_update() FROM PUBLIC;
CREATE TRIGGER guard_pairing_update BEFORE UPDATE ON coparenting.pairing_sessions
    FOR EACH ROW EXECUTE FUNCTION coparenting.guard_pairing_update();

-- Accepting: the acceptor cannot see a pending invitation (it is not theirs yet), so the
-- lookup, the checks and the claim are one definer function, locking the row: of two
-- acceptors racing, the second finds it no longer pending. Outcomes: accepted,
-- not_found (wrong, used, canceled, or an e-mail invitation to another address), self,
-- expired (marked so now) and already_paired (the pair has an active pairing).
CREATE FUNCTION coparenting.claim_pairing(token_hash bytea, code text)
    RETURNS TABLE (pairing_id uuid, outcome text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        caller uuid := auth.current_user_id();
        found coparenting.pairing_sessions;
        caller_email text;
    BEGIN
        IF caller IS NULL OR (claim_pairing.token_hash IS NULL) = (claim_pairing.code IS NULL) THEN
            RETURN QUERY SELECT NULL::uuid, 'not_found'::text;
            RETURN;
        END IF;
        IF claim_pairing.token_hash IS NOT NULL THEN
            SELECT * INTO found FROM coparenting.pairing_sessions s
             WHERE s.invite_token_hash = claim_pairing.token_hash AND s.status = 'pending'
               FOR UPDATE;
        ELSE
            SELECT * INTO found FROM coparenting.pairing_sessions s
             WHERE s.pairing_code = claim_pairing.code AND s.status = 'pending' AND s.invite_type = 'code'
               FOR UPDATE;
        END IF;
        IF found.id IS NULL OR found.parent_a_id IS NULL THEN
            RETURN QUERY SELECT NULL::uuid, 'not_found'::text;
            RETURN;
        END IF;
        IF found.invite_type = 'email' THEN
            SELECT u.email INTO caller_email FROM auth.users u WHERE u.id = caller;
            IF caller_email IS DISTINCT FROM found.parent_b_email THEN
                RETURN QUERY SELECT NULL::uuid, 'not_found'::text;
                RETURN;
            END IF;
        END IF;
        IF found.parent_a_id = caller THEN
            RETURN QUERY SELECT found.id, 'self'::text;
            RETURN;
        END IF;
        IF found.expires_at <= now() THEN
            UPDATE coparenting.pairing_sessions SET status = 'expired' WHERE id = found.id;
            INSERT INTO coparenting.pairing_audit_log (id, pairing_id, actor_id, action, details)
            VALUES (kernel.uuid7_like(), found.id, NULL, 'expired', jsonb_build_object('on', 'accept'));
            RETURN QUERY SELECT found.id, 'expired'::text;
            RETURN;
        END IF;
        BEGIN
            UPDATE coparenting.pairing_sessions
               SET status = 'active', parent_b_id = caller, accepted_at = now()
             WHERE id = found.id;
        EXCEPTION WHEN unique_violation THEN
            RETURN QUERY SELECT found.id, 'already_paired'::text;
            RETURN;
        END;
        INSERT INTO coparenting.pairing_audit_log (id, pairing_id, actor_id, action, details)
        VALUES (kernel.uuid7_like(), found.id, caller, 'accepted', jsonb_build_object('invite_type', found.invite_type));
        RETURN QUERY SELECT found.id, 'accepted'::text;
    END
    $$;
COMMENT ON FUNCTION coparenting.claim_pairing(bytea, text) IS
    'Accept a pending invitation by its token''s hash or its code, as the acting user; returns the pairing '
    '(NULL when not found) and the outcome: accepted, not_found, self, expired or already_paired.';
REVOKE ALL ON FUNCTION coparenting.claim_pairing(bytea, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION coparenting.claim_pairing(bytea, text) TO rapport_app;

-- The caller's side of each of their pairings that is pending, active or expired (seed 000
-- user_pairing_status, which showed pending and active: an expired one tells its initiator
-- why nothing happened). Rows follow pairing_sessions' row-level security.
CREATE VIEW coparenting.user_pairing_status WITH (security_invoker = true) AS
SELECT side.user_id, s.id AS pairing_id,
       CASE WHEN side.user_role = 'initiator' THEN s.pairing_code END AS pairing_code,
       s.status, s.invite_type, side.user_role, side.partner_id,
       CASE WHEN side.user_role = 'initiator' THEN s.parent_b_email END AS invited_email,
       s.shared_room_id, s.created_at, s.expires_at, s.accepted_at,
       (s.status = 'expired' OR (s.status = 'pending' AND s.expires_at <= now())) AS is_expired
  FROM coparenting.pairing_sessions s
 CROSS JOIN LATERAL (VALUES (s.parent_a_id, 'initiator', s.parent_b_id),
                            (s.parent_b_id, 'acceptor', s.parent_a_id)) AS side (user_id, user_role, partner_id)
 WHERE side.user_id IS NOT NULL AND s.status IN ('pending', 'active', 'expired');
COMMENT ON VIEW coparenting.user_pairing_status IS
    'Each parent''s side of their pairings (seed 000 user_pairing_status): role, partner, shared room, and '
    'whether the invitation has expired. The code and the invited address are shown to the initiator only.';
GRANT SELECT ON coparenting.user_pairing_status TO rapport_app, rapport_worker;

ALTER TABLE coparenting.pairing_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE coparenting.pairing_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY pairing_sessions_read ON coparenting.pairing_sessions FOR SELECT
    USING (coparenting.is_pairing_parent(parent_a_id, parent_b_id) OR kernel.in_definer() OR auth.is_system());
-- Invited as oneself, pending, with nobody accepted yet; system work imports legacy rows.
CREATE POLICY pairing_sessions_invite ON coparenting.pairing_sessions FOR INSERT
    WITH CHECK (auth.is_system() OR kernel.in_definer()
                OR (parent_a_id = auth.current_user_id() AND parent_b_id IS NULL AND status = 'pending'
                    AND shared_room_id IS NULL AND legacy_invitation_id IS NULL));
-- Canceled by either parent, the room recorded by the acceptor (columns granted below;
-- coparenting.guard_pairing_update holds the transitions).
CREATE POLICY pairing_sessions_change ON coparenting.pairing_sessions FOR UPDATE
    USING (coparenting.is_pairing_parent(parent_a_id, parent_b_id) OR kernel.in_definer() OR auth.is_system())
    WITH CHECK (coparenting.is_pairing_parent(parent_a_id, parent_b_id) OR kernel.in_definer() OR auth.is_system());
GRANT SELECT ON coparenting.pairing_sessions TO rapport_app, rapport_worker;
GRANT INSERT (id, pairing_code, parent_a_id, parent_b_email, invite_type, invite_token_hash, invited_by_name,
              expires_at)
    ON coparenting.pairing_sessions TO rapport_app;
GRANT UPDATE (status, canceled_at, shared_room_id) ON coparenting.pairing_sessions TO rapport_app;
GRANT INSERT, UPDATE ON coparenting.pairing_sessions TO rapport_worker;

ALTER TABLE coparenting.pairing_audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE coparenting.pairing_audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY pairing_audit_log_read ON coparenting.pairing_audit_log FOR SELECT
    USING (actor_id = auth.current_user_id() OR kernel.in_definer() OR auth.is_system()
           OR (pairing_id IS NOT NULL AND coparenting.may_read_pairing(pairing_id)));
-- Written as oneself, about a pairing one sees (or none); definer functions and system work write any.
CREATE POLICY pairing_audit_log_write ON coparenting.pairing_audit_log FOR INSERT
    WITH CHECK (kernel.in_definer() OR auth.is_system()
                OR (actor_id = auth.current_user_id()
                    AND (pairing_id IS NULL OR coparenting.may_read_pairing(pairing_id))));
GRANT SELECT, INSERT ON coparenting.pairing_audit_log TO rapport_app, rapport_worker;
"""


def upgrade() -> None:
    run_sql(SCHEMA)


def downgrade() -> None:
    run_sql("DROP SCHEMA coparenting CASCADE;")
