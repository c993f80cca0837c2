"""Loading a data set with COPY (the chunks and their transactions: _chunks).

The counters are written with the rows, from the plan: each conversation's `last_seq`,
`last_message_id`, `last_message_at` and `member_count`, each participant's read marker,
each message's seq; `_check.finish` checks them against the rows at the end. The people's
own triggers stay on, so each account gets its profile and settings as a sign-up does.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import asyncpg
from rich.progress import Progress

from rapport.benchmark import _disk
from rapport.benchmark._check import counts, finish
from rapport.benchmark._chunks import BenchDataError, Loader, done_chunks, open_dataset, ranges
from rapport.benchmark._indexes import drop_indexes, make_partitions, rebuild_indexes
from rapport.benchmark._messages import MESSAGE_COLUMNS, Timeline, slice_rows
from rapport.benchmark._plan import DAY_MS, PASSWORD, Plan, Shape, make_plan, read_marker
from rapport.benchmark.rows import mix, timestamp_text, uuid7_text
from rapport.config import Settings

USERS_PER_CHUNK = 20_000
CONTACTS_PER_CHUNK = 200_000
CONVERSATIONS_PER_CHUNK = 50_000


@dataclass
class Loaded:
    shape: Shape
    resumed: bool
    seconds: float
    disk: _disk.DiskNeed
    counts: dict[str, int]


def disk_need(plan: Plan, done: set[tuple[str, int]], data_directory: str | None) -> _disk.DiskNeed:
    participants = sum(len(c.members) for c in plan.conversations)
    done_slices = sum(1 for step, _ in done if step == "messages")
    data = _disk.estimate(
        plan.shape,
        participants=participants,
        contacts=len(plan.contacts),
        done_fraction=done_slices / plan.shape.slices,
    )
    return _disk.need(data, data_directory)


async def load_users(loader: Loader, password_hash: str) -> None:
    plan = loader.plan
    verified = timestamp_text(plan.users_created_ms)

    async def work(_: int, users: range) -> int:
        # The accounts' own triggers stay on: each gets its profile and settings (and
        # audit row) as a real sign-up does.
        await loader.unforced(["auth.users"])
        rows = (
            f"{plan.user_ids[i]}\t{plan.email(i)}\t{password_hash}\tactive\t{verified}\t{verified}\n" for i in users
        )
        await loader.copy(
            "auth.users", ["id", "email", "password_hash", "status", "email_verified_at", "created_at"], rows
        )
        await loader.forced(["auth.users"])
        return len(users)

    await loader.chunked("users", "accounts, profiles, settings", ranges(plan.shape.users, USERS_PER_CHUNK), work)


async def load_contacts(loader: Loader) -> None:
    plan = loader.plan

    async def work(k: int, edges: range) -> int:
        rng = random.Random(mix(plan.key + 101 * (k + 1)))
        linked = timestamp_text(plan.users_created_ms + DAY_MS)
        await loader.unforced(["social.contacts"])
        rows = (
            f"{uuid7_text(plan.users_created_ms + DAY_MS + i, rng)}\t{plan.user_ids[plan.contacts[i][0]]}\t"
            f"{plan.user_ids[plan.contacts[i][1]]}\t{linked}\t{linked}\n"
            for i in edges
        )
        await loader.copy("social.contacts", ["id", "owner_id", "contact_user_id", "linked_at", "created_at"], rows)
        await loader.forced(["social.contacts"])
        return len(edges)

    await loader.chunked("contacts", "contacts", ranges(len(plan.contacts), CONTACTS_PER_CHUNK), work)


async def load_conversations(loader: Loader, timeline: Timeline) -> None:
    plan = loader.plan

    def rows(indexes: range) -> Iterable[str]:
        for i in indexes:
            c = plan.conversations[i]
            created = timestamp_text(c.start_ms - 60_000)
            if c.type == "direct":
                low, high = sorted(plan.user_ids[m] for m in c.members)
                direct = f"{low}\t{high}"
            else:
                direct = "\\N\t\\N"
            last_ms, _ = timeline.moment(c, c.size)
            yield (
                f"{c.id}\t{c.type}\t{c.name or chr(92) + 'N'}\t{'t' if c.type == 'channel' else 'f'}\t"
                f"{plan.user_ids[c.members[0]]}\t{direct}\t{len(c.members)}\t{c.size}\t"
                f"{timeline.message_id(c, c.size)}\t{timestamp_text(last_ms)}\t{created}\t{created}\n"
            )

    async def work(_: int, indexes: range) -> int:
        await loader.unforced(["messaging.conversations"])
        columns = [
            "id", "type", "name", "is_public", "creator_id", "direct_low", "direct_high", "member_count", "last_seq",
            "last_message_id", "last_message_at", "created_at", "updated_at",
        ]  # fmt: skip
        await loader.copy("messaging.conversations", columns, rows(indexes))
        await loader.forced(["messaging.conversations"])
        return len(indexes)

    chunks = ranges(len(plan.conversations), CONVERSATIONS_PER_CHUNK)
    await loader.chunked("conversations", "conversations", chunks, work)


async def load_participants(loader: Loader, timeline: Timeline) -> None:
    plan = loader.plan

    def rows(k: int, indexes: range) -> Iterable[str]:
        rng = random.Random(mix(plan.key + 202 * (k + 1)))
        for i in indexes:
            c = plan.conversations[i]
            joined = timestamp_text(c.start_ms - 60_000)
            read_at = timestamp_text(timeline.moment(c, c.size)[0])
            for position, member in enumerate(c.members):
                owner = position == 0
                role = "owner" if owner else "member"
                marker = read_marker(rng, c.size)
                yield (
                    f"{c.id}\t{plan.user_ids[member]}\t{role}\t{'t' if owner else 'f'}\t{marker}\t{c.size}\t"
                    f"{read_at}\t{joined}\n"
                )

    async def work(k: int, indexes: range) -> int:
        # member_count was written with the conversations: its trigger is off for the COPY.
        triggers = [("messaging.participants", "count_members")]
        await loader.unforced(["messaging.participants"], triggers)
        columns = [
            "conversation_id",
            "user_id",
            "role",
            "can_invite",
            "read_seq",
            "delivered_seq",
            "read_at",
            "joined_at",
        ]
        await loader.copy("messaging.participants", columns, rows(k, indexes))
        await loader.forced(["messaging.participants"], triggers)
        return sum(len(plan.conversations[i].members) for i in indexes)

    chunks = ranges(len(plan.conversations), CONVERSATIONS_PER_CHUNK)
    await loader.chunked("participants", "participants and read markers", chunks, work)


async def load_messages(loader: Loader, timeline: Timeline) -> None:
    tables = [
        "messaging.messages", "messaging.mentions", "messaging.reactions", "messaging.retractions",
        "messaging.message_history",
    ]  # fmt: skip
    triggers = [("messaging.messages", "sequence_message")]
    sweep = dict(timeline.active())

    async def work(k: int, _: int) -> int:
        rows = slice_rows(timeline, k, sweep[k])
        await loader.unforced(tables, triggers)
        await loader.copy("messaging.messages", MESSAGE_COLUMNS, (line for _, line in rows.messages))
        await loader.copy(
            "messaging.mentions", ["user_id", "conversation_id", "seq", "message_id", "created_at"], rows.mentions
        )
        await loader.copy(
            "messaging.reactions", ["conversation_id", "message_id", "user_id", "emoji", "created_at"], rows.reactions
        )
        await loader.copy(
            "messaging.retractions", ["conversation_id", "seq", "message_id", "retracted_at"], rows.retractions
        )
        history_columns = [
            "conversation_id", "message_id", "operation", "content", "content_metadata", "changed_by", "changed_at",
        ]  # fmt: skip
        await loader.copy("messaging.message_history", history_columns, rows.history)
        await loader.forced(tables, triggers)
        return len(rows.messages)

    await loader.chunked("messages", "messages, replies, reactions", list(range(timeline.slices)), work)


def hash_password(settings: Settings, password: str = PASSWORD) -> str:
    """The bench accounts' password, hashed with the settings' cost (RAPPORT_PASSWORD_*),
    which the server that signs them in uses too."""
    from argon2 import PasswordHasher

    return PasswordHasher(
        time_cost=settings.password_time_cost,
        memory_cost=settings.password_memory_cost_kib,
        parallelism=settings.password_parallelism,
    ).hash(password)


async def generate(
    owner: asyncpg.Connection,
    wanted: Shape,
    progress: Progress,
    *,
    announce: Callable[[Shape, _disk.DiskNeed, bool], None] = lambda *_: None,
    data_directory: str | None = None,
    password_hash: str,
) -> Loaded:
    """Load (or finish loading) the data set `wanted` through the owner's connection.
    `data_directory` is where the server keeps its files, when known (only a superuser may
    read it): the load is refused when the disk there is short.

    Raises:
        BenchDataError: another data set is there, or the disk is short.
    """
    began = time.perf_counter()
    shape, resumed = await open_dataset(owner, wanted)
    plan = make_plan(shape)
    done = await done_chunks(owner)
    disk = disk_need(plan, done, data_directory)
    announce(shape, disk, resumed)
    if disk.short and ("finish", 0) not in done:
        raise BenchDataError(
            f"the data set needs about {_disk.gib(disk.needed_bytes)} and {disk.where} has "
            f"{_disk.gib(disk.free_bytes or 0)} free"
        )
    loader = Loader(owner, plan, progress, done)
    timeline = Timeline(plan)
    await make_partitions(owner, shape)
    await load_users(loader, password_hash)
    await load_contacts(loader)
    await load_conversations(loader, timeline)
    await load_participants(loader, timeline)
    indexes = await drop_indexes(loader)
    await load_messages(loader, timeline)
    await rebuild_indexes(loader, indexes)

    async def wrap_up(_: int, __: int) -> int:
        return 0

    if ("finish", 0) not in done:
        await finish(loader)
        await loader.chunked("finish", "finished", [0], wrap_up)
        await owner.execute(
            "UPDATE rapport_bench.dataset SET finished_at = now(), seconds = $1", time.perf_counter() - began
        )
    return Loaded(shape, resumed, time.perf_counter() - began, disk, await counts(owner))
