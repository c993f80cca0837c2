"""Loading in chunks that each commit with their own progress row, as Rapport's owner
role: an interrupted load, run again, continues after the last chunk that committed and
makes the same rows (the plan comes from the seed; `rapport_bench.dataset` keeps it).

PostgreSQL refuses `COPY FROM` into a table under forced row-level security, for its owner
too. Each chunk's transaction therefore switches FORCE off on the tables it fills (the
owner then passes their policies; `rapport_app` and `rapport_worker` never do, FORCE or
not) and, for the tables whose counters the generator writes itself, the triggers that
keep them (`sequence_message`, `count_members`); it switches both back on before it
commits. A chunk that fails rolls its switches back with its rows: the database is never
left with a table unforced or a trigger off.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import asyncpg
from rich.progress import Progress

from rapport.benchmark._plan import Plan, Shape
from rapport.benchmark.rows import copy_chunks

_BOOKKEEPING = """
CREATE SCHEMA IF NOT EXISTS rapport_bench;
COMMENT ON SCHEMA rapport_bench IS 'What rapport bench generate loaded, and how far it got.';
CREATE TABLE IF NOT EXISTS rapport_bench.dataset (
    id integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    shape jsonb NOT NULL,
    indexes jsonb,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    seconds real
);
CREATE TABLE IF NOT EXISTS rapport_bench.progress (
    step text NOT NULL,
    chunk integer NOT NULL,
    rows bigint NOT NULL,
    done_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (step, chunk)
);
REVOKE ALL ON SCHEMA rapport_bench FROM PUBLIC;
"""


class BenchDataError(RuntimeError):
    """The database cannot take this data set (another one is there, or the disk is short)."""


async def _existing_shape(owner: asyncpg.Connection) -> Shape | None:
    row = await owner.fetchrow("SELECT shape FROM rapport_bench.dataset")
    if row is None:
        return None
    return Shape(**json.loads(row["shape"]))


async def open_dataset(owner: asyncpg.Connection, wanted: Shape) -> tuple[Shape, bool]:
    """The shape to load: the one already begun when it is the same data set (its time span
    kept), or `wanted` in a database holding no conversations yet.

    Raises:
        BenchDataError: another data set, or data not made by rapport bench, is there.
    """
    await owner.execute(_BOOKKEEPING)
    existing = await _existing_shape(owner)
    if existing is not None:
        same = (existing.messages, existing.users, existing.seed) == (wanted.messages, wanted.users, wanted.seed)
        if not same:
            raise BenchDataError(
                f"this database holds (or began) a data set of {existing.messages:,} messages and "
                f"{existing.users:,} users (seed {existing.seed}); use another database for another one"
            )
        return existing, True
    if await owner.fetchval("SELECT EXISTS (SELECT FROM messaging.conversations)"):
        raise BenchDataError("this database already holds conversations not made by rapport bench")
    await owner.execute("INSERT INTO rapport_bench.dataset (shape) VALUES ($1)", json.dumps(wanted.to_json()))
    return wanted, False


async def done_chunks(owner: asyncpg.Connection) -> set[tuple[str, int]]:
    return {(row["step"], row["chunk"]) for row in await owner.fetch("SELECT step, chunk FROM rapport_bench.progress")}


class Loader:
    def __init__(self, owner: asyncpg.Connection, plan: Plan, progress: Progress, done: set[tuple[str, int]]) -> None:
        self.owner = owner
        self.plan = plan
        self.progress = progress
        self.done = done

    async def chunked(
        self,
        step: str,
        description: str,
        chunks: Sequence[Any],
        work: Callable[[int, Any], Awaitable[int]],
    ) -> None:
        """Run `work(k, chunk)` for each chunk not done yet, each in its own transaction with
        its progress row."""
        task = self.progress.add_task(description, total=len(chunks))
        for k, chunk in enumerate(chunks):
            if (step, k) not in self.done:
                async with self.owner.transaction():
                    rows = await work(k, chunk)
                    await self.owner.execute(
                        "INSERT INTO rapport_bench.progress (step, chunk, rows) VALUES ($1, $2, $3)", step, k, rows
                    )
                self.done.add((step, k))
            self.progress.advance(task)

    async def unforced(self, tables: Iterable[str], triggers: Iterable[tuple[str, str]] = ()) -> None:
        """Inside the chunk's transaction: the owner past the tables' policies, the named
        triggers off (see the module's docstring)."""
        for table in tables:
            await self.owner.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        for table, trigger in triggers:
            await self.owner.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")

    async def forced(self, tables: Iterable[str], triggers: Iterable[tuple[str, str]] = ()) -> None:
        for table in tables:
            await self.owner.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        for table, trigger in triggers:
            await self.owner.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")

    async def copy(self, table: str, columns: list[str], rows: Iterable[str]) -> None:
        schema, name = table.split(".")
        await self.owner.copy_to_table(name, schema_name=schema, columns=columns, source=copy_chunks(rows))


def ranges(count: int, size: int) -> list[range]:
    """0..count in consecutive ranges of `size` (the last one shorter)."""
    return [range(start, min(count, start + size)) for start in range(0, count, size)]
