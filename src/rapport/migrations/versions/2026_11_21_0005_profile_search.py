"""Profile search: word-prefix indexes and `social.search_profiles()`.

Why: "Find people" must answer in under 50 ms at a million profiles, and under FORCE'd
row-level security no index on social.profiles can serve it as `rapport_app` (see below).

Three things make it fast:

- Word prefixes as whole lexemes. `'mar':*` in a GIN index gathers every posting list of
  every word starting with "mar" before it can intersect anything: 39 ms for "mar joh"
  and 59 ms for "kowalski a" at 1M profiles. `social.search_prefixes(search_vector)`
  turns each word into its first 1 to 6 letters ('m', 'ma', 'mar', ...), so a prefix
  query becomes exact lexemes that GIN intersects from the rarest one (5 ms and 2 ms).
  A second index holds the prefixes of name words only (weight A), so a word common in
  bios never crowds names out. The plain GIN index on search_vector is dropped: nothing
  else uses it, and left in place the planner ANDs its slow prefix scans into the fast
  ones.
- An index condition under row-level security must be leakproof, unless the row
  security qual folds away. `@@`, `lower()` and `LIKE` are not leakproof, and the
  profiles_read qual (`kernel.in_definer() OR social.can_see_profile(...)`) cannot be
  folded at plan time, so every search was a sequential scan, rapport_owner's too, and
  rapport_app's called can_see_profile() on each of a million rows (15 s). The policy
  profiles_definer_read admits rapport_owner with a literal `true`, which folds the
  whole qual away for that role: exactly the rows kernel.in_definer() admits already
  (only rapport_owner is ever current_user 'rapport_owner'), said so the planner sees it.
  Every definer function reading profiles gains (generate_unique_username's
  `lower(username) = ...` uses ux_profiles_username_lower again).
- `social.search_profiles()`, SECURITY DEFINER, applies the visibility rule and the
  blocks itself and returns one page of (user_id, score); the service then reads the
  page's profiles as rapport_app, through row-level security again.

Revision ID: 2026_11_21_0005
Revises: 2026_11_21_0004
Create Date: 2026-11-21
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_21_0005"
down_revision = "2026_11_21_0004"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    # The raw asyncpg connection: None only once the connection is closed, never in a migration.
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


def upgrade() -> None:
    run_sql(
        """
        -- Prefixes longer than 6 letters add index size (mostly unique entries from
        -- usernames) and little selectivity: the search rechecks longer words against
        -- search_vector with 'word':*.
        CREATE FUNCTION social.search_prefixes(document tsvector) RETURNS tsvector
            LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
            SET search_path = pg_catalog, pg_temp
            AS $$
                SELECT coalesce(array_to_tsvector(array_agg(left(d.lexeme, n))), ''::tsvector)
                  FROM unnest(document) AS d(lexeme, positions, weights),
                       generate_series(1, least(length(d.lexeme), 6)) AS n
            $$;
        COMMENT ON FUNCTION social.search_prefixes(tsvector) IS
            'The first 1 to 6 letters of each word of a document, as lexemes: prefix search by exact match.';

        -- Serves social.search_profiles: words of username, display name and bio by prefix.
        CREATE INDEX ix_profiles_search_prefixes ON social.profiles
            USING gin (social.search_prefixes(search_vector));
        -- Serves social.search_profiles: words of username and display name by prefix.
        CREATE INDEX ix_profiles_name_prefixes ON social.profiles
            USING gin (social.search_prefixes(ts_filter(search_vector, '{a}'::"char"[])));
        DROP INDEX social.ix_profiles_search_vector;
        COMMENT ON INDEX social.ix_profiles_username_prefix IS
            'Serves social.search_profiles: usernames starting with the query, in order.';

        -- The rows kernel.in_definer() admits already, in a form the planner can fold, so
        -- the definer's search may use indexes (see this migration's docstring).
        CREATE POLICY profiles_definer_read ON social.profiles FOR SELECT TO rapport_owner
            USING (true);
        -- The search leaves out accounts that are not active; it reads their ids here.
        CREATE POLICY users_definer_read ON auth.users FOR SELECT TO rapport_owner USING (true);
        -- Serves social.search_profiles: the (few) accounts that are not active.
        CREATE INDEX ix_users_not_active ON auth.users (id) WHERE status <> 'active';

        -- The same reason for lookups by username: as rapport_app, lower(username) = ...
        -- cannot use ux_profiles_username_lower under RLS. This finds the id through the
        -- index; the caller then reads the profile by id, which RLS still checks.
        CREATE FUNCTION social.user_id_for_username(name text) RETURNS uuid
            LANGUAGE sql STABLE SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$ SELECT user_id FROM social.profiles WHERE lower(username) = lower(name) $$;
        COMMENT ON FUNCTION social.user_id_for_username(text) IS
            'The account with this username (any case), or NULL; visibility is the caller''s to check.';
        """
    )
    run_sql(_SEARCH_PROFILES)


# Scoring, highest first; the tier is ten thousand times what ts_rank adds (0-9999):
#   5  the username is the query          4  the username starts with the query
#   3  every word is a word of the name   2  every word starts a word of the name
#   1  every word starts a word somewhere (bio included)
# Candidates come from up to three sources, each cut at `candidates` rows: usernames
# from the query on (btree, in order), name words, and all words. A word source uses its
# prefix index when the planner expects few matches; when it expects many (over 3% of
# profiles and over 4 × candidates: "a", "ma", "love"), a bitmap of them all costs more
# than the budget, so it reads the table in physical order until `candidates` matches
# turn up, stopping after 1024 pages whatever happens. Either way a source holds its first `candidates`
# matches in table order, so every page of one query sees the same candidates, and the
# cursor (score, user_id) walks them without repeats.
_SEARCH_PROFILES = r"""
CREATE FUNCTION social.search_profiles(
    words text[],
    username_prefix text DEFAULT NULL,
    max_rows integer DEFAULT 21,
    after_score integer DEFAULT NULL,
    after_user_id uuid DEFAULT NULL,
    candidates integer DEFAULT 300
) RETURNS TABLE (user_id uuid, score integer)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    -- Parallel scans return rows in no fixed order: a page must see the same candidates.
    SET max_parallel_workers_per_gather = 0
    AS $fn$
    #variable_conflict use_column
    DECLARE
        caller uuid := auth.current_user_id();
        lexemes text[];
        grams tsquery;
        any_words tsquery;
        name_words tsquery;
        whole_name_words tsquery;
        profiles_total real;
        plan json;
        word_source record;
        sources text[] := '{}';
        score_sql constant text := $s$
            (CASE WHEN lower(p.username) = $2 THEN 5
                  WHEN starts_with(lower(p.username), $2) THEN 4
                  WHEN p.search_vector @@ $6 THEN 3
                  WHEN p.search_vector @@ $5 THEN 2
                  WHEN p.search_vector @@ $4 THEN 1
                  ELSE 0 END) * 10000
            + coalesce(least(9999, floor(ts_rank(p.search_vector, $4, 32) * 10000)), 0)::integer$s$;
        visible_sql constant text := $v$
            p.user_id <> $1
            AND p.user_id NOT IN (SELECT h.user_id FROM hidden h)
            AND (p.profile_visibility = 'public'
                 OR (p.profile_visibility = 'contacts' AND p.user_id IN (SELECT k.user_id FROM known k)))$v$;
        source_sql constant text :=
            '(SELECT p.user_id, %s AS score FROM social.profiles p WHERE %s AND %s LIMIT $7)';
    BEGIN
        IF caller IS NULL THEN
            RETURN;
        END IF;
        max_rows := least(greatest(coalesce(max_rows, 21), 1), 201);
        candidates := least(greatest(coalesce(candidates, 300), 1), 1000);
        IF username_prefix !~ '^[a-z0-9_.]{1,30}$' THEN
            username_prefix := NULL;
        END IF;

        -- The words as the documents' own parser and dictionary make them, then quoted
        -- as tsquery lexemes: nothing the user typed is ever parsed as tsquery syntax.
        SELECT array_agg(DISTINCT l.lexeme) INTO lexemes
          FROM unnest(words[1:10]) AS w(word),
               unnest(tsvector_to_array(to_tsvector('simple', w.word))) AS l(lexeme);
        IF lexemes IS NOT NULL THEN
            SELECT string_agg(q.quoted || ':*', ' & ')::tsquery,
                   string_agg(q.quoted || ':*A', ' & ')::tsquery,
                   string_agg(q.quoted || ':A', ' & ')::tsquery,
                   string_agg(DISTINCT q.gram, ' & ')::tsquery
              INTO any_words, name_words, whole_name_words, grams
              FROM (SELECT '''' || replace(replace(l, '\', '\\'), '''', '''''') || '''' AS quoted,
                           '''' || replace(replace(left(l, 6), '\', '\\'), '''', '''''') || '''' AS gram
                      FROM unnest(lexemes) AS l) AS q;
        END IF;

        IF username_prefix IS NOT NULL THEN
            sources := sources || format(
                '(SELECT p.user_id, %s AS score FROM social.profiles p'
                ' WHERE lower(p.username) ~>=~ $2 AND lower(p.username) ~<~ ($2 || ''~'') AND %s'
                ' ORDER BY lower(p.username) USING ~<~ LIMIT $7)',
                score_sql, visible_sql);
        END IF;
        IF grams IS NOT NULL THEN
            SELECT c.reltuples INTO profiles_total FROM pg_class c WHERE c.oid = 'social.profiles'::regclass;
            FOR word_source IN
                SELECT * FROM (VALUES
                    ('social.search_prefixes(ts_filter(p.search_vector, ''{a}''::"char"[]))', '$5'),  -- name words
                    ('social.search_prefixes(p.search_vector)', '$4')                                -- all words
                ) AS v(indexed, words)
            LOOP
                EXECUTE format('EXPLAIN (FORMAT JSON) SELECT FROM social.profiles p WHERE %s @@ %L::tsquery',
                               word_source.indexed, grams) INTO plan;
                IF (plan -> 0 -> 'Plan' ->> 'Plan Rows')::real <= greatest(4 * candidates, 0.03 * profiles_total) THEN
                    sources := sources || format(source_sql, score_sql,
                        format('%s @@ $3 AND p.search_vector @@ %s', word_source.indexed, word_source.words),
                        visible_sql);
                ELSE
                    sources := sources || format(source_sql, score_sql,
                        format('p.ctid < ''(1024,0)''::tid AND p.search_vector @@ %s', word_source.words),
                        visible_sql);
                END IF;
            END LOOP;
        END IF;
        IF cardinality(sources) = 0 THEN
            RETURN;
        END IF;

        RETURN QUERY EXECUTE format($q$
            WITH hidden AS MATERIALIZED (
                SELECT b.blocked_id AS user_id FROM social.blocks b WHERE b.blocker_id = $1
                UNION ALL
                SELECT b.blocker_id FROM social.blocks b WHERE b.blocked_id = $1
                UNION ALL
                -- Nobody finds an account that is not active: unverified, suspended, banned, deleted.
                SELECT u.id FROM auth.users u WHERE u.status <> 'active'
            ), known AS MATERIALIZED (
                -- Whose contact list holds the caller: their contacts-only profiles show.
                SELECT c.owner_id AS user_id FROM social.contacts c WHERE c.contact_user_id = $1
            )
            SELECT c.user_id, c.score FROM (%s) AS c
             WHERE $8::integer IS NULL OR c.score < $8 OR (c.score = $8 AND c.user_id > $9)
             ORDER BY c.score DESC, c.user_id
             LIMIT $10$q$, array_to_string(sources, ' UNION '))
        USING caller, username_prefix, grams, any_words, name_words, whole_name_words, candidates,
              after_score, after_user_id, max_rows;
    END
    $fn$;
COMMENT ON FUNCTION social.search_profiles(text[], text, integer, integer, uuid, integer) IS
    'Profile search for the acting user: one page of (user_id, score), best first, after the '
    'cursor (after_score, after_user_id). Honours profile visibility and blocks in either '
    'direction; leaves the caller out.';
REVOKE ALL ON FUNCTION social.search_profiles(text[], text, integer, integer, uuid, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION social.search_profiles(text[], text, integer, integer, uuid, integer)
    TO rapport_app, rapport_worker;
"""


def downgrade() -> None:
    run_sql(
        """
        DROP FUNCTION social.search_profiles(text[], text, integer, integer, uuid, integer);
        DROP FUNCTION social.user_id_for_username(text);
        DROP POLICY profiles_definer_read ON social.profiles;
        DROP INDEX auth.ix_users_not_active;
        DROP POLICY users_definer_read ON auth.users;
        -- Serves profile search: words of username, display name and bio, with prefixes.
        CREATE INDEX ix_profiles_search_vector ON social.profiles USING gin (search_vector);
        COMMENT ON INDEX social.ix_profiles_username_prefix IS NULL;
        DROP INDEX social.ix_profiles_name_prefixes;
        DROP INDEX social.ix_profiles_search_prefixes;
        DROP FUNCTION social.search_prefixes(tsvector);
        """
    )
