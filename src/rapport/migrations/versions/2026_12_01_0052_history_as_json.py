"""history pages as json: `messaging.read_history` builds its messages as `json`, not `jsonb`.

Why: a page of history is made to be sent, never queried: its messages go out as text.
Built as `jsonb`, each of the page's messages was made into a binary document (its keys
sorted, each value converted) and then printed again as text; `json_build_object` writes
the text once. Measured with pgbench on the 10M-message data set of `rapport bench`
(the newest page of 50 of a large conversation, as `rapport_app`, one client): 1.37 to
1.56 ms a call before, 0.85 to 1.0 ms after; the two pages parse to the same JSON value
(docs/PERFORMANCE.md). The keys come in the order they are written instead of jsonb's
(by length, then bytes); JSON objects have no order, and the API's schema names the keys.

Only the function's text changes: the same rows, the same arguments, the same answer.

Revision ID: 2026_12_01_0052
Revises: 2026_12_01_0051
Create Date: 2026-12-01
"""

from importlib import import_module

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_12_01_0052"
down_revision = "2026_12_01_0051"
branch_labels = None
depends_on = None

_STREAMS = import_module("rapport.migrations.versions.2026_11_30_0037_messaging_streams")
_ENCRYPTION = import_module("rapport.migrations.versions.2026_11_30_0048_encryption")

# read_history as migration 0048 left it (the message JSON with content_encrypted).
[HISTORY_BEFORE] = [after for before, after in _ENCRYPTION.READERS if before == _STREAMS.HISTORY]


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


def as_json(script: str) -> str:
    """read_history's script with its messages built as json. Each page's message was a
    jsonb object merged (`||`) with its attachments; now the attachments are one more key
    of the same object, since json has no merge."""
    merge = ")) || jsonb_build_object('attachments', "
    assert script.count(merge) == 3, script.count(merge)  # the after, around and newest pages
    script = script.replace(merge, "), 'attachments', ")
    for before, after in (
        ("jsonb_build_object(", "json_build_object("),
        ("jsonb_agg(", "json_agg("),
        ("'[]'::jsonb", "'[]'::json"),
        ("to_jsonb(", "to_json("),
        ("found_rows jsonb[];", "found_rows json[];"),
    ):
        assert before in script, before
        script = script.replace(before, after)
    assert "jsonb" not in script, script[script.index("jsonb") - 200 : script.index("jsonb") + 50]
    return script


HISTORY = as_json(HISTORY_BEFORE)


def upgrade() -> None:
    run_sql(HISTORY)


def downgrade() -> None:
    run_sql(HISTORY_BEFORE)
