"""Message search reads only the days it searches: the full-text index keys each word by
its message's day.

Why: a search wants the newest matches in the caller's conversations, a slice of time at a
time, but a GIN index answers for its whole partition. For a word in a few percent of the
messages ('meeting'), every slice built a bitmap of the month's 70,000 postings to keep the
few hundred of its hours, and month by month the caller's thousand conversations were
weighed against the primary key (10,000 buffers a slice): 40 to 90 ms a search at 10M
messages, most of it reading postings and keys the search then threw away.

Now the index holds each word as `<day>|<word>` (`messaging.dated_search`: the day is the
message's UTC day, counted from 1970-01-01; prefixes still work: 'hel':* becomes
'20787|hel':*). A slice of days asks the index for each of its days' words (what the index
can answer of the query, `messaging.dated_query`: negations left out, phrases as AND,
each word keyed by the day; one look-up per day, OR'd in one bitmap), reads exactly that
slice's postings, and checks the query itself on each row's own vector: a day of 'meeting' is about 900,
read in a fraction of a millisecond. The caller's conversations are then kept by hashing
their ids. The plain index on `search` goes: the dated one serves every search, and a
message still costs one index entry per word.

Three things the planner must not do, and how the statement keeps it from them (each
measured on the 10M-message dataset, docs/PERFORMANCE.md):
- AND the words' bitmap with a scan of the (id, created_at) index over the whole slice
  (its estimate of a month of rare words' days is tens of thousands of rows): the dated
  scan sits behind a fence (OFFSET 0), the slice's time bounds outside it. The cost: no
  pruning of partitions for it, a few empty look-ups in each other partition.
- Weigh each day's query against each partition's statistics (10 to 35 ms of planning
  for a month of days): the days' queries go in through an InitPlan.
- Join the matches to the caller's thousand conversations in a nested loop: their ids are
  tested by hashing (`coalesce(id = ANY (ids), false)`, never an index condition). For a
  handful of conversations the ids go inside the fence, where the primary key's bitmap of
  them may be ANDed with the words'.

The function keeps its signature, its answers and its paging (`searched_from`,
`older_until`); what changes is how it finds candidates:
- 'rows' (words in over 4% of the range's messages, and in many messages) as before: the
  caller's newest messages, tested one by one;
- 'days' otherwise: slices of whole days, newest first, the first sized from the expected
  matches (a single day for common words, the whole range for rare ones, at most a month
  otherwise), then growing
  with the pace as before until there are enough candidates, the range is read, or the
  budget is spent.
- The range's size comes from the partitions' row counts (pg_class), not a second
  EXPLAIN; the words' expected matches still come from the planner's statistics. Without
  statistics (never analysed), every word goes by the index.

`messaging.search_page` makes a whole page in one statement for the hot paths' pool (the
route had two statements in a transaction through SQLAlchemy: 3.5 ms of the server's CPU a
search).

Revision ID: 2026_11_30_0026
Revises: 2026_11_30_0025
Create Date: 2026-11-30
"""

from importlib import import_module

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0026"
down_revision = "2026_11_30_0025"
branch_labels = None
depends_on = None

# Search as migration 2026_11_29_0017 left it: what the downgrade restores.
_HOT = import_module("rapport.migrations.versions.2026_11_29_0017_hot_definers")


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


DATED = r"""
-- No SET clauses on these two: an index expression runs for every row written, and a
-- function with SET cannot be inlined. Everything they call is in pg_catalog.
CREATE FUNCTION messaging.search_day(at timestamptz) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT pg_catalog.floor(pg_catalog.date_part('epoch', at) / 86400)::integer $$;
COMMENT ON FUNCTION messaging.search_day(timestamptz) IS
    'The UTC day of a moment, counted from 1970-01-01: the key of messaging.dated_search.';

-- The lexemes alone (the index holds no positions anyway), built from an array: 8 µs a
-- message, where rewriting the vector's text and parsing it again took 60 (and the same as
-- an SQL function, which cannot be inlined with its subquery, 65).
CREATE FUNCTION messaging.dated_search(search tsvector, at timestamptz) RETURNS tsvector
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
    DECLARE
        prefix text := messaging.search_day(at)::pg_catalog.text || '|';
    BEGIN
        RETURN pg_catalog.array_to_tsvector(ARRAY(
            SELECT prefix || lexeme FROM pg_catalog.unnest(pg_catalog.tsvector_to_array(search)) AS lexeme));
    END
    $$;
COMMENT ON FUNCTION messaging.dated_search(tsvector, timestamptz) IS
    'A message''s words keyed by its day (''20787|word'', without positions): what the search index holds.';

-- What the index can answer of a query, keyed by the day: its indexable part (querytree()
-- leaves out negations), phrases as plain AND (the dated vector has no positions), each
-- word prefixed with the day. A superset of the query's matches that day: the search checks
-- the query itself on each row's own vector.
CREATE FUNCTION messaging.dated_query(query tsquery, day integer) RETURNS tsquery
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
        SELECT pg_catalog.regexp_replace(
                   pg_catalog.regexp_replace(pg_catalog.querytree(query), '<(-|[0-9]+)>', '&', 'g'),
                   '''((?:[^'']|'''')*)''', '''' || day || '|\1''', 'g')::pg_catalog.tsquery
    $$;
COMMENT ON FUNCTION messaging.dated_query(tsquery, integer) IS
    'What the search index can answer of the query on one day: its indexable part, phrases as AND, '
    'each word keyed by the day. A superset of that day''s matches.';

REVOKE ALL ON FUNCTION messaging.search_day(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION messaging.dated_search(tsvector, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION messaging.dated_query(tsquery, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION messaging.search_day(timestamptz) TO rapport_app, rapport_worker;
GRANT EXECUTE ON FUNCTION messaging.dated_search(tsvector, timestamptz) TO rapport_app, rapport_worker;
GRANT EXECUTE ON FUNCTION messaging.dated_query(tsquery, integer) TO rapport_app, rapport_worker;

-- Built on every partition (a large table takes minutes: see docs/OPERATIONS.md).
SET maintenance_work_mem = '256MB';
CREATE INDEX ix_messages_search_by_day ON messaging.messages
    USING gin (messaging.dated_search(search, created_at));
RESET maintenance_work_mem;
DROP INDEX messaging.ix_messages_search;
"""

SEARCH = r"""
CREATE OR REPLACE FUNCTION messaging.search_messages(
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
    -- A search plans and runs in milliseconds: compiling it, or starting workers, costs more.
    SET jit = off
    SET max_parallel_workers_per_gather = 0
    SET work_mem = '32MB'
    AS $fn$
    #variable_conflict use_column
    DECLARE
        -- From this share of the range's messages on: read by the caller's conversations.
        common constant real := 0.04;
        -- Up to this many conversations, their ids go in as values (see the migration).
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
        width interval := interval '1 hour';
        days integer := 1;
        first_day integer;
        last_day integer;
        day_queries tsquery[];
        dated_text text;
        started timestamptz;
        slice_started timestamptz;
        found_conversations uuid[] := '{}';
        found_ids uuid[] := '{}';
        found_times timestamptz[] := '{}';
        found_ranks real[] := '{}';
        slice record;
        -- One statement for both ways: %4$s is what it reads, %1$s how it tests the words,
        -- %2$s how it keeps the caller's conversations, %3$s their windows as in
        -- messages_read. Each is one of the constant texts below: nothing typed by anyone.
        candidates_sql constant text := $q$
            SELECT array_agg(x.conversation_id ORDER BY x.created_at DESC, x.id DESC) AS conversations,
                   array_agg(x.id ORDER BY x.created_at DESC, x.id DESC) AS ids,
                   array_agg(x.created_at ORDER BY x.created_at DESC, x.id DESC) AS times,
                   array_agg(ts_rank_cd(x.search, $4, 1 | 32) ORDER BY x.created_at DESC, x.id DESC) AS ranks
              FROM (SELECT m.conversation_id, m.id, m.created_at, m.search
                      FROM %4$s AS m
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
        -- The table, for the caller's rows.
        all_messages constant text := 'messaging.messages';
        -- Each day of the slice looked up in the dated index (one scan per day, OR'd in one
        -- bitmap), behind a fence: the slice's time bounds stay outside it, or the planner
        -- would AND the words' bitmap with a scan of the (id, created_at) index over the
        -- whole slice. The days go in through an InitPlan: as values, the planner would weigh
        -- each day's query against each partition's statistics (tens of milliseconds of
        -- planning for a month of days).
        -- Inside, the slice's months ($12 and $13, the months' bounds: the partitions')
        -- prune the partitions, a bound no row of them fails: nothing for an index.
        days_messages constant text := '(SELECT * FROM messaging.messages d'
            ' WHERE messaging.dated_search(d.search, d.created_at) @@ ANY (CAST((SELECT $11) AS tsquery[]))'
            ' AND d.created_at >= $12 AND d.created_at < $13 OFFSET 0)';
        -- A handful of conversations: their ids inside the fence too, so that the planner may
        -- AND the primary key's bitmap of them with the words'.
        days_messages_of_few constant text := '(SELECT * FROM messaging.messages d'
            ' WHERE messaging.dated_search(d.search, d.created_at) @@ ANY (CAST((SELECT $11) AS tsquery[]))'
            ' AND d.created_at >= $12 AND d.created_at < $13 AND d.conversation_id = ANY ($1) OFFSET 0)';
        -- The words on the row's own vector: what the dated index found, checked again.
        by_words constant text := 'm.search @@ $4';
        -- ts_match_vq() is @@ in a form no index serves: the primary key has to.
        by_rows constant text := 'ts_match_vq(m.search, $4)';
        -- The ids through an InitPlan: planned without weighing each id.
        in_conversations_planned_fast constant text := 'm.conversation_id = ANY (CAST((SELECT $1) AS uuid[]))';
        -- The ids as values, tested by hashing (not as an index condition: coalesce() is none).
        among_conversations constant text := 'coalesce(m.conversation_id = ANY ($1), false)';
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
        SELECT array_agg(p.conversation_id),
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

        -- The range: no message is older than the oldest partition, or newer than now. The
        -- partitions' row counts (as the last ANALYZE or VACUUM left them) give its size.
        SELECT min(b.bound[1]::timestamptz), sum(r.reltuples) FILTER (WHERE r.reltuples > 0)
          INTO oldest, messages_in_range
          FROM pg_inherits i
          JOIN pg_class r ON r.oid = i.inhrelid,
               LATERAL regexp_match(pg_get_expr(r.relpartbound, r.oid), 'FROM \(''([^'']+)''\)') AS b(bound)
         WHERE i.inhparent = 'messaging.messages'::regclass;
        IF since IS NOT NULL AND oldest IS NOT NULL AND since > oldest AND messages_in_range IS NOT NULL THEN
            -- Only part of the table: its share of the whole, by time (messages arrive
            -- roughly evenly; a guess is enough to pick a way).
            messages_in_range := messages_in_range * greatest(extract(epoch FROM clock_timestamp() - since), 1)
                                 / greatest(extract(epoch FROM clock_timestamp() - oldest), 1);
        END IF;
        oldest := greatest(oldest, since);
        newest := least(coalesce(until, 'infinity'), clock_timestamp());
        IF oldest IS NULL OR newest < oldest THEN
            RETURN;
        END IF;

        -- How many messages hold the words: the planner's estimate, from the statistics.
        EXECUTE format('EXPLAIN (FORMAT JSON) SELECT FROM messaging.messages m'
                       ' WHERE m.search @@ %L::tsquery AND m.created_at >= %L AND m.created_at <= %L',
                       query, oldest, newest) INTO plan;
        matches_in_range := (plan -> 0 -> 'Plan' ->> 'Plan Rows')::real;
        -- Reading the caller's rows only pays for a word that is both common and in many
        -- messages (a small table's postings are cheap whatever the share); without
        -- statistics (partitions never analysed) nothing says a word is common.
        way := CASE WHEN matches_in_range >= common * messages_in_range AND matches_in_range >= 10 * candidates
                    THEN 'rows' ELSE 'days' END;

        -- The first slice: by days, the whole range when it holds fewer matches than the
        -- candidates wanted (all are needed: one statement reads them), otherwise as many
        -- days as should hold about twice the candidates, were the matches spread evenly
        -- over the range, up to a month (so that a search out of time still answers from
        -- the newest); by the caller's rows, an hour. Later slices grow with the pace.
        -- The query with each word keyed by a day left blank (a control character, never
        -- in a lexeme), filled in for each day of a slice: as messaging.dated_query makes
        -- it, for a cast a day instead of a regular expression a day.
        dated_text := regexp_replace(regexp_replace(querytree(query), '<(-|[0-9]+)>', '&', 'g'),
                                     '''((?:[^'']|'''')*)''', E'''\x01|\\1''', 'g');
        first_day := messaging.search_day(oldest);
        last_day := messaging.search_day(newest);
        IF way = 'days' THEN
            days := CASE WHEN matches_in_range < candidates THEN last_day - first_day + 1
                         ELSE least(greatest(ceil((last_day - first_day + 1)
                                                  * (2 * candidates / greatest(matches_in_range, 1))), 1), 31) END;
        END IF;
        started := clock_timestamp();
        slice_end := newest;
        -- Newest first until there are enough candidates, the range is read, or the budget
        -- is spent: checked after each statement, so the first always runs and the last
        -- may overrun it.
        LOOP
            IF way = 'days' THEN
                -- Whole days: from the day `days` before the slice's end to its end.
                slice_start := greatest(to_timestamp(86400.0 * (messaging.search_day(slice_end) - days + 1)), oldest);
                SELECT array_agg(replace(dated_text, E'\x01', d::text)::tsquery)
                  INTO day_queries
                  FROM generate_series(messaging.search_day(slice_start), messaging.search_day(slice_end)) AS d;
            ELSE
                slice_start := greatest(slice_end - width, oldest);
            END IF;
            slice_started := clock_timestamp();
            IF way = 'days' THEN
                EXECUTE format(candidates_sql, by_words, among_conversations, window_sql,
                               CASE WHEN cardinality(conversations) <= few THEN days_messages_of_few
                                    ELSE days_messages END) INTO slice
                USING conversations, lows, highs, query, slice_start, slice_end, from_sender, of_type, caller,
                      candidates - cardinality(found_ids), day_queries, date_trunc('month', slice_start, 'UTC'),
                      date_trunc('month', slice_end, 'UTC') + interval '1 month';
            ELSE
                EXECUTE format(candidates_sql, by_rows, in_conversations_planned_fast, window_sql, all_messages)
                INTO slice
                USING conversations, lows, highs, query, slice_start, slice_end, from_sender, of_type, caller,
                      candidates - cardinality(found_ids), NULL::tsquery[], NULL::timestamptz, NULL::timestamptz;
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
            -- By days: as many as the matches this slice found say the candidates still
            -- wanted need (half as many again), eight times as many when it found none, and
            -- no more than what is left of the budget allows at this slice's pace. By rows:
            -- twice as wide, within the budget alike. The time a slice takes grows with its
            -- width; which matches are candidates does not depend on it (the newest, in order).
            IF way = 'days' THEN
                days := greatest(least(
                    CASE WHEN slice.ids IS NULL THEN days * 8
                         ELSE ceil(1.5 * (candidates - cardinality(found_ids)) * days / cardinality(slice.ids)) END,
                    days * 8,
                    CASE WHEN budget IS NULL THEN days * 8 ELSE floor(days *
                        greatest(extract(epoch FROM budget - (clock_timestamp() - started)), 0)
                        / greatest(extract(epoch FROM clock_timestamp() - slice_started), 0.0001)) END), 1);
            ELSE
                width := width * least(2, CASE WHEN budget IS NULL THEN 2 ELSE
                    greatest(extract(epoch FROM budget - (clock_timestamp() - started)), 0)
                    / greatest(extract(epoch FROM clock_timestamp() - slice_started), 0.0001) END);
            END IF;
        END LOOP;
        -- Stopped before the start of the range: later pages read down to here again
        -- (and no further, whatever their own time), so they see the same candidates.
        IF slice_end >= oldest THEN
            searched_from := slice_end + interval '1 microsecond';
            older_until := slice_end;
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
"""

# A page of search results in one statement on the hot paths' pool: who acts (checked),
# the query parsed, the candidates (search_messages), and the page's messages rendered
# as history renders them, with their rank and snippet. As a definer it reads the
# messages search_messages chose for the caller (their conversations, their windows,
# nothing hidden or deleted); a message gone since is left out of the items, and still
# counts for the cursor, as before.
PAGE = r"""
CREATE FUNCTION messaging.search_page(
    acting_user uuid, session uuid, api_key uuid, q text, last_word text,
    in_conversation uuid, from_sender uuid, since timestamptz, until timestamptz, of_type text,
    page_size integer, after_rank real, after_id uuid, candidates integer, budget interval
) RETURNS TABLE (searchable boolean, searched_from timestamptz, older_until timestamptz, items text,
                 more boolean, last_rank real, last_id uuid)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        parsed tsquery;
    BEGIN
        PERFORM auth.act_for_request(acting_user, session, api_key);
        parsed := messaging.message_query(q, last_word);
        IF querytree(parsed) IN ('', 'T') THEN
            RETURN QUERY SELECT false, NULL::timestamptz, NULL::timestamptz, ''::text, false, NULL::real, NULL::uuid;
            RETURN;
        END IF;
        RETURN QUERY
            WITH found AS (
                SELECT s.searched_from AS s_from, s.older_until AS s_older, p.message_id, p.rank, p.position, m
                  FROM messaging.search_messages(parsed, in_conversation, from_sender, since, until, of_type,
                                                 page_size + 1, after_rank, after_id, candidates, budget) AS s
                  LEFT JOIN LATERAL unnest(s.conversation_ids, s.message_ids, s.created_ats, s.ranks) WITH ORDINALITY
                       AS p (conversation_id, message_id, created_at, rank, position) ON true
                  LEFT JOIN messaging.messages m
                    ON m.conversation_id = p.conversation_id AND m.id = p.message_id AND m.created_at = p.created_at
            ), page AS (
                SELECT * FROM found WHERE found.message_id IS NOT NULL ORDER BY found.position LIMIT page_size
            )
            SELECT true,
                   (SELECT max(found.s_from) FROM found),
                   (SELECT max(found.s_older) FROM found),
                   coalesce((SELECT string_agg((messaging.render_message(page.m, acting_user)
                                                || jsonb_build_object('rank', page.rank, 'snippet',
                                                                      messaging.search_snippet((page.m).content, parsed)))::text,
                                               ',' ORDER BY page.position)
                               FROM page WHERE (page.m).id IS NOT NULL), ''),
                   (SELECT count(*) FROM found WHERE found.message_id IS NOT NULL) > page_size,
                   (SELECT page.rank FROM page ORDER BY page.position DESC LIMIT 1),
                   (SELECT page.message_id FROM page ORDER BY page.position DESC LIMIT 1);
    END
    $$;
COMMENT ON FUNCTION messaging.search_page(uuid, uuid, uuid, text, text, uuid, uuid, timestamptz, timestamptz, text,
                                          integer, real, uuid, integer, interval) IS
    'One page of GET /v1/messages/search for the acting user: the items as JSON, where the search read to, '
    'and the last row''s rank and id for the cursor. searchable is false for a query with no word to find.';
REVOKE ALL ON FUNCTION messaging.search_page(uuid, uuid, uuid, text, text, uuid, uuid, timestamptz, timestamptz, text,
                                             integer, real, uuid, integer, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION messaging.search_page(uuid, uuid, uuid, text, text, uuid, uuid, timestamptz, timestamptz,
                                                text, integer, real, uuid, integer, interval) TO rapport_app;
"""


def upgrade() -> None:
    run_sql(DATED)
    run_sql(SEARCH)
    run_sql(PAGE)


def downgrade() -> None:
    run_sql(
        """
        DROP FUNCTION messaging.search_page(uuid, uuid, uuid, text, text, uuid, uuid, timestamptz, timestamptz, text,
                                            integer, real, uuid, integer, interval);
        CREATE INDEX ix_messages_search ON messaging.messages USING gin (search);
        DROP INDEX messaging.ix_messages_search_by_day;
        """
    )
    run_sql(_HOT.SEARCH)
    run_sql(
        """
        DROP FUNCTION messaging.dated_query(tsquery, integer);
        DROP FUNCTION messaging.dated_search(tsvector, timestamptz);
        DROP FUNCTION messaging.search_day(timestamptz);
        """
    )
