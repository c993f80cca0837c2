"""matching cursor and match notifications: matching's place in the outbox, and `match`
notifications.

Why: issue 15 (audit). Feature vectors are made from a person's tags too (layout version
2, rapport.modules.matching._features); community publishes `community.tags_changed`,
and matching's reader of the outbox (rapport.modules.matching._tag_changes) remakes the
person's vector. The reader keeps its durable cursor here, as every reader of the outbox
keeps its own (support.cursor, bots.cursor). Match alerts (a day's proposals, a mutual
match) become notifications of their own type, `match`, so that a person can turn them
on or off apart from messages and system notices; their templates are the system
notices' (a headline and a detail the rules word).

Revision ID: 2026_12_01_0051
Revises: 2026_12_01_0050
Create Date: 2026-12-01
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_12_01_0051"
down_revision = "2026_12_01_0050"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


CURSOR = """
CREATE TABLE matching.cursor (
    name text NOT NULL,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_cursor PRIMARY KEY (name),
    CONSTRAINT ck_cursor_name CHECK (length(name) BETWEEN 1 AND 40)
);
COMMENT ON TABLE matching.cursor IS
    'How far in the outbox matching''s readers have read (their durable cursors): system work''s alone.';

-- System work's alone: no person reads or moves a reader's place in the outbox.
ALTER TABLE matching.cursor ENABLE ROW LEVEL SECURITY;
ALTER TABLE matching.cursor FORCE ROW LEVEL SECURITY;
CREATE POLICY cursor_system ON matching.cursor
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT, INSERT, UPDATE ON matching.cursor TO rapport_worker;
"""


_TYPES = "'message', 'mention', 'reaction', 'call', 'contact_request', 'security', 'system'"

NOTIFICATION_TYPES = """
ALTER TABLE notifications.notifications DROP CONSTRAINT ck_notifications_type,
    ADD CONSTRAINT ck_notifications_type CHECK (type IN ({types}));
ALTER TABLE notifications.preferences DROP CONSTRAINT ck_preferences_type,
    ADD CONSTRAINT ck_preferences_type CHECK (type IN ({types}));
ALTER TABLE notifications.templates DROP CONSTRAINT ck_templates_type,
    ADD CONSTRAINT ck_templates_type CHECK (type IN ({types}, 'digest'));
"""

MATCH_TEMPLATES = """
INSERT INTO notifications.templates (id, type, channel, language, subject, body_text, body_html)
SELECT kernel.uuid7_like(), 'match', channel, language, subject, body_text, body_html
  FROM notifications.templates WHERE type = 'system';
"""


def upgrade() -> None:
    run_sql(CURSOR + NOTIFICATION_TYPES.format(types=_TYPES + ", 'match'") + MATCH_TEMPLATES)


def downgrade() -> None:
    run_sql(
        """
        DELETE FROM notifications.notifications WHERE type = 'match';
        DELETE FROM notifications.preferences WHERE type = 'match';
        DELETE FROM notifications.templates WHERE type = 'match';
        """
        + NOTIFICATION_TYPES.format(types=_TYPES)
        + "DROP TABLE matching.cursor;"
    )
