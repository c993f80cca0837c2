"""Social: profiles, settings, contacts and requests, contact groups, blocks, and the
profile activity log.

Why: who people are, whom they know and whom they block decide what every other domain
may show; `social.is_blocked(a, b)` and `social.can_see_profile(owner, visibility)` are the
functions their policies call.

Revision ID: 2026_11_21_0003
Revises: 2026_11_21_0002
Create Date: 2026-11-21
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_21_0003"
down_revision = "2026_11_21_0002"
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
        CREATE SCHEMA social;
        COMMENT ON SCHEMA social IS 'Profiles, settings, contacts, blocks: the social graph.';
        GRANT USAGE ON SCHEMA social TO rapport_app, rapport_worker;

        -- The kernel's: 2026_11_29_0009_schema_owners holds its definition now.
        -- True inside a SECURITY DEFINER function owned by rapport_owner. Policies use it so
        -- that the few functions which must look across users (is a block in either
        -- direction? are two people contacts?) can, while rapport_app itself cannot.
        CREATE FUNCTION kernel.in_definer() RETURNS boolean
            LANGUAGE sql STABLE PARALLEL SAFE
            AS $$ SELECT current_user = 'rapport_owner' $$;
        COMMENT ON FUNCTION kernel.in_definer() IS
            'Whether the current code runs as rapport_owner (a SECURITY DEFINER function).';

        CREATE TABLE social.profiles (
            user_id uuid NOT NULL,
            username text NOT NULL,
            display_name text NOT NULL,
            bio text NOT NULL DEFAULT '',
            avatar_url text,
            pronouns text,
            birth_date date,
            language_code text,
            timezone text,
            links jsonb NOT NULL DEFAULT '[]',
            interests text[] NOT NULL DEFAULT '{}',
            profile_visibility text NOT NULL DEFAULT 'public',
            is_verified boolean NOT NULL DEFAULT false,
            search_vector tsvector GENERATED ALWAYS AS (
                setweight(to_tsvector('simple', username), 'A')
                || setweight(to_tsvector('simple', display_name), 'A')
                || setweight(to_tsvector('simple', bio), 'C')
            ) STORED,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_profiles PRIMARY KEY (user_id),
            CONSTRAINT fk_profiles_user_id_users FOREIGN KEY (user_id)
                REFERENCES auth.users (id) ON DELETE CASCADE,
            CONSTRAINT ck_profiles_username CHECK (username ~ '^[A-Za-z0-9_.]{3,30}$'),
            CONSTRAINT ck_profiles_display_name CHECK (length(display_name) BETWEEN 1 AND 80),
            CONSTRAINT ck_profiles_bio CHECK (length(bio) <= 500),
            CONSTRAINT ck_profiles_avatar_url CHECK (length(avatar_url) <= 2048),
            CONSTRAINT ck_profiles_pronouns CHECK (length(pronouns) <= 40),
            CONSTRAINT ck_profiles_language_code CHECK (language_code ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$'),
            CONSTRAINT ck_profiles_timezone CHECK (length(timezone) <= 64),
            CONSTRAINT ck_profiles_links CHECK (jsonb_typeof(links) = 'array' AND jsonb_array_length(links) <= 10),
            CONSTRAINT ck_profiles_interests CHECK (cardinality(interests) <= 30),
            CONSTRAINT ck_profiles_visibility CHECK (profile_visibility IN ('public', 'contacts', 'private'))
        );
        COMMENT ON TABLE social.profiles IS 'Who a person is to others; one per account, made with it.';
        COMMENT ON COLUMN social.profiles.username IS 'Unique regardless of case; shown as typed.';
        COMMENT ON COLUMN social.profiles.is_verified IS 'The verified badge: set by administrators only.';
        COMMENT ON COLUMN social.profiles.search_vector IS 'Serves profile search: username and name weigh most.';
        -- Serves social.user_id_for_username (rapport.social._profiles.access_profile by username)
        -- and uniqueness regardless of case.
        CREATE UNIQUE INDEX ux_profiles_username_lower ON social.profiles (lower(username));
        -- Serves profile search: username prefix ("ali" finds alice) in index order.
        CREATE INDEX ix_profiles_username_prefix ON social.profiles (lower(username) text_pattern_ops);
        -- Serves profile search: words of username, display name and bio, with prefixes.
        CREATE INDEX ix_profiles_search_vector ON social.profiles USING gin (search_vector);

        CREATE TABLE social.settings (
            user_id uuid NOT NULL,
            last_seen_visibility text NOT NULL DEFAULT 'contacts',
            online_status_visibility text NOT NULL DEFAULT 'contacts',
            read_receipts_enabled boolean NOT NULL DEFAULT true,
            typing_indicators_enabled boolean NOT NULL DEFAULT true,
            notification_defaults jsonb NOT NULL DEFAULT '{"messages": true, "mentions": true, "contact_requests": true}',
            theme text NOT NULL DEFAULT 'system',
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_settings PRIMARY KEY (user_id),
            CONSTRAINT fk_settings_user_id_users FOREIGN KEY (user_id)
                REFERENCES auth.users (id) ON DELETE CASCADE,
            CONSTRAINT ck_settings_last_seen_visibility CHECK (last_seen_visibility IN ('everyone', 'contacts', 'nobody')),
            CONSTRAINT ck_settings_online_status_visibility CHECK (online_status_visibility IN ('everyone', 'contacts', 'nobody')),
            CONSTRAINT ck_settings_notification_defaults CHECK (jsonb_typeof(notification_defaults) = 'object'),
            CONSTRAINT ck_settings_theme CHECK (theme IN ('system', 'light', 'dark'))
        );
        COMMENT ON TABLE social.settings IS 'Privacy and app preferences; one row per account.';

        CREATE TABLE social.blocks (
            blocker_id uuid NOT NULL,
            blocked_id uuid NOT NULL,
            reason text,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_blocks PRIMARY KEY (blocker_id, blocked_id),
            CONSTRAINT fk_blocks_blocker_id_users FOREIGN KEY (blocker_id) REFERENCES auth.users (id) ON DELETE CASCADE,
            CONSTRAINT fk_blocks_blocked_id_users FOREIGN KEY (blocked_id) REFERENCES auth.users (id) ON DELETE CASCADE,
            CONSTRAINT ck_blocks_not_self CHECK (blocker_id <> blocked_id),
            CONSTRAINT ck_blocks_reason CHECK (length(reason) <= 500)
        );
        COMMENT ON TABLE social.blocks IS 'Who blocked whom. The blocked person is never told.';
        -- Serves the foreign key and social.is_blocked in the other direction.
        CREATE INDEX ix_blocks_blocked_id ON social.blocks (blocked_id, blocker_id);

        CREATE TABLE social.contact_requests (
            id uuid NOT NULL,
            requester_id uuid NOT NULL,
            addressee_id uuid NOT NULL,
            status text NOT NULL DEFAULT 'pending',
            message text,
            created_at timestamptz NOT NULL DEFAULT now(),
            responded_at timestamptz,
            CONSTRAINT pk_contact_requests PRIMARY KEY (id),
            CONSTRAINT fk_contact_requests_requester_id_users FOREIGN KEY (requester_id)
                REFERENCES auth.users (id) ON DELETE CASCADE,
            CONSTRAINT fk_contact_requests_addressee_id_users FOREIGN KEY (addressee_id)
                REFERENCES auth.users (id) ON DELETE CASCADE,
            CONSTRAINT ck_contact_requests_not_self CHECK (requester_id <> addressee_id),
            CONSTRAINT ck_contact_requests_status CHECK (status IN ('pending', 'accepted', 'rejected', 'cancelled')),
            CONSTRAINT ck_contact_requests_message CHECK (length(message) <= 500)
        );
        COMMENT ON TABLE social.contact_requests IS 'Asking to become contacts; both sides see it.';
        -- One open request per direction; serves the mutual auto-accept lookup.
        CREATE UNIQUE INDEX ux_contact_requests_pending ON social.contact_requests (requester_id, addressee_id)
            WHERE status = 'pending';
        -- Serves rapport.social._requests.list_requests (incoming), newest first.
        CREATE INDEX ix_contact_requests_addressee_id ON social.contact_requests (addressee_id, id DESC);
        -- Serves rapport.social._requests.list_requests (outgoing) and the foreign key.
        CREATE INDEX ix_contact_requests_requester_id ON social.contact_requests (requester_id, id DESC);

        CREATE TABLE social.contacts (
            id uuid NOT NULL,
            owner_id uuid NOT NULL,
            contact_user_id uuid,
            first_name text,
            last_name text,
            email text,
            phone text,
            relationship text,
            nickname text,
            notes text,
            is_favorite boolean NOT NULL DEFAULT false,
            is_muted boolean NOT NULL DEFAULT false,
            linked_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_contacts PRIMARY KEY (id),
            CONSTRAINT fk_contacts_owner_id_users FOREIGN KEY (owner_id) REFERENCES auth.users (id) ON DELETE CASCADE,
            CONSTRAINT fk_contacts_contact_user_id_users FOREIGN KEY (contact_user_id)
                REFERENCES auth.users (id) ON DELETE SET NULL,
            CONSTRAINT ck_contacts_not_self CHECK (owner_id <> contact_user_id),
            CONSTRAINT ck_contacts_names CHECK (length(first_name) <= 100 AND length(last_name) <= 100
                AND length(nickname) <= 100 AND length(relationship) <= 100 AND length(phone) <= 40
                AND length(notes) <= 2000),
            CONSTRAINT ck_contacts_email CHECK (email = lower(btrim(email)) AND length(email) <= 320),
            CONSTRAINT ck_contacts_someone CHECK (
                contact_user_id IS NOT NULL OR first_name IS NOT NULL OR email IS NOT NULL)
        );
        COMMENT ON TABLE social.contacts IS
            'One person in someone''s contact list: another account (made when a request is '
            'accepted, one row per side) or someone without one (a child, a co-parent by e-mail), '
            'linked to their account when they join with that e-mail.';
        COMMENT ON COLUMN social.contacts.linked_at IS 'When a contact without an account was linked to one.';
        -- One row per person an account knows; serves social.are_contacts.
        CREATE UNIQUE INDEX ux_contacts_owner_contact_user ON social.contacts (owner_id, contact_user_id)
            WHERE contact_user_id IS NOT NULL;
        -- One offline contact per address in a list (seed 000's unique (user_id, contact_email)).
        CREATE UNIQUE INDEX ux_contacts_owner_email ON social.contacts (owner_id, email)
            WHERE contact_user_id IS NULL AND email IS NOT NULL;
        -- Serves rapport.social._contacts.list_contacts: one owner's list, newest first.
        CREATE INDEX ix_contacts_owner_id ON social.contacts (owner_id, id DESC);
        -- Serves the foreign key and linking when a person joins.
        CREATE INDEX ix_contacts_contact_user_id ON social.contacts (contact_user_id) WHERE contact_user_id IS NOT NULL;
        -- Serves linking offline contacts by e-mail when that person verifies it.
        CREATE INDEX ix_contacts_unlinked_email ON social.contacts (email) WHERE contact_user_id IS NULL;

        CREATE TABLE social.contact_groups (
            id uuid NOT NULL,
            owner_id uuid NOT NULL,
            name text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_contact_groups PRIMARY KEY (id),
            CONSTRAINT fk_contact_groups_owner_id_users FOREIGN KEY (owner_id) REFERENCES auth.users (id) ON DELETE CASCADE,
            CONSTRAINT ck_contact_groups_name CHECK (length(name) BETWEEN 1 AND 60)
        );
        COMMENT ON TABLE social.contact_groups IS 'Named groups of contacts (Family, Work...).';
        -- One group per name per owner, regardless of case; serves listing one owner's groups.
        CREATE UNIQUE INDEX ux_contact_groups_owner_name ON social.contact_groups (owner_id, lower(name));

        CREATE TABLE social.contact_group_members (
            group_id uuid NOT NULL,
            contact_id uuid NOT NULL,
            owner_id uuid NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_contact_group_members PRIMARY KEY (group_id, contact_id),
            CONSTRAINT fk_contact_group_members_group_id_contact_groups FOREIGN KEY (group_id)
                REFERENCES social.contact_groups (id) ON DELETE CASCADE,
            CONSTRAINT fk_contact_group_members_contact_id_contacts FOREIGN KEY (contact_id)
                REFERENCES social.contacts (id) ON DELETE CASCADE,
            CONSTRAINT fk_contact_group_members_owner_id_users FOREIGN KEY (owner_id)
                REFERENCES auth.users (id) ON DELETE CASCADE
        );
        COMMENT ON COLUMN social.contact_group_members.owner_id IS
            'The owner of the group and the contact (kept here so the policy needs no join).';
        -- Serves the foreign key and "which groups is this contact in".
        CREATE INDEX ix_contact_group_members_contact_id ON social.contact_group_members (contact_id);
        -- Serves the foreign key (account deletion).
        CREATE INDEX ix_contact_group_members_owner_id ON social.contact_group_members (owner_id);

        CREATE TABLE social.activity_log (
            id bigint GENERATED ALWAYS AS IDENTITY,
            user_id uuid NOT NULL,
            action text NOT NULL,
            changes jsonb NOT NULL DEFAULT '{}',
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_activity_log PRIMARY KEY (id),
            CONSTRAINT fk_activity_log_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE
        );
        COMMENT ON TABLE social.activity_log IS
            'Profile changes, written by social.log_profile_changes(): field, old and new value.';
        -- Serves rapport.social._profiles.list_activity: one user's log, newest first.
        CREATE INDEX ix_activity_log_user_id ON social.activity_log (user_id, id DESC);

        -- Whether either of two people blocks the other. Every domain asks this.
        CREATE FUNCTION social.is_blocked(a uuid, b uuid) RETURNS boolean
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
        COMMENT ON FUNCTION social.is_blocked(uuid, uuid) IS
            'Whether a blocks b or b blocks a; false unless the acting user is a or b, or system work.';

        CREATE FUNCTION social.are_contacts(a uuid, b uuid) RETURNS boolean
            LANGUAGE sql STABLE SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
                SELECT (auth.current_user_id() IN (a, b) OR auth.is_system())
                   AND EXISTS (SELECT 1 FROM social.contacts WHERE owner_id = a AND contact_user_id = b)
            $$;
        COMMENT ON FUNCTION social.are_contacts(uuid, uuid) IS
            'Whether b is in a''s contact list as an account; false unless the acting user is a or b.';

        -- Who may see a profile: its owner; anyone signed in when public; the owner's
        -- contacts when 'contacts' (a block ends the contact, so blocked people fall out).
        CREATE FUNCTION social.can_see_profile(owner uuid, visibility text) RETURNS boolean
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
        COMMENT ON FUNCTION social.can_see_profile(uuid, text) IS
            'Row-level security rule of social.profiles, usable by other domains.';

        -- 004's users.generate_unique_username: the base cleaned to the allowed characters,
        -- then a number appended until no profile has it (regardless of case).
        CREATE FUNCTION social.generate_unique_username(base text) RETURNS text
            LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
            DECLARE
                cleaned text := left(regexp_replace(lower(coalesce(base, '')), '[^a-z0-9_.]', '', 'g'), 24);
                candidate text;
                n integer := 0;
            BEGIN
                IF length(cleaned) < 3 THEN
                    cleaned := rpad(cleaned, 3, '_');
                END IF;
                candidate := cleaned;
                WHILE EXISTS (SELECT 1 FROM social.profiles WHERE lower(username) = candidate) LOOP
                    n := n + 1;
                    candidate := cleaned || n::text;
                    IF n > 50 THEN
                        candidate := cleaned || (floor(random() * 1000000))::int::text;
                    END IF;
                END LOOP;
                RETURN candidate;
            END
            $$;
        COMMENT ON FUNCTION social.generate_unique_username(text) IS
            'A free username made from a name or an e-mail''s local part.';
        -- It would tell anyone which usernames exist, private profiles' included.
        REVOKE ALL ON FUNCTION social.generate_unique_username(text) FROM PUBLIC;

        -- Every account gets a profile and settings the moment it exists, so no reader has
        -- to handle "no profile yet".
        CREATE FUNCTION social.create_profile_for_user() RETURNS trigger
            LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
            DECLARE
                local_part text := split_part(NEW.email, '@', 1);
            BEGIN
                INSERT INTO social.profiles (user_id, username, display_name)
                VALUES (NEW.id, social.generate_unique_username(local_part), left(local_part, 80));
                INSERT INTO social.settings (user_id) VALUES (NEW.id);
                RETURN NULL;
            END
            $$;
        CREATE TRIGGER tr_users_create_profile AFTER INSERT ON auth.users
            FOR EACH ROW EXECUTE FUNCTION social.create_profile_for_user();

        -- When a person verifies an address, the contacts that others kept under that
        -- address (without an account) become that account.
        CREATE FUNCTION social.link_contacts_on_verification() RETURNS trigger
            LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
            BEGIN
                UPDATE social.contacts AS c
                   SET contact_user_id = NEW.id, linked_at = now()
                 WHERE c.email = NEW.email AND c.contact_user_id IS NULL AND c.owner_id <> NEW.id
                   AND NOT EXISTS (SELECT 1 FROM social.contacts d
                                    WHERE d.owner_id = c.owner_id AND d.contact_user_id = NEW.id);
                RETURN NULL;
            END
            $$;
        CREATE TRIGGER tr_users_link_contacts AFTER INSERT OR UPDATE OF email_verified_at ON auth.users
            FOR EACH ROW WHEN (NEW.email_verified_at IS NOT NULL)
            EXECUTE FUNCTION social.link_contacts_on_verification();

        -- 004's users.log_profile_changes: one activity row per changed field.
        CREATE FUNCTION social.log_profile_changes() RETURNS trigger
            LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
            DECLARE
                changed jsonb;
            BEGIN
                SELECT jsonb_object_agg(n.key, jsonb_build_object('old', o.value, 'new', n.value)) INTO changed
                  FROM jsonb_each(to_jsonb(NEW) - 'search_vector' - 'updated_at') AS n
                  JOIN jsonb_each(to_jsonb(OLD)) AS o USING (key)
                 WHERE n.value IS DISTINCT FROM o.value;
                IF changed IS NOT NULL THEN
                    INSERT INTO social.activity_log (user_id, action, changes)
                    VALUES (NEW.user_id, 'profile_updated', changed);
                END IF;
                RETURN NULL;
            END
            $$;
        CREATE TRIGGER tr_profiles_log_changes AFTER UPDATE ON social.profiles
            FOR EACH ROW EXECUTE FUNCTION social.log_profile_changes();

        -- Only administrators (system work) grant the verified badge.
        CREATE FUNCTION social.guard_profile_columns() RETURNS trigger
            LANGUAGE plpgsql
            AS $$
            BEGIN
                IF NOT auth.is_system() AND NOT kernel.in_definer()
                   AND (NEW.is_verified, NEW.user_id) IS DISTINCT FROM (OLD.is_verified, OLD.user_id) THEN
                    RAISE EXCEPTION 'only administrators may change the verified badge'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                RETURN NEW;
            END
            $$;
        CREATE TRIGGER tr_profiles_guard_columns BEFORE UPDATE ON social.profiles
            FOR EACH ROW EXECUTE FUNCTION social.guard_profile_columns();
        """
    )
    for table in ("profiles", "settings", "contacts", "contact_groups"):
        run_sql(
            f"""
            CREATE TRIGGER tr_{table}_updated_at BEFORE UPDATE ON social.{table}
                FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();
            """
        )
    run_sql(
        """
        ALTER TABLE social.profiles ENABLE ROW LEVEL SECURITY;
        ALTER TABLE social.profiles FORCE ROW LEVEL SECURITY;
        CREATE POLICY profiles_read ON social.profiles FOR SELECT
            USING (kernel.in_definer() OR social.can_see_profile(user_id, profile_visibility));
        CREATE POLICY profiles_insert ON social.profiles FOR INSERT
            WITH CHECK (kernel.in_definer() OR auth.is_system());
        CREATE POLICY profiles_update ON social.profiles FOR UPDATE
            USING (user_id = auth.current_user_id() OR auth.is_system())
            WITH CHECK (user_id = auth.current_user_id() OR auth.is_system());
        GRANT SELECT ON social.profiles TO rapport_app, rapport_worker;
        GRANT UPDATE (username, display_name, bio, avatar_url, pronouns, birth_date, language_code, timezone,
                      links, interests, profile_visibility, is_verified)
            ON social.profiles TO rapport_app, rapport_worker;

        ALTER TABLE social.settings ENABLE ROW LEVEL SECURITY;
        ALTER TABLE social.settings FORCE ROW LEVEL SECURITY;
        CREATE POLICY settings_owner ON social.settings
            USING (user_id = auth.current_user_id() OR auth.is_system() OR kernel.in_definer())
            WITH CHECK (user_id = auth.current_user_id() OR auth.is_system() OR kernel.in_definer());
        GRANT SELECT ON social.settings TO rapport_app, rapport_worker;
        GRANT UPDATE (last_seen_visibility, online_status_visibility, read_receipts_enabled,
                      typing_indicators_enabled, notification_defaults, theme)
            ON social.settings TO rapport_app, rapport_worker;

        -- Blocks are seen only by the blocker (the blocked person is never told); the
        -- definer functions look both ways.
        ALTER TABLE social.blocks ENABLE ROW LEVEL SECURITY;
        ALTER TABLE social.blocks FORCE ROW LEVEL SECURITY;
        CREATE POLICY blocks_blocker ON social.blocks
            USING (blocker_id = auth.current_user_id() OR auth.is_system() OR kernel.in_definer())
            WITH CHECK (blocker_id = auth.current_user_id() OR auth.is_system() OR kernel.in_definer());
        GRANT SELECT, INSERT, DELETE ON social.blocks TO rapport_app, rapport_worker;

        -- Both sides see a request. Only the requester makes one, pending and not across
        -- a block; only the person asked accepts or rejects it; either side may cancel
        -- (blocking cancels in both directions). Who the request names never changes.
        ALTER TABLE social.contact_requests ENABLE ROW LEVEL SECURITY;
        ALTER TABLE social.contact_requests FORCE ROW LEVEL SECURITY;
        CREATE POLICY contact_requests_parties ON social.contact_requests FOR SELECT
            USING (auth.current_user_id() IN (requester_id, addressee_id) OR auth.is_system() OR kernel.in_definer());
        CREATE POLICY contact_requests_create ON social.contact_requests FOR INSERT
            WITH CHECK (
                (requester_id = auth.current_user_id() AND status = 'pending'
                 AND NOT social.is_blocked(requester_id, addressee_id))
                OR auth.is_system() OR kernel.in_definer());
        CREATE POLICY contact_requests_respond ON social.contact_requests FOR UPDATE
            USING (auth.current_user_id() IN (requester_id, addressee_id) OR auth.is_system() OR kernel.in_definer())
            WITH CHECK (
                (status = 'cancelled' AND auth.current_user_id() IN (requester_id, addressee_id))
                OR (status IN ('accepted', 'rejected') AND addressee_id = auth.current_user_id())
                OR auth.is_system() OR kernel.in_definer());
        GRANT SELECT, INSERT ON social.contact_requests TO rapport_app, rapport_worker;
        GRANT UPDATE (status, responded_at) ON social.contact_requests TO rapport_app, rapport_worker;

        -- A contact list is its owner's alone. Rows naming another account are made and
        -- removed in pairs by the definer functions below, never directly.
        ALTER TABLE social.contacts ENABLE ROW LEVEL SECURITY;
        ALTER TABLE social.contacts FORCE ROW LEVEL SECURITY;
        CREATE POLICY contacts_owner_read ON social.contacts FOR SELECT
            USING (owner_id = auth.current_user_id() OR auth.is_system() OR kernel.in_definer());
        CREATE POLICY contacts_owner_write ON social.contacts FOR INSERT
            WITH CHECK ((owner_id = auth.current_user_id() AND contact_user_id IS NULL)
                        OR auth.is_system() OR kernel.in_definer());
        CREATE POLICY contacts_owner_update ON social.contacts FOR UPDATE
            USING (owner_id = auth.current_user_id() OR auth.is_system() OR kernel.in_definer())
            WITH CHECK (owner_id = auth.current_user_id() OR auth.is_system() OR kernel.in_definer());
        CREATE POLICY contacts_owner_delete ON social.contacts FOR DELETE
            USING ((owner_id = auth.current_user_id() AND contact_user_id IS NULL)
                   OR auth.is_system() OR kernel.in_definer());
        GRANT SELECT, INSERT, DELETE ON social.contacts TO rapport_app, rapport_worker;
        -- Which account a row names is fixed once made (linking is the definer's work).
        GRANT UPDATE (first_name, last_name, email, phone, relationship, nickname, notes, is_favorite, is_muted)
            ON social.contacts TO rapport_app, rapport_worker;

        ALTER TABLE social.contact_groups ENABLE ROW LEVEL SECURITY;
        ALTER TABLE social.contact_groups FORCE ROW LEVEL SECURITY;
        CREATE POLICY contact_groups_owner ON social.contact_groups
            USING (owner_id = auth.current_user_id() OR auth.is_system())
            WITH CHECK (owner_id = auth.current_user_id() OR auth.is_system());
        GRANT SELECT, INSERT, UPDATE, DELETE ON social.contact_groups TO rapport_app, rapport_worker;

        ALTER TABLE social.contact_group_members ENABLE ROW LEVEL SECURITY;
        ALTER TABLE social.contact_group_members FORCE ROW LEVEL SECURITY;
        CREATE POLICY contact_group_members_owner ON social.contact_group_members
            USING (owner_id = auth.current_user_id() OR auth.is_system() OR kernel.in_definer())
            WITH CHECK (owner_id = auth.current_user_id() OR auth.is_system() OR kernel.in_definer());
        GRANT SELECT, INSERT, DELETE ON social.contact_group_members TO rapport_app, rapport_worker;

        ALTER TABLE social.activity_log ENABLE ROW LEVEL SECURITY;
        ALTER TABLE social.activity_log FORCE ROW LEVEL SECURITY;
        CREATE POLICY activity_log_owner ON social.activity_log FOR SELECT
            USING (user_id = auth.current_user_id() OR auth.is_system());
        CREATE POLICY activity_log_insert ON social.activity_log FOR INSERT
            WITH CHECK (kernel.in_definer());
        GRANT SELECT ON social.activity_log TO rapport_app, rapport_worker;

        -- A group and its members belong to one owner: a member row cannot put someone
        -- else's contact in my group.
        CREATE FUNCTION social.check_group_member_owner() RETURNS trigger
            LANGUAGE plpgsql
            AS $$
            BEGIN
                IF NOT EXISTS (SELECT 1 FROM social.contact_groups g WHERE g.id = NEW.group_id AND g.owner_id = NEW.owner_id)
                   OR NOT EXISTS (SELECT 1 FROM social.contacts c WHERE c.id = NEW.contact_id AND c.owner_id = NEW.owner_id) THEN
                    RAISE EXCEPTION 'group and contact must both belong to the member row''s owner'
                        USING ERRCODE = 'foreign_key_violation';
                END IF;
                RETURN NEW;
            END
            $$;
        CREATE TRIGGER tr_contact_group_members_owner BEFORE INSERT ON social.contact_group_members
            FOR EACH ROW EXECUTE FUNCTION social.check_group_member_owner();
        """
    )
    run_sql(_PAIRING_FUNCTIONS)
    run_sql(
        """
        CREATE TRIGGER tr_profiles_audit
            AFTER INSERT OR DELETE OR UPDATE OF username, is_verified, profile_visibility ON social.profiles
            FOR EACH ROW EXECUTE FUNCTION audit.record_change();
        CREATE TRIGGER tr_blocks_audit AFTER INSERT OR DELETE ON social.blocks
            FOR EACH ROW EXECUTE FUNCTION audit.record_change();
        """
    )
    # Accounts that exist already get their profile and settings now.
    run_sql(
        """
        INSERT INTO social.profiles (user_id, username, display_name)
        SELECT u.id, social.generate_unique_username(split_part(u.email, '@', 1)), left(split_part(u.email, '@', 1), 80)
          FROM auth.users u ORDER BY u.id;
        INSERT INTO social.settings (user_id) SELECT id FROM auth.users;
        """
    )


# Contacts between two accounts come in pairs (one row per side). These definer functions
# are the only way such pairs are made or undone, and each checks the caller's right.
_PAIRING_FUNCTIONS = """
CREATE FUNCTION social.pair_contacts(a uuid, b uuid) RETURNS void
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

CREATE FUNCTION social.unpair_contacts(other uuid) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        caller uuid := auth.current_user_id();
        removed integer;
    BEGIN
        IF caller IS NULL THEN
            RAISE EXCEPTION 'no user is acting' USING ERRCODE = 'insufficient_privilege';
        END IF;
        DELETE FROM social.contacts
         WHERE (owner_id = caller AND contact_user_id = other) OR (owner_id = other AND contact_user_id = caller);
        GET DIAGNOSTICS removed = ROW_COUNT;
        RETURN removed;
    END
    $$;
COMMENT ON FUNCTION social.unpair_contacts(uuid) IS
    'The acting user and other stop being each other''s contacts (both rows go).';

-- The kernel's: 2026_11_29_0009_schema_owners holds its definition now.
-- UUIDv7 made in SQL, for rows that definer functions insert (the application makes
-- every other id).
CREATE FUNCTION kernel.uuid7_like() RETURNS uuid
    LANGUAGE sql VOLATILE
    AS $$
        SELECT encode(
            set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
                placing substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
    $$;
COMMENT ON FUNCTION kernel.uuid7_like() IS 'A UUIDv7 (RFC 9562) made by the database.';
"""


def downgrade() -> None:
    run_sql(
        """
        DROP TRIGGER tr_users_link_contacts ON auth.users;
        DROP TRIGGER tr_users_create_profile ON auth.users;
        DROP SCHEMA social CASCADE;
        DROP FUNCTION kernel.uuid7_like();
        DROP FUNCTION kernel.in_definer();
        """
    )
