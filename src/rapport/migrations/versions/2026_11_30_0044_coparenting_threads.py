"""coparenting_threads: a message moves into a topic thread, out of it, or to another.

Why: issue 14. The topic organiser of a co-parenting room places a message in the topic
thread it matches, and a participant who disagrees takes it out again; Zulip lets people
move messages between topics the same way. Until now a message's thread was fixed at its
send, so a placement stayed a suggestion beside the message.

`messaging.guard_message_update` lets `thread_id` change when the move is between topic
threads (or out of one) of the message's own conversation, the target open, done by
system work or by a participant who takes part (not an observer or a guest). A reply
stays under its root message: reply threads are neither left nor entered this way. The
trigger keeps both threads' counts and last message, as messaging.sequence_message does
at a send, so every path that moves a message keeps them right. The server's and the
worker's roles may now update the column (the guard decides who may, and where to).

Revision ID: 2026_11_30_0044
Revises: 2026_11_30_0043
Create Date: 2026-11-30
"""

from importlib import import_module

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0044"
down_revision = "2026_11_30_0043"
branch_labels = None
depends_on = None

_STREAMS = import_module("rapport.migrations.versions.2026_11_30_0037_messaging_streams")


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


def _replaced(script: str, *changes: tuple[str, str]) -> str:
    for old, new in changes:
        assert script.count(old) == 1, old
        script = script.replace(old, new)
    return script


_FIXED_BEFORE = (
    "OR NEW.thread_id IS DISTINCT FROM OLD.thread_id OR NEW.hidden_from_guests <> OLD.hidden_from_guests THEN"
)
_FIXED_AFTER = "OR NEW.hidden_from_guests <> OLD.hidden_from_guests THEN"

# The foreign key's ON DELETE SET NULL changes the sender alone.
_SENDER_BEFORE = "IF NEW.sender_id IS NOT NULL OR EXISTS (SELECT 1 FROM auth.users u WHERE u.id = OLD.sender_id) THEN"
_SENDER_AFTER = (
    "IF NEW.sender_id IS NOT NULL OR NEW.thread_id IS DISTINCT FROM OLD.thread_id\n"
    "               OR EXISTS (SELECT 1 FROM auth.users u WHERE u.id = OLD.sender_id) THEN"
)

_DELETED = """        IF OLD.deleted_at IS NOT NULL THEN
            RAISE EXCEPTION 'message-not-found' USING ERRCODE = 'RM404';
        END IF;
"""
_MOVE = (
    _DELETED
    + """        IF NEW.thread_id IS DISTINCT FROM OLD.thread_id THEN
            -- Between topic threads of its conversation, or out of one: system work (the
            -- topic organiser), or someone who takes part in the conversation.
            IF NOT (auth.is_system() OR EXISTS (
                SELECT 1 FROM messaging.participants p
                 WHERE p.conversation_id = OLD.conversation_id AND p.user_id = actor
                   AND p.status = 'active' AND p.role IN ('owner', 'admin', 'moderator', 'member'))) THEN
                RAISE EXCEPTION 'not-allowed' USING ERRCODE = 'RM403';
            END IF;
            IF EXISTS (SELECT 1 FROM messaging.threads t
                        WHERE t.id = OLD.thread_id AND t.root_message_id IS NOT NULL) THEN
                RAISE EXCEPTION 'message-in-reply-thread' USING ERRCODE = 'RM409';
            END IF;
            IF NEW.thread_id IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM messaging.threads t
                 WHERE t.id = NEW.thread_id AND t.conversation_id = OLD.conversation_id
                   AND t.root_message_id IS NULL AND t.archived_at IS NULL) THEN
                RAISE EXCEPTION 'thread-not-found' USING ERRCODE = 'RM404';
            END IF;
            IF OLD.thread_id IS NOT NULL THEN
                UPDATE messaging.threads t SET message_count = greatest(t.message_count - 1, 0)
                 WHERE t.id = OLD.thread_id;
                -- It was the thread's latest: the one before it is now.
                UPDATE messaging.threads t
                   SET (last_message_id, last_message_at) = (
                        SELECT m.id, m.created_at FROM messaging.messages m
                         WHERE m.conversation_id = OLD.conversation_id AND m.thread_id = OLD.thread_id
                           AND m.id <> OLD.id
                         ORDER BY m.seq DESC LIMIT 1)
                 WHERE t.id = OLD.thread_id AND t.last_message_id = OLD.id;
            END IF;
            IF NEW.thread_id IS NOT NULL THEN
                UPDATE messaging.threads t
                   SET message_count = t.message_count + 1,
                       last_message_id = CASE WHEN t.last_message_at IS NULL OR OLD.created_at > t.last_message_at
                                              THEN OLD.id ELSE t.last_message_id END,
                       last_message_at = greatest(t.last_message_at, OLD.created_at)
                 WHERE t.id = NEW.thread_id;
            END IF;
        END IF;
"""
)

GUARD = _replaced(_STREAMS.GUARD, (_FIXED_BEFORE, _FIXED_AFTER), (_SENDER_BEFORE, _SENDER_AFTER), (_DELETED, _MOVE))


def upgrade() -> None:
    run_sql(GUARD)
    run_sql("GRANT UPDATE (thread_id) ON messaging.messages TO rapport_app, rapport_worker;")


def downgrade() -> None:
    run_sql("REVOKE UPDATE (thread_id) ON messaging.messages FROM rapport_app, rapport_worker;")
    run_sql(_STREAMS.GUARD)
