"""After a load: every conversation's counters checked against its rows, the tables
vacuumed and analysed."""

from __future__ import annotations

import asyncpg

from rapport.benchmark._chunks import Loader

# The tables each step fills.
_ALL_TABLES = (
    "auth.users",
    "social.profiles",
    "social.settings",
    "social.contacts",
    "messaging.conversations",
    "messaging.participants",
    "messaging.messages",
    "messaging.mentions",
    "messaging.reactions",
    "messaging.retractions",
    "messaging.message_history",
)


# Every conversation's counters against its rows: a non-zero count is a bug in the generator.
# One hash aggregate over the messages (no per-conversation sort: at 100M rows a count of
# distinct sequences would sort them all); the test checks that sequences have no gaps.
_CHECK = """
WITH m AS (
    SELECT conversation_id, count(*) AS n, max(seq) AS hi, min(seq) AS lo
      FROM messaging.messages GROUP BY conversation_id
), p AS (
    SELECT conversation_id, count(*) AS n, max(read_seq) AS read_hi, min(read_seq) AS read_lo
      FROM messaging.participants GROUP BY conversation_id
)
SELECT count(*) FILTER (WHERE m.n IS DISTINCT FROM c.last_seq OR m.hi IS DISTINCT FROM c.last_seq
                          OR m.lo IS DISTINCT FROM least(c.last_seq, 1)) AS wrong_seq,
       count(*) FILTER (WHERE p.n IS DISTINCT FROM c.member_count) AS wrong_members,
       count(*) FILTER (WHERE p.read_hi > c.last_seq OR p.read_lo < 0) AS wrong_markers,
       count(*) FILTER (WHERE NOT EXISTS (
           SELECT FROM messaging.messages x
            WHERE x.conversation_id = c.id AND x.seq = c.last_seq AND x.id = c.last_message_id
              AND x.created_at = c.last_message_at)) AS wrong_last
  FROM messaging.conversations c
  LEFT JOIN m ON m.conversation_id = c.id
  LEFT JOIN p ON p.conversation_id = c.id
"""


async def check(owner: asyncpg.Connection) -> dict[str, int]:
    """Conversations whose counters disagree with their rows, by kind (all zero when right)."""
    row = await owner.fetchrow(_CHECK)
    assert row is not None  # an aggregate always answers one row
    return {key: int(value) for key, value in row.items()}


async def counts(owner: asyncpg.Connection) -> dict[str, int]:
    found: dict[str, int] = {}
    for table in _ALL_TABLES:
        found[table] = int(await owner.fetchval(f"SELECT count(*) FROM {table}"))
    return found


async def finish(loader: Loader) -> dict[str, int]:
    task = loader.progress.add_task("check counters, VACUUM ANALYZE", total=2)
    wrong = await check(loader.owner)
    if any(wrong.values()):
        raise RuntimeError(f"the counters disagree with the rows: {wrong}")
    loader.progress.advance(task)
    for table in _ALL_TABLES:
        await loader.owner.execute(f"VACUUM (ANALYZE) {table}")
    loader.progress.advance(task)
    return wrong
