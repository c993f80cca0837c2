"""The messages' partitions and indexes around a load: the months before the current one
made as kernel.ensure_partitions() makes later ones, and the secondary indexes (full text,
sender, ...) dropped for the load and rebuilt after it from their catalogue definitions,
saved first in `rapport_bench.dataset`, so a load that stops between the two rebuilds them
when it is run again."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from rapport.benchmark._chunks import Loader
from rapport.benchmark._plan import Shape


async def make_partitions(owner: asyncpg.Connection, shape: Shape) -> None:
    """The months before the current one, which kernel.ensure_partitions() does not make (it
    starts at the current month), made the way it makes the others."""
    month = datetime.fromtimestamp(shape.start_ms / 1000, UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = datetime.fromtimestamp(shape.end_ms / 1000, UTC)
    while month <= last:
        following = (month + timedelta(days=32)).replace(day=1)
        name = f"messages_p{month:%Y%m}"
        if await owner.fetchval("SELECT to_regclass($1)", f"messaging.{name}") is None:
            await owner.execute(
                f"""CREATE TABLE messaging.{name} PARTITION OF messaging.messages
                        FOR VALUES FROM ('{month:%Y-%m-%d} 00:00+00') TO ('{following:%Y-%m-%d} 00:00+00');
                    ALTER TABLE messaging.{name} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
                    REVOKE ALL ON TABLE messaging.{name} FROM PUBLIC, rapport_app, rapport_worker;
                    COMMENT ON TABLE messaging.{name} IS
                        'The rows of messaging.messages of {month:%Y-%m} (UTC), made by rapport bench generate.'"""
            )
        month = following


# The messages' indexes that no constraint owns: dropped for the load, rebuilt after it.
_PLAIN_INDEXES = """
SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition,
       obj_description(i.indexrelid, 'pg_class') AS comment
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid = 'messaging.messages'::regclass
   AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)
 ORDER BY c.relname
"""


async def drop_indexes(loader: Loader) -> list[dict[str, Any]]:
    """The definitions of the indexes the load goes without, saved before they are dropped."""
    saved = await loader.owner.fetchval("SELECT indexes FROM rapport_bench.dataset")
    if saved is not None:
        indexes: list[dict[str, Any]] = json.loads(saved)
        return indexes
    indexes = [dict(row) for row in await loader.owner.fetch(_PLAIN_INDEXES)]
    async with loader.owner.transaction():
        await loader.owner.execute("UPDATE rapport_bench.dataset SET indexes = $1", json.dumps(indexes))
        for index in indexes:
            await loader.owner.execute(f"DROP INDEX messaging.{index['name']}")
    return indexes


async def rebuild_indexes(loader: Loader, indexes: list[dict[str, Any]]) -> None:
    await loader.owner.execute("SET maintenance_work_mem = '512MB'")

    async def work(_: int, index: dict[str, Any]) -> int:
        if await loader.owner.fetchval("SELECT to_regclass($1)", f"messaging.{index['name']}") is None:
            # A partitioned index reads "ON ONLY parent"; made on the parent it reaches every partition.
            await loader.owner.execute(index["definition"].replace(" ON ONLY ", " ON ", 1))
            if index["comment"] is not None:
                await loader.owner.execute(
                    f"COMMENT ON INDEX messaging.{index['name']} IS {_literal(index['comment'])}"
                )
        return 1

    await loader.chunked("index", "rebuild the messages' indexes", indexes, work)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
