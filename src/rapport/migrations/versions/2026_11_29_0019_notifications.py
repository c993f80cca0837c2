"""Notifications: the in-app inbox, preferences, push subscriptions, delivery records, templates.

Why: people must hear about what concerns them once, on the channels they chose (issue 10).
The outbox drives it: a consumer (system work, on `rapport_worker`) reads events after its
cursor, writes notifications, and queues deliveries on `kernel.jobs` (which replaces seed
004's `notification_queue`, docs/decisions/0010); each attempt lands in a delivery table.
People read and mark their own notifications, keep their own settings, preferences and
push subscriptions; they never write notifications or delivery records.

Revision ID: 2026_11_29_0019
Revises: 2026_11_29_0018
Create Date: 2026-11-29
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_29_0019"
down_revision = "2026_11_29_0018"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    # The raw asyncpg connection: None only once the connection is closed, never in a migration.
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


TABLES = r"""
CREATE SCHEMA notifications;
COMMENT ON SCHEMA notifications IS
    'Notifications: the in-app inbox, preferences, push subscriptions, delivery records and templates.';
GRANT USAGE ON SCHEMA notifications TO rapport_app, rapport_worker;

CREATE TABLE notifications.notifications (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    type text NOT NULL,
    category text NOT NULL,
    priority text NOT NULL DEFAULT 'normal',
    title text NOT NULL,
    body text NOT NULL DEFAULT '',
    action_url text,
    icon_url text,
    image_url text,
    actor_id uuid,
    conversation_id uuid,
    related_kind text,
    related_id uuid,
    data jsonb NOT NULL DEFAULT '{}'::jsonb,
    group_key text,
    bundle_count integer NOT NULL DEFAULT 1,
    source_position bigint,
    is_read boolean NOT NULL DEFAULT false,
    read_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    scheduled_for timestamptz,
    CONSTRAINT pk_notifications PRIMARY KEY (id),
    CONSTRAINT fk_notifications_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_notifications_actor_id_users FOREIGN KEY (actor_id) REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT fk_notifications_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE,
    CONSTRAINT uq_notifications_user_id_source_position_type UNIQUE (user_id, source_position, type),
    CONSTRAINT ck_notifications_type CHECK (
        type IN ('message', 'mention', 'reaction', 'call', 'contact_request', 'security', 'system')),
    CONSTRAINT ck_notifications_category CHECK (category IN ('social', 'system', 'marketing', 'security')),
    CONSTRAINT ck_notifications_priority CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    CONSTRAINT ck_notifications_title CHECK (length(title) BETWEEN 1 AND 300),
    CONSTRAINT ck_notifications_body CHECK (length(body) <= 4000),
    CONSTRAINT ck_notifications_urls CHECK (
        length(action_url) <= 2000 AND length(icon_url) <= 2000 AND length(image_url) <= 2000),
    CONSTRAINT ck_notifications_related CHECK (
        (related_kind IS NULL) = (related_id IS NULL) AND length(related_kind) BETWEEN 1 AND 100),
    CONSTRAINT ck_notifications_data CHECK (jsonb_typeof(data) = 'object' AND octet_length(data::text) <= 8000),
    CONSTRAINT ck_notifications_group_key CHECK (length(group_key) BETWEEN 1 AND 200),
    CONSTRAINT ck_notifications_bundle_count CHECK (bundle_count >= 1),
    CONSTRAINT ck_notifications_read CHECK (is_read = (read_at IS NOT NULL))
);
COMMENT ON TABLE notifications.notifications IS
    'In-app notifications, one row per recipient (seeds: 004 notifications.notifications, 000 notifications). '
    'Written by system work only, from outbox events; their recipient reads them and marks them read.';
COMMENT ON COLUMN notifications.notifications.group_key IS
    'Notifications of one person with the same key bundle: while one is unread, a newer one updates it '
    '(bundle_count + 1, the newest title and body, created_at now()) instead of adding a row.';
COMMENT ON COLUMN notifications.notifications.bundle_count IS 'How many notifications this unread row stands for.';
COMMENT ON COLUMN notifications.notifications.source_position IS
    'The outbox event (kernel.events.position) it came from: with user_id and type unique, so a replayed '
    'event adds nothing; a bundle keeps its newest event''s.';
COMMENT ON COLUMN notifications.notifications.related_kind IS
    'What related_id names (a message, a contact request, a session...): the thing the notification is about.';
COMMENT ON COLUMN notifications.notifications.scheduled_for IS
    'Not to be shown or delivered before then (quiet hours, a delay); NULL: at once.';
-- Serves rapport.notifications._inbox.list_notifications: one person's notifications, newest first.
CREATE INDEX ix_notifications_user_created ON notifications.notifications (user_id, created_at DESC, id DESC);
-- Serves rapport.notifications._inbox.count_unread and marking all read: one person's unread notifications.
CREATE INDEX ix_notifications_unread ON notifications.notifications (user_id) WHERE NOT is_read;
-- Serves the pipeline's bundling: at most one unread notification per person and group key,
-- the row a newer notification of the group joins.
CREATE UNIQUE INDEX uq_notifications_unread_group ON notifications.notifications (user_id, group_key)
    WHERE group_key IS NOT NULL AND NOT is_read;
-- Serves the foreign keys' ON DELETE when an account or a conversation goes.
CREATE INDEX ix_notifications_actor_id ON notifications.notifications (actor_id) WHERE actor_id IS NOT NULL;
CREATE INDEX ix_notifications_conversation_id ON notifications.notifications (conversation_id)
    WHERE conversation_id IS NOT NULL;

CREATE TABLE notifications.settings (
    user_id uuid NOT NULL,
    time_zone text NOT NULL DEFAULT 'UTC',
    quiet_start time without time zone,
    quiet_end time without time zone,
    digest_delay_minutes integer NOT NULL DEFAULT 60,
    email_digest boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_settings PRIMARY KEY (user_id),
    CONSTRAINT fk_settings_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_settings_time_zone CHECK (length(time_zone) BETWEEN 1 AND 64),
    CONSTRAINT ck_settings_quiet_hours CHECK (
        (quiet_start IS NULL) = (quiet_end IS NULL) AND quiet_start <> quiet_end),
    CONSTRAINT ck_settings_digest_delay_minutes CHECK (digest_delay_minutes BETWEEN 5 AND 1440)
);
COMMENT ON TABLE notifications.settings IS
    'A person''s notification settings; no row means the defaults (rapport.notifications._preferences).';
COMMENT ON COLUMN notifications.settings.time_zone IS 'An IANA time zone name (checked by the service): quiet hours are in it.';
COMMENT ON COLUMN notifications.settings.quiet_start IS
    'Quiet hours, local time: from quiet_start up to quiet_end, wrapping midnight when the end is earlier. '
    'Both or neither.';
COMMENT ON COLUMN notifications.settings.digest_delay_minutes IS
    'How long missed notifications wait before one e-mail digest gathers them.';
CREATE TRIGGER set_updated_at BEFORE UPDATE ON notifications.settings
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();

CREATE TABLE notifications.preferences (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    type text,
    category text,
    channel text NOT NULL,
    enabled boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_preferences PRIMARY KEY (id),
    CONSTRAINT fk_preferences_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_preferences_type CHECK (
        type IN ('message', 'mention', 'reaction', 'call', 'contact_request', 'security', 'system')),
    CONSTRAINT ck_preferences_category CHECK (category IN ('social', 'system', 'marketing', 'security')),
    CONSTRAINT ck_preferences_channel CHECK (channel IN ('in_app', 'push', 'email', 'sms')),
    CONSTRAINT ck_preferences_scope CHECK (type IS NULL OR category IS NULL)
);
COMMENT ON TABLE notifications.preferences IS
    'Whether a channel is on for a person, for one type, one category, or (neither) every notification. '
    'The most specific row wins: type over category over the person''s channel-wide row over the defaults '
    '(seed 004 notifications.preferences).';
-- Serves rapport.notifications._preferences: one row per person, scope and channel (the upsert's target),
-- and reading one person's rows.
CREATE UNIQUE INDEX uq_preferences_scope ON notifications.preferences
    (user_id, (coalesce(type, '')), (coalesce(category, '')), channel);
CREATE TRIGGER set_updated_at BEFORE UPDATE ON notifications.preferences
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();

CREATE TABLE notifications.push_subscriptions (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    provider text NOT NULL,
    endpoint text,
    p256dh text,
    auth text,
    token text,
    device_id uuid,
    user_agent text,
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    CONSTRAINT pk_push_subscriptions PRIMARY KEY (id),
    CONSTRAINT fk_push_subscriptions_user_id_users FOREIGN KEY (user_id)
        REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_push_subscriptions_device_id_devices FOREIGN KEY (device_id)
        REFERENCES social.devices (id) ON DELETE SET NULL,
    CONSTRAINT uq_push_subscriptions_endpoint UNIQUE (endpoint),
    CONSTRAINT uq_push_subscriptions_provider_token UNIQUE (provider, token),
    CONSTRAINT ck_push_subscriptions_provider CHECK (provider IN ('webpush', 'fcm', 'apns')),
    CONSTRAINT ck_push_subscriptions_target CHECK (
        CASE provider
            WHEN 'webpush' THEN endpoint IS NOT NULL AND p256dh IS NOT NULL AND auth IS NOT NULL AND token IS NULL
            ELSE token IS NOT NULL AND endpoint IS NULL AND p256dh IS NULL AND auth IS NULL
        END),
    CONSTRAINT ck_push_subscriptions_lengths CHECK (
        length(endpoint) BETWEEN 1 AND 2000 AND length(p256dh) BETWEEN 1 AND 200 AND length(auth) BETWEEN 1 AND 100
        AND length(token) BETWEEN 1 AND 4096 AND length(user_agent) <= 500)
);
COMMENT ON TABLE notifications.push_subscriptions IS
    'Where a person''s pushes go: a browser''s Web Push subscription (endpoint and keys), or an FCM or APNs '
    'device token; several per person (seed 000 push_subscriptions). Registered through '
    'notifications.register_push_subscription; deactivated by system work when the service answers it is gone.';
COMMENT ON COLUMN notifications.push_subscriptions.endpoint IS
    'The push service URL of a Web Push subscription (RFC 8030); whoever holds it can receive its pushes, '
    'so it belongs to whoever registered it last.';
COMMENT ON COLUMN notifications.push_subscriptions.p256dh IS 'The browser''s P-256 public key (RFC 8291), base64url.';
COMMENT ON COLUMN notifications.push_subscriptions.auth IS 'The browser''s authentication secret (RFC 8291), base64url.';
COMMENT ON COLUMN notifications.push_subscriptions.token IS 'An FCM registration token or APNs device token.';
COMMENT ON COLUMN notifications.push_subscriptions.is_active IS
    'False once the push service answered 404/410 (or FCM UNREGISTERED, APNs 410): nothing is sent to it.';
-- Serves rapport.notifications._subscriptions.list_subscriptions, the pipeline's active
-- subscriptions of a recipient, and the foreign key.
CREATE INDEX ix_push_subscriptions_user_id ON notifications.push_subscriptions (user_id, id DESC);
-- Serves the foreign key's ON DELETE SET NULL when a device goes.
CREATE INDEX ix_push_subscriptions_device_id ON notifications.push_subscriptions (device_id)
    WHERE device_id IS NOT NULL;
CREATE TRIGGER set_updated_at BEFORE UPDATE ON notifications.push_subscriptions
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();

CREATE TABLE notifications.push_delivery_log (
    id uuid NOT NULL,
    notification_id uuid NOT NULL,
    user_id uuid NOT NULL,
    subscription_id uuid,
    provider text NOT NULL,
    status text NOT NULL DEFAULT 'pending',
    http_status integer,
    error text,
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    time_to_deliver_ms integer,
    opened_at timestamptz,
    CONSTRAINT pk_push_delivery_log PRIMARY KEY (id),
    CONSTRAINT fk_push_delivery_log_notification_id_notifications FOREIGN KEY (notification_id)
        REFERENCES notifications.notifications (id) ON DELETE CASCADE,
    CONSTRAINT fk_push_delivery_log_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_push_delivery_log_subscription_id_push_subscriptions FOREIGN KEY (subscription_id)
        REFERENCES notifications.push_subscriptions (id) ON DELETE SET NULL,
    CONSTRAINT uq_push_delivery_log_notification_id_subscription_id UNIQUE (notification_id, subscription_id),
    CONSTRAINT ck_push_delivery_log_provider CHECK (provider IN ('webpush', 'fcm', 'apns')),
    CONSTRAINT ck_push_delivery_log_status CHECK (
        status IN ('pending', 'sending', 'sent', 'delivered', 'failed', 'gone')),
    CONSTRAINT ck_push_delivery_log_http_status CHECK (http_status BETWEEN 100 AND 599),
    CONSTRAINT ck_push_delivery_log_error CHECK (length(error) <= 2000),
    CONSTRAINT ck_push_delivery_log_attempts CHECK (attempts >= 0),
    CONSTRAINT ck_push_delivery_log_time_to_deliver_ms CHECK (time_to_deliver_ms >= 0)
);
COMMENT ON TABLE notifications.push_delivery_log IS
    'One row per notification and push subscription: its status, attempts and time to deliver '
    '(seed 004 notifications.push_delivery_log). Written by system work; the recipient may read theirs.';
COMMENT ON COLUMN notifications.push_delivery_log.subscription_id IS
    'NULL once the subscription was deleted: the record of the attempt stays.';
COMMENT ON COLUMN notifications.push_delivery_log.status IS
    'pending, sending (claimed by a job), sent (accepted by the push service), delivered (acknowledged '
    'by the device), failed (attempts spent or refused), gone (the subscription no longer exists).';
COMMENT ON COLUMN notifications.push_delivery_log.time_to_deliver_ms IS
    'From the notification''s creation to the push service''s acceptance.';
-- Serves the recipient's reading of their delivery records and the foreign key's ON DELETE CASCADE.
CREATE INDEX ix_push_delivery_log_user_id ON notifications.push_delivery_log (user_id, created_at DESC);
-- Serves the foreign key's ON DELETE SET NULL when a subscription goes.
CREATE INDEX ix_push_delivery_log_subscription_id ON notifications.push_delivery_log (subscription_id)
    WHERE subscription_id IS NOT NULL;

CREATE TABLE notifications.email_notifications (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    kind text NOT NULL,
    notification_ids uuid[] NOT NULL DEFAULT '{}'::uuid[],
    subject text,
    status text NOT NULL DEFAULT 'pending',
    error text,
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    due_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    time_to_deliver_ms integer,
    CONSTRAINT pk_email_notifications PRIMARY KEY (id),
    CONSTRAINT fk_email_notifications_user_id_users FOREIGN KEY (user_id)
        REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_email_notifications_kind CHECK (kind IN ('notification', 'digest')),
    CONSTRAINT ck_email_notifications_status CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    CONSTRAINT ck_email_notifications_subject CHECK (length(subject) <= 500),
    CONSTRAINT ck_email_notifications_error CHECK (length(error) <= 2000),
    CONSTRAINT ck_email_notifications_attempts CHECK (attempts >= 0),
    CONSTRAINT ck_email_notifications_time_to_deliver_ms CHECK (time_to_deliver_ms >= 0)
);
COMMENT ON TABLE notifications.email_notifications IS
    'Notification e-mails: one notification, or a digest of those missed (seed 004 '
    'notifications.email_notifications). Written by system work; the recipient may read theirs.';
COMMENT ON COLUMN notifications.email_notifications.notification_ids IS 'The notifications the e-mail tells of.';
COMMENT ON COLUMN notifications.email_notifications.due_at IS
    'When it is to be sent: a digest waits for the person''s digest delay, gathering what comes meanwhile.';
-- Serves the recipient's reading of their e-mails and the foreign key's ON DELETE CASCADE.
CREATE INDEX ix_email_notifications_user_id ON notifications.email_notifications (user_id, created_at DESC);
-- At most one digest waiting per person: a notification missed meanwhile joins it (the upsert's target).
CREATE UNIQUE INDEX uq_email_notifications_pending_digest ON notifications.email_notifications (user_id)
    WHERE kind = 'digest' AND status = 'pending';
-- Serves the digest's sweep: pending e-mails that are due, oldest first.
CREATE INDEX ix_email_notifications_due ON notifications.email_notifications (due_at) WHERE status = 'pending';

CREATE TABLE notifications.sms_notifications (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    notification_id uuid NOT NULL,
    phone text NOT NULL,
    body text NOT NULL,
    provider text,
    provider_message_id text,
    status text NOT NULL DEFAULT 'pending',
    error text,
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    time_to_deliver_ms integer,
    CONSTRAINT pk_sms_notifications PRIMARY KEY (id),
    CONSTRAINT fk_sms_notifications_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_sms_notifications_notification_id_notifications FOREIGN KEY (notification_id)
        REFERENCES notifications.notifications (id) ON DELETE CASCADE,
    CONSTRAINT uq_sms_notifications_notification_id UNIQUE (notification_id),
    CONSTRAINT ck_sms_notifications_status CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    CONSTRAINT ck_sms_notifications_phone CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    CONSTRAINT ck_sms_notifications_body CHECK (length(body) BETWEEN 1 AND 1600),
    CONSTRAINT ck_sms_notifications_provider CHECK (
        length(provider) BETWEEN 1 AND 100 AND length(provider_message_id) BETWEEN 1 AND 200),
    CONSTRAINT ck_sms_notifications_error CHECK (length(error) <= 2000),
    CONSTRAINT ck_sms_notifications_attempts CHECK (attempts >= 0),
    CONSTRAINT ck_sms_notifications_time_to_deliver_ms CHECK (time_to_deliver_ms >= 0)
);
COMMENT ON TABLE notifications.sms_notifications IS
    'Text messages sent for a notification, at most one each (seed 004 notifications.sms_notifications). '
    'Written by system work; the recipient may read theirs.';
COMMENT ON COLUMN notifications.sms_notifications.phone IS 'E.164, as sent.';
COMMENT ON COLUMN notifications.sms_notifications.provider_message_id IS
    'The provider''s id of the message: what its delivery reports name.';
-- Serves the recipient's reading of their text messages and the foreign key's ON DELETE CASCADE.
CREATE INDEX ix_sms_notifications_user_id ON notifications.sms_notifications (user_id, created_at DESC);

CREATE TABLE notifications.templates (
    id uuid NOT NULL,
    type text NOT NULL,
    channel text NOT NULL,
    language text NOT NULL DEFAULT 'en',
    subject text,
    body_text text NOT NULL,
    body_html text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_templates PRIMARY KEY (id),
    CONSTRAINT uq_templates_type_channel_language UNIQUE (type, channel, language),
    CONSTRAINT ck_templates_type CHECK (
        type IN ('message', 'mention', 'reaction', 'call', 'contact_request', 'security', 'system', 'digest')),
    CONSTRAINT ck_templates_channel CHECK (channel IN ('in_app', 'push', 'email', 'sms')),
    CONSTRAINT ck_templates_language CHECK (language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$'),
    CONSTRAINT ck_templates_subject CHECK (length(subject) <= 1000),
    CONSTRAINT ck_templates_body CHECK (length(body_text) BETWEEN 1 AND 20000 AND length(body_html) <= 50000),
    CONSTRAINT ck_templates_digest CHECK (type <> 'digest' OR channel = 'email')
);
COMMENT ON TABLE notifications.templates IS
    'Jinja2 templates per notification type, channel and language (seed 004 notifications.templates): '
    'in_app makes a notification''s title (subject) and body from the event; push, email and sms '
    'present that title and body. The digest is an e-mail of its own type. System content: '
    'everyone may read it, only migrations and system work change it.';
COMMENT ON COLUMN notifications.templates.subject IS
    'The title (in_app, push) or e-mail subject, a template too; NULL for sms.';
CREATE TRIGGER set_updated_at BEFORE UPDATE ON notifications.templates
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();

CREATE TABLE notifications.consumer (
    name text NOT NULL,
    position bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_consumer PRIMARY KEY (name),
    CONSTRAINT ck_consumer_name CHECK (length(name) BETWEEN 1 AND 100)
);
COMMENT ON TABLE notifications.consumer IS
    'How far each reader of the outbox (kernel.events) has come: events up to position are done. '
    'Moved in the transaction that writes what the events caused, so none is handled twice. System work only.';
CREATE TRIGGER set_updated_at BEFORE UPDATE ON notifications.consumer
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();
"""


# The default English templates, given what rapport.notifications._compose says: in-app
# makes the title (subject) and body from actor_name, conversation_name, preview (an
# excerpt), emoji, headline and detail (security and system notices), count (events in the
# bundle) and action_url; push, email and sms present the notification's title and body
# with action_url, count and app_name; the digest gets `notifications` (each with title,
# body, action_url, count, created_at), count and app_name.
_IN_APP = {
    "message": (
        "{{ actor_name }}{% if conversation_name %} in {{ conversation_name }}{% endif %}",
        "{% if count > 1 %}{{ count }} new messages: {% endif %}{{ preview }}",
    ),
    "mention": (
        "{{ actor_name }} mentioned you{% if conversation_name %} in {{ conversation_name }}{% endif %}",
        "{{ preview }}",
    ),
    "reaction": ("{{ actor_name }} reacted {{ emoji }} to your message", "{{ preview }}"),
    "call": (
        "{{ actor_name }} is calling you",
        "{% if conversation_name %}{{ conversation_name }}{% else %}Tap to answer{% endif %}",
    ),
    "contact_request": ("{{ actor_name }} wants to connect with you", "{{ preview }}"),
    "security": ("{{ headline }}", "{{ detail }}"),
    "system": ("{{ headline }}", "{{ detail }}"),
}
_EMAIL_TEXT = "{{ body }}\n{% if action_url %}\nOpen it: {{ action_url }}\n{% endif %}\n-- \n{{ app_name }}\n"
_EMAIL_HTML = (
    '<p>{{ body }}</p>\n{% if action_url %}<p><a href="{{ action_url }}">Open it</a></p>{% endif %}\n'
    '<p style="color:#666">{{ app_name }}</p>\n'
)
_DIGEST_TEXT = (
    "While you were away ({{ count }}):\n\n"
    "{% for n in notifications %}- {{ n.title }}{% if n.body %}: {{ n.body }}{% endif %}\n"
    "{% if n.action_url %}  {{ n.action_url }}\n{% endif %}{% endfor %}\n-- \n{{ app_name }}\n"
)
_DIGEST_HTML = (
    "<p>While you were away ({{ count }}):</p>\n<ul>\n"
    '{% for n in notifications %}<li>{% if n.action_url %}<a href="{{ n.action_url }}">{{ n.title }}</a>'
    "{% else %}{{ n.title }}{% endif %}{% if n.body %}: {{ n.body }}{% endif %}</li>\n{% endfor %}</ul>\n"
    '<p style="color:#666">{{ app_name }}</p>\n'
)


def _literal(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def _seed_templates() -> str:
    rows: list[tuple[str, str, str | None, str, str | None]] = []
    for kind, (title, body) in _IN_APP.items():
        rows.append((kind, "in_app", title, body, None))
        rows.append((kind, "push", "{{ title }}", "{{ body }}", None))
        rows.append((kind, "email", "{{ title }}", _EMAIL_TEXT, _EMAIL_HTML))
        rows.append((kind, "sms", None, "{{ title }}: {{ body }}", None))
    rows.append(("digest", "email", "{{ count }} notifications you missed", _DIGEST_TEXT, _DIGEST_HTML))
    values = ",\n    ".join(
        f"(kernel.uuid7_like(), {_literal(kind)}, {_literal(channel)}, 'en', {_literal(subject)}, "
        f"{_literal(text)}, {_literal(html)})"
        for kind, channel, subject, text, html in rows
    )
    return (
        "INSERT INTO notifications.templates (id, type, channel, language, subject, body_text, body_html) VALUES\n"
        f"    {values};\n"
    )


FUNCTIONS = r"""
-- A person registers a push subscription for themself. The endpoint (or device token) is
-- unique across everyone: the browser or device that holds it now belongs to whoever signed
-- in there last, so registering it moves it to the caller, with fresh keys, active again.
-- The caller cannot see another's row, hence a definer function. `created` is true when the
-- row was not the caller's before: someone registering an endpoint of another account's
-- learns nothing of it (201 either way).
CREATE FUNCTION notifications.register_push_subscription(
    new_id uuid, kind text, url text, public_key text, secret text, device_token text, device uuid, agent text
) RETURNS TABLE (id uuid, created boolean)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        caller uuid := auth.current_user_id();
        found_id uuid;
        found_user uuid;
    BEGIN
        IF caller IS NULL THEN
            RAISE EXCEPTION 'push subscriptions are registered by their owner' USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF device IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM social.devices d WHERE d.id = device AND d.user_id = caller
        ) THEN
            RAISE EXCEPTION 'device-not-found' USING ERRCODE = 'RN404';
        END IF;
        FOR attempt IN 1..2 LOOP
            -- Lock the existing row, if any, so that two registrations of one endpoint serialise.
            SELECT s.id, s.user_id INTO found_id, found_user
              FROM notifications.push_subscriptions s
             WHERE CASE WHEN kind = 'webpush' THEN s.endpoint = url
                        ELSE s.provider = kind AND s.token = device_token END
               FOR UPDATE;
            EXIT WHEN found_id IS NOT NULL;
            INSERT INTO notifications.push_subscriptions
                (id, user_id, provider, endpoint, p256dh, auth, token, device_id, user_agent)
            VALUES (new_id, caller, kind, url, public_key, secret, device_token, device, agent)
            ON CONFLICT DO NOTHING;
            IF FOUND THEN
                RETURN QUERY SELECT new_id, true;
                RETURN;
            END IF;
            -- A concurrent registration of the same endpoint won the race: take it over below.
        END LOOP;
        IF found_id IS NULL THEN
            RAISE EXCEPTION 'the subscription changed meanwhile' USING ERRCODE = 'serialization_failure';
        END IF;
        UPDATE notifications.push_subscriptions s
           SET user_id = caller, p256dh = public_key, auth = secret,
               device_id = CASE WHEN found_user = caller THEN coalesce(device, s.device_id) ELSE device END,
               user_agent = CASE WHEN found_user = caller THEN coalesce(agent, s.user_agent) ELSE agent END,
               is_active = true,
               created_at = CASE WHEN found_user = caller THEN s.created_at ELSE now() END,
               last_used_at = CASE WHEN found_user = caller THEN s.last_used_at END
         WHERE s.id = found_id;
        RETURN QUERY SELECT found_id, found_user IS DISTINCT FROM caller;
    END
    $$;
COMMENT ON FUNCTION notifications.register_push_subscription(uuid, text, text, text, text, text, uuid, text) IS
    'Register (or take over) a push subscription for the acting user, idempotent per endpoint or token; '
    'returns its id and whether it is new to the caller. Raises RN404 for a device that is not the caller''s.';
"""


POLICIES = r"""
ALTER TABLE notifications.notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE notifications.notifications FORCE ROW LEVEL SECURITY;
-- A person reads and marks read their own; only system work (the outbox consumer) writes them.
CREATE POLICY notifications_own ON notifications.notifications FOR SELECT
    USING (user_id = auth.current_user_id() OR auth.is_system());
CREATE POLICY notifications_mark ON notifications.notifications FOR UPDATE
    USING (user_id = auth.current_user_id() OR auth.is_system())
    WITH CHECK (user_id = auth.current_user_id() OR auth.is_system());
CREATE POLICY notifications_system ON notifications.notifications FOR INSERT TO rapport_worker
    WITH CHECK (auth.is_system());
CREATE POLICY notifications_system_delete ON notifications.notifications FOR DELETE TO rapport_worker
    USING (auth.is_system());
GRANT SELECT ON notifications.notifications TO rapport_app, rapport_worker;
GRANT UPDATE (is_read, read_at) ON notifications.notifications TO rapport_app;
GRANT INSERT, UPDATE, DELETE ON notifications.notifications TO rapport_worker;

ALTER TABLE notifications.settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE notifications.settings FORCE ROW LEVEL SECURITY;
CREATE POLICY settings_own ON notifications.settings
    USING (user_id = auth.current_user_id() OR auth.is_system())
    WITH CHECK (user_id = auth.current_user_id() OR auth.is_system());
GRANT SELECT, INSERT (user_id, time_zone, quiet_start, quiet_end, digest_delay_minutes, email_digest),
      UPDATE (time_zone, quiet_start, quiet_end, digest_delay_minutes, email_digest)
    ON notifications.settings TO rapport_app;
GRANT SELECT ON notifications.settings TO rapport_worker;

ALTER TABLE notifications.preferences ENABLE ROW LEVEL SECURITY;
ALTER TABLE notifications.preferences FORCE ROW LEVEL SECURITY;
CREATE POLICY preferences_own ON notifications.preferences
    USING (user_id = auth.current_user_id() OR auth.is_system())
    WITH CHECK (user_id = auth.current_user_id() OR auth.is_system());
GRANT SELECT, INSERT (id, user_id, type, category, channel, enabled), UPDATE (enabled), DELETE
    ON notifications.preferences TO rapport_app;
GRANT SELECT ON notifications.preferences TO rapport_worker;

ALTER TABLE notifications.push_subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE notifications.push_subscriptions FORCE ROW LEVEL SECURITY;
-- A person sees and deletes their own (registering goes through the definer function above);
-- system work reads all and deactivates those the push service says are gone.
CREATE POLICY push_subscriptions_own ON notifications.push_subscriptions FOR SELECT
    USING (user_id = auth.current_user_id() OR auth.is_system() OR kernel.in_definer());
CREATE POLICY push_subscriptions_remove ON notifications.push_subscriptions FOR DELETE
    USING (user_id = auth.current_user_id() OR auth.is_system());
CREATE POLICY push_subscriptions_definer ON notifications.push_subscriptions FOR INSERT TO rapport_owner
    WITH CHECK (kernel.in_definer());
CREATE POLICY push_subscriptions_change ON notifications.push_subscriptions FOR UPDATE
    USING (kernel.in_definer() OR auth.is_system()) WITH CHECK (kernel.in_definer() OR auth.is_system());
GRANT SELECT, DELETE ON notifications.push_subscriptions TO rapport_app;
GRANT SELECT, UPDATE (is_active, last_used_at), DELETE ON notifications.push_subscriptions TO rapport_worker;

-- Delivery records: written by system work, read by their recipient.
ALTER TABLE notifications.push_delivery_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE notifications.push_delivery_log FORCE ROW LEVEL SECURITY;
CREATE POLICY push_delivery_log_own ON notifications.push_delivery_log FOR SELECT
    USING (user_id = auth.current_user_id() OR auth.is_system());
CREATE POLICY push_delivery_log_system ON notifications.push_delivery_log TO rapport_worker
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT ON notifications.push_delivery_log TO rapport_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON notifications.push_delivery_log TO rapport_worker;

ALTER TABLE notifications.email_notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE notifications.email_notifications FORCE ROW LEVEL SECURITY;
CREATE POLICY email_notifications_own ON notifications.email_notifications FOR SELECT
    USING (user_id = auth.current_user_id() OR auth.is_system());
CREATE POLICY email_notifications_system ON notifications.email_notifications TO rapport_worker
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT ON notifications.email_notifications TO rapport_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON notifications.email_notifications TO rapport_worker;

ALTER TABLE notifications.sms_notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE notifications.sms_notifications FORCE ROW LEVEL SECURITY;
CREATE POLICY sms_notifications_own ON notifications.sms_notifications FOR SELECT
    USING (user_id = auth.current_user_id() OR auth.is_system());
CREATE POLICY sms_notifications_system ON notifications.sms_notifications TO rapport_worker
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT ON notifications.sms_notifications TO rapport_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON notifications.sms_notifications TO rapport_worker;

-- Templates are system content: only system work renders them (requests never do), and
-- migrations (as the owner) and system work change them.
ALTER TABLE notifications.templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE notifications.templates FORCE ROW LEVEL SECURITY;
CREATE POLICY templates_system ON notifications.templates TO rapport_worker
    USING (auth.is_system()) WITH CHECK (auth.is_system());
CREATE POLICY templates_owner ON notifications.templates TO rapport_owner USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON notifications.templates TO rapport_worker;

ALTER TABLE notifications.consumer ENABLE ROW LEVEL SECURITY;
ALTER TABLE notifications.consumer FORCE ROW LEVEL SECURITY;
CREATE POLICY consumer_system ON notifications.consumer TO rapport_worker
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT, INSERT, UPDATE ON notifications.consumer TO rapport_worker;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA notifications FROM PUBLIC;
GRANT EXECUTE ON FUNCTION notifications.register_push_subscription(uuid, text, text, text, text, text, uuid, text)
    TO rapport_app;
"""


def upgrade() -> None:
    run_sql(TABLES)
    run_sql(FUNCTIONS)
    run_sql(POLICIES)
    run_sql(_seed_templates())


def downgrade() -> None:
    run_sql("DROP SCHEMA notifications CASCADE;")
