"""access: permissions named domain:function:action, roles that bundle them, grants.

Why: issue 16 (seed 003's permission system). Who may act as a support agent, observe a
room or manage bots is one question asked in one place, `access.has_permission`, by the
services and by the row-level security of every domain that needs it, instead of role
checks scattered through the code. It answers for the acting user only, so no one can
probe another person's grants through it.

Revision ID: 2026_11_30_0036
Revises: 2026_11_30_0035
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0036"
down_revision = "2026_11_30_0035"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


SCHEMA = """
CREATE SCHEMA access;
COMMENT ON SCHEMA access IS
    'Permissions (seed 003, domain:function:action), roles bundling them and grants of roles to people.';
GRANT USAGE ON SCHEMA access TO rapport_app, rapport_worker;
"""

TABLES = r"""
CREATE TABLE access.domains (
    prefix text NOT NULL,
    description text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_domains PRIMARY KEY (prefix),
    CONSTRAINT ck_domains_prefix CHECK (prefix ~ '^[a-z][a-z0-9_-]{0,30}:[a-z][a-z0-9_-]{0,30}$'),
    CONSTRAINT ck_domains_description CHECK (length(description) BETWEEN 1 AND 500)
);
COMMENT ON TABLE access.domains IS
    'Permission domains (seed 003 access_permission_domains): the domain:function prefix of permissions.';

CREATE TABLE access.permissions (
    name text NOT NULL,
    domain text NOT NULL,
    action text NOT NULL,
    description text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_permissions PRIMARY KEY (name),
    CONSTRAINT fk_permissions_domain_domains FOREIGN KEY (domain) REFERENCES access.domains (prefix),
    CONSTRAINT ck_permissions_action CHECK (action ~ '^[a-z][a-z0-9_-]{0,30}$'),
    CONSTRAINT ck_permissions_name CHECK (name = domain || ':' || action),
    CONSTRAINT ck_permissions_description CHECK (length(description) BETWEEN 1 AND 500)
);
COMMENT ON TABLE access.permissions IS
    'Permissions, named domain:function:action (the domain''s prefix, then the action).';
-- Serves the foreign key.
CREATE INDEX ix_permissions_domain ON access.permissions (domain);

CREATE TABLE access.roles (
    id uuid NOT NULL,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    is_builtin boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_roles PRIMARY KEY (id),
    CONSTRAINT uq_roles_name UNIQUE (name),
    CONSTRAINT ck_roles_name CHECK (name ~ '^[a-z][a-z0-9_-]{0,62}$'),
    CONSTRAINT ck_roles_description CHECK (length(description) <= 500)
);
COMMENT ON TABLE access.roles IS 'Roles: named bundles of permissions, granted to people.';
COMMENT ON COLUMN access.roles.is_builtin IS
    'Made by the migrations and named by the code (support-t1, bot-developer...): never deleted or renamed.';

CREATE TABLE access.role_permissions (
    role_id uuid NOT NULL,
    permission text NOT NULL,
    CONSTRAINT pk_role_permissions PRIMARY KEY (role_id, permission),
    CONSTRAINT fk_role_permissions_role_id_roles FOREIGN KEY (role_id) REFERENCES access.roles (id) ON DELETE CASCADE,
    CONSTRAINT fk_role_permissions_permission_permissions FOREIGN KEY (permission)
        REFERENCES access.permissions (name) ON DELETE CASCADE
);
COMMENT ON TABLE access.role_permissions IS 'The permissions each role holds.';
-- Serves access.has_permission and access.holders_of: the roles holding one permission; and the foreign key.
CREATE INDEX ix_role_permissions_permission ON access.role_permissions (permission, role_id);

CREATE TABLE access.grants (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    role_id uuid NOT NULL,
    conversation_id uuid,
    granted_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_grants PRIMARY KEY (id),
    CONSTRAINT fk_grants_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_grants_role_id_roles FOREIGN KEY (role_id) REFERENCES access.roles (id) ON DELETE CASCADE,
    CONSTRAINT fk_grants_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE,
    CONSTRAINT fk_grants_granted_by_users FOREIGN KEY (granted_by) REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT uq_grants_scope UNIQUE NULLS NOT DISTINCT (user_id, role_id, conversation_id)
);
COMMENT ON TABLE access.grants IS
    'A role granted to a person, platform-wide (conversation_id NULL) or within one conversation.';
COMMENT ON COLUMN access.grants.granted_by IS 'The administrator who granted it; NULL when system work did.';
-- uq_grants_scope (user_id first) serves access.has_permission and a person's own grants.
-- Serves access.holders_of and the foreign key: who holds a role.
CREATE INDEX ix_grants_role_id ON access.grants (role_id, conversation_id);
-- Serves the foreign key (a conversation's deletion).
CREATE INDEX ix_grants_conversation_id ON access.grants (conversation_id) WHERE conversation_id IS NOT NULL;
-- Serves the foreign key.
CREATE INDEX ix_grants_granted_by ON access.grants (granted_by) WHERE granted_by IS NOT NULL;
"""

# Every later domain's policies call access.has_permission: its signature is fixed.
FUNCTIONS = """
-- Invoker rights: it reads the acting user's own account row (as compliance's and
-- messaging's functions of the same name do), so it answers for the caller alone.
CREATE FUNCTION access.is_platform_admin() RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT coalesce((SELECT u.is_admin AND u.status = 'active' AND u.deleted_at IS NULL
                           FROM auth.users u WHERE u.id = auth.current_user_id()), false)
    $$;
COMMENT ON FUNCTION access.is_platform_admin() IS 'Whether the acting user is an active platform administrator.';

-- Definer rights: it reads grants the caller's own transaction may not see, but it answers
-- only for the acting user (there is no person argument), so nothing about anyone else
-- can be learned through it. A suspended, banned or deleted account holds nothing.
CREATE FUNCTION access.has_permission(permission text, conversation uuid DEFAULT NULL) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT auth.is_system() OR coalesce((
            SELECT u.is_admin OR EXISTS (
                       SELECT 1 FROM access.grants g
                         JOIN access.role_permissions rp ON rp.role_id = g.role_id
                        WHERE g.user_id = u.id
                          AND rp.permission = has_permission.permission
                          AND (g.conversation_id IS NULL OR g.conversation_id = has_permission.conversation))
              FROM auth.users u
             WHERE u.id = auth.current_user_id() AND u.status = 'active' AND u.deleted_at IS NULL), false)
    $$;
COMMENT ON FUNCTION access.has_permission(text, uuid) IS
    'Whether the acting user holds the permission: through a grant platform-wide, or for the conversation '
    'when one is named. True for an active platform administrator and for system work; false with no user.';

-- Invoker rights: the grants' policy decides whose grants it sees, all of them for system work
-- (the support desk finding the agents of a level).
CREATE FUNCTION access.holders_of(permission text, conversation uuid DEFAULT NULL) RETURNS SETOF uuid
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT DISTINCT g.user_id
          FROM access.grants g
          JOIN access.role_permissions rp ON rp.role_id = g.role_id
          JOIN auth.users u ON u.id = g.user_id
         WHERE rp.permission = holders_of.permission
           AND (g.conversation_id IS NULL OR g.conversation_id = holders_of.conversation)
           AND u.status = 'active' AND u.deleted_at IS NULL
         ORDER BY g.user_id
    $$;
COMMENT ON FUNCTION access.holders_of(text, uuid) IS
    'The active accounts a grant gives the permission (platform-wide, or for the conversation when one is '
    'named), among the grants the transaction sees; platform administrators only when granted it.';

REVOKE ALL ON FUNCTION access.is_platform_admin(), access.has_permission(text, uuid), access.holders_of(text, uuid)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access.is_platform_admin(), access.has_permission(text, uuid), access.holders_of(text, uuid)
    TO rapport_app, rapport_worker;
"""

SEED = """
INSERT INTO access.domains (prefix, description) VALUES
    ('chat:room', 'Chat room management'),
    ('chat:message', 'Sending and reading messages'),
    ('chat:robot', 'Bots: managing them and calling on them'),
    ('chat:file', 'Uploading and sharing files'),
    ('chat:escalation', 'Escalations of support rooms'),
    ('supervisor:chat', 'Supervising conversations'),
    ('access:admin', 'Administering roles and grants'),
    ('support:queue', 'The support desk''s queues, by level');

INSERT INTO access.permissions (name, domain, action, description) VALUES
    ('chat:room:create', 'chat:room', 'create', 'Open a room'),
    ('chat:room:join', 'chat:room', 'join', 'Join a room one is not invited to'),
    ('chat:room:close', 'chat:room', 'close', 'Close a room'),
    ('chat:message:send', 'chat:message', 'send', 'Send messages'),
    ('chat:message:read', 'chat:message', 'read', 'Read messages'),
    ('chat:robot:manage', 'chat:robot', 'manage', 'Make and manage bots'),
    ('chat:robot:invoke', 'chat:robot', 'invoke', 'Call on a bot'),
    ('chat:file:upload', 'chat:file', 'upload', 'Upload files'),
    ('chat:escalation:create', 'chat:escalation', 'create', 'Escalate a support room'),
    ('chat:escalation:assign', 'chat:escalation', 'assign', 'Assign an escalation'),
    ('chat:escalation:resolve', 'chat:escalation', 'resolve', 'Work on and resolve an escalation'),
    ('supervisor:chat:observe', 'supervisor:chat', 'observe', 'Observe rooms without taking part'),
    ('access:admin:manage', 'access:admin', 'manage', 'Manage roles and grants'),
    ('support:queue:t1', 'support:queue', 't1', 'Work the first-level support queue'),
    ('support:queue:t2', 'support:queue', 't2', 'Work the second-level support queue'),
    ('support:queue:t3', 'support:queue', 't3', 'Work the third-level support queue'),
    ('support:queue:manager', 'support:queue', 'manager', 'Work the managers'' support queue');

INSERT INTO access.roles (id, name, description, is_builtin) VALUES
    (kernel.uuid7_like(), 'support-t1', 'First-level support agent', true),
    (kernel.uuid7_like(), 'support-t2', 'Second-level support agent', true),
    (kernel.uuid7_like(), 'support-t3', 'Third-level support agent', true),
    (kernel.uuid7_like(), 'support-manager', 'Support manager', true),
    (kernel.uuid7_like(), 'supervisor', 'Observes conversations without taking part', true),
    (kernel.uuid7_like(), 'bot-developer', 'Makes and manages bots', true);

-- Each support level holds the queues of the levels below it.
INSERT INTO access.role_permissions (role_id, permission)
SELECT r.id, p.permission
  FROM access.roles r
  JOIN (VALUES
        ('support-t1', 1), ('support-t2', 2), ('support-t3', 3), ('support-manager', 4)) AS lvl (role, rank)
    ON lvl.role = r.name
 CROSS JOIN LATERAL (
        SELECT unnest(ARRAY['chat:escalation:create', 'chat:escalation:assign', 'chat:escalation:resolve',
                            'chat:room:join', 'chat:room:close', 'chat:message:send', 'chat:message:read',
                            'support:queue:t1'])
        UNION ALL SELECT 'support:queue:t2' WHERE lvl.rank >= 2
        UNION ALL SELECT 'support:queue:t3' WHERE lvl.rank >= 3
        UNION ALL SELECT 'support:queue:manager' WHERE lvl.rank >= 4) AS p (permission);
INSERT INTO access.role_permissions (role_id, permission)
SELECT r.id, p.permission
  FROM access.roles r
  JOIN (VALUES ('supervisor', 'supervisor:chat:observe'), ('supervisor', 'chat:message:read'),
               ('bot-developer', 'chat:robot:manage')) AS p (role, permission)
    ON p.role = r.name;
"""

POLICIES = """
-- The catalogue (domains, permissions, roles and what they hold) is public to everyone
-- signed in; roles and their permissions are changed by access administrators alone.
-- Each policy asks access.has_permission in a subquery, so that it runs once per
-- statement rather than once per row.
ALTER TABLE access.domains ENABLE ROW LEVEL SECURITY;
ALTER TABLE access.domains FORCE ROW LEVEL SECURITY;
CREATE POLICY domains_read ON access.domains FOR SELECT
    USING (auth.current_user_id() IS NOT NULL OR auth.is_system() OR kernel.in_definer());
GRANT SELECT ON access.domains TO rapport_app, rapport_worker;

ALTER TABLE access.permissions ENABLE ROW LEVEL SECURITY;
ALTER TABLE access.permissions FORCE ROW LEVEL SECURITY;
CREATE POLICY permissions_read ON access.permissions FOR SELECT
    USING (auth.current_user_id() IS NOT NULL OR auth.is_system() OR kernel.in_definer());
GRANT SELECT ON access.permissions TO rapport_app, rapport_worker;

ALTER TABLE access.roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE access.roles FORCE ROW LEVEL SECURITY;
CREATE POLICY roles_read ON access.roles FOR SELECT
    USING (auth.current_user_id() IS NOT NULL OR auth.is_system() OR kernel.in_definer());
CREATE POLICY roles_add ON access.roles FOR INSERT TO rapport_app, rapport_worker
    WITH CHECK (NOT is_builtin AND (SELECT access.has_permission('access:admin:manage')));
CREATE POLICY roles_change ON access.roles FOR UPDATE TO rapport_app, rapport_worker
    USING ((SELECT access.has_permission('access:admin:manage')))
    WITH CHECK ((SELECT access.has_permission('access:admin:manage')));
CREATE POLICY roles_remove ON access.roles FOR DELETE TO rapport_app, rapport_worker
    USING (NOT is_builtin AND (SELECT access.has_permission('access:admin:manage')));
GRANT SELECT, INSERT, DELETE ON access.roles TO rapport_app, rapport_worker;
GRANT UPDATE (name, description) ON access.roles TO rapport_app, rapport_worker;

-- The definer function reads it whatever the caller may (TO rapport_owner: its own policy
-- never calls back into access.has_permission).
ALTER TABLE access.role_permissions ENABLE ROW LEVEL SECURITY;
ALTER TABLE access.role_permissions FORCE ROW LEVEL SECURITY;
CREATE POLICY role_permissions_definer_read ON access.role_permissions FOR SELECT TO rapport_owner USING (true);
CREATE POLICY role_permissions_read ON access.role_permissions FOR SELECT TO rapport_app, rapport_worker
    USING (auth.current_user_id() IS NOT NULL OR auth.is_system());
CREATE POLICY role_permissions_add ON access.role_permissions FOR INSERT TO rapport_app, rapport_worker
    WITH CHECK ((SELECT access.has_permission('access:admin:manage')));
CREATE POLICY role_permissions_remove ON access.role_permissions FOR DELETE TO rapport_app, rapport_worker
    USING ((SELECT access.has_permission('access:admin:manage')));
GRANT SELECT, INSERT, DELETE ON access.role_permissions TO rapport_app, rapport_worker;

-- A person reads their own grants; access administrators read and write all of them.
ALTER TABLE access.grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE access.grants FORCE ROW LEVEL SECURITY;
CREATE POLICY grants_definer_read ON access.grants FOR SELECT TO rapport_owner USING (true);
CREATE POLICY grants_read ON access.grants FOR SELECT TO rapport_app, rapport_worker
    USING (user_id = auth.current_user_id() OR (SELECT access.has_permission('access:admin:manage')));
CREATE POLICY grants_add ON access.grants FOR INSERT TO rapport_app, rapport_worker
    WITH CHECK ((SELECT access.has_permission('access:admin:manage')));
CREATE POLICY grants_remove ON access.grants FOR DELETE TO rapport_app, rapport_worker
    USING ((SELECT access.has_permission('access:admin:manage')));
GRANT SELECT, INSERT, DELETE ON access.grants TO rapport_app, rapport_worker;

CREATE TRIGGER tr_roles_updated_at BEFORE UPDATE ON access.roles
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();

-- The code grants built-in roles by name (support-t1, bot-developer...): a rename would
-- silently break it, so the database refuses one whoever asks.
CREATE FUNCTION access.keep_builtin_names() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        IF OLD.is_builtin AND NEW.name IS DISTINCT FROM OLD.name THEN
            RAISE EXCEPTION 'the built-in role % keeps its name', OLD.name
                USING ERRCODE = 'check_violation', CONSTRAINT = 'ck_roles_builtin_name';
        END IF;
        RETURN NEW;
    END
    $$;
COMMENT ON FUNCTION access.keep_builtin_names() IS 'BEFORE UPDATE trigger of access.roles: built-in roles keep their names.';
REVOKE ALL ON FUNCTION access.keep_builtin_names() FROM PUBLIC;
CREATE TRIGGER tr_roles_keep_builtin_names BEFORE UPDATE OF name ON access.roles
    FOR EACH ROW EXECUTE FUNCTION access.keep_builtin_names();
"""


# audit.admin_actions' actions as migration 2026_11_30_0023 made them, and those added here.
ADMIN_ACTIONS = (
    "'account_suspended', 'account_banned', 'account_restored', 'audit_read', 'compliance_logs_read', "
    "'consents_read', 'export_requests_listed', 'deletion_requests_listed', 'breach_recorded', "
    "'breach_notification_recorded', 'breaches_listed'"
)
ACCESS_ACTIONS = (
    "'role_created', 'role_changed', 'role_deleted', 'role_permissions_set', 'grant_created', 'grant_revoked'"
)


def record_admin_action(*, access_administrators: bool) -> str:
    """audit.record_admin_action as migration 2026_11_30_0023 made it, and with the
    access administrators' actions when `access_administrators`."""
    access_clause = (
        f"""
            OR (acting = auth.current_user_id() AND record_admin_action.action IN ({ACCESS_ACTIONS})
                AND access.has_permission('access:admin:manage'))"""
        if access_administrators
        else ""
    )
    return f"""
CREATE OR REPLACE FUNCTION audit.record_admin_action(
    action text, reason text, target_user_id uuid DEFAULT NULL, target text DEFAULT NULL,
    details jsonb DEFAULT '{{}}', admin_id uuid DEFAULT NULL
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
                SELECT 1 FROM auth.users u WHERE u.id = acting AND u.is_admin AND u.status = 'active')){access_clause}, false) THEN
            RAISE EXCEPTION 'only a platform administrator''s action is recorded'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF nullif(btrim(coalesce(record_admin_action.reason, '')), '') IS NULL THEN
            RAISE EXCEPTION 'an administrator action needs a reason' USING ERRCODE = 'check_violation';
        END IF;
        INSERT INTO audit.admin_actions (admin_id, action, target_user_id, target, reason, details)
        VALUES (acting, record_admin_action.action, record_admin_action.target_user_id, record_admin_action.target,
                btrim(record_admin_action.reason), coalesce(record_admin_action.details, '{{}}'::jsonb))
        RETURNING id INTO made;
        RETURN made;
    END
    $$;
"""


# Roles and grants are changed by access administrators, who need not be platform
# administrators (a role holding access:admin:manage makes one): the audit records their
# actions on roles and grants too, and only those.
AUDIT = f"""
ALTER TABLE audit.admin_actions DROP CONSTRAINT ck_admin_actions_action,
    ADD CONSTRAINT ck_admin_actions_action CHECK (action IN ({ADMIN_ACTIONS}, {ACCESS_ACTIONS}));
{record_admin_action(access_administrators=True)}
COMMENT ON FUNCTION audit.record_admin_action(text, text, uuid, text, jsonb, uuid) IS
    'Record a platform administrator''s action with its reason; returns the row''s id. The administrator '
    'records their own, or system work on their behalf; an access administrator records their own actions '
    'on roles and grants.';
"""

# The rows recorded since stay: the audit is never rewritten, so the older constraint
# comes back for new rows only.
AUDIT_UNDONE = f"""
{record_admin_action(access_administrators=False)}
COMMENT ON FUNCTION audit.record_admin_action(text, text, uuid, text, jsonb, uuid) IS
    'Record a platform administrator''s action with its reason; returns the row''s id. The administrator '
    'records their own, or system work on their behalf.';
ALTER TABLE audit.admin_actions DROP CONSTRAINT ck_admin_actions_action,
    ADD CONSTRAINT ck_admin_actions_action CHECK (action IN ({ADMIN_ACTIONS})) NOT VALID;
"""


def upgrade() -> None:
    run_sql(SCHEMA)
    run_sql(TABLES)
    run_sql(FUNCTIONS)
    run_sql(SEED)
    run_sql(POLICIES)
    run_sql(AUDIT)


def downgrade() -> None:
    run_sql(AUDIT_UNDONE)
    run_sql("DROP SCHEMA access CASCADE;")
