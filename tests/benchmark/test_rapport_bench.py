"""`rapport bench`: a small data set generated on the test's PostgreSQL has the shape a
real one has (skewed conversations, mutual contacts, replies, reactions, read state), its
counters agree with its rows, a load interrupted between chunks continues without
duplicating anything, and a run measures every measure on both sides and appends its
section to (a copy of) docs/PERFORMANCE.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from rich.progress import Progress, TaskID
from sqlalchemy.engine import URL

from rapport.benchmark import _disk
from rapport.benchmark._bench import RunOptions, run_bench
from rapport.benchmark._check import check
from rapport.benchmark._chunks import BenchDataError
from rapport.benchmark._load import generate, hash_password
from rapport.benchmark._plan import Shape
from rapport.benchmark._server import started_server
from rapport.benchmark.report import write
from rapport.kernel import provisioning
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from tests.conftest import ROOT, clone_database, drop_database
from tests.support import make_settings

MESSAGES = 2_000
CHUNK = 200  # ten chunks of messages, so that a load can stop between two

# The tables whose row-level security the loader unforces inside its chunks, and the
# triggers it switches off there: both must be back on whatever happened.
LOADED_TABLES = [
    "auth.users", "social.contacts", "messaging.conversations", "messaging.participants", "messaging.messages",
    "messaging.mentions", "messaging.reactions", "messaging.retractions", "messaging.message_history",
]  # fmt: skip


class Interrupted(Exception):
    """The load stopping as if the process died: after a chunk has committed."""


class StopAfter(Progress):
    """A progress bar that stops the load after `chunks` chunks of messages."""

    def __init__(self, chunks: int) -> None:
        super().__init__(disable=True)
        self.chunks = chunks
        self.messages_task: TaskID | None = None

    def add_task(self, description: str, *args: Any, **kwargs: Any) -> TaskID:
        task = super().add_task(description, *args, **kwargs)
        if description.startswith("messages"):
            self.messages_task = task
        return task

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        if task_id == self.messages_task:
            self.chunks -= 1
            if self.chunks == 0:
                raise Interrupted


async def _row(connection: asyncpg.Connection, query: str) -> asyncpg.Record:
    row = await connection.fetchrow(query)
    assert row is not None  # every query here aggregates: one row
    return row


def _shape() -> Shape:
    return Shape.for_messages(MESSAGES, users=None, end_ms=int(time.time() * 1000) - 600_000, chunk=CHUNK)


@pytest.fixture(scope="module")
async def bench_urls(admin_url: URL, template_database: str) -> AsyncIterator[DatabaseUrls]:
    """One migrated database for the module: the data set is made once, in two runs."""
    name = await clone_database(admin_url, template_database)
    yield provisioning.urls_for(admin_url, database=name, settings=make_settings())
    await drop_database(admin_url, name)


@pytest.fixture(scope="module")
async def owner(bench_urls: DatabaseUrls) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(asyncpg_dsn(bench_urls.owner))
    yield connection
    await connection.close()


@pytest.fixture(scope="module")
async def admin(bench_urls: DatabaseUrls) -> AsyncIterator[asyncpg.Connection]:
    """The superuser, to read every row whatever the policies say."""
    connection = await asyncpg.connect(asyncpg_dsn(bench_urls.admin.set(database=bench_urls.owner.database)))
    yield connection
    await connection.close()


def _environment(urls: DatabaseUrls) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAPPORT_")}
    env.update(
        RAPPORT_DATABASE_URL=urls.admin.render_as_string(hide_password=False),
        RAPPORT_DATABASE_NAME=str(urls.owner.database),
        RAPPORT_SECRET_KEY="test-secret-key-that-is-long-enough-for-hmac",
        RAPPORT_ENVIRONMENT="test",
        RAPPORT_LOG_LEVEL="WARNING",
        RAPPORT_PASSWORD_TIME_COST="1",
        RAPPORT_PASSWORD_MEMORY_COST_KIB="1024",
        RAPPORT_PASSWORD_PARALLELISM="1",
    )
    return env


def _rapport(urls: DatabaseUrls, *arguments: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rapport", *arguments],
        env=_environment(urls),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
async def interrupted(bench_urls: DatabaseUrls, owner: asyncpg.Connection, admin: asyncpg.Connection) -> dict[str, Any]:
    """What the database held after a load that stopped after three chunks of messages."""
    with pytest.raises(Interrupted):
        await generate(owner, _shape(), StopAfter(3), password_hash=hash_password(make_settings()))
    return {
        "messages": await admin.fetchval("SELECT count(*) FROM messaging.messages"),
        "forced": await admin.fetch(
            "SELECT oid::regclass::text AS name, relforcerowsecurity FROM pg_class WHERE oid = ANY($1::regclass[])",
            LOADED_TABLES,
        ),
        "triggers": await admin.fetch(
            """SELECT tgname, tgenabled FROM pg_trigger
                WHERE tgname IN ('sequence_message', 'count_members') AND NOT tgisinternal
                  AND tgrelid IN ('messaging.messages'::regclass, 'messaging.participants'::regclass)"""
        ),
    }


@pytest.fixture(scope="module")
async def resumed(bench_urls: DatabaseUrls, interrupted: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """The same command run again, through the CLI."""
    return _rapport(bench_urls, "bench", "generate", "--messages", str(MESSAGES), "--chunk", str(CHUNK))


async def test_a_short_disk_is_refused_before_anything_is_loaded(
    owner: asyncpg.Connection, admin: asyncpg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_disk, "BYTES_PER_MESSAGE", 10**15)
    users = await admin.fetchval("SELECT count(*) FROM auth.users")
    with pytest.raises(BenchDataError, match="needs about"):
        await generate(owner, _shape(), Progress(disable=True), data_directory=str(tmp_path), password_hash="unused")
    assert await admin.fetchval("SELECT count(*) FROM auth.users") == users


async def test_an_interrupted_load_leaves_the_database_consistent(interrupted: dict[str, Any]) -> None:
    assert 0 < interrupted["messages"] < MESSAGES
    assert all(row["relforcerowsecurity"] for row in interrupted["forced"]), interrupted["forced"]
    assert len(interrupted["triggers"]) == 2
    assert all(row["tgenabled"] == b"O" for row in interrupted["triggers"])


async def test_running_it_again_continues_without_duplicating(
    resumed: subprocess.CompletedProcess[str], admin: asyncpg.Connection
) -> None:
    assert resumed.returncode == 0, resumed.stderr
    assert "Continuing" in resumed.stderr
    assert "GiB" in resumed.stderr  # the disk it needs, said before it starts
    assert await admin.fetchval("SELECT count(*) FROM messaging.messages") == MESSAGES
    assert await admin.fetchval("SELECT count(DISTINCT (conversation_id, seq)) FROM messaging.messages") == MESSAGES
    assert await admin.fetchval("SELECT count(DISTINCT id) FROM messaging.messages") == MESSAGES
    chunks = await admin.fetchval("SELECT count(*) FROM rapport_bench.progress WHERE step = 'messages'")
    assert chunks == MESSAGES // CHUNK
    # The indexes dropped for the load are all back.
    names = {row["relname"] for row in await admin.fetch(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = 'messaging.messages'::regclass")}  # fmt: skip
    saved = json.loads(await admin.fetchval("SELECT indexes FROM rapport_bench.dataset"))
    assert saved and {index["name"] for index in saved} <= names


async def test_a_third_run_finds_it_done(resumed: subprocess.CompletedProcess[str], owner: asyncpg.Connection,
                                         admin: asyncpg.Connection) -> None:  # fmt: skip
    loaded = await generate(owner, _shape(), Progress(disable=True), password_hash="unused")
    assert loaded.resumed and loaded.counts["messaging.messages"] == MESSAGES
    assert await admin.fetchval("SELECT count(*) FROM messaging.messages") == MESSAGES


async def test_another_data_set_goes_to_another_database(
    resumed: subprocess.CompletedProcess[str], owner: asyncpg.Connection
) -> None:
    other = Shape.for_messages(MESSAGES * 2, users=None, end_ms=int(time.time() * 1000))
    with pytest.raises(BenchDataError, match="another database"):
        await generate(owner, other, Progress(disable=True), password_hash="unused")


async def test_counters_agree_with_the_rows(
    resumed: subprocess.CompletedProcess[str], admin: asyncpg.Connection
) -> None:
    assert await check(admin) == {"wrong_seq": 0, "wrong_members": 0, "wrong_markers": 0, "wrong_last": 0}
    wrong = await admin.fetchval(
        """SELECT count(*) FROM messaging.conversations c
            WHERE c.last_seq <> (SELECT count(*) FROM messaging.messages m WHERE m.conversation_id = c.id)
               OR c.last_message_id <> (SELECT m.id FROM messaging.messages m
                                         WHERE m.conversation_id = c.id ORDER BY m.seq DESC LIMIT 1)
               OR c.member_count <> (SELECT count(*) FROM messaging.participants p WHERE p.conversation_id = c.id)"""
    )
    assert wrong == 0
    markers = await _row(
        admin,
        """SELECT count(*) FILTER (WHERE p.read_seq < 0 OR p.read_seq > c.last_seq) AS outside,
                  count(*) FILTER (WHERE p.read_seq < c.last_seq) AS behind, count(*) AS all
             FROM messaging.participants p JOIN messaging.conversations c ON c.id = p.conversation_id""",
    )
    assert markers["outside"] == 0
    assert 0 < markers["behind"] < markers["all"]  # some have unread messages, most not
    # Sequences are gapless and follow time within each conversation.
    disorder = await admin.fetchval(
        """SELECT count(*) FROM (
               SELECT created_at < lag(created_at) OVER (PARTITION BY conversation_id ORDER BY seq) AS back,
                      seq - lag(seq) OVER (PARTITION BY conversation_id ORDER BY seq) AS step
                 FROM messaging.messages) x
            WHERE back OR step <> 1"""
    )
    assert disorder == 0


async def test_the_data_set_has_a_realistic_shape(resumed: subprocess.CompletedProcess[str],
                                                  admin: asyncpg.Connection) -> None:  # fmt: skip
    users = await admin.fetchval("SELECT count(*) FROM auth.users")
    assert users == 20  # one per 200 messages, at least 20
    assert await admin.fetchval("SELECT count(*) FROM social.profiles") == users
    assert await admin.fetchval("SELECT count(*) FROM social.settings") == users
    sizes = [row["last_seq"] for row in await admin.fetch(
        "SELECT last_seq FROM messaging.conversations ORDER BY last_seq DESC")]  # fmt: skip
    assert sizes[0] >= 8 * sizes[len(sizes) // 2]  # a few large, many small
    kinds: dict[str, int] = dict(await admin.fetch("SELECT type, count(*) FROM messaging.conversations GROUP BY type"))  # type: ignore[arg-type]
    assert kinds["direct"] > kinds["group"] + kinds["channel"] >= 2
    # Contacts are mutual, and a few people know many more than most.
    one_way = await admin.fetchval(
        """SELECT count(*) FROM social.contacts a WHERE NOT EXISTS (
               SELECT FROM social.contacts b WHERE b.owner_id = a.contact_user_id AND b.contact_user_id = a.owner_id)"""
    )
    assert one_way == 0
    degrees = [row["n"] for row in await admin.fetch(
        "SELECT count(*) AS n FROM social.contacts GROUP BY owner_id ORDER BY 1 DESC")]  # fmt: skip
    assert degrees[0] >= 2 * degrees[len(degrees) // 2]
    lengths = await _row(
        admin,
        """SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY length(content)) AS median,
                  max(length(content)) AS longest
             FROM messaging.messages WHERE deleted_at IS NULL""",
    )
    assert lengths["median"] < 100 < 400 < lengths["longest"]
    # Replies point at an earlier message of their own conversation.
    replies = await _row(
        admin,
        """SELECT count(*) AS n, count(r.id) AS found, count(*) FILTER (WHERE r.seq < m.seq) AS earlier
             FROM messaging.messages m
             LEFT JOIN messaging.messages r ON r.conversation_id = m.conversation_id AND r.id = m.reply_to_id
            WHERE m.reply_to_id IS NOT NULL""",
    )
    assert replies["n"] > 0 and replies["found"] == replies["n"] == replies["earlier"]
    # Reactions come from participants; deleted messages keep their retraction and history rows.
    strangers = await admin.fetchval(
        """SELECT count(*) FROM messaging.reactions r WHERE NOT EXISTS (
               SELECT FROM messaging.participants p
                WHERE p.conversation_id = r.conversation_id AND p.user_id = r.user_id)"""
    )
    assert await admin.fetchval("SELECT count(*) FROM messaging.reactions") > 0 and strangers == 0
    deleted = await admin.fetchval("SELECT count(*) FROM messaging.messages WHERE deleted_at IS NOT NULL")
    assert deleted == await admin.fetchval("SELECT count(*) FROM messaging.retractions")
    assert await admin.fetchval("SELECT count(*) FROM messaging.mentions") > 0


async def test_a_run_measures_every_measure_on_both_sides(
    resumed: subprocess.CompletedProcess[str], bench_urls: DatabaseUrls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _environment(bench_urls).items():
        if name.startswith("RAPPORT_"):
            monkeypatch.setenv(name, value)  # for the server the run starts
    performance = tmp_path / "docs" / "PERFORMANCE.md"
    performance.parent.mkdir()
    before = (ROOT / "docs" / "PERFORMANCE.md").read_text()
    performance.write_text(before)
    admin = bench_urls.admin.render_as_string(hide_password=False)
    with started_server(database_url=admin, database_name=str(bench_urls.owner.database), workers=1) as url:
        options = RunOptions(
            concurrency=[1],
            duration=2,
            max_requests=4,
            nodes=[url],
            admin_dsn=asyncpg_dsn(bench_urls.admin.set(database=bench_urls.owner.database)),
            app_dsn=asyncpg_dsn(bench_urls.app),
            worker_dsn=asyncpg_dsn(bench_urls.worker),
            command="rapport bench run --concurrency 1 --max-requests 4",
            server_started=True,
        )
        result = await run_bench(options, Progress(disable=True))
    written = write(result, performance_md=performance, json_dir=tmp_path / "docs" / "performance")
    assert written.name == f"{result['date']}-2k.json"
    result = json.loads(written.read_text())
    assert set(result["measures"]) == {"send", "history", "search", "unread", "fanout", "login"}
    for name, by_clients in result["measures"].items():
        pair = by_clients["1"]
        for side in ("service", "straight"):
            assert pair[side]["requests"] > 0, (name, side, pair[side])
            assert pair[side]["errors"] == 0, (name, side, pair[side]["sample_error"])
            assert pair[side]["p50"] is not None and pair[side]["p99"] is not None
        assert pair["ratio"] is not None
    # A send writes WAL (its row, its index entries, the conversation's counters, the outbox event).
    for side in ("service", "straight"):
        assert result["measures"]["send"]["1"][side]["wal_bytes_per_request"] > 500
    targets = {target["name"]: target for target in result["targets"]}
    assert len(targets) == 5
    best = max(result["measures"][name]["1"]["service"]["requests_per_s"] for name in ("history", "unread"))
    throughput = targets["requests per second per node"]
    assert throughput["measured"] == round(best, 1) and throughput["at"].endswith("at 1 client")
    for name in ("simple select", "join (conversation list)", "full-text search", "insert (a message)"):
        assert "actual time=" in targets[name]["explain"] and "Buffers" in targets[name]["explain"]
    assert result["machine"]["nproc"] and result["dataset"]["counts"]["messaging.messages"] >= MESSAGES
    text = performance.read_text()
    assert text.startswith(before.rstrip("\n"))
    section = text[len(before.rstrip("\n")) :]
    assert f"## rapport bench at 2k ({result['date']})" in section
    assert "rapport bench run --concurrency 1" in section and "docs/performance/" in section
    for name in result["measures"]:
        assert f"| {name} | 1 |" in section
    assert "WAL per send" in section and f"| requests per second per node ({throughput['at']}) |" in section
