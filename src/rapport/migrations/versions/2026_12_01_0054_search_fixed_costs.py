"""search: a page's statement planned once per connection, the caller's conversations and
windows read from the index alone, and a few conversations that hold many messages
searched through the words' postings.

Why, measured with pgbench on `rapport bench`'s 10M-message data set (the 16 people in
the most conversations, 689 to 2,300 each, over the benchmark's eight queries, one client,
as `rapport_app`; docs/PERFORMANCE.md):
- `messaging.search_page` answers with one statement whose plan holds the message JSON's
  reactions, thread and attachments, each under its row-level security, over every
  partition of the messages. PL/pgSQL plans such a statement again on each call while the
  custom plans look cheaper than the generic one, and they do here (they prune partitions
  by the page's times): about 8 ms of planning on every page, four times what rendering
  the page costs. The function now keeps its generic plan (`plan_cache_mode`), which
  prunes the partitions when it runs. A page of "quokka" for a person in 2,300
  conversations from 26 ms to 10, the same items.
- A search starts from the caller's participations: their conversation ids, and the
  windows from joining (`history_from_seq`) to leaving (`left_seq`). Those two columns
  were only in the table, so a person in 2,300 conversations read 2,017 heap pages for
  them: 5 to 9 ms as the definer. `ix_participants_user_id` now carries them too, an
  index-only scan: 1 ms. Neither column changes when a read or delivery marker moves, so
  those updates stay HOT.
  Together, a search over the mix from 28.7-29.0 ms a call to 22.6-22.8.
- Someone in up to 50 conversations had each slice of days read through the primary key
  of those conversations, ANDed with the words' postings (migration 2026_11_30_0026). The
  key holds no time, so its bitmap of a conversation covers every month the slice
  touches: for someone in a large channel (in 4 to 10 conversations that hold 276,000 or
  414,000 messages between them), 17 ms for two days of a rare word. That way is now kept
  for conversations holding at most 10,000 messages together; the others' slices read the
  words' postings and keep the caller's conversations by id, as for someone in many. For
  16 people in 4 to 10 conversations each, a rare word from 17.6-18.9 ms a search to
  8.3-8.4; common words are unchanged (they spend the 30 ms budget either way).

Revision ID: 2026_12_01_0054
Revises: 2026_12_01_0053
Create Date: 2026-12-01
"""

from importlib import import_module

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_12_01_0054"
down_revision = "2026_12_01_0053"
branch_labels = None
depends_on = None

_STREAMS = import_module("rapport.migrations.versions.2026_11_30_0037_messaging_streams")
_INLINE = import_module("rapport.migrations.versions.2026_12_01_0053_search_page_inline")


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


PAGE_BEFORE = _INLINE.PAGE

PAGE = _STREAMS._replaced(
    PAGE_BEFORE,
    (
        "    LANGUAGE plpgsql VOLATILE SECURITY DEFINER\n    SET search_path = pg_catalog, pg_temp\n    AS $$",
        # The page's statement is planned once per connection: its custom plans cost about
        # 8 ms of planning a call, and the generic one prunes the partitions as it runs.
        "    LANGUAGE plpgsql VOLATILE SECURITY DEFINER\n    SET search_path = pg_catalog, pg_temp\n"
        "    SET plan_cache_mode = force_generic_plan\n    AS $$",
    ),
)

SEARCH_BEFORE = _INLINE.SEARCH

SEARCH = _STREAMS._replaced(
    SEARCH_BEFORE,
    (
        "        few constant integer := 50;\n",
        "        few constant integer := 50;\n"
        "        -- ... and while they hold at most this many messages: the primary key holds no\n"
        "        -- time, so its bitmap of a conversation covers each month the slice touches.\n"
        "        few_messages constant bigint := 10000;\n"
        "        visible bigint;\n",
    ),
    (
        "        IF lows IS NOT NULL THEN\n            window_sql",
        "        IF cardinality(conversations) <= few THEN\n"
        "            SELECT sum(c.last_seq) INTO visible FROM messaging.conversations c WHERE c.id = ANY (conversations);\n"
        "        END IF;\n"
        "        IF lows IS NOT NULL THEN\n            window_sql",
    ),
    (
        "CASE WHEN cardinality(conversations) <= few THEN days_messages_of_few",
        "CASE WHEN cardinality(conversations) <= few AND visible <= few_messages THEN days_messages_of_few",
    ),
)

# The windows of search (history_from_seq, left_seq) beside what the conversation list
# reads (status, is_pinned): a person's participations from the index alone.
INDEX = """
DROP INDEX messaging.ix_participants_user_id;
CREATE INDEX ix_participants_user_id ON messaging.participants (user_id, conversation_id)
    INCLUDE (status, is_pinned, history_from_seq, left_seq);
"""

INDEX_BEFORE = """
DROP INDEX messaging.ix_participants_user_id;
CREATE INDEX ix_participants_user_id ON messaging.participants (user_id, conversation_id)
    INCLUDE (status, is_pinned);
"""


def upgrade() -> None:
    run_sql(INDEX)
    run_sql(PAGE)
    run_sql(SEARCH)


def downgrade() -> None:
    run_sql(SEARCH_BEFORE)
    run_sql(PAGE_BEFORE)
    run_sql(INDEX_BEFORE)
