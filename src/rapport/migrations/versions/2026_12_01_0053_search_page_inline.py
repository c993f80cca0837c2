"""search: a page's messages rendered in the page's own statement, a slice's rows kept
to the caller's conversations where they are read, and a handful of conversations' rows
checked against the words before their dated index expression.

Why, measured on `rapport bench`'s 10M-message data set (docs/PERFORMANCE.md):
- `messaging.search_page` rendered each message of a page with
  `messaging.render_message`, which PostgreSQL does not inline here: each of the 20 calls
  ran the function's own plan, its reactions, thread and attachments read under their
  row-level security policies, about 0.3 ms a message (6 ms a page, as the definer;
  1 ms without the policies). The page now builds the same JSON in its own statement,
  as history does: a page of a search for a rare word from 21 ms to 16 ms, the items the
  same JSON value.
- A person in up to 50 conversations has each slice of days read through the primary
  key of their conversations (migration 2026_11_30_0026). That key holds no time, so a
  slice read every message of its month in those conversations and computed each one's
  dated words (8 µs a row) to keep the slice's: for someone in a few large
  conversations, 2,000 rows and 17 ms a slice for a day that held none of a rare word,
  and the 30 ms budget ran out with an empty first page. The row's own words are now
  checked first (about a microsecond), so the dated words are computed only for the
  rows that match.
- Everyone else's slice of days reads the words' postings of everyone's conversations and
  kept the caller's only after checking each row's words and passing all its columns up:
  the conversation is now tested first, inside the fence that reads the rows, and only
  the columns the candidates need leave it. A first page of "invoice" for a person in
  2,300 conversations from 30 ms to 24, of "project review" from 28 to 21, the same items.

Revision ID: 2026_12_01_0053
Revises: 2026_12_01_0052
Create Date: 2026-12-01
"""

from importlib import import_module

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_12_01_0053"
down_revision = "2026_12_01_0052"
branch_labels = None
depends_on = None

_BY_DAY = import_module("rapport.migrations.versions.2026_11_30_0026_search_by_day")
_STREAMS = import_module("rapport.migrations.versions.2026_11_30_0037_messaging_streams")
_ENCRYPTION = import_module("rapport.migrations.versions.2026_11_30_0048_encryption")


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


PAGE_BEFORE = _STREAMS.SEARCH_PAGE

_RENDERED = """coalesce((SELECT string_agg((messaging.render_message(page.m, acting_user)
                                                || jsonb_build_object('rank', page.rank, 'snippet',
                                                                      messaging.search_snippet((page.m).content, parsed)))::text,
                                               ',' ORDER BY page.position)
                               FROM page WHERE (page.m).id IS NOT NULL), ''),"""

# render_message's JSON (migration 0048's, with content_encrypted) written out for the
# page's row `x`, the page row's columns.
_INLINE = f"""coalesce((SELECT string_agg(({_ENCRYPTION._flagged(_STREAMS.message_json("x", "acting_user"))}
                                                || jsonb_build_object('rank', page.rank, 'snippet',
                                                                      messaging.search_snippet(x.content, parsed)))::text,
                                               ',' ORDER BY page.position)
                               FROM page CROSS JOIN LATERAL (SELECT (page.m).*) AS x WHERE x.id IS NOT NULL), ''),"""

PAGE = _STREAMS._replaced(PAGE_BEFORE, (_RENDERED, _INLINE))

SEARCH_BEFORE = _BY_DAY.SEARCH

SEARCH = _STREAMS._replaced(
    SEARCH_BEFORE,
    (
        "        days_messages constant text := '(SELECT * FROM messaging.messages d'\n"
        "            ' WHERE messaging.dated_search(d.search, d.created_at) @@ ANY (CAST((SELECT $11) AS tsquery[]))'\n"
        "            ' AND d.created_at >= $12 AND d.created_at < $13 OFFSET 0)';",
        # The caller's conversations kept inside the fence, where the rows are read: the
        # others' rows go before their words are checked, and only the columns the
        # candidates need leave it.
        "        days_messages constant text := '(SELECT d.conversation_id, d.id, d.created_at, d.seq, d.sender_id,'\n"
        "            ' d.type, d.deleted_at, d.search FROM messaging.messages d'\n"
        "            ' WHERE messaging.dated_search(d.search, d.created_at) @@ ANY (CAST((SELECT $11) AS tsquery[]))'\n"
        "            ' AND d.created_at >= $12 AND d.created_at < $13 AND coalesce(d.conversation_id = ANY ($1), false)'\n"
        "            ' OFFSET 0)';",
    ),
    (
        "' WHERE messaging.dated_search(d.search, d.created_at) @@ ANY (CAST((SELECT $11) AS tsquery[]))'\n"
        "            ' AND d.created_at >= $12 AND d.created_at < $13 AND d.conversation_id = ANY ($1) OFFSET 0)';",
        # The row's own words first: when the primary key of the conversations serves the
        # slice, every row of their month is checked, and the dated words cost 8 µs a row.
        "' WHERE d.search @@ $4 AND messaging.dated_search(d.search, d.created_at) @@ ANY (CAST((SELECT $11) AS tsquery[]))'\n"
        "            ' AND d.created_at >= $12 AND d.created_at < $13 AND d.conversation_id = ANY ($1) OFFSET 0)';",
    ),
    # Both fences of the days now keep the caller's conversations: the test outside them goes.
    (
        "        -- The ids as values, tested by hashing (not as an index condition: coalesce() is none).\n"
        "        among_conversations constant text := 'coalesce(m.conversation_id = ANY ($1), false)';\n",
        "",
    ),
    (
        "EXECUTE format(candidates_sql, by_words, among_conversations, window_sql,",
        "EXECUTE format(candidates_sql, by_words, 'true', window_sql,",
    ),
)


def upgrade() -> None:
    run_sql(PAGE)
    run_sql(SEARCH)


def downgrade() -> None:
    run_sql(SEARCH_BEFORE)
    run_sql(PAGE_BEFORE)
