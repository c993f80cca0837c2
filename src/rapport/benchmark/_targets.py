"""Seed 004's performance targets, each checked on a statement of its kind run straight
as `rapport_app` for one of the clients (row-level security on), with its
`EXPLAIN (ANALYZE, BUFFERS)`:

- a simple select under 5 ms: one message by id (the lookup edits, replies and reactions make);
- a join under 50 ms: a person's conversations with their unread counts and last messages;
- full-text search under 100 ms: a first page of a word's matches in a person's
  conversations, as the service asks for it (`messaging.search_page`, whose statements use
  the search index keyed by day; its plan shows the function's own time and buffers);
- an insert under 10 ms: a message, its numbering trigger included (committed);
- 1,000+ requests per second per node: the best read throughput through the service, at
  any of the run's concurrencies.
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg

from rapport.benchmark.report import percentile
from rapport.kernel.ids import uuid7

RUNS = 20

SIMPLE_SELECT = """
SELECT m.id, m.seq, m.sender_id, m.content, m.created_at
  FROM messaging.messages m
 WHERE m.conversation_id = $1::uuid AND m.id = $2::uuid AND m.created_at = messaging.id_time($2::uuid)
"""
JOIN = """
SELECT c.id, c.type, c.name, c.last_message_at, c.last_seq - p.read_seq AS unread, m.content AS last_message
  FROM messaging.participants p
  JOIN messaging.conversations c ON c.id = p.conversation_id
  LEFT JOIN messaging.messages m
         ON m.conversation_id = c.id AND m.seq = c.last_seq AND m.created_at = c.last_message_at
 WHERE p.user_id = $1::uuid AND p.status IN ('active', 'muted')
 ORDER BY c.last_message_at DESC NULLS LAST, c.id DESC
 LIMIT 50
"""
FULL_TEXT = """
SELECT searchable, more, items
  FROM messaging.search_page($1::uuid, $2::uuid, NULL, $3, $4, NULL, NULL, NULL, now(), NULL, 20, NULL, NULL, 300,
                             interval '30 milliseconds')
"""
INSERT = """
INSERT INTO messaging.messages (id, conversation_id, sender_id, type, content, created_at)
VALUES ($1::uuid, $2::uuid, $3::uuid, 'text', $4, messaging.id_time($1::uuid))
RETURNING seq
"""
SEARCH_WORD = "deadline"


async def _as(connection: asyncpg.Connection, user: str) -> None:
    await connection.execute("SELECT set_config('rapport.user_id', $1, true)", user)


async def _timed(connection: asyncpg.Connection, user: str, statement: str, arguments: Any) -> list[float]:
    """Milliseconds of RUNS executions, each in its own transaction as `user`."""
    timings = []
    for n in range(RUNS + 1):
        async with connection.transaction():
            await _as(connection, user)
            began = time.perf_counter()
            await connection.fetch(statement, *arguments(n))
            if n:  # the first is a warm-up
                timings.append((time.perf_counter() - began) * 1000)
    return sorted(timings)


async def _explain(connection: asyncpg.Connection, user: str, statement: str, arguments: tuple[Any, ...]) -> str:
    """The plan with actual times and buffers; an insert's is rolled back."""
    transaction = connection.transaction()
    await transaction.start()
    try:
        await _as(connection, user)
        rows = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *arguments)
    finally:
        await transaction.rollback()
    return "\n".join(row[0] for row in rows)


async def check_targets(
    app: asyncpg.Connection,
    *,
    user: str,
    session: str,
    conversation: str,
    message: str,
    best_read_per_node: float | None,
    best_read_at: str | None = None,
) -> list[dict[str, Any]]:
    statements: list[tuple[str, str, float, Any]] = [
        ("simple select", SIMPLE_SELECT, 5, lambda n: (conversation, message)),
        ("join (conversation list)", JOIN, 50, lambda n: (user,)),
        ("full-text search", FULL_TEXT, 100, lambda n: (user, session, SEARCH_WORD, SEARCH_WORD)),
        ("insert (a message)", INSERT, 10, lambda n: (str(uuid7()), conversation, user, f"target insert {n}")),
    ]
    targets = []
    for name, statement, limit, arguments in statements:
        timings = await _timed(app, user, statement, arguments)
        p95 = percentile(timings, 0.95) or 0.0
        targets.append(
            {
                "name": name,
                "unit": "ms",
                "measured": round(p95, 3),
                "statistic": f"p95 of {RUNS}",
                "limit": limit,
                "met": p95 < limit,
                "statement": statement.strip(),
                "explain": await _explain(app, user, statement, arguments(0)),
            }
        )
    targets.append(
        {
            "name": "requests per second per node",
            "unit": "req/s",
            "measured": None if best_read_per_node is None else round(best_read_per_node, 1),
            "statistic": "the best of history and unread through the service, at any concurrency",
            "at": best_read_at,
            "limit": 1000,
            "met": None if best_read_per_node is None else best_read_per_node >= 1000,
            "statement": None,
            "explain": None,
        }
    )
    return targets
