"""The messaging dataset: 10M messages in 100k conversations, made with COPY, kept for reuse.

    .venv/bin/python -m bench.messaging_data                       # make (or find) /tmp/rapport-bench/messaging-10m
    .venv/bin/python -m bench.messaging_data --messages 200000 --conversations 2000 --data /tmp/msg-small

`bench.messaging_read` calls `open_dataset`, which does the same: the first run generates
the data into the folder (an embedded PostgreSQL's data folder plus a `dataset.json`
describing what is in it), later runs with the same shape and seed find it and start at
once. Another shape in the same folder is refused: use another `--data`.

The shape, from the seed (everything below is reproducible):

- 50,000 accounts (16 of them the bench's readers), all with one password;
- 100,000 conversations whose sizes fall as 1/rank (Zipf, exponent 1): at 10M messages the
  largest holds about 830,000 messages, the tenth about 83,000, the median conversation
  about 16; the 20 largest are public channels of 650 to 3,500 members, the next 5% groups
  of 3 to 60, the rest direct conversations of two people;
- each reader takes part in 1,000 conversations: every channel, 280 groups and 700 direct
  conversations of their own; about 30% of those have unread messages, and some unread
  messages mention them;
- messages spread over the 150 days before generation (five monthly partitions, the earlier
  ones made here the way `kernel.ensure_partitions()` makes later ones), each conversation
  active over a window of its own (the 200 largest over the whole span), in time order;
  text drawn from a word list with skewed frequencies, plus rare words for search; 0.2%
  deleted for everyone (with their retraction and history rows).

How it loads: the rows go in with `COPY` as the embedded server's superuser, because
PostgreSQL refuses `COPY FROM` into a table under forced row-level security for any other
role, its owner included (the superuser is used for nothing else, as in
`bench.profile_search`). The owner, `rapport_owner`, makes the earlier partitions, drops the
messages' plain indexes (full text, sender, ...) and rebuilds them from their catalogue
definitions after the load, and switches the numbering trigger `messaging.sequence_message`
and the participants' `count_members` trigger off for it; the counters they keep (seq,
last_seq, last_message_id, last_message_at, member_count, read markers) are written by the
generator. Then the triggers are switched back on, a check compares the counters with the
rows, and the tables are vacuumed and analysed. `created_at` is the time inside each message's
UUIDv7, so the table's CHECK (`created_at = messaging.id_time(id)`) holds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

# Shared with `rapport bench generate`.
from rapport.benchmark.rows import RARE_WORDS as RARE_WORDS
from rapport.benchmark.rows import WORDS as WORDS
from rapport.benchmark.rows import copy_chunks as _lines
from rapport.benchmark.rows import timestamp_text as timestamp_text
from rapport.benchmark.rows import uuid7_text as uuid7_text
from rapport.benchmark.rows import word_weights as _cumulative
from rapport.benchmark.rows import zipf_sizes as zipf_sizes

if TYPE_CHECKING:
    from rapport.kernel.provisioning import DatabaseUrls

# Outside the working tree: several GiB that tools copying or scanning the tree should not meet.
DEFAULT_DATA = Path(tempfile.gettempdir()) / "rapport-bench" / "messaging-10m"
DATABASE = "rapport"  # the name `rapport serve` uses, so a server started on the folder finds the data
BENCH_PASSWORD = "bench-messaging-password-1"

err = Console(stderr=True)

# --------------------------------------------------------------------------- the shape


@dataclass(frozen=True)
class Shape:
    messages: int = 10_000_000
    conversations: int = 100_000
    users: int = 50_000
    readers: int = 16
    reader_conversations: int = 1_000
    days: int = 150
    seed: int = 20261129

    @property
    def channels(self) -> int:
        return max(5, self.conversations // 5000)

    @property
    def groups(self) -> int:
        return max(self.reader_conversations * 2 // 7 + 1, self.conversations // 20)


@dataclass
class Dataset:
    """What a benchmark needs to know about the data in a folder."""

    shape: Shape
    password: str
    readers: list[str]  # user ids
    reader_emails: list[str]
    # Per reader, conversation ids by size: the largest they are in, some mid-sized, some small.
    history_targets: list[dict[str, list[str]]]
    conversation_sizes: dict[str, int]  # the history targets' message counts
    search_words: dict[str, list[str]]
    generated_in_s: float | None = None
    generated_at: str | None = None
    relation_mib: dict[str, float] = field(default_factory=dict)
    # The migrations the data was generated under (see migrations_digest).
    migrations: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Dataset:
        data = dict(data)
        data["shape"] = Shape(**data["shape"])
        return cls(**data)


GROUP_NAMES = ["Team", "Project", "Family", "Friends", "Launch", "Ops", "Design", "Club", "Running", "Trip", "Support"]


@dataclass
class Conversation:
    index: int
    id: str
    type: str
    size: int  # messages
    start_ms: int
    end_ms: int
    members: list[int]  # user indexes; the first ones send most
    name: str | None = None
    last_id: str | None = None
    last_ms: int = 0


@dataclass
class Plan:
    """Everything but the messages, made in memory from the seed."""

    shape: Shape
    user_ids: list[str]
    emails: list[str]
    conversations: list[Conversation]
    reader_sets: list[list[int]]  # per reader, conversation indexes
    start_ms: int
    end_ms: int


def make_plan(shape: Shape, now: datetime) -> Plan:
    rng = random.Random(shape.seed)
    end_ms = int((now - timedelta(minutes=10)).timestamp() * 1000)
    start_ms = end_ms - shape.days * 86_400_000
    user_ids = [uuid7_text(start_ms - 86_400_000 * 30 + i, rng) for i in range(shape.users)]
    emails = [
        f"reader-{i}@bench.example" if i < shape.readers else f"user-{i}@bench.example" for i in range(shape.users)
    ]
    sizes = zipf_sizes(shape.messages, shape.conversations)
    others = range(shape.readers, shape.users)
    conversations: list[Conversation] = []
    direct_pairs: set[tuple[int, int]] = set()
    for rank, size in enumerate(sizes):
        if rank < shape.channels:
            kind, count = "channel", 500 + 3000 // (rank + 1)
        elif rank < shape.channels + shape.groups:
            kind, count = "group", 3 + int(57 * rng.random() ** 3)
        else:
            kind, count = "direct", 2
        if rank < 200:
            begin, finish = start_ms, end_ms
        else:
            begin = rng.randrange(start_ms, end_ms - 86_400_000)
            finish = min(end_ms, begin + int(rng.expovariate(1 / (20 * 86_400_000))) + 3_600_000)
        members = rng.sample(others, min(count, len(others)))
        if kind == "direct":
            pair = (min(members), max(members))
            while pair in direct_pairs:
                members = rng.sample(others, 2)
                pair = (min(members), max(members))
            direct_pairs.add(pair)
        conversation = Conversation(
            index=rank,
            id=uuid7_text(begin - 60_000, rng),
            type=kind,
            size=size,
            start_ms=begin,
            end_ms=finish,
            members=members,
            name=None if kind == "direct" else f"{rng.choice(GROUP_NAMES)} {rank}",
        )
        conversations.append(conversation)
    reader_sets = _place_readers(shape, rng, conversations)
    return Plan(shape, user_ids, emails, conversations, reader_sets, start_ms, end_ms)


def _place_readers(shape: Shape, rng: random.Random, conversations: list[Conversation]) -> list[list[int]]:
    """Each reader joins every channel, some groups, and direct conversations of their own
    (the reader takes the place of one of its two people)."""
    channels = [c.index for c in conversations if c.type == "channel"]
    groups = [c.index for c in conversations if c.type == "group"]
    directs = [c.index for c in conversations if c.type == "direct"]
    rng.shuffle(directs)
    n_groups = min(len(groups), (shape.reader_conversations - len(channels)) * 2 // 7)
    n_directs = shape.reader_conversations - len(channels) - n_groups
    if n_directs * shape.readers > len(directs):
        raise SystemExit("too few direct conversations for the readers: more --conversations")
    reader_sets = []
    for reader in range(shape.readers):
        chosen_groups = rng.sample(groups, n_groups)
        chosen_directs = directs[reader * n_directs : (reader + 1) * n_directs]
        for index in chosen_groups:
            conversations[index].members.insert(rng.randrange(0, 3), reader)
        partners: set[int] = set()
        for index in chosen_directs:
            members = conversations[index].members
            while members[1] in partners:  # at most one direct conversation per pair
                members[1] = rng.randrange(shape.readers, shape.users)
            partners.add(members[1])
            members[0] = reader
        reader_sets.append(channels + chosen_groups + chosen_directs)
    for index in channels:
        conversations[index].members[3:3] = list(range(shape.readers))
    return reader_sets


# --------------------------------------------------------------------------- the database


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL of `data_dir`; its superuser's URL."""
    from rapport.kernel import provisioning

    return str(provisioning.start_embedded_server(data_dir))


def stop_embedded(data_dir: Path) -> None:
    """Let go of the embedded PostgreSQL this process started (it stops when no process
    uses it any more)."""
    with contextlib.suppress(Exception), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        pgserver.get_server(data_dir / "pgdata").cleanup()


async def prepare(data_dir: Path) -> DatabaseUrls:
    """The embedded server of `data_dir`, its roles provisioned and the database migrated to head."""
    from rapport.config import Settings
    from rapport.kernel import migrate, provisioning

    settings = Settings(_env_file=None, owner_password=None, app_password=None, database_name=DATABASE)
    with err.status("Starting the embedded PostgreSQL…"):
        admin_url = provisioning.start_embedded_server(data_dir)
    urls = provisioning.urls_for(admin_url, database=DATABASE, settings=settings)
    await provisioning.provision(urls, settings)
    with err.status("Migrating…"):
        await migrate.upgrade(urls.owner)
    return urls


async def connect(url: Any) -> asyncpg.Connection:
    from rapport.kernel.provisioning import asyncpg_dsn

    connection: asyncpg.Connection = await asyncpg.connect(asyncpg_dsn(url), command_timeout=None)
    return connection


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    )


async def open_dataset(data_dir: Path, shape: Shape) -> tuple[DatabaseUrls, Dataset]:
    """The dataset in `data_dir`, generated first when the folder has none.

    Raises:
        SystemExit: the folder holds another shape, or a load that did not finish.
    """
    data_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - before anything runs
    urls = await prepare(data_dir)
    marker = data_dir / "dataset.json"
    if marker.exists():
        dataset = Dataset.from_json(json.loads(marker.read_text()))
        if dataset.shape != shape:
            raise SystemExit(f"{data_dir} holds another dataset ({dataset.shape}): use another --data")
        err.print(f"Reusing the dataset in {data_dir} (generated {dataset.generated_at})")
        if dataset.migrations != migrations_digest():
            # A migration already applied to the kept database and edited since does not run
            # again: its functions there are the old ones.
            err.print(
                "[yellow]The migrations have changed since this dataset was generated: the SQL "
                "functions in it may be older than the code. Remove the folder to generate it again.[/yellow]"
            )
        return urls, dataset
    owner = await connect(urls.owner)
    try:
        existing = await owner.fetchval("SELECT count(*) FROM messaging.conversations")
    finally:
        await owner.close()
    if existing:
        raise SystemExit(f"{data_dir} holds {existing:,} conversations but no dataset.json: remove the folder")
    dataset = await generate(urls, shape)
    marker.write_text(json.dumps(dataset.to_json(), indent=1) + "\n")
    return urls, dataset


async def generate(urls: DatabaseUrls, shape: Shape) -> Dataset:
    began = time.perf_counter()
    now = datetime.now(UTC)
    plan = make_plan(shape, now)
    from argon2 import PasswordHasher

    from rapport.config import Settings

    defaults = Settings.model_fields
    password_hash = PasswordHasher(
        time_cost=defaults["password_time_cost"].default,
        memory_cost=defaults["password_memory_cost_kib"].default,
        parallelism=defaults["password_parallelism"].default,
    ).hash(BENCH_PASSWORD)
    admin = await connect(urls.admin.set(database=DATABASE))
    owner = await connect(urls.owner)
    try:
        with _progress() as progress:
            await _copy_users(admin, plan, password_hash, progress)
            await _make_partitions(owner, plan)
            await _copy_conversations(admin, plan, progress)
            await _copy_participants(admin, owner, plan, progress)
            async with _bulk_load(owner, progress):
                extras = await _copy_messages(admin, plan, progress)
            await _copy_extras(admin, plan, extras, progress)
            await _finish(admin, plan, progress)
        sizes = await relation_mib(owner)
    finally:
        await admin.close()
        await owner.close()
    return Dataset(
        shape=shape,
        password=BENCH_PASSWORD,
        readers=plan.user_ids[: shape.readers],
        reader_emails=plan.emails[: shape.readers],
        history_targets=_history_targets(plan),
        conversation_sizes=_target_sizes(plan),
        search_words=search_words(),
        generated_in_s=round(time.perf_counter() - began, 1),
        generated_at=now.isoformat(timespec="seconds"),
        relation_mib=sizes,
        migrations=migrations_digest(),
    )


def migrations_digest() -> str:
    """A digest of every migration file: a kept dataset made under other migrations may
    hold older versions of the SQL functions than the code."""
    import hashlib

    import rapport.migrations

    digest = hashlib.sha256()
    for path in sorted((Path(rapport.migrations.__file__).parent / "versions").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _history_targets(plan: Plan) -> list[dict[str, list[str]]]:
    """Per reader, the conversations whose newest page the read benchmark asks for: the
    five largest they are in (over 100,000 messages at 10M), ten mid-sized and ten small."""
    targets = []
    for reader_set in plan.reader_sets:
        ordered = sorted(reader_set, key=lambda i: -plan.conversations[i].size)
        middle = [i for i in ordered if 1_000 <= plan.conversations[i].size < 20_000] or ordered[5:15]
        small = [i for i in ordered if plan.conversations[i].size < 100] or ordered[-10:]
        targets.append(
            {
                "largest": [plan.conversations[i].id for i in ordered[:5]],
                "mid": [plan.conversations[i].id for i in middle[:10]],
                "small": [plan.conversations[i].id for i in small[:10]],
            }
        )
    return targets


def _target_sizes(plan: Plan) -> dict[str, int]:
    wanted = {i for targets in _history_targets(plan) for ids in targets.values() for i in ids}
    return {c.id: c.size for c in plan.conversations if c.id in wanted}


def search_words() -> dict[str, list[str]]:
    """Queries by how many messages they match."""
    return {
        "rare word": RARE_WORDS[:8],
        "common word": ["meeting", "coffee", "deadline", "weekend", "invoice", "flight", "pizza", "release"],
        "two words": [
            "coffee tomorrow",
            "project deadline",
            "flight hotel",
            "review draft",
            "dinner friday",
            "server bug",
            "music party",
            "invoice payment",
        ],
    }


async def relation_mib(connection: asyncpg.Connection) -> dict[str, float]:
    rows = await connection.fetch(
        """SELECT c.relname, sum(pg_total_relation_size(coalesce(i.inhrelid, c.oid))) AS bytes
             FROM pg_class c LEFT JOIN pg_inherits i ON i.inhparent = c.oid
            WHERE c.relnamespace = 'messaging'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
            GROUP BY c.relname ORDER BY 2 DESC"""
    )
    return {row["relname"]: round(int(row["bytes"]) / 2**20, 1) for row in rows}


# --------------------------------------------------------------------------- loading


async def _copy_users(admin: asyncpg.Connection, plan: Plan, password_hash: str, progress: Progress) -> None:
    """Accounts, as the superuser: auth.users' own policies admit nobody else's inserts.
    Its triggers stay on, so each account gets its profile and settings as a real one does."""
    task = progress.add_task("COPY auth.users", total=len(plan.user_ids))
    verified = timestamp_text(plan.start_ms - 86_400_000 * 30)

    def rows() -> Iterator[str]:
        for i, (user_id, email) in enumerate(zip(plan.user_ids, plan.emails, strict=True)):
            if i % 10_000 == 0:
                progress.update(task, completed=i)
            yield f"{user_id}\t{email}\t{password_hash}\tactive\t{verified}\n"

    await admin.copy_to_table(
        "users",
        schema_name="auth",
        columns=["id", "email", "password_hash", "status", "email_verified_at"],
        source=_lines(rows()),
    )
    progress.update(task, completed=len(plan.user_ids))


def _months(start_ms: int, end_ms: int) -> list[tuple[datetime, datetime]]:
    first = datetime.fromtimestamp(start_ms / 1000, UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = datetime.fromtimestamp(end_ms / 1000, UTC)
    months = []
    month = first
    while month <= last:
        following = (month + timedelta(days=32)).replace(day=1)
        months.append((month, following))
        month = following
    return months


async def _make_partitions(owner: asyncpg.Connection, plan: Plan) -> None:
    """The months before the current one, which kernel.ensure_partitions() does not make
    (it starts at the current month), made the way it makes the others."""
    for month, following in _months(plan.start_ms, plan.end_ms):
        name = f"messages_p{month:%Y%m}"
        if await owner.fetchval("SELECT to_regclass($1)", f"messaging.{name}") is not None:
            continue
        await owner.execute(
            f"""CREATE TABLE messaging.{name} PARTITION OF messaging.messages
                    FOR VALUES FROM ('{month:%Y-%m-%d} 00:00+00') TO ('{following:%Y-%m-%d} 00:00+00');
                ALTER TABLE messaging.{name} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
                REVOKE ALL ON TABLE messaging.{name} FROM PUBLIC, rapport_app, rapport_worker;
                COMMENT ON TABLE messaging.{name} IS
                    'The rows of messaging.messages of {month:%Y-%m} (UTC), made by bench.messaging_data.'"""
        )


async def _copy_conversations(admin: asyncpg.Connection, plan: Plan, progress: Progress) -> None:
    """Conversations with their counters as the trigger would leave them; the last message's
    id and time follow once the messages are made."""
    task = progress.add_task("COPY messaging.conversations", total=len(plan.conversations))

    def rows() -> Iterator[str]:
        for c in plan.conversations:
            created = timestamp_text(c.start_ms - 60_000)
            creator = plan.user_ids[c.members[0]]
            if c.type == "direct":
                low, high = sorted(plan.user_ids[m] for m in c.members)
                direct = f"{low}\t{high}"
            else:
                direct = "\\N\t\\N"
            name = c.name if c.name is not None else "\\N"
            public = "t" if c.type == "channel" else "f"
            yield (
                f"{c.id}\t{c.type}\t{name}\t{public}\t{creator}\t{direct}\t{len(c.members)}\t{c.size}\t"
                f"{created}\t{created}\n"
            )

    await admin.copy_to_table(
        "conversations",
        schema_name="messaging",
        columns=[
            "id",
            "type",
            "name",
            "is_public",
            "creator_id",
            "direct_low",
            "direct_high",
            "member_count",
            "last_seq",
            "created_at",
            "updated_at",
        ],
        source=_lines(rows()),
    )
    progress.update(task, completed=len(plan.conversations))


def read_marker(rng: random.Random, last_seq: int) -> int:
    """Where a participant has read up to: 70% everything, the rest a few to a few hundred behind."""
    if rng.random() < 0.7:
        return last_seq
    return max(0, last_seq - 1 - int(rng.expovariate(1 / 30)))


async def _copy_participants(
    admin: asyncpg.Connection, owner: asyncpg.Connection, plan: Plan, progress: Progress
) -> None:
    """Participants with their read markers; member_count was written with the
    conversations, so count_members is off for the load."""
    rng = random.Random(plan.shape.seed + 1)
    total = sum(len(c.members) for c in plan.conversations)
    task = progress.add_task("COPY messaging.participants", total=total)

    def rows() -> Iterator[str]:
        done = 0
        for c in plan.conversations:
            joined = timestamp_text(c.start_ms - 60_000)
            for position, member in enumerate(c.members):
                role = "owner" if position == 0 else "member"
                read = read_marker(rng, c.size)
                invite = "t" if role == "owner" else "f"
                yield f"{c.id}\t{plan.user_ids[member]}\t{role}\t{invite}\t{read}\t{c.size}\t{joined}\t{joined}\n"
            done += len(c.members)
            if c.index % 5000 == 0:
                progress.update(task, completed=done)

    await owner.execute("ALTER TABLE messaging.participants DISABLE TRIGGER count_members")
    try:
        await admin.copy_to_table(
            "participants",
            schema_name="messaging",
            columns=[
                "conversation_id",
                "user_id",
                "role",
                "can_invite",
                "read_seq",
                "delivered_seq",
                "read_at",
                "joined_at",
            ],
            source=_lines(rows()),
        )
    finally:
        await owner.execute("ALTER TABLE messaging.participants ENABLE TRIGGER count_members")
    progress.update(task, completed=total)


@contextlib.asynccontextmanager
async def _bulk_load(owner: asyncpg.Connection, progress: Progress) -> AsyncIterator[None]:
    """The numbering trigger off and the plain indexes gone for the load; both back after.
    The indexes' definitions are read from the catalogue, so whatever a later migration
    adds comes back as it was."""
    indexes = await owner.fetch(
        """SELECT c.relname, pg_get_indexdef(i.indexrelid) AS definition,
                  obj_description(i.indexrelid, 'pg_class') AS comment
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = 'messaging.messages'::regclass
              AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)"""
    )
    await owner.execute("ALTER TABLE messaging.messages DISABLE TRIGGER sequence_message")
    for index in indexes:
        await owner.execute(f"DROP INDEX messaging.{index['relname']}")
    try:
        yield
    finally:
        await owner.execute("SET maintenance_work_mem = '1GB'")
        task = progress.add_task("rebuild message indexes", total=len(indexes))
        for index in indexes:
            # A partitioned index reads "ON ONLY parent"; built on the parent, it reaches every partition.
            await owner.execute(index["definition"].replace(" ON ONLY ", " ON ", 1))
            if index["comment"] is not None:
                await owner.execute(f"COMMENT ON INDEX messaging.{index['relname']} IS {_literal(index['comment'])}")
            progress.advance(task)
        await owner.execute("ALTER TABLE messaging.messages ENABLE TRIGGER sequence_message")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass
class Extras:
    """Rows that go with some messages: mentions of readers, deletions."""

    mentions: list[str] = field(default_factory=list)
    retractions: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)


def _month_slots(plan: Plan, month_start: int, month_end: int, rng: random.Random) -> list[tuple[int, int, int]]:
    """(millisecond, conversation, seq) of every message made in a month, in time order.
    A conversation's n messages fill n equal slots of its window, each at a random moment
    of its slot, so sequence and time agree."""
    slots: list[tuple[int, int, int]] = []
    for c in plan.conversations:
        if c.end_ms <= month_start or c.start_ms >= month_end:
            continue
        width = (c.end_ms - c.start_ms) / c.size
        first = max(0, math.ceil((month_start - c.start_ms) / width))
        last = min(c.size, math.ceil((month_end - c.start_ms) / width))
        for j in range(first, last):
            ms = min(month_end - 1, int(c.start_ms + width * (j + rng.random())))
            slots.append((ms, c.index, j + 1))
    slots.sort()
    return slots


async def _copy_messages(admin: asyncpg.Connection, plan: Plan, progress: Progress) -> Extras:
    rng = random.Random(plan.shape.seed + 2)
    cumulative = _cumulative(len(WORDS))
    extras = Extras()
    readers = plan.shape.readers
    task = progress.add_task("COPY messaging.messages", total=plan.shape.messages)
    done = 0
    for month, following in _months(plan.start_ms, plan.end_ms):
        slots = _month_slots(plan, int(month.timestamp() * 1000), int(following.timestamp() * 1000), rng)

        def rows(slots: list[tuple[int, int, int]] = slots) -> Iterator[str]:
            nonlocal done
            for ms, index, seq in slots:
                c = plan.conversations[index]
                message_id = uuid7_text(ms, rng)
                members = c.members
                sender = members[int(len(members) * rng.random() ** 2)]
                words = rng.choices(WORDS, cum_weights=cumulative, k=3 + int(rng.expovariate(1 / 8)))
                if rng.random() < 0.0001 * len(RARE_WORDS):
                    words.append(rng.choice(RARE_WORDS))
                content = " ".join(words)
                mentions = "{}"
                if c.type != "direct" and rng.random() < 0.02:
                    mentioned = members[rng.randrange(min(len(members), 8))]
                    if mentioned != sender:
                        mentions = "{" + plan.user_ids[mentioned] + "}"
                        if mentioned < readers:
                            extras.mentions.append(f"{plan.user_ids[mentioned]}\t{c.id}\t{seq}\t{message_id}\n")
                created = timestamp_text(ms)
                sender_id = plan.user_ids[sender]
                if rng.random() < 0.002:
                    deleted = f"{created}\t{sender_id}"
                    extras.retractions.append(f"{c.id}\t{seq}\t{message_id}\t{created}\n")
                    extras.history.append(f"{c.id}\t{message_id}\tdelete\t{content}\t{{}}\t{sender_id}\t{created}\n")
                    content, mentions = "", "{}"
                else:
                    deleted = "\\N\t\\N"
                c.last_id, c.last_ms = message_id, ms
                done += 1
                if done % 20_000 == 0:
                    progress.update(task, completed=done)
                yield f"{message_id}\t{c.id}\t{seq}\t{sender_id}\t{content}\t{mentions}\t{deleted}\t{created}\n"

        await admin.copy_to_table(
            "messages",
            schema_name="messaging",
            columns=[
                "id",
                "conversation_id",
                "seq",
                "sender_id",
                "content",
                "mentions",
                "deleted_at",
                "deleted_by",
                "created_at",
            ],
            source=_lines(rows()),
        )
    progress.update(task, completed=done)
    return extras


async def _copy_extras(admin: asyncpg.Connection, plan: Plan, extras: Extras, progress: Progress) -> None:
    task = progress.add_task("mentions, retractions, last messages", total=4)
    await admin.copy_to_table(
        "mentions",
        schema_name="messaging",
        columns=["user_id", "conversation_id", "seq", "message_id"],
        source=_lines(iter(extras.mentions)),
    )
    progress.advance(task)
    await admin.copy_to_table(
        "retractions",
        schema_name="messaging",
        columns=["conversation_id", "seq", "message_id", "retracted_at"],
        source=_lines(iter(extras.retractions)),
    )
    await admin.copy_to_table(
        "message_history",
        schema_name="messaging",
        columns=[
            "conversation_id",
            "message_id",
            "operation",
            "content",
            "content_metadata",
            "changed_by",
            "changed_at",
        ],
        source=_lines(iter(extras.history)),
    )
    progress.advance(task)
    await admin.execute("CREATE TEMPORARY TABLE last_messages (id uuid, last_id uuid, last_at timestamptz)")
    await admin.copy_to_table(
        "last_messages",
        columns=["id", "last_id", "last_at"],
        source=_lines(f"{c.id}\t{c.last_id}\t{timestamp_text(c.last_ms)}\n" for c in plan.conversations if c.last_id),
    )
    progress.advance(task)
    await admin.execute(
        """UPDATE messaging.conversations c SET last_message_id = l.last_id, last_message_at = l.last_at
             FROM last_messages l WHERE l.id = c.id;
           DROP TABLE last_messages"""
    )
    progress.advance(task)


async def _finish(admin: asyncpg.Connection, plan: Plan, progress: Progress) -> None:
    """Check the counters against the rows, then vacuum and analyse what was loaded."""
    task = progress.add_task("check, VACUUM ANALYZE", total=2)
    wrong = await admin.fetchval(
        """SELECT count(*) FROM messaging.conversations c
            WHERE c.last_message_id IS NULL
               OR c.member_count <> (SELECT count(*) FROM messaging.participants p WHERE p.conversation_id = c.id)"""
    )
    top = plan.conversations[0]
    seqs = await admin.fetchrow(
        "SELECT count(*) AS n, max(seq) AS hi, count(DISTINCT seq) AS distinct_seqs FROM messaging.messages "
        "WHERE conversation_id = $1",
        top.id,
    )
    assert seqs is not None  # an aggregate always returns a row
    if wrong or seqs["n"] != top.size or seqs["hi"] != top.size or seqs["distinct_seqs"] != top.size:
        raise RuntimeError(f"counters do not match the rows: {wrong} conversations, largest {dict(seqs)}")
    progress.advance(task)
    for table in (
        "messaging.conversations",
        "messaging.participants",
        "messaging.messages",
        "messaging.mentions",
        "messaging.retractions",
        "messaging.message_history",
        "auth.users",
        "social.profiles",
        "social.settings",
    ):
        await admin.execute(f"VACUUM (ANALYZE) {table}")
    progress.advance(task)


# --------------------------------------------------------------------------- main


def shape_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose a dataset, shared with bench.messaging_read."""
    defaults = Shape()
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help=f"data folder to make or reuse ({DEFAULT_DATA})"
    )
    parser.add_argument("--messages", type=int, default=defaults.messages)
    parser.add_argument("--conversations", type=int, default=defaults.conversations)
    parser.add_argument("--users", type=int, default=defaults.users)
    parser.add_argument(
        "--reader-conversations",
        type=int,
        default=defaults.reader_conversations,
        help="conversations each of the 16 readers takes part in",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)


def shape_of(args: argparse.Namespace) -> Shape:
    return Shape(
        messages=args.messages,
        conversations=args.conversations,
        users=args.users,
        reader_conversations=args.reader_conversations,
        seed=args.seed,
    )


async def _main(data_dir: Path, shape: Shape) -> Dataset:
    _, dataset = await open_dataset(data_dir, shape)
    return dataset


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    shape_arguments(parser)
    args = parser.parse_args()
    data_dir = args.data.expanduser().resolve()
    try:
        dataset = asyncio.run(_main(data_dir, shape_of(args)))
    finally:
        stop_embedded(data_dir)
    made = f"generated in {dataset.generated_in_s} s" if dataset.generated_in_s else "found"
    err.print(f"{dataset.shape.messages:,} messages in {data_dir} ({made}); sizes (MiB): {dataset.relation_mib}")


if __name__ == "__main__":
    main()
