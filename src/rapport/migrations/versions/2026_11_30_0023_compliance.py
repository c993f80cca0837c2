"""Compliance: consents, compliance logs, breaches, admin actions and the hash-chained audit.

Why: issue 12. A person gives and withdraws consent per type (seed 002 consent_logs) and
reads the whole history; features that need a consent ask `compliance.has_consent` in
SQL. Compliance events (seed 002 compliance_logs) are written through one function,
`compliance.log_event`, by every part of the data lifecycle. Breaches are recorded with the
notifications sent about them. Platform administrators suspend, ban and restore accounts;
each of their actions is in `audit.admin_actions` with who, what and why.

The audit is tamper-evident: each row of each audit table carries the SHA-256 of its
content and a chain hash (the previous row's chain hash followed by this row's content
hash), appended under a lock on the table's chain head by a BEFORE INSERT trigger, so that
`rapport audit verify` names the first row changed, removed or inserted out of order.
Erasure blanks a person's content in audit rows (`audit.erase_person`) without breaking the
chain: the content hash stays, the row is marked redacted and the redaction is itself a
chained record; retention removes the oldest rows through `audit.prune_chain`, which keeps
the hash the remaining chain starts from. Sign-in and security events are copied into
`audit.auth_events` by trigger, and exports are recorded in `audit.data_exports` (seed 004).

Revision ID: 2026_11_30_0023
Revises: 2026_11_30_0022
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0023"
down_revision = "2026_11_30_0022"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    # The raw asyncpg connection: None only once the connection is closed, never in a migration.
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


# Every audit table that is hash-chained, with the column saying when its rows happened
# (what retention prunes by).
CHAINED = {
    "record_changes": "occurred_at",
    "sensitive_data_access": "created_at",
    "admin_actions": "created_at",
    "auth_events": "created_at",
    "data_exports": "created_at",
    "redactions": "created_at",
}
# The audit tables the kernel made before this revision: their rows are chained here.
EXISTING = ("record_changes", "sensitive_data_access")

CONSENT_TYPES = "'terms_of_service', 'privacy_policy', 'ai_features', 'ai_coaching', 'marketing_emails'"
EVENT_TYPES = (
    "'data_export_requested', 'data_export_completed', 'data_deletion_requested', 'data_deletion_completed', "
    "'data_deletion_cancelled', 'breach_detected', 'breach_notified', 'consent_given', 'consent_withdrawn', "
    "'account_suspended', 'account_banned', 'account_restored'"
)
ADMIN_ACTIONS = (
    "'account_suspended', 'account_banned', 'account_restored', 'audit_read', 'compliance_logs_read', "
    "'consents_read', 'export_requests_listed', 'deletion_requests_listed', 'breach_recorded', "
    "'breach_notification_recorded', 'breaches_listed'"
)

COMPLIANCE = rf"""
CREATE SCHEMA compliance;
COMMENT ON SCHEMA compliance IS
    'Compliance: consents, compliance logs, breaches, export and deletion requests, retention policies.';
GRANT USAGE ON SCHEMA compliance TO rapport_app, rapport_worker;

-- Not a definer function: it reads the acting user's own account row, as
-- messaging.is_platform_admin does, so it answers for the caller alone.
CREATE FUNCTION compliance.is_platform_admin() RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
        SELECT coalesce((SELECT u.is_admin AND u.status = 'active' FROM auth.users u
                          WHERE u.id = auth.current_user_id()), false)
    $$;
COMMENT ON FUNCTION compliance.is_platform_admin() IS
    'Whether the acting user is an active platform administrator.';

CREATE TABLE compliance.consent_logs (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    consent_type text NOT NULL,
    granted boolean NOT NULL,
    document_version text,
    ip_address inet,
    user_agent text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_consent_logs PRIMARY KEY (id),
    CONSTRAINT fk_consent_logs_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_consent_logs_consent_type CHECK (consent_type IN ({CONSENT_TYPES})),
    CONSTRAINT ck_consent_logs_document_version CHECK (length(document_version) BETWEEN 1 AND 64),
    CONSTRAINT ck_consent_logs_user_agent CHECK (length(user_agent) <= 1000)
);
COMMENT ON TABLE compliance.consent_logs IS
    'Every consent given or withdrawn (seed 002 consent_logs), append-only: the newest row per type is the '
    'current state. Read by the person (and platform administrators, whose reads are recorded).';
COMMENT ON COLUMN compliance.consent_logs.document_version IS
    'The version of the terms or policy consented to, as the client names it.';
COMMENT ON COLUMN compliance.consent_logs.ip_address IS 'The client address the consent came from.';
-- Serves compliance.has_consent and rapport.compliance._consents.current_consents: the newest row per type.
CREATE INDEX ix_consent_logs_user_id ON compliance.consent_logs (user_id, consent_type, created_at DESC, id DESC);

-- Features that need a consent ask here, from any domain's SQL. Not a definer function:
-- under row-level security it answers for the caller, for system work and for definer
-- functions, and says false about anyone else.
CREATE FUNCTION compliance.has_consent(user_id uuid, consent_type text) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
        SELECT coalesce((SELECT c.granted FROM compliance.consent_logs c
                          WHERE c.user_id = has_consent.user_id AND c.consent_type = has_consent.consent_type
                          ORDER BY c.created_at DESC, c.id DESC LIMIT 1), false)
    $$;
COMMENT ON FUNCTION compliance.has_consent(uuid, text) IS
    'Whether the person''s newest consent of this type is given (false with none, or when the caller may '
    'not see it).';

CREATE TABLE compliance.compliance_logs (
    id uuid NOT NULL,
    user_id uuid,
    event_type text NOT NULL,
    details jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_compliance_logs PRIMARY KEY (id),
    CONSTRAINT ck_compliance_logs_event_type CHECK (event_type IN ({EVENT_TYPES})),
    CONSTRAINT ck_compliance_logs_details CHECK (
        jsonb_typeof(details) = 'object' AND octet_length(details::text) <= 16000)
);
-- No foreign key: the record outlives the account (seven years, seed 002's retention).
COMMENT ON TABLE compliance.compliance_logs IS
    'Compliance events (seed 002 compliance_logs): exports, deletions, breaches, consents and account '
    'suspensions. Written only through compliance.log_event; read by the person whose row it is and by '
    'platform administrators.';
COMMENT ON COLUMN compliance.compliance_logs.user_id IS
    'Whose event it is; NULL for events about no one person (a breach) or once the person is erased.';
-- Serves rapport.compliance._logs.list_logs: one person's events, newest first.
CREATE INDEX ix_compliance_logs_user_id ON compliance.compliance_logs (user_id, id DESC) WHERE user_id IS NOT NULL;
-- Serves rapport.compliance._logs.list_logs for administrators: one type of event, newest first.
CREATE INDEX ix_compliance_logs_event_type ON compliance.compliance_logs (event_type, id DESC);
-- Serves retention: the oldest events first.
CREATE INDEX ix_compliance_logs_created_at ON compliance.compliance_logs (created_at);

CREATE FUNCTION compliance.log_event(user_id uuid, event_type text, details jsonb DEFAULT '{{}}') RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        made uuid := kernel.uuid7_like();
        caller uuid := auth.current_user_id();
    BEGIN
        -- System work logs anything; a platform administrator logs what administrators do;
        -- a person logs only what they themselves ask for.
        IF NOT coalesce(auth.is_system()
                OR (compliance.is_platform_admin()
                    AND log_event.event_type IN ('account_suspended', 'account_banned', 'account_restored',
                                                 'breach_detected', 'breach_notified'))
                OR (caller IS NOT NULL AND log_event.user_id = caller
                    AND log_event.event_type IN ('consent_given', 'consent_withdrawn', 'data_export_requested',
                                                 'data_deletion_requested', 'data_deletion_cancelled')), false) THEN
            RAISE EXCEPTION 'only system work, a platform administrator or the person may log this event'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        INSERT INTO compliance.compliance_logs (id, user_id, event_type, details)
        VALUES (made, log_event.user_id, log_event.event_type, coalesce(log_event.details, '{{}}'::jsonb));
        RETURN made;
    END
    $$;
COMMENT ON FUNCTION compliance.log_event(uuid, text, jsonb) IS
    'Append a compliance event; returns its id. System work logs any event; a platform administrator '
    'account and breach events; a person their own consents, export and deletion requests.';

CREATE TABLE compliance.breaches (
    id uuid NOT NULL,
    title text NOT NULL,
    description text NOT NULL,
    severity text NOT NULL,
    data_categories text[] NOT NULL DEFAULT '{{}}'::text[],
    affected_users integer,
    detected_at timestamptz NOT NULL,
    contained_at timestamptz,
    recorded_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_breaches PRIMARY KEY (id),
    CONSTRAINT fk_breaches_recorded_by_users FOREIGN KEY (recorded_by) REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT ck_breaches_title CHECK (length(title) BETWEEN 1 AND 200),
    CONSTRAINT ck_breaches_description CHECK (length(description) BETWEEN 1 AND 10000),
    CONSTRAINT ck_breaches_severity CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    CONSTRAINT ck_breaches_data_categories CHECK (
        cardinality(data_categories) <= 50 AND array_position(data_categories, NULL) IS NULL),
    CONSTRAINT ck_breaches_affected_users CHECK (affected_users >= 0),
    CONSTRAINT ck_breaches_contained_at CHECK (contained_at >= detected_at)
);
COMMENT ON TABLE compliance.breaches IS
    'Personal data breaches detected (seed 002 breach_detected): what, how severe, which kinds of data, how '
    'many people. Platform administrators only.';
COMMENT ON COLUMN compliance.breaches.affected_users IS 'How many people are affected, as far as known.';
COMMENT ON COLUMN compliance.breaches.recorded_by IS 'The administrator who recorded it.';
-- Serves the foreign key's ON DELETE SET NULL when an account goes.
CREATE INDEX ix_breaches_recorded_by ON compliance.breaches (recorded_by) WHERE recorded_by IS NOT NULL;
CREATE TRIGGER set_updated_at BEFORE UPDATE ON compliance.breaches
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();

CREATE TABLE compliance.breach_notifications (
    id uuid NOT NULL,
    breach_id uuid NOT NULL,
    audience text NOT NULL,
    channel text NOT NULL,
    recipients integer NOT NULL DEFAULT 0,
    notes text,
    sent_by uuid,
    sent_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_breach_notifications PRIMARY KEY (id),
    CONSTRAINT fk_breach_notifications_breach_id_breaches FOREIGN KEY (breach_id)
        REFERENCES compliance.breaches (id) ON DELETE CASCADE,
    CONSTRAINT fk_breach_notifications_sent_by_users FOREIGN KEY (sent_by) REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT ck_breach_notifications_audience CHECK (
        audience IN ('supervisory_authority', 'affected_users', 'public')),
    CONSTRAINT ck_breach_notifications_channel CHECK (
        channel IN ('email', 'in_app', 'letter', 'phone', 'web', 'other')),
    CONSTRAINT ck_breach_notifications_recipients CHECK (recipients >= 0),
    CONSTRAINT ck_breach_notifications_notes CHECK (length(notes) <= 10000)
);
COMMENT ON TABLE compliance.breach_notifications IS
    'Each notification sent about a breach (seed 002 breach_notified): to the supervisory authority, the '
    'people affected or the public, how, to how many. Platform administrators only.';
-- Serves rapport.compliance._breaches.list_breaches: one breach's notifications, and the foreign key.
CREATE INDEX ix_breach_notifications_breach_id ON compliance.breach_notifications (breach_id, sent_at);
-- Serves the foreign key's ON DELETE SET NULL when an account goes.
CREATE INDEX ix_breach_notifications_sent_by ON compliance.breach_notifications (sent_by) WHERE sent_by IS NOT NULL;

ALTER TABLE compliance.consent_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE compliance.consent_logs FORCE ROW LEVEL SECURITY;
-- The person reads and adds their own; platform administrators read (the service records
-- each read); definer functions and system work read for has_consent; system work
-- deletes (erasure, retention).
CREATE POLICY consent_logs_read ON compliance.consent_logs FOR SELECT
    USING (user_id = auth.current_user_id() OR auth.is_system() OR kernel.in_definer()
           OR compliance.is_platform_admin());
CREATE POLICY consent_logs_give ON compliance.consent_logs FOR INSERT
    WITH CHECK (user_id = auth.current_user_id());
CREATE POLICY consent_logs_system_delete ON compliance.consent_logs FOR DELETE USING (auth.is_system());
GRANT SELECT, INSERT ON compliance.consent_logs TO rapport_app;
GRANT SELECT, DELETE ON compliance.consent_logs TO rapport_worker;

ALTER TABLE compliance.compliance_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE compliance.compliance_logs FORCE ROW LEVEL SECURITY;
CREATE POLICY compliance_logs_read ON compliance.compliance_logs FOR SELECT
    USING (user_id = auth.current_user_id() OR auth.is_system() OR compliance.is_platform_admin());
-- Rows come only through compliance.log_event (the serving roles hold no INSERT grant).
CREATE POLICY compliance_logs_definer ON compliance.compliance_logs FOR INSERT TO rapport_owner
    WITH CHECK (kernel.in_definer());
-- System work anonymises (erasure) and removes (retention) rows.
CREATE POLICY compliance_logs_system_change ON compliance.compliance_logs FOR UPDATE
    USING (auth.is_system()) WITH CHECK (auth.is_system());
CREATE POLICY compliance_logs_system_delete ON compliance.compliance_logs FOR DELETE USING (auth.is_system());
GRANT SELECT ON compliance.compliance_logs TO rapport_app;
GRANT SELECT, UPDATE (user_id, details), DELETE ON compliance.compliance_logs TO rapport_worker;

-- Breaches are the platform administrators' (and system work's) alone.
ALTER TABLE compliance.breaches ENABLE ROW LEVEL SECURITY;
ALTER TABLE compliance.breaches FORCE ROW LEVEL SECURITY;
CREATE POLICY breaches_admin ON compliance.breaches
    USING (auth.is_system() OR compliance.is_platform_admin())
    WITH CHECK (auth.is_system() OR compliance.is_platform_admin());
GRANT SELECT, INSERT, UPDATE ON compliance.breaches TO rapport_app, rapport_worker;

ALTER TABLE compliance.breach_notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE compliance.breach_notifications FORCE ROW LEVEL SECURITY;
CREATE POLICY breach_notifications_admin ON compliance.breach_notifications
    USING (auth.is_system() OR compliance.is_platform_admin())
    WITH CHECK (auth.is_system() OR compliance.is_platform_admin());
GRANT SELECT, INSERT ON compliance.breach_notifications TO rapport_app, rapport_worker;
"""

AUDIT_TABLES = rf"""
-- Where each chain ends (and, once retention pruned its oldest rows, where it starts).
CREATE TABLE audit.chain_heads (
    table_name text NOT NULL,
    chain_position bigint NOT NULL DEFAULT 0,
    chain_hash bytea,
    anchor_position bigint NOT NULL DEFAULT 0,
    anchor_hash bytea,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_chain_heads PRIMARY KEY (table_name),
    CONSTRAINT ck_chain_heads_positions CHECK (anchor_position BETWEEN 0 AND chain_position),
    CONSTRAINT ck_chain_heads_hashes CHECK (
        (chain_hash IS NULL) = (chain_position = 0) AND (anchor_hash IS NULL) = (anchor_position = 0))
);
COMMENT ON TABLE audit.chain_heads IS
    'The end of each audit table''s hash chain (its last position and chain hash), locked by every append; '
    'and its start once retention pruned the oldest rows (the position and chain hash the rest follows).';

CREATE TABLE audit.admin_actions (
    id bigint GENERATED ALWAYS AS IDENTITY,
    admin_id uuid,
    action text NOT NULL,
    target_user_id uuid,
    target text,
    reason text,
    details jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_admin_actions PRIMARY KEY (id),
    CONSTRAINT ck_admin_actions_action CHECK (action IN ({ADMIN_ACTIONS})),
    CONSTRAINT ck_admin_actions_target CHECK (length(target) BETWEEN 1 AND 200),
    CONSTRAINT ck_admin_actions_reason CHECK (length(reason) BETWEEN 1 AND 2000),
    CONSTRAINT ck_admin_actions_details CHECK (
        jsonb_typeof(details) = 'object' AND octet_length(details::text) <= 16000)
);
-- No foreign keys, as the other audit tables: the record outlives the accounts it names.
COMMENT ON TABLE audit.admin_actions IS
    'Every action of a platform administrator (seed 004 audit.admin_actions): who, what, on whom or what, '
    'and why. Written only through audit.record_admin_action.';
COMMENT ON COLUMN audit.admin_actions.target IS 'What the action was on, when not one account: a breach, a list.';
COMMENT ON COLUMN audit.admin_actions.reason IS 'Why, in the administrator''s words: required (blank only once redacted).';
-- Serves rapport.compliance._admin.list_audit: one account's record, newest first.
CREATE INDEX ix_admin_actions_target_user_id ON audit.admin_actions (target_user_id, id DESC)
    WHERE target_user_id IS NOT NULL;
-- Serves audit.erase_person: what one administrator did.
CREATE INDEX ix_admin_actions_admin_id ON audit.admin_actions (admin_id) WHERE admin_id IS NOT NULL;

CREATE TABLE audit.auth_events (
    id bigint GENERATED ALWAYS AS IDENTITY,
    user_id uuid,
    event_type text NOT NULL,
    succeeded boolean,
    ip_address inet,
    user_agent text,
    details jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_auth_events PRIMARY KEY (id),
    CONSTRAINT ck_auth_events_event_type CHECK (event_type ~ '^[a-z_:]{{1,64}}$'),
    CONSTRAINT ck_auth_events_details CHECK (jsonb_typeof(details) = 'object')
);
COMMENT ON TABLE audit.auth_events IS
    'Every sign-in attempt and security event (seed 004 audit.auth_events), copied by trigger from '
    'auth.login_history and auth.security_events: the record outlives the account''s own history.';
COMMENT ON COLUMN audit.auth_events.event_type IS
    'sign_in (with succeeded) for an attempt, else the security event''s type.';
-- Serves audit.erase_person and a person's own record, newest first.
CREATE INDEX ix_auth_events_user_id ON audit.auth_events (user_id, id DESC) WHERE user_id IS NOT NULL;

CREATE TABLE audit.data_exports (
    id bigint GENERATED ALWAYS AS IDENTITY,
    export_id uuid NOT NULL,
    user_id uuid,
    event text NOT NULL,
    details jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_data_exports PRIMARY KEY (id),
    CONSTRAINT ck_data_exports_event CHECK (event IN ('requested', 'completed', 'downloaded', 'failed', 'expired')),
    CONSTRAINT ck_data_exports_details CHECK (
        jsonb_typeof(details) = 'object' AND octet_length(details::text) <= 16000)
);
COMMENT ON TABLE audit.data_exports IS
    'Each step of each export of a person''s data (seed 004 audit.data_exports): requested, completed, '
    'downloaded, failed, expired. Written through audit.record_data_export.';
-- Serves audit.erase_person and a person's own record, newest first.
CREATE INDEX ix_data_exports_user_id ON audit.data_exports (user_id, id DESC) WHERE user_id IS NOT NULL;

CREATE TABLE audit.redactions (
    id bigint GENERATED ALWAYS AS IDENTITY,
    table_name text NOT NULL,
    row_id bigint NOT NULL,
    redacted_hash bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_redactions PRIMARY KEY (id),
    CONSTRAINT ck_redactions_table_name CHECK (table_name ~ '^audit\.[a-z_]{{1,63}}$'),
    CONSTRAINT ck_redactions_redacted_hash CHECK (octet_length(redacted_hash) = 32)
);
COMMENT ON TABLE audit.redactions IS
    'Each audit row whose personal content audit.erase_person blanked, with the SHA-256 of what it holds '
    'since: verification checks a redacted row against this instead of its content hash. Holds no personal data.';
-- Serves rapport.compliance._audit_chain.verify_chain: the redactions of one table.
CREATE UNIQUE INDEX ux_redactions_table_row ON audit.redactions (table_name, row_id);

-- The audit rows erasure blanks keep their place in the chain.
ALTER TABLE audit.sensitive_data_access ALTER COLUMN user_id DROP NOT NULL;
"""

AUDIT_FUNCTIONS = r"""
-- The SHA-256 of an audit row's content: every column but its place in the chain, the
-- hashes and the redaction mark (the place is an index: the chain hashes fix the order),
-- without null values (so that a column added later with no value leaves the
-- hashes of earlier rows as they were), as jsonb's canonical text. Callers fix TimeZone
-- at UTC, so that time stamps read the same whoever hashes them.
CREATE FUNCTION audit.content_digest(content jsonb) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT sha256(convert_to(
            jsonb_strip_nulls(content - '{chain_position,content_hash,chain_hash,redacted_at}'::text[])::text, 'UTF8'))
    $$;
COMMENT ON FUNCTION audit.content_digest(jsonb) IS
    'SHA-256 of an audit row''s content (to_jsonb of the row, chain position, hashes and redaction mark left '
    'out, nulls stripped); to be called with TimeZone = UTC.';

-- BEFORE INSERT on every chained audit table. Not a definer function: audit rows are
-- inserted only by definer functions and triggers owned by rapport_owner (the serving
-- roles hold no INSERT grant), which reach the chain heads through their policy.
CREATE FUNCTION audit.chain_append() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    SET TimeZone = 'UTC'
    AS $$
    DECLARE
        chain text := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
        last_position bigint;
        last_hash bytea;
    BEGIN
        -- The lock on the head orders every append to this table: held to commit, it
        -- makes the chain's order the order in which appends commit. A table without a
        -- head (never appended to, or emptied with its head) starts its chain here.
        SELECT h.chain_position, h.chain_hash INTO last_position, last_hash
          FROM audit.chain_heads h WHERE h.table_name = chain FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO audit.chain_heads (table_name) VALUES (chain) ON CONFLICT (table_name) DO NOTHING;
            SELECT h.chain_position, h.chain_hash INTO last_position, last_hash
              FROM audit.chain_heads h WHERE h.table_name = chain FOR UPDATE;
        END IF;
        NEW.redacted_at := NULL;
        NEW.chain_position := last_position + 1;
        NEW.content_hash := audit.content_digest(to_jsonb(NEW));
        NEW.chain_hash := sha256(coalesce(last_hash, ''::bytea) || NEW.content_hash);
        UPDATE audit.chain_heads
           SET chain_position = NEW.chain_position, chain_hash = NEW.chain_hash, updated_at = now()
         WHERE table_name = chain;
        RETURN NEW;
    END
    $$;
COMMENT ON FUNCTION audit.chain_append() IS
    'BEFORE INSERT trigger of the audit tables: gives the row its chain position, content hash and chain hash '
    'under a lock on the table''s chain head.';
REVOKE ALL ON FUNCTION audit.chain_append() FROM PUBLIC;

-- Sign-in attempts and security events, copied into the audit as they are made.
CREATE FUNCTION audit.record_auth_event() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        IF TG_TABLE_NAME = 'login_history' THEN
            INSERT INTO audit.auth_events (user_id, event_type, succeeded, ip_address, user_agent, details, created_at)
            VALUES (NEW.user_id, 'sign_in', NEW.succeeded, NEW.ip_address, NEW.user_agent,
                    jsonb_strip_nulls(jsonb_build_object('method', NEW.method, 'failure_reason', NEW.failure_reason,
                                                         'session_id', NEW.session_id)),
                    NEW.created_at);
        ELSE
            INSERT INTO audit.auth_events (user_id, event_type, ip_address, user_agent, details, created_at)
            VALUES (NEW.user_id, NEW.event_type, NEW.ip_address, NEW.user_agent,
                    jsonb_build_object('severity', NEW.severity) || NEW.details, NEW.created_at);
        END IF;
        RETURN NULL;
    END
    $$;
COMMENT ON FUNCTION audit.record_auth_event() IS
    'AFTER INSERT trigger of auth.login_history and auth.security_events: copies the event into audit.auth_events.';
REVOKE ALL ON FUNCTION audit.record_auth_event() FROM PUBLIC;
CREATE TRIGGER tr_login_history_audit AFTER INSERT ON auth.login_history
    FOR EACH ROW EXECUTE FUNCTION audit.record_auth_event();
CREATE TRIGGER tr_security_events_audit AFTER INSERT ON auth.security_events
    FOR EACH ROW EXECUTE FUNCTION audit.record_auth_event();

-- Every administrator action is recorded here, in the transaction that does it. A platform
-- administrator records their own; system work records an action on an administrator's
-- behalf (suspensions change other people's accounts, which only system work may).
CREATE FUNCTION audit.record_admin_action(
    action text, reason text, target_user_id uuid DEFAULT NULL, target text DEFAULT NULL,
    details jsonb DEFAULT '{}', admin_id uuid DEFAULT NULL
) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        acting uuid := coalesce(record_admin_action.admin_id, auth.current_user_id());
        made bigint;
    BEGIN
        IF acting IS NULL OR NOT coalesce(
            (acting = auth.current_user_id() AND compliance.is_platform_admin())
            OR (auth.is_system() AND EXISTS (
                SELECT 1 FROM auth.users u WHERE u.id = acting AND u.is_admin AND u.status = 'active')), false) THEN
            RAISE EXCEPTION 'only a platform administrator''s action is recorded'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF nullif(btrim(coalesce(record_admin_action.reason, '')), '') IS NULL THEN
            RAISE EXCEPTION 'an administrator action needs a reason' USING ERRCODE = 'check_violation';
        END IF;
        INSERT INTO audit.admin_actions (admin_id, action, target_user_id, target, reason, details)
        VALUES (acting, record_admin_action.action, record_admin_action.target_user_id, record_admin_action.target,
                btrim(record_admin_action.reason), coalesce(record_admin_action.details, '{}'::jsonb))
        RETURNING id INTO made;
        RETURN made;
    END
    $$;
COMMENT ON FUNCTION audit.record_admin_action(text, text, uuid, text, jsonb, uuid) IS
    'Record a platform administrator''s action with its reason; returns the row''s id. The administrator '
    'records their own, or system work on their behalf.';

-- A platform administrator's read of someone else's data, recorded where the person sees
-- reads of their data (audit.record_sensitive_access records only the owner's).
CREATE FUNCTION audit.record_admin_access(subject uuid, table_name text, fields text[] DEFAULT '{}') RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        IF NOT compliance.is_platform_admin() THEN
            RAISE EXCEPTION 'only a platform administrator''s reads are recorded here'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        INSERT INTO audit.sensitive_data_access (user_id, accessed_by, table_name, action, fields)
        VALUES (subject, auth.current_user_id(), record_admin_access.table_name, 'read',
                coalesce(record_admin_access.fields, '{}'));
    END
    $$;
COMMENT ON FUNCTION audit.record_admin_access(uuid, text, text[]) IS
    'Record that the acting platform administrator read subject''s data in a table.';

CREATE FUNCTION audit.record_data_export(
    export_id uuid, user_id uuid, event text, details jsonb DEFAULT '{}'
) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        IF NOT coalesce(auth.is_system() OR record_data_export.user_id = auth.current_user_id(), false) THEN
            RAISE EXCEPTION 'only the person or system work records an export of their data'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        INSERT INTO audit.data_exports (export_id, user_id, event, details)
        VALUES (record_data_export.export_id, record_data_export.user_id, record_data_export.event,
                coalesce(record_data_export.details, '{}'::jsonb));
    END
    $$;
COMMENT ON FUNCTION audit.record_data_export(uuid, uuid, text, jsonb) IS
    'Record a step of an export of a person''s data: by the person, or by system work.';

-- Erasure: blank a person's content in every audit row about them or by them, keeping
-- each row's place, content hash and chain hash; each blanked row is marked redacted and
-- listed in audit.redactions with the hash of what it holds now. Beyond the person's id
-- and their account's e-mail and phone number, `terms` name more text to look for (names).
CREATE FUNCTION audit.erase_person(user_id uuid, terms text[] DEFAULT '{}') RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET TimeZone = 'UTC'
    AS $$
    DECLARE
        subject uuid := erase_person.user_id;
        needles text[];
        total integer := 0;
        counted integer;
    BEGIN
        IF NOT auth.is_system() THEN
            RAISE EXCEPTION 'erasure is system work' USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF subject IS NULL THEN
            RETURN 0;
        END IF;
        SELECT array_agg(DISTINCT lower(n)) INTO needles
          FROM unnest(ARRAY[subject::text]
                      || ARRAY(SELECT a.value FROM auth.users u, unnest(ARRAY[u.email, u.phone_number]) AS a(value)
                                WHERE u.id = subject)
                      || coalesce(terms, '{}')) AS n
         WHERE length(btrim(n)) >= 3;

        WITH hit AS (
            UPDATE audit.record_changes r
               SET old_data = NULL, new_data = NULL, acting_user_id = NULL, redacted_at = now()
             WHERE r.redacted_at IS NULL
               AND (r.acting_user_id = subject OR EXISTS (
                        SELECT 1 FROM unnest(needles) AS n
                         WHERE strpos(lower(coalesce(r.old_data::text, '') || coalesce(r.new_data::text, '')), n) > 0))
            RETURNING r.*
        ), listed AS (
            INSERT INTO audit.redactions (table_name, row_id, redacted_hash)
            SELECT 'audit.record_changes', h.id, audit.content_digest(to_jsonb(h)) FROM hit h
            RETURNING 1
        )
        SELECT count(*) INTO counted FROM listed;
        total := total + counted;

        WITH hit AS (
            UPDATE audit.sensitive_data_access s
               SET user_id = CASE WHEN s.user_id = subject THEN NULL ELSE s.user_id END,
                   accessed_by = CASE WHEN s.accessed_by = subject THEN NULL ELSE s.accessed_by END,
                   redacted_at = now()
             WHERE s.redacted_at IS NULL AND (s.user_id = subject OR s.accessed_by = subject)
            RETURNING s.*
        ), listed AS (
            INSERT INTO audit.redactions (table_name, row_id, redacted_hash)
            SELECT 'audit.sensitive_data_access', h.id, audit.content_digest(to_jsonb(h)) FROM hit h
            RETURNING 1
        )
        SELECT count(*) INTO counted FROM listed;
        total := total + counted;

        WITH hit AS (
            UPDATE audit.admin_actions a
               SET admin_id = CASE WHEN a.admin_id = subject THEN NULL ELSE a.admin_id END,
                   target_user_id = CASE WHEN a.target_user_id = subject THEN NULL ELSE a.target_user_id END,
                   reason = NULL, details = '{}'::jsonb, redacted_at = now()
             WHERE a.redacted_at IS NULL
               AND (a.admin_id = subject OR a.target_user_id = subject OR EXISTS (
                        SELECT 1 FROM unnest(needles) AS n
                         WHERE strpos(lower(coalesce(a.reason, '') || a.details::text || coalesce(a.target, '')), n) > 0))
            RETURNING a.*
        ), listed AS (
            INSERT INTO audit.redactions (table_name, row_id, redacted_hash)
            SELECT 'audit.admin_actions', h.id, audit.content_digest(to_jsonb(h)) FROM hit h
            RETURNING 1
        )
        SELECT count(*) INTO counted FROM listed;
        total := total + counted;

        WITH hit AS (
            UPDATE audit.auth_events e
               SET user_id = NULL, ip_address = NULL, user_agent = NULL, details = '{}'::jsonb, redacted_at = now()
             WHERE e.redacted_at IS NULL AND e.user_id = subject
            RETURNING e.*
        ), listed AS (
            INSERT INTO audit.redactions (table_name, row_id, redacted_hash)
            SELECT 'audit.auth_events', h.id, audit.content_digest(to_jsonb(h)) FROM hit h
            RETURNING 1
        )
        SELECT count(*) INTO counted FROM listed;
        total := total + counted;

        WITH hit AS (
            UPDATE audit.data_exports x
               SET user_id = NULL, details = '{}'::jsonb, redacted_at = now()
             WHERE x.redacted_at IS NULL AND x.user_id = subject
            RETURNING x.*
        ), listed AS (
            INSERT INTO audit.redactions (table_name, row_id, redacted_hash)
            SELECT 'audit.data_exports', h.id, audit.content_digest(to_jsonb(h)) FROM hit h
            RETURNING 1
        )
        SELECT count(*) INTO counted FROM listed;
        total := total + counted;
        RETURN total;
    END
    $$;
COMMENT ON FUNCTION audit.erase_person(uuid, text[]) IS
    'System work: blank the person''s content in every audit row about or by them (the id, the account''s '
    'e-mail and phone number, and the terms given), keeping the hash chain; returns how many rows were redacted.';

-- Retention of the audit: the oldest rows of one chain go, in chain order, and the chain
-- head keeps where the rest starts. Deleting audit rows any other way breaks verification.
CREATE FUNCTION audit.prune_chain(table_name text, older_than timestamptz) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        chain text := prune_chain.table_name;
        time_column text;
        last_position bigint;
        last_hash bytea;
        removed integer;
    BEGIN
        IF NOT auth.is_system() THEN
            RAISE EXCEPTION 'pruning the audit is system work' USING ERRCODE = 'insufficient_privilege';
        END IF;
        time_column := CASE chain
            WHEN 'audit.record_changes' THEN 'occurred_at'
            WHEN 'audit.sensitive_data_access' THEN 'created_at'
            WHEN 'audit.admin_actions' THEN 'created_at'
            WHEN 'audit.auth_events' THEN 'created_at'
            WHEN 'audit.data_exports' THEN 'created_at'
            WHEN 'audit.redactions' THEN 'created_at'
        END;
        IF time_column IS NULL THEN
            RAISE EXCEPTION 'no audit chain is named %', chain USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM 1 FROM audit.chain_heads h WHERE h.table_name = chain FOR UPDATE;
        -- The rows before the first one to keep, in chain order: a prefix of the chain.
        EXECUTE format(
            'WITH keep AS (SELECT min(chain_position) AS first FROM %1$s WHERE %2$I >= $1),
                  gone AS (DELETE FROM %1$s t WHERE t.chain_position < coalesce((SELECT first FROM keep),
                                                                                 (SELECT max(chain_position) + 1 FROM %1$s))
                           RETURNING t.chain_position, t.chain_hash)
             SELECT count(*), max(chain_position),
                    (SELECT g.chain_hash FROM gone g ORDER BY g.chain_position DESC LIMIT 1) FROM gone',
            chain, time_column)
          INTO removed, last_position, last_hash USING older_than;
        IF removed > 0 THEN
            UPDATE audit.chain_heads h SET anchor_position = last_position, anchor_hash = last_hash, updated_at = now()
             WHERE h.table_name = chain;
        END IF;
        RETURN removed;
    END
    $$;
COMMENT ON FUNCTION audit.prune_chain(text, timestamptz) IS
    'System work: delete the oldest rows of one audit chain (those before the first row at or after '
    'older_than), keeping the chain hash the remaining rows follow; returns how many went.';

REVOKE ALL ON FUNCTION audit.record_admin_action(text, text, uuid, text, jsonb, uuid),
    audit.record_admin_access(uuid, text, text[]), audit.record_data_export(uuid, uuid, text, jsonb),
    audit.erase_person(uuid, text[]), audit.prune_chain(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.record_admin_action(text, text, uuid, text, jsonb, uuid),
    audit.record_admin_access(uuid, text, text[]), audit.record_data_export(uuid, uuid, text, jsonb)
    TO rapport_app, rapport_worker;
GRANT EXECUTE ON FUNCTION audit.erase_person(uuid, text[]), audit.prune_chain(text, timestamptz) TO rapport_worker;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA compliance FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA compliance TO rapport_app, rapport_worker;
"""


def _chain_columns(table: str) -> str:
    return f"""
        ALTER TABLE audit.{table}
            ADD COLUMN chain_position bigint,
            ADD COLUMN content_hash bytea,
            ADD COLUMN chain_hash bytea,
            ADD COLUMN redacted_at timestamptz;
        COMMENT ON COLUMN audit.{table}.chain_position IS 'The row''s place in its table''s hash chain.';
        COMMENT ON COLUMN audit.{table}.content_hash IS 'SHA-256 of the row''s content (audit.content_digest).';
        COMMENT ON COLUMN audit.{table}.chain_hash IS
            'SHA-256 of the previous row''s chain_hash followed by this row''s content_hash.';
        COMMENT ON COLUMN audit.{table}.redacted_at IS
            'When erasure blanked the personal content (audit.erase_person); the hashes stay as they were.';
        CREATE POLICY {table}_definer ON audit.{table} TO rapport_owner USING (true) WITH CHECK (true);
        """


# The rows already there (record_changes and sensitive_data_access) join their chains in id order.
CHAIN_EXISTING_ROWS = r"""
DO $$
DECLARE
    chain text;
    item record;
    place bigint;
    previous bytea;
    content bytea;
    zone text := current_setting('TimeZone');
BEGIN
    PERFORM set_config('TimeZone', 'UTC', true);
    FOREACH chain IN ARRAY ARRAY['record_changes', 'sensitive_data_access', 'admin_actions',
                                  'auth_events', 'data_exports', 'redactions'] LOOP
        place := 0;
        previous := NULL;
        FOR item IN EXECUTE format('SELECT id FROM audit.%I ORDER BY id', chain) LOOP
            place := place + 1;
            EXECUTE format('SELECT audit.content_digest(to_jsonb(t)) FROM audit.%I t WHERE id = $1', chain)
                INTO content USING item.id;
            previous := sha256(coalesce(previous, ''::bytea) || content);
            EXECUTE format('UPDATE audit.%I SET chain_position = $1, content_hash = $2, chain_hash = $3 WHERE id = $4',
                           chain)
                USING place, content, previous, item.id;
        END LOOP;
        INSERT INTO audit.chain_heads (table_name, chain_position, chain_hash)
        VALUES ('audit.' || chain, place, previous);
    END LOOP;
    PERFORM set_config('TimeZone', zone, true);
END
$$;
"""


def _chain_trigger(table: str) -> str:
    return f"""
        ALTER TABLE audit.{table}
            ALTER COLUMN chain_position SET NOT NULL,
            ALTER COLUMN content_hash SET NOT NULL,
            ALTER COLUMN chain_hash SET NOT NULL,
            ADD CONSTRAINT ck_{table}_hashes CHECK (
                octet_length(content_hash) = 32 AND octet_length(chain_hash) = 32);
        -- Serves rapport.compliance._audit_chain.verify_chain: the chain walked in order.
        CREATE UNIQUE INDEX ux_{table}_chain_position ON audit.{table} (chain_position);
        CREATE TRIGGER tr_{table}_chain BEFORE INSERT ON audit.{table}
            FOR EACH ROW EXECUTE FUNCTION audit.chain_append();
        """


def _chain_sql() -> str:
    """Chain columns on every chained table, the rows already there chained, the heads,
    the append trigger and the owner's policies."""
    return "\n".join(
        [*(_chain_columns(table) for table in CHAINED), CHAIN_EXISTING_ROWS, *(_chain_trigger(t) for t in CHAINED)]
    )


AUDIT_POLICIES = r"""
ALTER TABLE audit.chain_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit.chain_heads FORCE ROW LEVEL SECURITY;
-- Moved only by the append trigger and the definer functions; read by verification.
CREATE POLICY chain_heads_definer ON audit.chain_heads TO rapport_owner USING (true) WITH CHECK (true);
CREATE POLICY chain_heads_read ON audit.chain_heads FOR SELECT
    USING (auth.is_system() OR compliance.is_platform_admin());
GRANT SELECT ON audit.chain_heads TO rapport_app, rapport_worker;

-- The person reads their own sign-in and export records; platform administrators read
-- every audit table (the service records each read of someone's rows); system work reads
-- for verification and exports.
ALTER TABLE audit.admin_actions ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit.admin_actions FORCE ROW LEVEL SECURITY;
CREATE POLICY admin_actions_read ON audit.admin_actions FOR SELECT
    USING (auth.is_system() OR compliance.is_platform_admin());
GRANT SELECT ON audit.admin_actions TO rapport_app, rapport_worker;

ALTER TABLE audit.auth_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit.auth_events FORCE ROW LEVEL SECURITY;
CREATE POLICY auth_events_read ON audit.auth_events FOR SELECT
    USING (user_id = auth.current_user_id() OR auth.is_system() OR compliance.is_platform_admin());
GRANT SELECT ON audit.auth_events TO rapport_app, rapport_worker;

ALTER TABLE audit.data_exports ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit.data_exports FORCE ROW LEVEL SECURITY;
CREATE POLICY data_exports_read ON audit.data_exports FOR SELECT
    USING (user_id = auth.current_user_id() OR auth.is_system() OR compliance.is_platform_admin());
GRANT SELECT ON audit.data_exports TO rapport_app, rapport_worker;

ALTER TABLE audit.redactions ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit.redactions FORCE ROW LEVEL SECURITY;
CREATE POLICY redactions_read ON audit.redactions FOR SELECT
    USING (auth.is_system() OR compliance.is_platform_admin());
GRANT SELECT ON audit.redactions TO rapport_app, rapport_worker;

CREATE POLICY record_changes_admin_read ON audit.record_changes FOR SELECT
    USING (compliance.is_platform_admin());
CREATE POLICY sensitive_data_access_admin_read ON audit.sensitive_data_access FOR SELECT
    USING (compliance.is_platform_admin());
"""


def upgrade() -> None:
    run_sql(COMPLIANCE)
    run_sql(AUDIT_TABLES)
    run_sql(AUDIT_FUNCTIONS)
    run_sql(_chain_sql())
    run_sql(AUDIT_POLICIES)


def downgrade() -> None:
    drops = [
        "DROP TRIGGER tr_login_history_audit ON auth.login_history;",
        "DROP TRIGGER tr_security_events_audit ON auth.security_events;",
        "DROP POLICY record_changes_admin_read ON audit.record_changes;",
        "DROP POLICY sensitive_data_access_admin_read ON audit.sensitive_data_access;",
        # Rows erasure blanked have no owner to give back; they go with the chains.
        "DELETE FROM audit.sensitive_data_access WHERE user_id IS NULL;",
        "ALTER TABLE audit.sensitive_data_access ALTER COLUMN user_id SET NOT NULL;",
    ]
    drops.extend(
        f"""
        DROP TRIGGER tr_{table}_chain ON audit.{table};
        DROP POLICY {table}_definer ON audit.{table};
        ALTER TABLE audit.{table} DROP COLUMN chain_position, DROP COLUMN content_hash,
            DROP COLUMN chain_hash, DROP COLUMN redacted_at;
        """
        for table in EXISTING
    )
    drops.append(
        """
        DROP TABLE audit.redactions, audit.data_exports, audit.auth_events, audit.admin_actions, audit.chain_heads;
        DROP FUNCTION audit.prune_chain(text, timestamptz);
        DROP FUNCTION audit.erase_person(uuid, text[]);
        DROP FUNCTION audit.record_data_export(uuid, uuid, text, jsonb);
        DROP FUNCTION audit.record_admin_access(uuid, text, text[]);
        DROP FUNCTION audit.record_admin_action(text, text, uuid, text, jsonb, uuid);
        DROP FUNCTION audit.record_auth_event();
        DROP FUNCTION audit.chain_append();
        DROP FUNCTION audit.content_digest(jsonb);
        DROP SCHEMA compliance CASCADE;
        """
    )
    run_sql("\n".join(drops))
