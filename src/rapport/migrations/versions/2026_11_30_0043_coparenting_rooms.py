"""coparenting_rooms: `ai` messages are Rapport's own, and a pairing's end is announced once.

Why: issue 14. Seed 000's message types name `ai` for mediation notices, which Rapport
posts in a shared room, as it posts `system` messages for pairing events. A person who
could send an `ai` message could pass their words off as Rapport's, so nobody sends one
as themself: the insert policy of messaging.messages (`messages_send`) and the send
function (`messaging.send_message`, a definer the policy lets through) refuse the type
as they refuse `system`; system work still posts both.

`coparenting.pairing_sessions.mediation_announced_at` and `.ended_announced_at`: when the
`ai` notice that mediation is available (after the acceptance) and the system message
saying that an active pairing ended (after the cancel) were posted in its room. Jobs post
them and run at least once; each column, set in its message's transaction, makes the
message appear once (as `announced_at` does for "joined"). Each message has a
transaction of its own: a second message posted in the same one re-checks the room's
foreign key to its creator and can deadlock with that account's erasure.

Revision ID: 2026_11_30_0043
Revises: 2026_11_30_0042
Create Date: 2026-11-30
"""

from importlib import import_module

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0043"
down_revision = "2026_11_30_0042"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


_CORE = import_module("rapport.migrations.versions.2026_11_29_0014_messaging")
_STREAMS = import_module("rapport.migrations.versions.2026_11_30_0037_messaging_streams")


def _once(script: str, old: str, new: str) -> str:
    assert script.count(old) == 1, old
    return script.replace(old, new)


# The insert policy as migration 0014 made it (no later migration changed it).
_POLICY_START = _CORE.POLICIES.index("CREATE POLICY messages_send ON messaging.messages FOR INSERT")
_POLICY_BEFORE = _CORE.POLICIES[_POLICY_START : _CORE.POLICIES.index(";", _POLICY_START) + 1]
_POLICY_AFTER = _once(_POLICY_BEFORE, "type <> 'system'", "type NOT IN ('system', 'ai')")
_DROP_POLICY = "DROP POLICY messages_send ON messaging.messages;\n"

# The send as migration 0037 left it (its script drops 0021's first: not this one's to do).
_SEND_BEFORE = _STREAMS.SEND[_STREAMS.SEND.index("\n") + 1 :]
assert "CREATE OR REPLACE FUNCTION messaging.send_message(" in _SEND_BEFORE
_SEND_AFTER = _once(
    _SEND_BEFORE,
    "        PERFORM auth.act_for_request(acting_user, session, api_key);\n",
    "        PERFORM auth.act_for_request(acting_user, session, api_key);\n"
    "        -- Rapport's own types: posted as system work, never sent as oneself.\n"
    "        IF message_type IN ('system', 'ai') THEN\n"
    "            RAISE EXCEPTION 'cannot-send' USING ERRCODE = 'RM403';\n"
    "        END IF;\n",
)

ANNOUNCED = """
ALTER TABLE coparenting.pairing_sessions ADD COLUMN mediation_announced_at timestamptz,
                                         ADD COLUMN ended_announced_at timestamptz;
COMMENT ON COLUMN coparenting.pairing_sessions.mediation_announced_at IS
    'When the shared room was told that mediation is available (an ai message, posted once, by a job).';
COMMENT ON COLUMN coparenting.pairing_sessions.ended_announced_at IS
    'When the shared room was told that the active pairing ended (posted once, by a job).';
"""


def upgrade() -> None:
    run_sql(ANNOUNCED)
    run_sql(_DROP_POLICY + _POLICY_AFTER)
    run_sql(_SEND_AFTER)


def downgrade() -> None:
    run_sql(_SEND_BEFORE)
    run_sql(_DROP_POLICY + _POLICY_BEFORE)
    run_sql(
        "ALTER TABLE coparenting.pairing_sessions DROP COLUMN ended_announced_at, DROP COLUMN mediation_announced_at;"
    )
