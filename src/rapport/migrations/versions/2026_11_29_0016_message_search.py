"""Message search: `messaging.search_messages()`, its query parser and its snippets.

Why: full-text search over every message a person may see must answer in well under
100 ms with 10M messages, and as `rapport_app` no index can serve it. Under FORCE'd
row-level security the planner may put a condition into an index scan ahead of the
policy only when the condition is leakproof or the policy folds away at plan time
(docs/decisions/0007). `@@` is not leakproof and `messages_read` is an EXISTS per row,
so as `rapport_app` every search read each of the caller's messages through the
primary key and called the policy on it before testing the words.

- `messages_definer_read` (`FOR SELECT TO rapport_owner USING (true)`) admits the rows
  `kernel.in_definer()` admits already, in a form the planner folds, so a definer
  function reading messages may use `ix_messages_search` and partition pruning.
- `messaging.search_messages()`, SECURITY DEFINER, reads only the acting user's own
  participations and applies the same window as `messages_read` (above
  history_from_seq, up to left_seq), leaves out messages deleted for everyone and those
  the caller hid, and returns one page of message ids and ranks, with how far back it
  read. The service then reads those messages as `rapport_app`, so row-level security
  still vets every row shown. How it stays fast for every word, and what it gives up for
  that, is written above the function.
- `messaging.message_query()` parses what a person typed with `websearch_to_tsquery`
  (quotes, `or`, `-word`), and may turn the last word into a prefix; nothing typed is
  ever spliced into tsquery syntax.

Revision ID: 2026_11_29_0016
Revises: 2026_11_29_0015
Create Date: 2026-11-29
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_29_0016"
down_revision = "2026_11_29_0015"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    # The raw asyncpg connection: None only once the connection is closed, never in a migration.
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


QUERY = r"""
-- What a person typed, as a tsquery: websearch_to_tsquery's syntax (quoted phrases, `or`,
-- `-word`), with the 'simple' configuration the documents use. `last_word`, when given,
-- is the last word typed (letters and digits only, not negated, nothing after it): if the
-- parsed query ends with that word's lexeme, the lexeme becomes a prefix ('hel' finds
-- 'hello' while it is being typed). The prefix mark is appended to the parser's own
-- canonical output, after a lexeme it quoted itself, so the text typed never becomes
-- tsquery syntax.
CREATE FUNCTION messaging.message_query(q text, last_word text DEFAULT NULL) RETURNS tsquery
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        parsed tsquery := websearch_to_tsquery('simple'::regconfig, coalesce(q, ''));
        lexemes text[];
        quoted text;
    BEGIN
        IF last_word IS NULL OR numnode(parsed) = 0 THEN
            RETURN parsed;
        END IF;
        lexemes := tsvector_to_array(to_tsvector('simple'::regconfig, last_word));
        IF cardinality(lexemes) <> 1 THEN
            RETURN parsed;
        END IF;
        quoted := '''' || replace(replace(lexemes[1], '\', '\\'), '''', '''''') || '''';
        IF right(parsed::text, length(quoted)) = quoted THEN
            RETURN (parsed::text || ':*')::tsquery;
        END IF;
        RETURN parsed;
    END
    $$;
COMMENT ON FUNCTION messaging.message_query(text, text) IS
    'A search query as typed (websearch syntax) as a tsquery; the last word, when given, matches as a prefix.';

-- The part of a message's content around the query's matches, as HTML: the text escaped,
-- each match in <mark>. The parser would take `<...>` in the text for markup and leave it
-- out, so `<` and `>` travel as two control characters, and ts_headline marks the matches
-- with two more. The API stores no control characters in content; any there are dropped.
CREATE FUNCTION messaging.search_snippet(content text, query tsquery) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT replace(replace(replace(replace(replace(replace(replace(
                   ts_headline('simple'::regconfig, translate(content, E'<>\x01\x02\x03\x04', E'\x03\x04'), query,
                               E'StartSel=\x01, StopSel=\x02, MaxWords=30, MinWords=15'),
                   '&', '&amp;'), '"', '&quot;'), '''', '&#39;'),
                   E'\x03', '&lt;'), E'\x04', '&gt;'), E'\x01', '<mark>'), E'\x02', '</mark>')
    $$;
COMMENT ON FUNCTION messaging.search_snippet(text, tsquery) IS
    'About 15 to 30 words of the content around the query''s matches, as escaped HTML, matches in <mark>.';
"""


# How a search finds its candidates, and what it gives up to stay fast (10M messages, a
# person in 1,000 conversations holding about 100k messages; docs/PERFORMANCE.md):
#
# * The caller's participations come first (ix_participants_user_id): their conversation
#   ids and windows. Then the planner's own estimates of how many messages the date range
#   holds, and how many of them hold the words (two EXPLAINs, from the statistics: about
#   a millisecond), pick one of three ways, because no one plan is fast for every word:
#   - 'rows', for common words (in over `common`, 4%, of the messages: 'the', 'ok'): their
#     GIN postings are the costliest thing to read (a million entries in a big month), so
#     the caller's own messages are read newest first through the primary key (or the
#     sender's index), in time slices (a day, then twice as long, or as long as the
#     budget still allows at the pace so far), testing the words on each, until there are
#     enough;
#   - 'words', for rare words (up to `rare`, 2,000, messages hold them; counted when the
#     planner's guess is that low, as it is for any word below the statistics' smallest
#     frequency): one statement reads the words' postings over the whole range and keeps
#     the caller's conversations by a hashed set; each posting is a row read, mostly
#     someone else's, hence the limit;
#   - 'months' otherwise, and for a handful of conversations (one named by the caller):
#     month by month, newest first, until there are enough, each month's statement naming
#     the conversation ids as values so that the planner weighs the primary key's bitmap
#     of them against the words' postings (and usually ANDs the two). Weighing a thousand
#     ids costs about a millisecond of planning a month, which the other ways avoid.
#   A date range prunes the months outside it in all three.
# * Ranking every match of a frequent word would read and rank a large part of everything
#   the person ever received. So the candidates are the newest `candidates` matches, and a
#   page is the best ranked of them (ts_rank_cd, then newest first).
# * Some searches find their candidates slowly: a phrase or a filter by type that few of a
#   common word's matches pass, a word in few of the caller's messages but many others'
#   (every month is read, a thousand index lookups each). The month-by-month and slice-by-
#   slice ways stop once `budget` is spent (30 ms), with what they found, and say where:
#   `searched_from`, which later pages of the same search keep as their lower bound (they
#   read the same months, without a budget, and so see the same candidates), and
#   `older_until`, an `until` that reaches the older matches. The trade-off: a strong match
#   older than the newest candidates, or than where the budget ran out, is not on these
#   pages; the client asks again with `until`, or a narrower query (more words, a phrase,
#   a conversation, a sender, dates) reaches it.
SEARCH = r"""
-- The rows kernel.in_definer() admits already, in a form the planner can fold, so that a
-- definer function reading messages may use their indexes (this migration's docstring).
CREATE POLICY messages_definer_read ON messaging.messages FOR SELECT TO rapport_owner USING (true);

-- Message search for the acting user: a definer function, because as rapport_app the
-- policy keeps ix_messages_search out of every plan (see the migration's docstring). It
-- decides visibility itself, exactly as messages_read does (its own participations only,
-- within each one's window), and never takes the acting user as an argument.
CREATE FUNCTION messaging.search_messages(
    query tsquery,
    in_conversation uuid DEFAULT NULL,
    from_sender uuid DEFAULT NULL,
    since timestamptz DEFAULT NULL,
    until timestamptz DEFAULT NULL,
    of_type text DEFAULT NULL,
    max_rows integer DEFAULT 21,
    after_rank real DEFAULT NULL,
    after_id uuid DEFAULT NULL,
    candidates integer DEFAULT 300,
    budget interval DEFAULT '30 milliseconds'
) RETURNS TABLE (conversation_ids uuid[], message_ids uuid[], created_ats timestamptz[], ranks real[],
                 searched_from timestamptz, older_until timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    -- A search plans and runs in milliseconds: compiling it, or starting workers, costs more;
    -- and a bitmap of a month's matches that outgrows work_mem turns lossy, and every row on
    -- its pages is read again.
    SET jit = off
    SET max_parallel_workers_per_gather = 0
    SET work_mem = '32MB'
    AS $fn$
    #variable_conflict use_column
    DECLARE
        -- Up to this many matches: read by the words' postings alone (each is a row read,
        -- mostly someone else's). Counted when the planner expects fewer than `probed`.
        rare constant integer := 2000;
        probed constant real := 20000;
        -- From this share of the range's messages on: read by the caller's conversations.
        common constant real := 0.04;
        -- Up to this many conversations, never by the words' postings alone.
        few constant integer := 50;
        caller uuid := auth.current_user_id();
        conversations uuid[];
        -- The windows that are not the whole conversation (joined without the history, or
        -- left), by conversation id: usually few or none.
        lows jsonb;
        highs jsonb;
        window_sql text := '';
        oldest timestamptz;
        newest timestamptz;
        messages_in_range real;
        matches_in_range real;
        plan json;
        way text;
        slice_start timestamptz;
        slice_end timestamptz;
        width interval := interval '1 day';
        started timestamptz;
        slice_started timestamptz;
        rare_enough boolean := false;
        found_conversations uuid[] := '{}';
        found_ids uuid[] := '{}';
        found_times timestamptz[] := '{}';
        found_ranks real[] := '{}';
        slice record;
        -- One statement for the three ways: %1$s is how it finds the words, %2$s how it
        -- keeps the caller's conversations, %3$s their windows as in messages_read. Each
        -- is one of the constant texts below: nothing typed by anyone.
        candidates_sql constant text := $q$
            SELECT array_agg(x.conversation_id ORDER BY x.created_at DESC, x.id DESC) AS conversations,
                   array_agg(x.id ORDER BY x.created_at DESC, x.id DESC) AS ids,
                   array_agg(x.created_at ORDER BY x.created_at DESC, x.id DESC) AS times,
                   array_agg(ts_rank_cd(x.search, $4, 1 | 32) ORDER BY x.created_at DESC, x.id DESC) AS ranks
              FROM (SELECT m.conversation_id, m.id, m.created_at, m.search
                      FROM messaging.messages m
                     WHERE %1$s AND %2$s %3$s
                       AND m.created_at >= $5 AND m.created_at <= $6
                       AND m.deleted_at IS NULL
                       AND ($7::uuid IS NULL OR m.sender_id = $7)
                       AND ($8::text IS NULL OR m.type = $8)
                       AND NOT EXISTS (SELECT FROM messaging.hidden_messages h
                                        WHERE h.user_id = $9 AND h.conversation_id = m.conversation_id
                                          AND h.seq = m.seq)
                     ORDER BY m.created_at DESC, m.id DESC
                     LIMIT $10) AS x
        $q$;
        by_words constant text := 'm.search @@ $4';
        -- ts_match_vq() is @@ in a form no index serves: the primary key has to.
        by_rows constant text := 'ts_match_vq(m.search, $4)';
        -- The ids as values: the planner weighs the primary key's bitmap against the words'.
        in_conversations constant text := 'm.conversation_id = ANY ($1)';
        -- The ids through an InitPlan: planned without weighing each id.
        in_conversations_planned_fast constant text := 'm.conversation_id = ANY (CAST((SELECT $1) AS uuid[]))';
        -- The ids as a hashed set, never an index: for the rows the words' postings found.
        among_conversations constant text := 'm.conversation_id IN (SELECT unnest($1))';
    BEGIN
        -- No caller, no words, or only negated ones (which no index can serve): nothing.
        IF caller IS NULL OR query IS NULL OR querytree(query) IN ('', 'T') THEN
            RETURN;
        END IF;
        max_rows := least(greatest(coalesce(max_rows, 21), 1), 201);
        candidates := least(greatest(coalesce(candidates, 300), 1), 2000);

        -- The caller's conversations and windows, as in messages_read: above
        -- history_from_seq, up to left_seq. Deleting a conversation empties everyone's
        -- window (messaging.delete_conversation), so it drops out here, as from history.
        SELECT array_agg(p.conversation_id ORDER BY p.conversation_id),
               jsonb_object_agg(p.conversation_id, p.history_from_seq) FILTER (WHERE p.history_from_seq > 0),
               jsonb_object_agg(p.conversation_id, p.left_seq) FILTER (WHERE p.left_seq IS NOT NULL)
          INTO conversations, lows, highs
          FROM messaging.participants p
         WHERE p.user_id = caller AND (p.left_seq IS NULL OR p.left_seq > p.history_from_seq)
           AND (in_conversation IS NULL OR p.conversation_id = in_conversation);
        IF conversations IS NULL THEN
            RETURN;
        END IF;
        IF lows IS NOT NULL THEN
            window_sql := ' AND m.seq > coalesce(($2::jsonb ->> m.conversation_id::text)::bigint, 0)';
        END IF;
        IF highs IS NOT NULL THEN
            window_sql := window_sql || ' AND m.seq <= coalesce(($3::jsonb ->> m.conversation_id::text)::bigint, m.seq)';
        END IF;

        -- The range: no message is older than the oldest partition, or newer than now.
        SELECT min(b.bound[1]::timestamptz) INTO oldest
          FROM pg_inherits i
          JOIN pg_class r ON r.oid = i.inhrelid,
               LATERAL regexp_match(pg_get_expr(r.relpartbound, r.oid), 'FROM \(''([^'']+)''\)') AS b(bound)
         WHERE i.inhparent = 'messaging.messages'::regclass;
        oldest := greatest(oldest, since);
        newest := least(coalesce(until, 'infinity'), clock_timestamp());
        IF oldest IS NULL OR newest < oldest THEN
            RETURN;
        END IF;

        -- How many messages the range holds, and how many hold the words: the planner's
        -- estimates, from the statistics.
        EXECUTE format('EXPLAIN (FORMAT JSON) SELECT FROM messaging.messages m'
                       ' WHERE m.created_at >= %L AND m.created_at <= %L', oldest, newest) INTO plan;
        messages_in_range := (plan -> 0 -> 'Plan' ->> 'Plan Rows')::real;
        EXECUTE format('EXPLAIN (FORMAT JSON) SELECT FROM messaging.messages m'
                       ' WHERE m.search @@ %L::tsquery AND m.created_at >= %L AND m.created_at <= %L',
                       query, oldest, newest) INTO plan;
        matches_in_range := (plan -> 0 -> 'Plan' ->> 'Plan Rows')::real;
        -- By the words' matches alone: that is what their postings cost to read, whatever
        -- the filters then leave. A handful of conversations: the planner weighs their
        -- bitmaps against the words' at little cost, month by month.
        -- Below the statistics' smallest frequency the planner guesses half of it, for a word
        -- in no message as for one in thousands: then the postings are counted (an index-only
        -- count, where pages are all-visible), up to `rare`. Not for a phrase: each posting
        -- of its words would be a row read, to check their order.
        IF matches_in_range < probed AND cardinality(conversations) > few AND strpos(query::text, '<') = 0 THEN
            SELECT count(*) <= rare INTO rare_enough
              FROM (SELECT FROM messaging.messages m WHERE m.search @@ query LIMIT rare + 1) AS posting;
        END IF;
        way := CASE WHEN matches_in_range >= common * messages_in_range THEN 'rows'
                    WHEN rare_enough THEN 'words'
                    ELSE 'months' END;

        started := clock_timestamp();
        IF way = 'words' THEN
            EXECUTE format(candidates_sql, by_words, among_conversations, window_sql) INTO slice
            USING conversations, lows, highs, query, oldest, newest, from_sender, of_type, caller, candidates;
            IF slice.ids IS NOT NULL THEN
                found_conversations := slice.conversations;
                found_ids := slice.ids;
                found_times := slice.times;
                found_ranks := slice.ranks;
            END IF;
        ELSE
            -- Newest first until there are enough candidates, the range is read, or the
            -- budget is spent: checked after each statement, so the first always runs and
            -- the last may overrun it.
            slice_end := newest;
            LOOP
                IF way = 'months' THEN
                    slice_start := greatest(date_trunc('month', slice_end, 'UTC'), oldest);
                    EXECUTE format(candidates_sql, by_words, in_conversations, window_sql) INTO slice
                    USING conversations, lows, highs, query, slice_start, slice_end, from_sender, of_type, caller,
                          candidates - cardinality(found_ids);
                ELSE
                    slice_start := greatest(slice_end - width, oldest);
                    slice_started := clock_timestamp();
                    EXECUTE format(candidates_sql, by_rows, in_conversations_planned_fast, window_sql) INTO slice
                    USING conversations, lows, highs, query, slice_start, slice_end, from_sender, of_type, caller,
                          candidates - cardinality(found_ids);
                    -- Twice as wide next time, or as wide as what is left of the budget allows
                    -- at this slice's pace: the time a slice takes grows with its width.
                    width := width * least(2, CASE WHEN budget IS NULL THEN 2 ELSE
                        greatest(extract(epoch FROM budget - (clock_timestamp() - started)), 0)
                        / greatest(extract(epoch FROM clock_timestamp() - slice_started), 0.0001) END);
                END IF;
                IF slice.ids IS NOT NULL THEN
                    found_conversations := found_conversations || slice.conversations;
                    found_ids := found_ids || slice.ids;
                    found_times := found_times || slice.times;
                    found_ranks := found_ranks || slice.ranks;
                END IF;
                slice_end := slice_start - interval '1 microsecond';
                EXIT WHEN slice_end < oldest OR cardinality(found_ids) >= candidates
                          OR clock_timestamp() - started >= budget;
            END LOOP;
            -- Stopped before the start of the range: later pages read down to here again
            -- (and no further, whatever their own time), so they see the same candidates.
            IF slice_end >= oldest THEN
                searched_from := slice_end + interval '1 microsecond';
                older_until := slice_end;
            END IF;
        END IF;
        -- Older matches than the candidates: from the oldest candidate (included) down.
        IF cardinality(found_ids) >= candidates THEN
            older_until := found_times[cardinality(found_times)];
        END IF;

        RETURN QUERY
            SELECT array_agg(f.conversation_id ORDER BY f.rank DESC, f.message_id DESC),
                   array_agg(f.message_id ORDER BY f.rank DESC, f.message_id DESC),
                   array_agg(f.created_at ORDER BY f.rank DESC, f.message_id DESC),
                   array_agg(f.rank ORDER BY f.rank DESC, f.message_id DESC),
                   searched_from, older_until
              FROM (SELECT f.*
                      FROM unnest(found_conversations, found_ids, found_times, found_ranks)
                           AS f(conversation_id, message_id, created_at, rank)
                     WHERE after_rank IS NULL OR f.rank < after_rank OR (f.rank = after_rank AND f.message_id < after_id)
                     ORDER BY f.rank DESC, f.message_id DESC
                     LIMIT max_rows) AS f;
    END
    $fn$;
COMMENT ON FUNCTION messaging.search_messages(tsquery, uuid, uuid, timestamptz, timestamptz, text, integer, real, uuid, integer, interval) IS
    'Message search for the acting user: one page of matches (best ranked first, then newest) after the '
    'cursor (after_rank, after_id), among the newest `candidates` matches in the conversations they take '
    'or took part in, within their window, without deleted or hidden messages; with how far back it read '
    '(searched_from, when not the whole range) and an `until` that reaches older matches (older_until).';
REVOKE ALL ON FUNCTION messaging.search_messages(
    tsquery, uuid, uuid, timestamptz, timestamptz, text, integer, real, uuid, integer, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION messaging.search_messages(
    tsquery, uuid, uuid, timestamptz, timestamptz, text, integer, real, uuid, integer, interval) TO rapport_app;
"""


def upgrade() -> None:
    run_sql(QUERY)
    run_sql(SEARCH)
    run_sql(
        """
        REVOKE ALL ON FUNCTION messaging.message_query(text, text) FROM PUBLIC;
        REVOKE ALL ON FUNCTION messaging.search_snippet(text, tsquery) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION messaging.message_query(text, text) TO rapport_app, rapport_worker;
        GRANT EXECUTE ON FUNCTION messaging.search_snippet(text, tsquery) TO rapport_app, rapport_worker;
        """
    )


def downgrade() -> None:
    run_sql(
        """
        DROP FUNCTION messaging.search_messages(
            tsquery, uuid, uuid, timestamptz, timestamptz, text, integer, real, uuid, integer, interval);
        DROP POLICY messages_definer_read ON messaging.messages;
        DROP FUNCTION messaging.search_snippet(text, tsquery);
        DROP FUNCTION messaging.message_query(text, text);
        """
    )
