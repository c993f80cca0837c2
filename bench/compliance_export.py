"""One person's data export (issue 12) with 100,000 messages: its time, the archive's size
and the peak memory of the process that builds it, beside the same rows straight out of
PostgreSQL.

    .venv/bin/python -m bench.compliance_export                     # 100,000 messages
    .venv/bin/python -m bench.compliance_export --messages 5000     # a quick run

The benchmark makes a throw-away data folder, starts an embedded PostgreSQL in it,
provisions the roles and migrates to head, then, as the superuser (the only time it is
used), makes two accounts and a group of theirs and writes `--messages` messages of
hers into it (and a tenth as many of his) with `generate_series`, through the numbering
trigger, as a send stores them; then VACUUM ANALYZE.

Then, `--runs` times each, back to back:

- export:       `rapport.compliance._archive.build_archive` as the job runs it
                (`rapport_worker`, one read-only snapshot, server-side cursors, the zip
                written to the media's staging folder as it is read, then stored and
                hashed): every table she has rows in, her 100,000 messages among them;
- copy:         `COPY (SELECT to_jsonb(t) minus the hidden columns ...) TO STDOUT` of the
                same messages (the archive's biggest file, the same query), into a file;
- copy + zip:   that file, then deflated into a zip as the archive's entries are: the
                floor of what the export can cost for its messages.

The first run of each is a warm-up and not counted. During each timed run a thread
samples this process's resident set (RSS) every 5 ms: the growth is the peak less the
baseline before the run (PostgreSQL's own processes are not counted). The figures go to
stdout and to bench/results/compliance_export.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psutil
from rich.console import Console

from bench._database import open_bench_database
from bench._report import machine
from bench.messaging_data import stop_embedded

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "compliance_export.json"
MIB = 1024 * 1024
SAMPLE_EVERY_S = 0.005
# Each message updates its conversation's row (the numbering trigger): thousands in one
# transaction pile up versions of that one row, each update slower than the last, so the
# messages go in small statements, each its own transaction.
_CHUNK = 2_000

out = Console()
err = Console(stderr=True)

_PEOPLE = """
INSERT INTO auth.users (id, email, status, email_verified_at)
VALUES ($1, 'export-her@bench.example', 'active', now()), ($2, 'export-him@bench.example', 'active', now())
"""
_GROUP = """
INSERT INTO messaging.conversations (id, type, name, creator_id) VALUES ($1, 'group', 'Export bench', $2);
"""
_MEMBERS = """
INSERT INTO messaging.participants (conversation_id, user_id, role) VALUES ($1, $2, 'owner'), ($1, $3, 'member')
"""
_MESSAGES = """
INSERT INTO messaging.messages (id, conversation_id, sender_id, content, created_at)
SELECT g.id, $1, $2, 'Message ' || g.n || ': a line of about the length people write, said in the group',
       messaging.id_time(g.id)
  FROM (SELECT kernel.uuid7_like() AS id, n FROM generate_series($3::int, $4::int) AS n) AS g
"""


@contextlib.contextmanager
def sampled() -> Iterator[dict[str, float]]:
    """This process's RSS every few milliseconds while the block runs; the dict is filled
    with the baseline, the peak and the growth after it."""
    me = psutil.Process()
    baseline = me.memory_info().rss
    peak = [baseline]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], me.memory_info().rss)
            stop.wait(SAMPLE_EVERY_S)

    figures: dict[str, float] = {}
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield figures
    finally:
        stop.set()
        thread.join()
    figures.update(
        rss_baseline_mib=round(baseline / MIB, 1),
        rss_peak_mib=round(peak[0] / MIB, 1),
        rss_growth_mib=round((peak[0] - baseline) / MIB, 1),
    )


async def generate(admin: Any, messages: int) -> tuple[UUID, UUID]:
    from rapport.kernel.ids import uuid7

    her, him, group = uuid7(), uuid7(), uuid7()
    async with admin.transaction():
        await admin.execute("SET LOCAL session_replication_role = replica")
        await admin.execute(_PEOPLE, her, him)
        await admin.execute(_GROUP, group, her)
        await admin.execute(_MEMBERS, group, her, him)
    for sender, count in ((her, messages), (him, max(1, messages // 10))):
        for start in range(1, count + 1, _CHUNK):
            await admin.execute(_MESSAGES, group, sender, start, min(count, start + _CHUNK - 1))
    await admin.execute("VACUUM ANALYZE messaging.messages, messaging.conversations, auth.users")
    return her, group


async def _export(engine: Any, store: Any, user_id: UUID) -> dict[str, Any]:
    from rapport.compliance import _archive
    from rapport.kernel.ids import uuid7

    with sampled() as memory:
        began = time.perf_counter()
        built = await _archive.build_archive(engine, store, export_id=uuid7(), user_id=user_id)
        seconds = time.perf_counter() - began
    await store.storage.delete(built.storage_key)
    return {
        "seconds": seconds,
        "bytes": built.size_bytes,
        "messages": built.sections.get("messaging/messages.jsonl", 0),
        **memory,
    }


async def _copy(worker_dsn: str, folder: Path, user_id: UUID, *, zip_it: bool) -> dict[str, Any]:
    import asyncpg

    from rapport.compliance import _archive

    query = (
        "SELECT (to_jsonb(t) - CAST('{" + ",".join(_archive.HIDDEN) + "}' AS text[]))::text"
        f" FROM messaging.messages t WHERE t.sender_id = '{user_id}'"
    )
    lines = folder / "copy.jsonl"
    archive = folder / "copy.zip"
    conn = await asyncpg.connect(worker_dsn)
    try:
        with sampled() as memory:
            began = time.perf_counter()
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                await conn.execute("SELECT set_config('rapport.system', 'on', true)")
                await conn.copy_from_query(query, output=lines)
            size = lines.stat().st_size
            if zip_it:

                def deflate() -> int:
                    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as made:
                        made.write(lines, "messaging/messages.jsonl")
                    return archive.stat().st_size

                size = await asyncio.to_thread(deflate)
            seconds = time.perf_counter() - began
    finally:
        await conn.close()
        lines.unlink(missing_ok=True)
        archive.unlink(missing_ok=True)
    return {"seconds": seconds, "bytes": size, **memory}


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [run["seconds"] for run in runs]
    return {
        "runs": len(runs),
        "seconds_median": round(statistics.median(seconds), 3),
        "seconds_min": round(min(seconds), 3),
        "seconds_max": round(max(seconds), 3),
        "bytes": runs[-1]["bytes"],
        "rss_baseline_mib": runs[-1]["rss_baseline_mib"],
        "rss_peak_mib": max(run["rss_peak_mib"] for run in runs),
        "rss_growth_mib": max(run["rss_growth_mib"] for run in runs),
        **({"messages": runs[-1]["messages"]} if "messages" in runs[-1] else {}),
    }


async def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from rapport.config import Settings
    from rapport.kernel.db import create_system_engine
    from rapport.kernel.provisioning import asyncpg_dsn
    from rapport.media import service as media_service

    bench = await open_bench_database(folder / "pg")
    try:
        with err.status(f"Writing {args.messages:,} messages…"):
            began = time.perf_counter()
            her, _ = await generate(bench.admin, args.messages)
            fill_s = time.perf_counter() - began
    finally:
        await bench.admin.close()
    settings = Settings(_env_file=None, owner_password=None, app_password=None, media_dir=folder / "media")
    store = media_service.MediaStore.from_settings(settings)
    engine = create_system_engine(bench.urls.worker, pool_size=2)
    scenarios: dict[str, list[dict[str, Any]]] = {"export": [], "copy": [], "copy + zip": []}
    try:
        for turn in range(args.runs + 1):
            with err.status(f"Run {turn}/{args.runs}…"):
                figures = {
                    "export": await _export(engine, store, her),
                    "copy": await _copy(asyncpg_dsn(bench.urls.worker), folder, her, zip_it=False),
                    "copy + zip": await _copy(asyncpg_dsn(bench.urls.worker), folder, her, zip_it=True),
                }
            if turn:  # the first is a warm-up
                for name, figure in figures.items():
                    scenarios[name].append(figure)
    finally:
        await engine.dispose()
        await store.close()
    summary = {name: _summary(runs) for name, runs in scenarios.items()}
    if summary["export"]["messages"] != args.messages:
        raise SystemExit(f"the archive holds {summary['export']['messages']} messages, not {args.messages}")
    return {
        "messages": args.messages,
        "fill_seconds": round(fill_s, 1),
        "scenarios": summary,
        "machine": machine(),
        "at": datetime.now(UTC).isoformat(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where the throw-away data folder goes")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="rapport-bench-export-", dir=args.dir))
    try:
        result = asyncio.run(run(args, folder))
    finally:
        stop_embedded(folder / "pg")
        shutil.rmtree(folder, ignore_errors=True)
    out.print_json(data=result)
    RESULTS_PATH.parent.mkdir(exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
