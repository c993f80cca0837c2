"""Reading at 10M messages through HTTP: the newest page of history, the conversation list
with exact unread counts, message search; and the plans of the hot queries.

    make bench-messaging-read     # = .venv/bin/python -m bench.messaging_read
    .venv/bin/python -m bench.messaging_read --clients 1 16 --duration 10
    .venv/bin/python -m bench.messaging_read --messages 200000 --conversations 4000 --users 3000 \\
        --reader-conversations 100 --data /tmp/msg-small                  # a small dataset, to try it

The dataset comes from bench.messaging_data (generated on the first run into `--data`,
default /tmp/rapport-bench/messaging-10m, and reused after). The benchmark starts `rapport serve`
on that folder with `RAPPORT_WORKERS` processes (default 2), signs the 16 readers in through
the API (each takes part in 1,000 conversations), then for each concurrency of `--clients`
(default 1 and 16) runs, `--duration` seconds each, one keep-alive connection per client
(bench/_load.py), client i acting as reader i mod 16:

- history largest / mid / small: GET /v1/conversations/{id}/messages (the newest page of
  50), each request to one of the reader's 5 largest conversations (at 10M: 100,000 to
  830,000 messages), 10 of 1,000 to 20,000 messages, or 10 of under 100;
- conversation list: GET /v1/conversations (the first page of 50, each with its exact unread
  count, unread mentions and last message) for a reader in 1,000 conversations;
- search: GET /v1/messages/search?q=... rotating over rare words, common words and two-word
  queries, when the server has the route (otherwise the report says what it answered).

It also reports PostgreSQL's own time per call of each hot function (pg_stat_user_functions,
track_functions = 'pl' set on the bench database) and writes `EXPLAIN (ANALYZE, BUFFERS)`
of the statements inside them, run as rapport_app for a reader (row-level security on),
to bench/results/messaging_explain.txt (search's own statements are bench/message_search.py's
business). Figures to bench/results/messaging_read.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import uvloop
from rich.console import Console
from rich.table import Table

from bench import messaging_data as data
from bench._load import Meter, closed_loop, free_port, server_env_argument
from bench._report import machine
from bench.messaging_send import Sender, Server, processes_serving, sign_in
from rapport.benchmark._http import http_request

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "messaging_read.json"
EXPLAIN_PATH = Path(__file__).resolve().parent / "results" / "messaging_explain.txt"
HOT_FUNCTIONS = ("read_history", "list_conversations", "send_message", "search_messages")

out = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True)


# --------------------------------------------------------------------------- scenarios


def history_maker(port: int, readers: list[Sender], targets: list[dict[str, list[str]]], kind: str) -> Any:
    host = f"127.0.0.1:{port}"
    requests = [
        [
            http_request("GET", f"/v1/conversations/{cid}/messages", host=host, token=reader.token)
            for cid in targets[i][kind]
        ]
        for i, reader in enumerate(readers)
    ]
    rng = random.Random(11)

    def make(client: int, n: int) -> bytes:
        own = requests[client % len(requests)]
        return own[rng.randrange(len(own))]

    return make


def list_maker(port: int, readers: list[Sender]) -> Any:
    host = f"127.0.0.1:{port}"
    requests = [http_request("GET", "/v1/conversations", host=host, token=r.token) for r in readers]

    def make(client: int, n: int) -> bytes:
        return requests[client % len(requests)]

    return make


def search_maker(port: int, readers: list[Sender], words: dict[str, list[str]]) -> Any:
    host = f"127.0.0.1:{port}"
    queries = [q for kind in words.values() for q in kind]

    def make(client: int, n: int) -> bytes:
        reader = readers[client % len(readers)]
        query = queries[(client + n) % len(queries)]
        return http_request("GET", f"/v1/messages/search?q={quote(query)}", host=host, token=reader.token)

    return make


async def function_stats(admin: asyncpg.Connection) -> dict[str, tuple[int, float]]:
    rows = await admin.fetch(
        "SELECT funcname, calls, total_time FROM pg_stat_user_functions WHERE schemaname = 'messaging'"
    )
    return {row["funcname"]: (row["calls"], row["total_time"]) for row in rows}


def function_delta(before: dict[str, tuple[int, float]], after: dict[str, tuple[int, float]]) -> dict[str, Any]:
    delta = {}
    for name in HOT_FUNCTIONS:
        calls = after.get(name, (0, 0.0))[0] - before.get(name, (0, 0.0))[0]
        if calls:
            total = after[name][1] - before.get(name, (0, 0.0))[1]
            delta[name] = {"calls": calls, "ms_per_call": round(total / calls, 3)}
    return delta


async def measured(
    name: str, server: Server, admin: asyncpg.Connection, meter: Meter, make: Any, clients: int, duration: float
) -> dict[str, Any]:
    before_functions = await function_stats(admin)
    before = meter.snapshot()
    result = await closed_loop("127.0.0.1", server.port, clients=clients, make_request=make, duration=duration)
    after = meter.snapshot()
    result["cpu"] = Meter.usage(before, after, result["requests_ok"])
    await asyncio.sleep(11)  # idle backends report their function statistics within about ten seconds
    result["in_postgres"] = function_delta(before_functions, await function_stats(admin))
    return {"scenario": name, **result}


async def search_available(url: str, reader: Sender) -> tuple[bool, str]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        response = await client.get(
            "/v1/messages/search", params={"q": "coffee"}, headers={"authorization": f"Bearer {reader.token}"}
        )
    return response.status_code == 200, f"HTTP {response.status_code}: {response.text[:200]}"


# --------------------------------------------------------------------------- plans

# The statements inside the hot functions of migration 2026_11_29_0014, as those functions
# run them (as rapport_app, for the acting user): their variables become parameters.
HISTORY_NEWEST = """
SELECT array_agg(messaging.render_message(x, $1) ORDER BY x.seq DESC), array_agg(x.id ORDER BY x.seq DESC)
  FROM (SELECT m.* FROM messaging.messages m
         WHERE m.conversation_id = $2 AND m.seq > $3 AND m.seq <= $4
           AND ($5::bigint IS NULL OR m.seq < $5)
           AND NOT EXISTS (SELECT 1 FROM messaging.hidden_messages h WHERE h.user_id = $1
                              AND h.conversation_id = $2 AND h.seq = m.seq)
         ORDER BY m.seq DESC LIMIT $6 + 1) x
"""

LIST_PAGE = """
WITH keys AS (
    SELECT p.conversation_id AS id, p.is_pinned AS pinned, coalesce(c.last_message_at, c.created_at) AS activity
      FROM messaging.participants p
      JOIN messaging.conversations c ON c.id = p.conversation_id
     WHERE p.user_id = $1 AND p.status IN ('active', 'muted') AND c.deleted_at IS NULL
       AND ($4::uuid IS NULL
            OR (p.is_pinned, coalesce(c.last_message_at, c.created_at), c.id)
               < ($2::boolean, $3::timestamptz, $4::uuid))
     ORDER BY p.is_pinned DESC, coalesce(c.last_message_at, c.created_at) DESC, c.id DESC
     LIMIT $5 + 1
), numbered AS MATERIALIZED (
    SELECT p, c, k.activity, row_number() OVER (ORDER BY k.pinned DESC, k.activity DESC, k.id DESC) AS i
      FROM keys k
      JOIN messaging.participants p ON p.conversation_id = k.id AND p.user_id = $1
      JOIN messaging.conversations c ON c.id = k.id
)
SELECT coalesce((
           SELECT json_agg(jsonb_build_object(
               'id', (x.c).id, 'type', (x.c).type, 'name', (x.c).name, 'member_count', (x.c).member_count,
               'last_seq', (x.c).last_seq, 'last_activity_at', x.activity, 'role', (x.p).role,
               'read_seq', (x.p).read_seq,
               'unread_count', messaging.unread_count(x.p, (x.c).last_seq),
               'unread_mentions', messaging.unread_mentions(x.p),
               'last_message', (
                   SELECT messaging.render_message(m, $1) FROM messaging.messages m
                    WHERE m.conversation_id = (x.c).id AND m.seq = (x.c).last_seq
                      AND m.created_at = (x.c).last_message_at AND m.seq > (x.p).history_from_seq))
               ORDER BY x.i)::text
             FROM numbered x WHERE x.i <= $5), '[]'),
       tail.pinned, tail.activity, tail.id
  FROM (SELECT count(*) AS total FROM numbered) t
  LEFT JOIN LATERAL (
      SELECT (x.p).is_pinned AS pinned, x.activity, (x.c).id AS id FROM numbered x
       WHERE x.i = $5 AND t.total > $5) tail ON true
"""

SEND_CHECK = """
SELECT p.status, p.role, p.can_send, c.type, c.status, c.direct_low, c.direct_high
  FROM messaging.participants p JOIN messaging.conversations c ON c.id = p.conversation_id
 WHERE p.conversation_id = $2 AND p.user_id = $1 AND c.deleted_at IS NULL
"""

SEND_INSERT = """
INSERT INTO messaging.messages (
    id, conversation_id, sender_id, type, content, content_metadata, client_message_id,
    reply_to_id, forwarded_from_id, thread_id, mentions, moderation_flagged, created_at)
SELECT i, $2, $1, 'text', 'explain: the quick brown fox', '{}'::jsonb, NULL, NULL, NULL, NULL, '{}'::uuid[],
       messaging.flags('explain: the quick brown fox'), messaging.id_time(i)
  FROM (SELECT kernel.uuid7_like() AS i) x
RETURNING *
"""


async def _explain(connection: asyncpg.Connection, reader: str, title: str, statement: str, *args: Any) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) as `reader`, in a transaction rolled back; run once first,
    so that the plan shows a warm cache, as in the benchmark."""
    for attempt in range(2):
        transaction = connection.transaction()
        await transaction.start()
        try:
            await connection.execute("SELECT set_config('rapport.user_id', $1, true)", reader)
            rows = await connection.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement, *args)
        finally:
            await transaction.rollback()
        if attempt == 1:
            plan = "\n".join(row[0] for row in rows)
            return f"## {title}\n\n{statement.strip()}\n\n{plan}\n"
    raise AssertionError("unreachable")


async def explain_all(urls: Any, dataset: data.Dataset, page: int) -> str:
    """The plans of the hot statements at this size, as rapport_app for reader 0."""
    app = await data.connect(urls.app)
    reader = dataset.readers[0]
    largest = dataset.history_targets[0]["largest"][0]
    size = dataset.conversation_sizes.get(largest, 0)
    try:
        async with app.transaction():
            await app.execute("SELECT set_config('rapport.user_id', $1, true)", reader)
            bounds = await app.fetchrow(
                """SELECT p.history_from_seq AS lo, coalesce(p.left_seq, 9223372036854775807) AS hi
                     FROM messaging.participants p WHERE p.conversation_id = $1 AND p.user_id = $2::uuid""",
                largest,
                reader,
            )
        assert bounds is not None, "reader 0 takes part in their largest conversation"
        sections = [
            await _explain(
                app,
                reader,
                f"read_history: the newest page of the reader's largest conversation ({size:,} messages)",
                HISTORY_NEWEST,
                reader,
                largest,
                bounds["lo"],
                bounds["hi"],
                None,
                page,
            ),
            await _explain(
                app,
                reader,
                "list_conversations: the first page for a reader in 1,000 conversations",
                LIST_PAGE,
                reader,
                None,
                None,
                None,
                page,
            ),
            await _explain(app, reader, "send_message: who may send", SEND_CHECK, reader, largest),
            await _explain(
                app,
                reader,
                "send_message: the insert (its trigger numbers it), rolled back",
                SEND_INSERT,
                reader,
                largest,
            ),
        ]
    finally:
        await app.close()
    if await _has_search(urls):
        sections.append(
            "## search_messages\n\nA definer function that chooses its statements as it goes (see its "
            "migration); bench/message_search.py explains them.\n"
        )
    return "\n".join(sections)


async def _has_search(urls: Any) -> bool:
    owner = await data.connect(urls.owner)
    try:
        found: bool = await owner.fetchval("SELECT to_regproc('messaging.search_messages') IS NOT NULL")
        return found
    finally:
        await owner.close()


# --------------------------------------------------------------------------- the report


def print_table(report: dict[str, Any]) -> None:
    table = Table(title=f"Rapport: reading at {report['dataset']['shape']['messages']:,} messages (HTTP)")
    for column in (
        "scenario",
        "clients",
        "requests",
        "errors",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "in PG ms/call",
        "server CPU ms/req",
        "PG CPU ms/req",
        "generator busy",
        "other core-s",
    ):
        table.add_column(column, justify="left" if column == "scenario" else "right")

    def fmt(value: float | None, digits: int = 1) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    for row in report["scenarios"].values():
        cpu, latency = row["cpu"], row["latency_ms"]
        calls: dict[str, Any] = next(iter(row.get("in_postgres", {}).values()), {})
        in_pg = calls.get("ms_per_call")
        table.add_row(
            row["scenario"],
            str(row["clients"]),
            f"{row['requests_ok']:,}",
            str(row["errors"]),
            fmt(row["requests_per_s"]),
            fmt(latency["p50"], 2),
            fmt(latency["p95"], 2),
            fmt(latency["p99"], 2),
            fmt(latency["max"], 1),
            fmt(in_pg, 2),
            fmt(cpu.get("server_cpu_ms_per_request"), 3),
            fmt(cpu.get("postgres_cpu_ms_per_request"), 3),
            fmt(row["generator"]["busy"], 2),
            fmt(cpu.get("other_processes_core_s"), 2),
        )
    out.print(table)


# --------------------------------------------------------------------------- main


async def run(args: argparse.Namespace, data_dir: Path, report: dict[str, Any]) -> None:
    urls, dataset = await data.open_dataset(data_dir, data.shape_of(args))
    report["dataset"] = dataset.to_json() | {"password": "(bench)"}
    admin = await data.connect(urls.admin.set(database=data.DATABASE))
    await admin.execute(f"ALTER DATABASE {data.DATABASE} SET track_functions = 'pl'")
    server = Server(data_dir, free_port(), args.workers, extra_env=dict(args.server_env))
    try:
        server.wait_healthy()
        serving = processes_serving(server, args.workers)
        report["server"] = {"workers_asked": args.workers, "processes_listening": serving, "url": server.url}
        readers = await sign_in(server.url, dataset.reader_emails)
        meter = Meter(server.process.pid, data_dir / "pgdata")
        searchable, answer = await search_available(server.url, readers[0])
        report["search"] = {"available": searchable, "probe": answer}
        if not searchable:
            err.print(f"[yellow]Search is not served: {answer}[/yellow]")
        rows: dict[str, Any] = {}
        for clients in args.clients:
            plan: list[tuple[str, Any]] = []
            if "history" in args.only:
                plan += [
                    (f"history {kind}", history_maker(server.port, readers, dataset.history_targets, kind))
                    for kind in ("largest", "mid", "small")
                ]
            if "list" in args.only:
                plan.append(("conversation list", list_maker(server.port, readers)))
            if searchable and "search" in args.only:
                plan.append(("search", search_maker(server.port, readers, dataset.search_words)))
            for name, make in plan:
                err.print(f"[dim]{datetime.now():%H:%M:%S}[/dim] {name}, {clients} clients")
                rows[f"{name} c{clients}"] = await measured(name, server, admin, meter, make, clients, args.duration)
        report["scenarios"] = rows
        if not args.no_explain:
            with err.status("EXPLAIN (ANALYZE, BUFFERS) of the hot statements…"):
                report["explain"] = await explain_all(urls, dataset, 50)
    finally:
        await admin.close()
        with err.status("Stopping the server…"):
            server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.messaging_read",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data.shape_arguments(parser)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16], help="concurrencies (default 1 16)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="RAPPORT_WORKERS for the server (default 2)")
    server_env_argument(parser)
    parser.add_argument(
        "--only", nargs="+", choices=("history", "list", "search"), default=["history", "list", "search"]
    )
    parser.add_argument("--no-explain", action="store_true", help="leave out the EXPLAIN of the hot statements")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    parser.add_argument("--explain-output", type=Path, default=EXPLAIN_PATH)
    args = parser.parse_args(argv)
    data_dir = args.data.expanduser().resolve()
    report: dict[str, Any] = {
        "benchmark": "messaging_read",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.messaging_read", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine(),
        "parameters": {"clients": args.clients, "duration_s": args.duration, "workers": args.workers},
        "load_generator": "bench/_load.py: one keep-alive HTTP/1.1 connection per client, closed loop, uvloop",
    }
    began = time.perf_counter()
    try:
        uvloop.run(run(args, data_dir, report))
    except KeyboardInterrupt:
        err.print("[yellow]Interrupted.[/yellow]")
        return 130
    finally:
        data.stop_embedded(data_dir)
    report["elapsed_s"] = round(time.perf_counter() - began, 1)
    print_table(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    if "explain" in report:
        args.explain_output.write_text(f"# {report['command']} ({report['date']})\n\n{report['explain']}")
    err.print(f"Results in {args.output}" + ("" if args.no_explain else f", plans in {args.explain_output}"))
    return 0 if all(row["errors"] == 0 for row in report["scenarios"].values()) else 2


if __name__ == "__main__":
    sys.exit(main())
