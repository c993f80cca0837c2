"""Message search at 10M messages: database time, service-call latency and the plans.

    .venv/bin/python -m bench.message_search                                # 10M messages, 100k conversations
    .venv/bin/python -m bench.message_search --messages 1000000 --conversations 10000
    .venv/bin/python -m bench.message_search --keep /tmp/message-search     # keep (or reuse) the data

Without `--keep` the benchmark makes a throw-away data folder, starts an embedded
PostgreSQL in it, provisions the roles, migrates to head, generates the data in the
database (INSERT ... SELECT over generate_series) and removes the folder at the end.

Generation (as the embedded server's superuser, with triggers off: messages get their
sequence numbers here, not from messaging.sequence_message): accounts, conversations of
skewed sizes (most hold a few messages, a few hold hundreds) started at random over
`--months` months, their messages spread evenly from then to now, one partition per
month, and `--callers` people who each take part in `--per-caller` conversations (some
joined without the history, some left). The texts are drawn from a word list with
Zipf-like frequencies ('the' is in about half of them, most words in very few), the GIN
index is built after the load, then everything is vacuumed and analysed.

Measurement (as `rapport_app`, with a session of each caller's): each query of the mix
runs `--repeat` times, rotating through the callers, as the service runs it: the page's
one statement (`rapport.messaging._search.PAGE_STATEMENT`, `messaging.search_page()`) on
a plain asyncpg pool, then the page's JSON; `EXPLAIN (ANALYZE)` of that statement gives
the time inside PostgreSQL. Each is one client, one search at a time.
`EXPLAIN (ANALYZE, BUFFERS)` of the statement `messaging.search_messages()` runs for each
of its two ways (taken from the function's own source, planned as it plans it) shows
the indexes used. The table goes to stdout, the figures to bench/results/message_search.json.

The embedded server keeps its defaults (shared_buffers 128 MB): the 3 GB of messages are
read through the operating system's cache, so first reads of a page cost more than they
would on a server sized for its data.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg
from rich.console import Console
from rich.table import Table

from bench._database import open_bench_database
from bench._report import machine, percentile

if TYPE_CHECKING:
    from rapport.kernel.direct import DirectPool
    from rapport.kernel.provisioning import DatabaseUrls

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "message_search.json"
DATABASE = "rapport_message_search"

out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)

# The head of the word list: chat words, most frequent first. The tail is made of
# syllables (kalomi, rutesa, ...): tens of thousands of rare words.
COMMON_WORDS = """
the i you to a and it is ok that of in we for on be this have can not so my
hello yes no thanks what just will at do with are me but see now your tomorrow meeting
today time please good great sure all about get call let know think if was there how
they one when send up then back here morning lunch coffee friday monday week weekend
later soon done project update report team client deadline review plan draft doc file
photo video link budget invoice order delivery address phone email office home school
kids dinner game movie music party birthday trip flight hotel train ticket price
contract release deploy server bug fix test issue feature design launch sales demo
""".split()  # noqa: SIM905 (a word list reads better as text)
SYLLABLES = "ka lo mi ru te sa no vi de pa zu be fo ri gu he ja ko li ma ne po qu se ti wa xe yo zi".split()  # noqa: SIM905


@dataclass
class Dataset:
    messages: int
    conversations: int
    callers: list[UUID]
    generated_in_s: float | None = None


def _tail_words(count: int) -> list[str]:
    rng = random.Random(7)
    words: dict[str, None] = {}
    while len(words) < count:
        words["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))] = None
    return [w for w in words if w not in COMMON_WORDS]


# --------------------------------------------------------------------------- generation

# Each step is one statement (asyncpg sends parameters with single statements only):
# (what it does, the SQL, the names of its parameters).
STEPS: list[tuple[str, str, tuple[str, ...]]] = [
    ("seed", "SELECT setseed($1::float8)", ("seed",)),
    (
        "accounts",
        "CREATE TEMP TABLE gen_users AS SELECT n, kernel.uuid7_like() AS id FROM generate_series(1, $1::int) AS n",
        ("users",),
    ),
    ("accounts", "CREATE UNIQUE INDEX ON gen_users (n)", ()),
    (
        "accounts",
        "INSERT INTO auth.users (id, email, status, email_verified_at)"
        " SELECT id, 'm' || n || '@bench.example', 'active', now() FROM gen_users",
        (),
    ),
    # Sizes 1 + 693 × u^6 (median 12, at most 694), scaled below to about --messages in all.
    (
        "conversations",
        """CREATE TEMP TABLE gen_conversations AS
           SELECT n, kernel.uuid7_like() AS id, 1 + floor(693 * power(random(), 6))::int AS size,
                  now() - random() * make_interval(days => 30 * $1::int) AS started, 2 + n % 7 AS members
             FROM generate_series(1, $2::int) AS n""",
        ("months", "conversations"),
    ),
    ("conversations", "CREATE UNIQUE INDEX ON gen_conversations (n)", ()),
    (
        "conversations",
        "UPDATE gen_conversations"
        " SET size = greatest(1, round(size * $1::float8 / (SELECT sum(size) FROM gen_conversations)))",
        ("messages",),
    ),
    (
        "conversations",
        """INSERT INTO messaging.conversations (id, type, name, creator_id, member_count, last_seq, last_message_at,
                                               created_at)
           SELECT c.id, 'group', 'Room ' || c.n, u.id, c.members, c.size, now(), c.started
             FROM gen_conversations c JOIN gen_users u ON u.n = 1 + (c.n * 7919) % $1""",
        ("users",),
    ),
    (
        "participants",
        """INSERT INTO messaging.participants (conversation_id, user_id, role, read_seq, delivered_seq)
           SELECT c.id, u.id, CASE WHEN j = 0 THEN 'owner' ELSE 'member' END, c.size, c.size
             FROM gen_conversations c
             CROSS JOIN LATERAL generate_series(0, c.members - 1) AS j
             JOIN gen_users u ON u.n = 1 + (c.n * 7919 + j * 104729) % $1
           ON CONFLICT DO NOTHING""",
        ("users",),
    ),
    # The callers: each in --per-caller conversations picked at random; one in ten joined
    # without the history, one in twenty left three quarters of the way.
    (
        "participants",
        """INSERT INTO messaging.participants (conversation_id, user_id, role, status, history_from_seq, left_seq,
                                               read_seq, delivered_seq)
           SELECT c.id, u.id, 'member', CASE WHEN pick.r > 0.95 THEN 'left' ELSE 'active' END,
                  CASE WHEN pick.r < 0.1 THEN c.size / 2 ELSE 0 END,
                  CASE WHEN pick.r > 0.95 THEN c.size * 3 / 4 + 1 END, c.size, c.size
             FROM gen_users u
             CROSS JOIN LATERAL (SELECT g.n, random() AS r FROM generate_series(1, $2::int) AS g(n)
                                  ORDER BY random() + 0 * u.n LIMIT $3) AS pick
             JOIN gen_conversations c ON c.n = pick.n
            WHERE u.n <= $1
           ON CONFLICT DO NOTHING""",
        ("callers", "conversations", "per_caller"),
    ),
    (
        "vocabulary",
        "CREATE TEMP TABLE gen_vocabulary (i int PRIMARY KEY, word text NOT NULL)",
        (),
    ),
]

TEXTS = """
CREATE TEMP TABLE gen_texts AS
SELECT t.i, string_agg(v.word, ' ' ORDER BY t.j) AS content
  FROM (SELECT i, j, floor(exp(random() * ln($1::int + 1)))::int AS w
          FROM generate_series(1, $2::int) AS i, generate_series(1, 3 + i % 14) AS j) AS t
  JOIN gen_vocabulary v ON v.i = t.w
 GROUP BY t.i
"""

# Messages of conversations $1..$2: seq k at started + (now - started) × k / (size + 1),
# each text picked by a hash, one in 101 deleted for everyone (content emptied).
MESSAGES = """
INSERT INTO messaging.messages (id, conversation_id, seq, sender_id, type, content, created_at, deleted_at)
SELECT m.id, m.conversation_id, m.k, u.id,
       CASE WHEN m.h % 50 = 0 THEN 'image' WHEN m.h % 97 = 0 THEN 'file' ELSE 'text' END,
       CASE WHEN m.h % 101 = 0 THEN '' ELSE t.content END,
       messaging.id_time(m.id),
       CASE WHEN m.h % 101 = 0 THEN messaging.id_time(m.id) + interval '1 minute' END
  FROM (SELECT c.id AS conversation_id, k, c.n, c.members, abs(hashint8(c.n::bigint * 1000000 + k)::bigint) AS h,
               (lpad(to_hex((extract(epoch FROM c.started + (now() - c.started) * k / (c.size + 1)) * 1000)::bigint),
                     12, '0')
                || '7' || substr(md5(c.n || '/' || k), 1, 3) || '8' || substr(md5(k || '/' || c.n), 1, 15))::uuid AS id
          FROM gen_conversations c, generate_series(1, c.size) AS k
         WHERE c.n BETWEEN $1 AND $2) AS m
  JOIN gen_texts t ON t.i = 1 + m.h % $3
  JOIN gen_users u ON u.n = 1 + (m.n * 7919 + (m.k % m.members) * 104729) % $4
"""

# Some hidden ("delete for me") messages of the callers.
HIDDEN = """
INSERT INTO messaging.hidden_messages (user_id, conversation_id, seq, message_id)
SELECT p.user_id, m.conversation_id, m.seq, m.id
  FROM messaging.participants p
  JOIN messaging.messages m ON m.conversation_id = p.conversation_id AND m.seq = 1 + p.history_from_seq
 WHERE p.user_id = ANY($1) AND abs(hashtext(p.conversation_id::text)::bigint) % 10 = 0
"""


async def _partitions(admin: asyncpg.Connection, months: int) -> None:
    """Partitions for the past months (kernel.ensure_partitions makes the current one and
    those ahead), made as the tables' owner, like the ones it makes."""
    await admin.execute("SET ROLE rapport_owner")
    try:
        for ago in range(1, months + 2):
            first = await admin.fetchval(
                "SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => $1))::date", ago
            )
            name = f"messages_p{first:%Y%m}"
            if await admin.fetchval("SELECT to_regclass('messaging.' || $1::text)", name):
                continue
            following = first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
            await admin.execute(
                f"CREATE TABLE messaging.{name} PARTITION OF messaging.messages"
                f" FOR VALUES FROM ('{first} 00:00+00') TO ('{following} 00:00+00')"
            )
            await admin.execute(f"ALTER TABLE messaging.{name} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY")
            await admin.execute(f"REVOKE ALL ON TABLE messaging.{name} FROM PUBLIC, rapport_app, rapport_worker")
    finally:
        await admin.execute("RESET ROLE")


async def generate(admin: asyncpg.Connection, args: argparse.Namespace) -> Dataset:
    began = time.perf_counter()
    values = {
        "seed": (args.seed % 1000) / 1000,
        "users": args.users,
        "months": args.months,
        "conversations": args.conversations,
        "messages": args.messages,
        "callers": args.callers,
        "per_caller": args.per_caller,
    }
    await _partitions(admin, args.months)
    # No triggers (messages get their sequence here) and no foreign-key checks: a bulk load.
    await admin.execute("SET session_replication_role = replica")
    await admin.execute("SET maintenance_work_mem = '512MB'")
    for what, statement, names in STEPS:
        with err.status(f"{what}…"):
            await admin.execute(statement, *(values[name] for name in names))
    vocabulary = COMMON_WORDS + _tail_words(args.vocabulary - len(COMMON_WORDS))
    await admin.copy_records_to_table("gen_vocabulary", records=list(enumerate(vocabulary, start=1)))
    texts = min(1_000_000, max(args.messages // 10, 10_000))
    with err.status(f"{texts:,} texts…"):
        await admin.execute(TEXTS, len(vocabulary), texts)
        await admin.execute("CREATE UNIQUE INDEX ON gen_texts (i)")
    # Built once after the load: far faster than kept up row by row.
    await admin.execute("DROP INDEX messaging.ix_messages_search")
    chunk = max(1, args.conversations // 20)
    for start in range(1, args.conversations + 1, chunk):
        end = min(start + chunk - 1, args.conversations)
        with err.status(f"Messages of conversations {start:,}–{end:,} of {args.conversations:,}…"):
            await admin.execute(MESSAGES, start, end, texts, args.users)
    with err.status("The GIN index…"):
        await admin.execute("CREATE INDEX ix_messages_search ON messaging.messages USING gin (search)")
    callers = [r["id"] for r in await admin.fetch("SELECT id FROM gen_users WHERE n <= $1 ORDER BY n", args.callers)]
    await admin.execute(HIDDEN, callers)
    await admin.execute("RESET session_replication_role")
    with err.status("VACUUM ANALYZE…"):
        for table in ("auth.users", "messaging.conversations", "messaging.participants", "messaging.hidden_messages"):
            await admin.execute(f"VACUUM (ANALYZE) {table}")
        await admin.execute("VACUUM (ANALYZE) messaging.messages")
    count = await admin.fetchval("SELECT count(*) FROM messaging.messages")
    return Dataset(
        messages=count,
        conversations=args.conversations,
        callers=callers,
        generated_in_s=round(time.perf_counter() - began),
    )


# --------------------------------------------------------------------------- the query mix


def query_mix() -> dict[str, list[str]]:
    """Queries by kind, from the word list the texts were made from."""
    tail = _tail_words(2000)
    return {
        "common word": ["the", "you", "ok", "hello", "meeting", "thanks", "tomorrow", "project"],
        "two common words": ["the meeting", "hello you", "ok thanks", "send report", "call tomorrow", "fix bug"],
        "phrase": ['"the meeting"', '"thanks for"', '"see you"', '"call me"'],
        "rare word": tail[1000:1008],
        "prefix as typed": ["hel", "meet", "tomor", "proj", tail[1500][:3], tail[1501][:4]],
        "or / negation": ["coffee or lunch", "meeting -tomorrow", "deploy or release -bug", "invoice or order"],
        "no match": ["zzyzx", "qqqq", "xylophonist"],
    }


FILTERED = {  # one common word under each filter
    "in one conversation": "the",
    "from one sender": "the",
    "last 30 days": "the",
    "type image": "the",
}


# --------------------------------------------------------------------------- measuring


@dataclass
class Tally:
    db_ms: list[float] = field(default_factory=list)
    service_ms: list[float] = field(default_factory=list)
    results: list[int] = field(default_factory=list)


def summary(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)

    def ms(value: float | None) -> float | None:
        return round(value, 2) if value is not None else None

    return {
        "n": len(ordered),
        "p50": ms(percentile(ordered, 0.50)),
        "p95": ms(percentile(ordered, 0.95)),
        "p99": ms(percentile(ordered, 0.99)),
        "max": ms(ordered[-1] if ordered else None),
    }


@dataclass
class Searcher:
    """Runs a search as a user, the way the service does: the page's one statement on a
    plain asyncpg pool as `rapport_app`, with a session of the caller's."""

    direct: DirectPool
    sessions: dict[UUID, UUID]

    async def timed(
        self, tally: Tally, caller: UUID, query: str, filters: Any = None, cursor: str | None = None
    ) -> str | None:
        """One search measured twice, inside PostgreSQL then end to end; the next page's cursor."""
        from rapport.kernel.actor import Actor
        from rapport.messaging import _search

        actor = Actor(user_id=caller, session_id=self.sessions[caller])
        filters = _search.normalise(query, filters or _search.SearchFilters())
        resumed = _search.decode_cursor(query, filters, cursor) if cursor else None
        horizon = resumed.horizon if resumed else datetime.now(UTC)
        arguments = _search.page_arguments(
            actor=actor, query=query, filters=filters, limit=_search.DEFAULT_LIMIT, cursor=resumed, horizon=horizon
        )
        explained = await self.direct.fetchrow(
            "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + _search.PAGE_STATEMENT, *arguments
        )
        assert explained is not None
        plan = json.loads(explained[0])
        tally.db_ms.append(plan[0]["Planning Time"] + plan[0]["Execution Time"])
        started = time.perf_counter()
        arguments = _search.page_arguments(
            actor=actor, query=query, filters=filters, limit=_search.DEFAULT_LIMIT, cursor=resumed, horizon=horizon
        )
        row = await self.direct.fetchrow(_search.PAGE_STATEMENT, *arguments)
        assert row is not None
        page = json.loads(_search.page_json(row, query=query, filters=filters, resumed=resumed, horizon=horizon))
        tally.service_ms.append((time.perf_counter() - started) * 1000)
        tally.results.append(len(page["items"]))
        following: str | None = page["next"]
        return following


async def open_sessions(admin: asyncpg.Connection, callers: list[UUID]) -> dict[UUID, UUID]:
    """A live session for each caller (the page's statement acts for a session)."""
    rows = await admin.fetch(
        "INSERT INTO auth.sessions (id, user_id, expires_at)"
        " SELECT gen_random_uuid(), u, now() + interval '1 day' FROM unnest($1::uuid[]) AS u"
        " RETURNING user_id, id",
        callers,
    )
    return {row["user_id"]: row["id"] for row in rows}


async def _sample(admin: asyncpg.Connection, caller: UUID) -> asyncpg.Record:
    row = await admin.fetchrow(
        """SELECT c.id AS conversation_id, m.sender_id FROM messaging.participants p
             JOIN messaging.conversations c ON c.id = p.conversation_id
             JOIN messaging.messages m ON m.conversation_id = c.id AND m.seq = 1
            WHERE p.user_id = $1 ORDER BY c.last_seq DESC LIMIT 1""",
        caller,
    )
    assert row is not None, "every caller takes part in conversations"
    return row


async def measure(
    urls: DatabaseUrls, admin: asyncpg.Connection, dataset: Dataset, *, repeat: int, seed: int
) -> dict[str, Tally]:
    from datetime import timedelta

    from rapport.kernel.direct import DirectPool
    from rapport.messaging import _search

    searcher = Searcher(direct=DirectPool(urls.app, size=2), sessions=await open_sessions(admin, dataset.callers))
    rng = random.Random(seed)
    mix = query_mix()
    tallies: dict[str, Tally] = {kind: Tally() for kind in [*mix, "next page", *FILTERED]}
    # Each caller's biggest conversation, and someone who writes in it, for the filtered searches.
    samples = {caller: await _sample(admin, caller) for caller in dataset.callers}
    try:
        with err.status("Warming up…"):
            for queries in mix.values():
                for query in queries:
                    await searcher.timed(Tally(), dataset.callers[0], query)
        for kind, queries in mix.items():
            with err.status(f"{kind}…"):
                for i in range(repeat):
                    await searcher.timed(tallies[kind], rng.choice(dataset.callers), queries[i % len(queries)])
        with err.status("next page…"):
            for i in range(repeat):
                caller, query = rng.choice(dataset.callers), mix["common word"][i % len(mix["common word"])]
                following = await searcher.timed(Tally(), caller, query)
                if following:
                    await searcher.timed(tallies["next page"], caller, query, cursor=following)
        for kind, query in FILTERED.items():
            with err.status(f"{kind}…"):
                for _ in range(repeat):
                    caller = rng.choice(dataset.callers)
                    sample = samples[caller]
                    filters = {
                        "in one conversation": _search.SearchFilters(conversation_id=sample["conversation_id"]),
                        "from one sender": _search.SearchFilters(sender_id=sample["sender_id"]),
                        "last 30 days": _search.SearchFilters(since=datetime.now(UTC) - timedelta(days=30)),
                        "type image": _search.SearchFilters(type="image"),
                    }[kind]
                    await searcher.timed(tallies[kind], caller, query, filters)
    finally:
        await searcher.direct.close()
    return tallies


# The statements messaging.search_messages runs are taken from its own source, so that the
# plans shown are of exactly what it runs: (way, the word's test, the conversations' test).
WAYS = {
    "rows": ("by_rows", "in_conversations_planned_fast"),
    "days": ("by_days", "among_conversations"),
}
# A parameter of the function's statements, in order: $1 to $11.
PARAMETER_TYPES = "uuid[], jsonb, jsonb, tsquery, timestamptz, timestamptz, uuid, text, uuid, integer, tsquery[]"


async def function_statement(admin: asyncpg.Connection, way: str) -> str:
    """The statement the function runs for one way of finding candidates."""
    source: str = await admin.fetchval("SELECT prosrc FROM pg_proc WHERE oid = 'messaging.search_messages'::regproc")
    template = re.search(r"candidates_sql constant text := \$q\$(.*?)\$q\$;", source, re.DOTALL)
    fragments = dict(re.findall(r"(\w+) constant text := '((?:[^']|'')*)';", source))
    assert template is not None, "messaging.search_messages has no candidates_sql"
    words, conversations = (fragments[name].replace("''", "'") for name in WAYS[way])
    return template.group(1).replace("%1$s", words).replace("%2$s", conversations).replace("%3$s", "")


async def explain_way(admin: asyncpg.Connection, caller: UUID, way: str, word: str, days: float) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the function's statement for one way, over the last
    `days` days, as the function runs it: as its owner, with its settings, its parameters
    planned as values (a PREPAREd statement's first, custom, plan)."""
    statement = await function_statement(admin, way)
    conversations = await admin.fetchval(
        "SELECT array_agg(conversation_id ORDER BY conversation_id) FROM messaging.participants"
        " WHERE user_id = $1 AND (left_seq IS NULL OR left_seq > history_from_seq)",
        caller,
    )
    listed = "'{" + ",".join(str(c) for c in conversations) + "}'::uuid[]"
    async with admin.transaction():
        for setting in ("ROLE rapport_owner", "jit = off", "max_parallel_workers_per_gather = 0", "work_mem = '32MB'"):
            await admin.execute(f"SET LOCAL {setting}")
        await admin.execute(f"PREPARE candidates ({PARAMETER_TYPES}) AS {statement}")
        quoted = await admin.fetchval("SELECT quote_literal($1::text)", word)  # EXPLAIN EXECUTE takes no parameters
        # The days' queries the function passes for a slice of those days (none for 'rows').
        day_queries = (
            "NULL"
            if way == "rows"
            else "(SELECT array_agg(messaging.dated_query(messaging.message_query("
            f"{quoted}), d)) FROM generate_series(messaging.search_day(now() - interval '{float(days)} days'),"
            " messaging.search_day(now())) AS d)"
        )
        rows = await admin.fetch(
            "EXPLAIN (ANALYZE, BUFFERS) EXECUTE candidates"
            f"({listed}, NULL, NULL, messaging.message_query({quoted}), now() - interval '{float(days)} days', now(),"
            f" NULL, NULL, '{caller}', 300, {day_queries})"
        )
        await admin.execute("DEALLOCATE candidates")
    # The thousand ids the statement names, once each in a plan, shortened.
    return re.sub(r"'\{[0-9a-f,-]{200,}\}'", f"'{{… {len(conversations)} ids …}}'", "\n".join(row[0] for row in rows))


# --------------------------------------------------------------------------- the report


def report(tallies: dict[str, Tally]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for kind, tally in tallies.items():
        rows[kind] = {
            "db_ms": summary(tally.db_ms),
            "service_ms": summary(tally.service_ms),
            "results_per_page_mean": round(sum(tally.results) / len(tally.results), 1) if tally.results else None,
        }
    every_db = [v for t in tallies.values() for v in t.db_ms]
    every_service = [v for t in tallies.values() for v in t.service_ms]
    rows["all queries"] = {"db_ms": summary(every_db), "service_ms": summary(every_service)}
    return rows


def print_table(rows: dict[str, dict[str, Any]]) -> None:
    table = Table(title="Message search: one page of 20, as rapport_app, 1 client (ms)")
    for column in ("queries", "n", "DB p50", "DB p95", "DB p99", "DB max", "service p50", "service p99", "results"):
        table.add_column(column, justify="left" if column == "queries" else "right")
    for kind, row in rows.items():
        table.add_row(
            kind,
            str(row["db_ms"]["n"]),
            *(f"{row['db_ms'][k]}" for k in ("p50", "p95", "p99", "max")),
            f"{row['service_ms']['p50']}",
            f"{row['service_ms']['p99']}",
            f"{row.get('results_per_page_mean') or ''}",
        )
    out.print(table)


# --------------------------------------------------------------------------- main


async def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    database = await open_bench_database(data_dir, DATABASE)
    urls, admin = database.urls, database.admin
    try:
        marker = data_dir / f"message-dataset-{args.messages}-{args.conversations}-{args.seed}.json"
        existing = await admin.fetchval("SELECT count(*) FROM messaging.conversations")
        if marker.exists() and existing:
            saved = json.loads(marker.read_text())
            dataset = Dataset(
                messages=saved["messages"],
                conversations=args.conversations,
                callers=[UUID(c) for c in saved["callers"]],
            )
            err.print(f"Reusing {dataset.messages:,} messages in {data_dir}")
        else:
            if existing:
                raise SystemExit(f"{data_dir} holds conversations of another run: use an empty --keep folder")
            dataset = await generate(admin, args)
            marker.write_text(json.dumps({"messages": dataset.messages, "callers": [str(c) for c in dataset.callers]}))
        sizes = await admin.fetch(
            """SELECT i.relname, sum(pg_relation_size(p.relid)) AS bytes
                 FROM (VALUES ('messages'), ('ix_messages_search_by_day')) AS i(relname)
                 JOIN pg_class c ON c.relname = i.relname AND c.relnamespace = 'messaging'::regnamespace,
                      LATERAL pg_partition_tree(c.oid) AS p
                GROUP BY i.relname"""
        )
        visible = await admin.fetchval(
            "SELECT count(*) FROM messaging.messages m JOIN messaging.participants p"
            " ON p.conversation_id = m.conversation_id WHERE p.user_id = $1",
            dataset.callers[0],
        )
        plans = {
            f"{way} {word!r}, last {days} days": await explain_way(admin, dataset.callers[0], way, word, days)
            for way, word, days in (("rows", "the", 1), ("days", "team", 2), ("days", "vima", 400))
        }
        tallies = await measure(urls, admin, dataset, repeat=args.repeat, seed=args.seed)
    finally:
        await admin.close()
    return {
        "benchmark": "message_search",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "-m", "bench.message_search", *sys.argv[1:]]),
        "messages": dataset.messages,
        "conversations": dataset.conversations,
        "callers": len(dataset.callers),
        "messages_in_first_callers_conversations": visible,
        "generated_in_s": dataset.generated_in_s,
        "page_size": 20,
        "relation_mib": {row["relname"]: round(float(row["bytes"]) / 2**20, 1) for row in sizes},
        "machine": machine() | {"loadavg_at_start": load_at_start},
        "plans": plans,
        "results": report(tallies),
    }


def stop_embedded_server(data_dir: Path) -> None:
    """Stop the PostgreSQL this process started (pgserver would at exit, after the folder is gone)."""
    with contextlib.suppress(Exception), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        pgserver.get_server(data_dir / "pgdata").cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000_000, help="about this many messages (default 10M)")
    parser.add_argument("--conversations", type=int, default=100_000, help="conversations (default 100,000)")
    parser.add_argument("--users", type=int, default=100_000, help="accounts (default 100,000)")
    parser.add_argument("--months", type=int, default=12, help="months the messages span (default 12)")
    parser.add_argument("--vocabulary", type=int, default=50_000, help="distinct words (default 50,000)")
    parser.add_argument("--callers", type=int, default=8, help="people who search (default 8)")
    parser.add_argument("--per-caller", type=int, default=1000, help="conversations of each (default 1,000)")
    parser.add_argument("--repeat", type=int, default=100, help="searches per kind of query (default 100)")
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--keep", type=Path, help="data folder to keep, and to reuse when it holds the same dataset")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args()
    data_dir = args.keep.expanduser().resolve() if args.keep else Path(tempfile.mkdtemp(prefix="rapport-msearch-"))
    try:
        results = asyncio.run(run(args, data_dir))
    finally:
        stop_embedded_server(data_dir)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    for title, plan in results["plans"].items():
        out.print(f"[bold]messaging.search_messages, way {title}[/bold]\n{plan}\n", markup=True, highlight=False)
    print_table(results["results"])
    made = f"generated in {results['generated_in_s']} s" if results["generated_in_s"] else "reused"
    out.print(f"{results['messages']:,} messages ({made}), sizes (MiB): {results['relation_mib']}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    out.print(f"Figures written to {args.output}")


if __name__ == "__main__":
    main()
