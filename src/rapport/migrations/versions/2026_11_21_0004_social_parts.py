"""Social parts: the five extended profile parts of seed 000, the record of reads of the
sensitive ones, devices, and status updates that expire.

Why: health and financial details must be readable by their owner alone, with every read
and write on record; the other parts, devices and statuses follow who may see the profile.

Revision ID: 2026_11_21_0004
Revises: 2026_11_21_0003
Create Date: 2026-11-21
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_21_0004"
down_revision = "2026_11_21_0003"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    # The raw asyncpg connection: None only once the connection is closed, never in a migration.
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


# Parts that whoever may see the profile may read; only their owner writes them.
_SHARED_PARTS = ("user_demographics", "user_employment", "user_background")
# Parts that only their owner reads or writes; every access is recorded.
_SENSITIVE_PARTS = ("user_health_context", "user_financials")


def upgrade() -> None:
    run_sql(
        """
        CREATE TABLE social.user_demographics (
            user_id uuid NOT NULL,
            preferred_name text,
            pronouns text,
            gender_identity text,
            birthdate date,
            relationship_status text,
            number_of_children smallint,
            city text,
            region text,
            country text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_user_demographics PRIMARY KEY (user_id),
            CONSTRAINT fk_user_demographics_user_id_users FOREIGN KEY (user_id)
                REFERENCES auth.users (id) ON DELETE CASCADE,
            CONSTRAINT ck_user_demographics_lengths CHECK (
                length(preferred_name) <= 100 AND length(pronouns) <= 40 AND length(gender_identity) <= 60
                AND length(city) <= 100 AND length(region) <= 100),
            CONSTRAINT ck_user_demographics_birthdate CHECK (birthdate >= DATE '1900-01-01'),
            CONSTRAINT ck_user_demographics_relationship_status CHECK (relationship_status IN (
                'single', 'partnered', 'married', 'separated', 'divorced', 'widowed', 'other')),
            CONSTRAINT ck_user_demographics_number_of_children CHECK (number_of_children BETWEEN 0 AND 30),
            CONSTRAINT ck_user_demographics_country CHECK (country ~ '^[A-Z]{2}$')
        );
        COMMENT ON TABLE social.user_demographics IS
            'Who a person is, beyond the profile (seed 000): seen by whoever may see the profile.';
        COMMENT ON COLUMN social.user_demographics.country IS 'ISO 3166-1 alpha-2 code.';

        CREATE TABLE social.user_employment (
            user_id uuid NOT NULL,
            employment_status text,
            occupation text,
            employer text,
            industry text,
            work_schedule text,
            schedule_notes text,
            commute_minutes smallint,
            works_remotely boolean,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_user_employment PRIMARY KEY (user_id),
            CONSTRAINT fk_user_employment_user_id_users FOREIGN KEY (user_id)
                REFERENCES auth.users (id) ON DELETE CASCADE,
            CONSTRAINT ck_user_employment_lengths CHECK (
                length(occupation) <= 100 AND length(employer) <= 100 AND length(industry) <= 100
                AND length(schedule_notes) <= 500),
            CONSTRAINT ck_user_employment_employment_status CHECK (employment_status IN (
                'employed', 'self_employed', 'unemployed', 'student', 'retired', 'homemaker',
                'unable_to_work', 'other')),
            CONSTRAINT ck_user_employment_work_schedule CHECK (work_schedule IN (
                'regular', 'shifts', 'nights', 'weekends', 'flexible', 'part_time', 'irregular')),
            CONSTRAINT ck_user_employment_commute_minutes CHECK (commute_minutes BETWEEN 0 AND 600)
        );
        COMMENT ON TABLE social.user_employment IS
            'Work and its schedule (seed 000): co-parents plan around it. Seen as the profile is.';

        CREATE TABLE social.user_health_context (
            user_id uuid NOT NULL,
            physical_conditions text,
            mental_health_conditions text,
            medications text,
            treatment text,
            recovery_notes text,
            accessibility_needs text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_user_health_context PRIMARY KEY (user_id),
            CONSTRAINT fk_user_health_context_user_id_users FOREIGN KEY (user_id)
                REFERENCES auth.users (id) ON DELETE CASCADE,
            CONSTRAINT ck_user_health_context_lengths CHECK (
                length(physical_conditions) <= 2000 AND length(mental_health_conditions) <= 2000
                AND length(medications) <= 2000 AND length(treatment) <= 2000
                AND length(recovery_notes) <= 2000 AND length(accessibility_needs) <= 1000)
        );
        COMMENT ON TABLE social.user_health_context IS
            'HIGHLY SENSITIVE health details (seed 000). Only their owner reads or writes them; '
            'every read and write is recorded in audit.sensitive_data_access.';

        CREATE TABLE social.user_financials (
            user_id uuid NOT NULL,
            income_range text,
            housing_status text,
            monthly_housing_cost numeric(12, 2),
            child_support_status text,
            child_support_amount numeric(12, 2),
            currency text,
            debt_notes text,
            financial_notes text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_user_financials PRIMARY KEY (user_id),
            CONSTRAINT fk_user_financials_user_id_users FOREIGN KEY (user_id)
                REFERENCES auth.users (id) ON DELETE CASCADE,
            CONSTRAINT ck_user_financials_lengths CHECK (
                length(debt_notes) <= 2000 AND length(financial_notes) <= 2000),
            CONSTRAINT ck_user_financials_income_range CHECK (income_range IN (
                'under_25k', '25k_50k', '50k_75k', '75k_100k', '100k_150k', 'over_150k', 'prefer_not_to_say')),
            CONSTRAINT ck_user_financials_housing_status CHECK (housing_status IN (
                'own', 'rent', 'with_family', 'shared', 'temporary', 'unhoused', 'other')),
            CONSTRAINT ck_user_financials_child_support_status CHECK (child_support_status IN (
                'none', 'pays', 'receives', 'both')),
            CONSTRAINT ck_user_financials_amounts CHECK (
                monthly_housing_cost >= 0 AND child_support_amount >= 0),
            CONSTRAINT ck_user_financials_currency CHECK (currency ~ '^[A-Z]{3}$')
        );
        COMMENT ON TABLE social.user_financials IS
            'SENSITIVE financial details (seed 000). Only their owner reads or writes them; '
            'every read and write is recorded in audit.sensitive_data_access.';
        COMMENT ON COLUMN social.user_financials.currency IS 'ISO 4217 code of the amounts.';

        CREATE TABLE social.user_background (
            user_id uuid NOT NULL,
            culture text,
            ethnicity text,
            religion text,
            hometown text,
            education_level text,
            field_of_study text,
            languages text[] NOT NULL DEFAULT '{}',
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_user_background PRIMARY KEY (user_id),
            CONSTRAINT fk_user_background_user_id_users FOREIGN KEY (user_id)
                REFERENCES auth.users (id) ON DELETE CASCADE,
            CONSTRAINT ck_user_background_lengths CHECK (
                length(culture) <= 200 AND length(ethnicity) <= 200 AND length(religion) <= 100
                AND length(hometown) <= 100 AND length(field_of_study) <= 100),
            CONSTRAINT ck_user_background_education_level CHECK (education_level IN (
                'none', 'primary', 'secondary', 'vocational', 'some_college', 'bachelor', 'master',
                'doctorate', 'other')),
            -- Language tags like profiles.language_code, at most 20, none NULL.
            CONSTRAINT ck_user_background_languages CHECK (
                cardinality(languages) <= 20 AND array_position(languages, NULL) IS NULL
                AND array_to_string(languages, ' ') ~ '^([a-z]{2,3}(-[A-Za-z0-9]{2,8})*( |$))*$')
        );
        COMMENT ON TABLE social.user_background IS
            'Culture, faith, education and languages (seed 000): seen as the profile is.';

        -- The audit schema's (the kernel's): 2026_11_29_0009_schema_owners holds its definition now.
        CREATE TABLE audit.sensitive_data_access (
            id bigint GENERATED ALWAYS AS IDENTITY,
            user_id uuid NOT NULL,
            accessed_by uuid,
            table_name text NOT NULL,
            action text NOT NULL,
            fields text[] NOT NULL DEFAULT '{}',
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_sensitive_data_access PRIMARY KEY (id),
            CONSTRAINT ck_sensitive_data_access_table_name CHECK (table_name ~ '^[a-z_]{1,63}\\.[a-z_]{1,63}$'),
            CONSTRAINT ck_sensitive_data_access_action CHECK (action IN ('read', 'write', 'delete')),
            CONSTRAINT ck_sensitive_data_access_fields CHECK (cardinality(fields) <= 100)
        );
        -- No foreign keys, as audit.record_changes: the record outlives the account and the
        -- rows it describes (erasing it is the retention policy's decision).
        COMMENT ON TABLE audit.sensitive_data_access IS
            'Every read (by the service, through audit.record_sensitive_access) and every write '
            '(by trigger) of sensitive data: whose, by whom, which table and fields. Never values.';
        COMMENT ON COLUMN audit.sensitive_data_access.user_id IS 'Whose data it is.';
        COMMENT ON COLUMN audit.sensitive_data_access.accessed_by IS 'The acting user; NULL for system work.';
        COMMENT ON COLUMN audit.sensitive_data_access.fields IS
            'Read: the fields that held a value. Write: the fields whose value changed.';
        -- Serves rapport.social._parts.list_sensitive_access: one person's record, newest first.
        CREATE INDEX ix_sensitive_data_access_user_id ON audit.sensitive_data_access (user_id, id DESC);

        CREATE TABLE social.devices (
            id uuid NOT NULL,
            user_id uuid NOT NULL,
            device_type text NOT NULL,
            platform text NOT NULL,
            name text NOT NULL,
            app_version text,
            os_version text,
            last_seen_at timestamptz NOT NULL DEFAULT now(),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_devices PRIMARY KEY (id),
            CONSTRAINT fk_devices_user_id_users FOREIGN KEY (user_id)
                REFERENCES auth.users (id) ON DELETE CASCADE,
            CONSTRAINT ck_devices_device_type CHECK (device_type IN ('mobile', 'tablet', 'desktop', 'web')),
            CONSTRAINT ck_devices_platform CHECK (platform IN (
                'ios', 'ipados', 'android', 'windows', 'macos', 'linux', 'chromeos', 'web', 'other')),
            CONSTRAINT ck_devices_name CHECK (length(name) BETWEEN 1 AND 100),
            CONSTRAINT ck_devices_versions CHECK (length(app_version) <= 40 AND length(os_version) <= 40)
        );
        COMMENT ON TABLE social.devices IS
            'The devices a person uses Rapport on (seed 004 users.devices); push tokens join later.';
        COMMENT ON COLUMN social.devices.name IS 'Unique per person regardless of case: registering it again updates it.';
        -- Serves rapport.social._devices.list_devices (one person's devices, newest first) and the foreign key.
        CREATE INDEX ix_devices_user_id ON social.devices (user_id, id DESC);
        -- One device per name per person; serves the upsert of rapport.social._devices.do_register_device.
        CREATE UNIQUE INDEX ux_devices_user_name ON social.devices (user_id, lower(name));

        CREATE TABLE social.status_updates (
            id uuid NOT NULL,
            user_id uuid NOT NULL,
            content text,
            media_url text,
            background_color text,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL DEFAULT now() + interval '24 hours',
            CONSTRAINT pk_status_updates PRIMARY KEY (id),
            CONSTRAINT fk_status_updates_user_id_users FOREIGN KEY (user_id)
                REFERENCES auth.users (id) ON DELETE CASCADE,
            CONSTRAINT ck_status_updates_content CHECK (length(content) BETWEEN 1 AND 700),
            CONSTRAINT ck_status_updates_media_url CHECK (length(media_url) <= 2048 AND media_url ~ '^https://'),
            CONSTRAINT ck_status_updates_something CHECK (content IS NOT NULL OR media_url IS NOT NULL),
            CONSTRAINT ck_status_updates_background_color CHECK (background_color ~ '^#[0-9a-f]{6}$'),
            CONSTRAINT ck_status_updates_expires_at CHECK (expires_at > created_at)
        );
        COMMENT ON TABLE social.status_updates IS
            'WhatsApp-style statuses (seed 004 users.status_history): seen as the profile is, '
            'never by a blocked person, until they expire. Their owner sees them after too.';
        -- Serves rapport.social._status.list_my_statuses and list_user_statuses: one person's
        -- live statuses, newest first (expiry is
        -- filtered on the few rows of one person).
        CREATE INDEX ix_status_updates_user_id ON social.status_updates (user_id, id DESC) INCLUDE (expires_at);
        -- Serves the retention job removing expired statuses.
        CREATE INDEX ix_status_updates_expires_at ON social.status_updates (expires_at);

        -- Whether the acting user may see owner's profile, by the owner's chosen visibility:
        -- the rule of social.profiles, for tables that follow it.
        CREATE FUNCTION social.profile_visible(owner uuid) RETURNS boolean
            LANGUAGE sql STABLE SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
                SELECT coalesce((SELECT social.can_see_profile(p.user_id, p.profile_visibility)
                                   FROM social.profiles p WHERE p.user_id = owner), false)
            $$;
        COMMENT ON FUNCTION social.profile_visible(uuid) IS
            'Whether the acting user may see owner''s profile (false when there is none).';

        -- The audit schema's (the kernel's): 2026_11_29_0009_schema_owners holds its definition now.
        -- Reads of sensitive data cannot be seen by a trigger: the service records each one
        -- through this function, in the transaction that reads. Only the data's owner (or
        -- system work) may record, so nobody can fill another's record with forged rows.
        CREATE FUNCTION audit.record_sensitive_access(
            subject uuid, table_name text, action text, fields text[] DEFAULT '{}'
        ) RETURNS void
            LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
            DECLARE
                caller uuid := auth.current_user_id();
            BEGIN
                IF NOT auth.is_system() AND (caller IS NULL OR caller <> subject) THEN
                    RAISE EXCEPTION 'only the owner of the data may record access to it'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                INSERT INTO audit.sensitive_data_access (user_id, accessed_by, table_name, action, fields)
                VALUES (subject, caller, record_sensitive_access.table_name, record_sensitive_access.action,
                        coalesce(record_sensitive_access.fields, '{}'));
            END
            $$;
        COMMENT ON FUNCTION audit.record_sensitive_access(uuid, text, text, text[]) IS
            'Record that the acting user read (or wrote) subject''s sensitive data.';
        REVOKE ALL ON FUNCTION audit.record_sensitive_access(uuid, text, text, text[]) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION audit.record_sensitive_access(uuid, text, text, text[])
            TO rapport_app, rapport_worker;

        -- The audit schema's (the kernel's): 2026_11_29_0009_schema_owners holds its definition now.
        -- Every write of a sensitive part, whatever path it takes: which fields changed,
        -- never their values (audit.record_change would copy them, so it is not used here).
        CREATE FUNCTION audit.record_sensitive_write() RETURNS trigger
            LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
            DECLARE
                old_row jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
                new_row jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
                changed text[];
            BEGIN
                SELECT coalesce(array_agg(f.key ORDER BY f.key), '{}') INTO changed
                  FROM jsonb_object_keys(coalesce(new_row, old_row)) AS f(key)
                 WHERE f.key NOT IN ('user_id', 'created_at', 'updated_at')
                   AND nullif(new_row -> f.key, 'null') IS DISTINCT FROM nullif(old_row -> f.key, 'null');
                IF TG_OP = 'UPDATE' AND cardinality(changed) = 0 THEN
                    RETURN NULL;
                END IF;
                INSERT INTO audit.sensitive_data_access (user_id, accessed_by, table_name, action, fields)
                VALUES ((coalesce(new_row, old_row) ->> 'user_id')::uuid, auth.current_user_id(),
                        TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME,
                        CASE TG_OP WHEN 'DELETE' THEN 'delete' ELSE 'write' END, changed);
                RETURN NULL;
            END
            $$;
        COMMENT ON FUNCTION audit.record_sensitive_write() IS
            'AFTER ROW trigger of sensitive tables: records the write and the changed fields.';
        REVOKE ALL ON FUNCTION audit.record_sensitive_write() FROM PUBLIC;

        ALTER TABLE audit.sensitive_data_access ENABLE ROW LEVEL SECURITY;
        ALTER TABLE audit.sensitive_data_access FORCE ROW LEVEL SECURITY;
        -- A person reads who accessed their data; rows come only through the two definer
        -- functions above (the app holds no INSERT grant).
        CREATE POLICY sensitive_data_access_owner_read ON audit.sensitive_data_access FOR SELECT
            USING (user_id = auth.current_user_id() OR auth.is_system());
        CREATE POLICY sensitive_data_access_insert ON audit.sensitive_data_access FOR INSERT
            WITH CHECK (kernel.in_definer());
        GRANT SELECT ON audit.sensitive_data_access TO rapport_app, rapport_worker;

        ALTER TABLE social.devices ENABLE ROW LEVEL SECURITY;
        ALTER TABLE social.devices FORCE ROW LEVEL SECURITY;
        CREATE POLICY devices_owner ON social.devices
            USING (user_id = auth.current_user_id() OR auth.is_system())
            WITH CHECK (user_id = auth.current_user_id() OR auth.is_system());
        GRANT SELECT, INSERT, UPDATE, DELETE ON social.devices TO rapport_app, rapport_worker;

        -- Others see a status while it lives, when they may see the profile and neither
        -- blocks the other; its owner always. Statuses are posted and removed, never edited.
        ALTER TABLE social.status_updates ENABLE ROW LEVEL SECURITY;
        ALTER TABLE social.status_updates FORCE ROW LEVEL SECURITY;
        CREATE POLICY status_updates_read ON social.status_updates FOR SELECT
            USING (user_id = auth.current_user_id() OR auth.is_system()
                   OR (expires_at > now() AND social.profile_visible(user_id)
                       AND NOT social.is_blocked(user_id, auth.current_user_id())));
        CREATE POLICY status_updates_insert ON social.status_updates FOR INSERT
            WITH CHECK (user_id = auth.current_user_id() OR auth.is_system());
        CREATE POLICY status_updates_delete ON social.status_updates FOR DELETE
            USING (user_id = auth.current_user_id() OR auth.is_system());
        GRANT SELECT, INSERT, DELETE ON social.status_updates TO rapport_app, rapport_worker;
        """
    )
    for table in (*_SHARED_PARTS, *_SENSITIVE_PARTS, "devices"):
        run_sql(
            f"""
            CREATE TRIGGER tr_{table}_updated_at BEFORE UPDATE ON social.{table}
                FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();
            """
        )
    # The shared parts are seen as the profile is, except by someone either side blocks
    # (a block hides everything beyond the public profile itself).
    for table in _SHARED_PARTS:
        run_sql(
            f"""
            ALTER TABLE social.{table} ENABLE ROW LEVEL SECURITY;
            ALTER TABLE social.{table} FORCE ROW LEVEL SECURITY;
            CREATE POLICY {table}_read ON social.{table} FOR SELECT
                USING (user_id = auth.current_user_id() OR auth.is_system()
                       OR (social.profile_visible(user_id) AND NOT social.is_blocked(user_id, auth.current_user_id())));
            CREATE POLICY {table}_owner_write ON social.{table} FOR INSERT
                WITH CHECK (user_id = auth.current_user_id() OR auth.is_system());
            CREATE POLICY {table}_owner_update ON social.{table} FOR UPDATE
                USING (user_id = auth.current_user_id() OR auth.is_system())
                WITH CHECK (user_id = auth.current_user_id() OR auth.is_system());
            CREATE POLICY {table}_owner_delete ON social.{table} FOR DELETE
                USING (user_id = auth.current_user_id() OR auth.is_system());
            GRANT SELECT, INSERT, UPDATE, DELETE ON social.{table} TO rapport_app, rapport_worker;
            """
        )
    for table in _SENSITIVE_PARTS:
        run_sql(
            f"""
            ALTER TABLE social.{table} ENABLE ROW LEVEL SECURITY;
            ALTER TABLE social.{table} FORCE ROW LEVEL SECURITY;
            CREATE POLICY {table}_owner ON social.{table}
                USING (user_id = auth.current_user_id() OR auth.is_system())
                WITH CHECK (user_id = auth.current_user_id() OR auth.is_system());
            GRANT SELECT, INSERT, UPDATE, DELETE ON social.{table} TO rapport_app, rapport_worker;
            CREATE TRIGGER tr_{table}_record_write AFTER INSERT OR UPDATE OR DELETE ON social.{table}
                FOR EACH ROW EXECUTE FUNCTION audit.record_sensitive_write();
            """
        )


def downgrade() -> None:
    run_sql(
        """
        DROP TABLE social.status_updates;
        DROP TABLE social.devices;
        DROP TABLE social.user_background;
        DROP TABLE social.user_financials;
        DROP TABLE social.user_health_context;
        DROP TABLE social.user_employment;
        DROP TABLE social.user_demographics;
        DROP TABLE audit.sensitive_data_access;
        DROP FUNCTION audit.record_sensitive_write();
        DROP FUNCTION audit.record_sensitive_access(uuid, text, text, text[]);
        DROP FUNCTION social.profile_visible(uuid);
        """
    )
