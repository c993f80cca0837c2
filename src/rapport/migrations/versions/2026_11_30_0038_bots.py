"""bots.

Bots (seed 003 robots): accounts of kind 'bot' (auth.users) owned by a person or by the
platform, that sign in with API keys, take part in conversations like anyone, hear the
messages of their conversations through a signed webhook and answer through the API.
Each delivery to a webhook is a `robot_interactions` row recording every attempt.

Why: a bot's webhook and secret are its owner's alone, and what it was sent (copies of
messages) is readable only by whoever manages it; the database says who that is, so no
route can show one bot's traffic to someone else.

Revision ID: 2026_11_30_0038
Revises: 2026_11_30_0037
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0038"
down_revision = "2026_11_30_0037"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


SCHEMA = """
CREATE SCHEMA bots;
COMMENT ON SCHEMA bots IS 'Bots (seed 003 robots): bot accounts, their webhooks and what was delivered to them.';
GRANT USAGE ON SCHEMA bots TO rapport_app, rapport_worker;
"""

TABLES = """
CREATE TABLE bots.bots (
    id uuid NOT NULL,
    owner_id uuid,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    webhook_url text NOT NULL,
    webhook_secret bytea NOT NULL,
    receives text NOT NULL DEFAULT 'mentions',
    is_visible_to_guests boolean NOT NULL DEFAULT false,
    status text NOT NULL DEFAULT 'active',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_bots PRIMARY KEY (id),
    CONSTRAINT fk_bots_id_users FOREIGN KEY (id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_bots_owner_id_users FOREIGN KEY (owner_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_bots_receives CHECK (receives IN ('mentions', 'all')),
    CONSTRAINT ck_bots_status CHECK (status IN ('active', 'disabled')),
    CONSTRAINT ck_bots_name CHECK (length(name) BETWEEN 1 AND 80),
    CONSTRAINT ck_bots_description CHECK (length(description) <= 1000),
    CONSTRAINT ck_bots_webhook_url CHECK (length(webhook_url) <= 2000 AND webhook_url ~ '^https?://'),
    CONSTRAINT ck_bots_not_its_own_owner CHECK (owner_id <> id)
);
COMMENT ON TABLE bots.bots IS
    'A bot (seed 003 robots): its account is auth.users row `id` (kind bot). Read by its owner and the '
    'platform''s administrators; written by system work only (making a bot makes an account).';
COMMENT ON COLUMN bots.bots.owner_id IS 'The person who manages it; NULL for a platform bot, managed by administrators.';
COMMENT ON COLUMN bots.bots.webhook_url IS 'Where deliveries are POSTed (https to a public host in production).';
COMMENT ON COLUMN bots.bots.webhook_secret IS
    'The secret that signs deliveries (HMAC-SHA256), encrypted with AES-GCM under a key derived from the '
    'server key (rapport.kernel.crypto.Keyring, purpose bots.webhook-secret). Shown once, when the bot is made.';
COMMENT ON COLUMN bots.bots.receives IS
    'mentions: only messages that mention it; all: every message of its conversations (but other bots'' '
    'unless they mention it).';
COMMENT ON COLUMN bots.bots.is_visible_to_guests IS
    'Seed 003 is_robot_visible_to_guests: whether participants of role guest see its messages.';
-- Serves rapport.bots._bots.list_bots (a person's bots, newest first) and the owner's policy.
CREATE INDEX ix_bots_owner_id ON bots.bots (owner_id, id DESC);

CREATE TABLE bots.robot_interactions (
    id uuid NOT NULL,
    bot_id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    message_id uuid NOT NULL,
    event_type text NOT NULL,
    event_position bigint NOT NULL,
    request_data jsonb NOT NULL,
    observation_data jsonb NOT NULL DEFAULT '[]',
    response_data jsonb,
    status text NOT NULL DEFAULT 'pending',
    error_message text,
    attempts integer NOT NULL DEFAULT 0,
    http_status integer,
    duration_ms integer,
    started_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_robot_interactions PRIMARY KEY (id),
    CONSTRAINT fk_robot_interactions_bot_id_bots FOREIGN KEY (bot_id) REFERENCES bots.bots (id) ON DELETE CASCADE,
    CONSTRAINT fk_robot_interactions_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE,
    CONSTRAINT uq_robot_interactions_bot_id_message_id UNIQUE (bot_id, message_id),
    CONSTRAINT ck_robot_interactions_status CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    CONSTRAINT ck_robot_interactions_attempts CHECK (attempts >= 0),
    CONSTRAINT ck_robot_interactions_http_status CHECK (http_status BETWEEN 100 AND 599),
    CONSTRAINT ck_robot_interactions_duration_ms CHECK (duration_ms >= 0),
    CONSTRAINT ck_robot_interactions_error_message CHECK (length(error_message) <= 2000),
    CONSTRAINT ck_robot_interactions_observation_data CHECK (jsonb_typeof(observation_data) = 'array')
);
COMMENT ON TABLE bots.robot_interactions IS
    'One message delivered to one bot''s webhook (seed 003 robot_interactions), with every attempt. Holds a '
    'copy of the message: readable only by whoever manages the bot; written by system work.';
COMMENT ON COLUMN bots.robot_interactions.message_id IS
    'The message delivered (messaging.messages is partitioned by month: no foreign key; the conversation''s '
    'takes the row along when the conversation goes).';
COMMENT ON COLUMN bots.robot_interactions.event_position IS 'The outbox position of the event delivered.';
COMMENT ON COLUMN bots.robot_interactions.request_data IS 'The JSON body POSTed to the webhook (signed anew on each attempt).';
COMMENT ON COLUMN bots.robot_interactions.observation_data IS
    'Each attempt: {attempt, at, http_status, duration_ms, error}, oldest first (the last 20).';
COMMENT ON COLUMN bots.robot_interactions.response_data IS
    'What the webhook answered to the last attempt: its JSON, or {"text": ...} (the first 16 KiB).';
COMMENT ON COLUMN bots.robot_interactions.status IS
    'pending (queued), processing (an attempt is under way), completed (a 2xx came back), failed (the last '
    'attempt failed; the job queue retries it with backoff until its attempts are spent).';
-- Serves rapport.bots._bots.list_interactions: one bot's deliveries, newest first (and the
-- unique key of a delivery per bot and message leads with bot_id for the foreign key).
CREATE INDEX ix_robot_interactions_bot_id ON bots.robot_interactions (bot_id, id DESC);
-- Serves the foreign key (a conversation's deliveries go with it).
CREATE INDEX ix_robot_interactions_conversation_id ON bots.robot_interactions (conversation_id);

CREATE TABLE bots.cursor (
    name text NOT NULL,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_cursor PRIMARY KEY (name),
    CONSTRAINT ck_cursor_name CHECK (length(name) BETWEEN 1 AND 40)
);
COMMENT ON TABLE bots.cursor IS
    'How far in the outbox the bots'' dispatcher has read (its durable cursor): system work''s alone.';
"""

FUNCTIONS = """
-- Whether the acting user manages a bot of this owner: its owner, or an active platform
-- administrator (platform bots have no owner). System work manages every bot.
CREATE FUNCTION bots.manages(owner uuid) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT auth.is_system()
            OR (owner IS NOT NULL AND owner = auth.current_user_id())
            OR coalesce((SELECT u.is_admin AND u.status = 'active' FROM auth.users u
                          WHERE u.id = auth.current_user_id()), false)
    $$;
COMMENT ON FUNCTION bots.manages(uuid) IS
    'Whether the acting user manages a bot of this owner (NULL: a platform bot): its owner or an administrator.';

-- The one setting of a bot others need at send time: whether guests see its messages
-- (messaging.hides_from_guests, which messaging's definer functions call, sets a
-- message's hidden_from_guests from it). Invoker rights: a definer function of Rapport's
-- reads every bot (the policy bots_read); anyone else learns only about bots they manage,
-- and false for the rest.
CREATE FUNCTION bots.is_visible_to_guests(bot uuid) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT coalesce((SELECT b.is_visible_to_guests FROM bots.bots b WHERE b.id = bot), false) $$;
COMMENT ON FUNCTION bots.is_visible_to_guests(uuid) IS
    'Whether participants of role guest see this bot''s messages (false for an account that is no bot, '
    'and for a bot the caller may not read).';

-- The active bots taking part in some conversations, with the stretch of the outbox that
-- is theirs there (as rapport.messaging._sync reads it): the dispatcher's one read of the
-- participants per batch of messages (system work).
CREATE FUNCTION bots.taking_part(conversations uuid[])
    RETURNS TABLE (conversation_id uuid, bot_id uuid, receives text, joined_position bigint, left_position bigint)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT p.conversation_id, b.id, b.receives, p.joined_position, p.left_position
          FROM bots.bots b
          JOIN messaging.participants p ON p.user_id = b.id AND p.conversation_id = ANY(conversations)
          JOIN auth.users u ON u.id = b.id AND u.status = 'active' AND u.deleted_at IS NULL
         WHERE b.status = 'active'
    $$;
COMMENT ON FUNCTION bots.taking_part(uuid[]) IS
    'The active bots in these conversations, with their joined and left outbox positions (system work).';

-- A bot's row goes with its owner's account (erasure) or when it is deleted: its account
-- closes with it, so that its API keys stop working (identity refuses a closed account's).
CREATE FUNCTION bots.close_account() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        UPDATE auth.users SET status = 'deleted', deleted_at = now()
         WHERE id = OLD.id AND kind = 'bot' AND deleted_at IS NULL;
        RETURN NULL;
    END
    $$;
COMMENT ON FUNCTION bots.close_account() IS
    'AFTER DELETE on bots.bots: the bot''s account is closed (status deleted) with it (system work).';

REVOKE ALL ON FUNCTION bots.manages(uuid), bots.is_visible_to_guests(uuid), bots.taking_part(uuid[]),
    bots.close_account() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bots.manages(uuid), bots.is_visible_to_guests(uuid) TO rapport_app, rapport_worker;
GRANT EXECUTE ON FUNCTION bots.taking_part(uuid[]) TO rapport_worker;
"""

TRIGGERS = """
CREATE TRIGGER tr_bots_updated_at BEFORE UPDATE ON bots.bots
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();
CREATE TRIGGER tr_robot_interactions_updated_at BEFORE UPDATE ON bots.robot_interactions
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();
CREATE TRIGGER tr_bots_close_account AFTER DELETE ON bots.bots
    FOR EACH ROW EXECUTE FUNCTION bots.close_account();
-- Who made, changed or removed a bot, and where its webhook pointed; never its secret.
CREATE TRIGGER tr_bots_audit AFTER INSERT OR DELETE OR UPDATE ON bots.bots
    FOR EACH ROW EXECUTE FUNCTION audit.record_change('webhook_secret');
"""

POLICIES = """
-- A bot is its manager's business: its owner's, or the administrators' (a platform bot's).
-- Only system work writes: making a bot makes an account, which only system work may.
ALTER TABLE bots.bots ENABLE ROW LEVEL SECURITY;
ALTER TABLE bots.bots FORCE ROW LEVEL SECURITY;
CREATE POLICY bots_read ON bots.bots FOR SELECT
    USING (kernel.in_definer() OR bots.manages(owner_id));
CREATE POLICY bots_system ON bots.bots
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT ON bots.bots TO rapport_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON bots.bots TO rapport_worker;

-- What a bot was sent is read by whoever may read the bot (the policy above, applied to
-- the subquery), and written by the dispatcher and the delivery jobs.
ALTER TABLE bots.robot_interactions ENABLE ROW LEVEL SECURITY;
ALTER TABLE bots.robot_interactions FORCE ROW LEVEL SECURITY;
CREATE POLICY robot_interactions_read ON bots.robot_interactions FOR SELECT
    USING (auth.is_system() OR EXISTS (SELECT 1 FROM bots.bots b WHERE b.id = robot_interactions.bot_id));
CREATE POLICY robot_interactions_system ON bots.robot_interactions
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT ON bots.robot_interactions TO rapport_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON bots.robot_interactions TO rapport_worker;

ALTER TABLE bots.cursor ENABLE ROW LEVEL SECURITY;
ALTER TABLE bots.cursor FORCE ROW LEVEL SECURITY;
CREATE POLICY cursor_system ON bots.cursor
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT, INSERT, UPDATE ON bots.cursor TO rapport_worker;
"""


def upgrade() -> None:
    run_sql(SCHEMA)
    run_sql(TABLES)
    run_sql(FUNCTIONS)
    run_sql(TRIGGERS)
    run_sql(POLICIES)


def downgrade() -> None:
    # The bot accounts stay until 2026_11_30_0035's downgrade removes accounts of every kind but person.
    run_sql("DROP SCHEMA bots CASCADE;")
