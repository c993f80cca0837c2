"""The database's integrity checks (`rapport db check [--fix]`): rows that disagree with
each other where no constraint can say so, and what is safe to repair.

Seed 000's checks (messages whose author is missing, addresses that do not match) become,
in Rapport's schema: rows that still hang on a message that is gone (the partitioned
messages table takes no foreign key), reply threads left without their root, and
e-mail addresses that are not trimmed and lower-cased. Then the counters that only
triggers and definer functions write, against the rows they count: a conversation's
member_count, last_seq and last message, participants' markers past the last message, a
message's attachment_count, a thread's message_count. And the monthly partitions that
should exist ahead (rapport.kernel.partitions).

Every repair recomputes from the rows (a counter) or removes what nothing can reach (rows
of a message that is gone), one fault per transaction, so that one refusal leaves the
others repaired. An address whose normal form another row already holds is left for a
person to decide. System work, as `rapport_worker`; the counters are written through the
definer functions of migration 2026_11_30_0025.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.db import SystemEngine, system_transaction

# How many faults one check lists (and --fix repairs) per run; a run after a repair finds the next.
LIMIT = 1000

# Every column that holds an e-mail address, with its table's key. The CHECKs on users
# and contacts keep new rows right; rows from before a CHECK, or from a restore of older
# data, may not be. A test keeps this list whole.
ADDRESS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("auth.users", "email"),
    ("auth.identities", "email"),
    ("auth.otp_verifications", "identifier"),
    ("social.contacts", "email"),
    ("coparenting.pairing_sessions", "parent_b_email"),
)

# The tables whose rows belong to one message, named by (conversation_id, message_id).
MESSAGE_ROWS: tuple[str, ...] = (
    "messaging.mentions",
    "messaging.retractions",
    "messaging.hidden_messages",
    "messaging.reactions",
    "messaging.pins",
    "messaging.message_history",
    "messaging.client_messages",
    "messaging.reports",
    "media.attachments",
    "coparenting.topic_suggestions",
    "bots.robot_interactions",
    "encryption.envelopes",
)


class Unfixable(Exception):
    """A fault the repair would not touch; the message says why."""


@dataclass(frozen=True)
class Fault:
    """One row (or one missing partition) that a check found wrong: what it is, what is
    wrong with it, and what its repair needs to find it again."""

    subject: str
    detail: str
    key: tuple[Any, ...]


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    repair: str | None
    find: Callable[[AsyncConnection, int], Awaitable[list[Fault]]]
    fix: Callable[[AsyncConnection, Fault], Awaitable[None]] | None


@dataclass
class CheckResult:
    name: str
    description: str
    repair: str | None
    faults: list[Fault]
    # More than LIMIT faults: only the first LIMIT are listed (and repaired).
    truncated: bool = False
    fixed: int = 0
    unfixed: list[tuple[Fault, str]] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        """Faults still there after this run (repairs not asked for count as remaining)."""
        return len(self.faults) - self.fixed


# --- rows of messages that are gone -------------------------------------------------------

_REMAINS = text(
    "WITH remains AS ("
    + " UNION ALL ".join(
        f"SELECT '{table}' AS source, conversation_id, message_id FROM {table}" for table in MESSAGE_ROWS
    )
    + """)
    SELECT r.conversation_id, r.message_id, array_agg(DISTINCT r.source ORDER BY r.source) AS sources, count(*) AS n
      FROM remains r
     WHERE NOT EXISTS (SELECT 1 FROM messaging.messages m
                        WHERE m.conversation_id = r.conversation_id AND m.id = r.message_id
                          AND m.created_at = messaging.id_time(r.message_id))
     GROUP BY r.conversation_id, r.message_id
     ORDER BY r.conversation_id, r.message_id
     LIMIT :limit
    """
)


async def _find_remains(db: AsyncConnection, limit: int) -> list[Fault]:
    return [
        Fault(
            f"message {row.message_id} of conversation {row.conversation_id}",
            f"the message is gone; {row.n} rows remain in {', '.join(row.sources)}",
            (row.conversation_id, row.message_id),
        )
        for row in await db.execute(_REMAINS, {"limit": limit})
    ]


async def _fix_remains(db: AsyncConnection, fault: Fault) -> None:
    conversation, message = fault.key
    await db.execute(
        text("SELECT compliance.remove_message_remains(:conversation, :message)"),
        {"conversation": conversation, "message": message},
    )


_ORPHAN_THREADS = text(
    """
    SELECT t.id, t.conversation_id, t.root_message_id FROM messaging.threads t
     WHERE t.root_message_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM messaging.messages m
                        WHERE m.conversation_id = t.conversation_id AND m.id = t.root_message_id
                          AND m.created_at = messaging.id_time(t.root_message_id))
     ORDER BY t.id
     LIMIT :limit
    """
)


async def _find_orphan_threads(db: AsyncConnection, limit: int) -> list[Fault]:
    return [
        Fault(
            f"thread {row.id} of conversation {row.conversation_id}",
            f"its root message {row.root_message_id} is gone",
            (row.id,),
        )
        for row in await db.execute(_ORPHAN_THREADS, {"limit": limit})
    ]


async def _fix_orphan_thread(db: AsyncConnection, fault: Fault) -> None:
    removed = (await db.execute(text("SELECT compliance.remove_orphan_thread(:id)"), {"id": fault.key[0]})).scalar_one()
    if not removed:
        raise Unfixable("its root message is there")


# --- addresses ------------------------------------------------------------------------------

_ADDRESSES = text(
    " UNION ALL ".join(
        f"(SELECT '{table}' AS source, '{column}' AS column_name, id, {column} AS address FROM {table}"
        f" WHERE {column} <> lower(btrim({column})) ORDER BY id)"
        for table, column in ADDRESS_COLUMNS
    )
    + " LIMIT :limit"
)


async def _find_addresses(db: AsyncConnection, limit: int) -> list[Fault]:
    return [
        Fault(
            f"{row.source} {row.id}",
            f"{row.column_name} {row.address!r} is not trimmed and lower-cased",
            (row.source, row.column_name, row.id),
        )
        for row in await db.execute(_ADDRESSES, {"limit": limit})
    ]


async def _fix_address(db: AsyncConnection, fault: Fault) -> None:
    table, column, row_id = fault.key
    if (table, column) not in ADDRESS_COLUMNS:  # the key came from the finder; never a name from elsewhere
        raise Unfixable(f"{table}.{column} is not an address column")
    try:
        async with db.begin_nested():
            await db.execute(
                text(f"UPDATE {table} SET {column} = lower(btrim({column})) WHERE id = :id"), {"id": row_id}
            )
    except IntegrityError as exc:
        raise Unfixable("another row already holds the address in its normal form") from exc


# --- counters -------------------------------------------------------------------------------

_MEMBER_COUNTS = text(
    """
    SELECT c.id, c.member_count, coalesce(p.n, 0) AS actual
      FROM messaging.conversations c
      LEFT JOIN (SELECT conversation_id, count(*) AS n FROM messaging.participants
                  WHERE status IN ('active', 'muted') GROUP BY conversation_id) p ON p.conversation_id = c.id
     WHERE c.member_count <> coalesce(p.n, 0)
     ORDER BY c.id
     LIMIT :limit
    """
)


async def _find_member_counts(db: AsyncConnection, limit: int) -> list[Fault]:
    return [
        Fault(f"conversation {row.id}", f"member_count is {row.member_count}; {row.actual} take part", (row.id,))
        for row in await db.execute(_MEMBER_COUNTS, {"limit": limit})
    ]


_LAST_MESSAGE = text(
    """
    SELECT c.id, c.last_seq, c.last_message_id, top.seq AS highest, newest.id AS newest_id
      FROM messaging.conversations c
     CROSS JOIN LATERAL (SELECT max(m.seq) AS seq FROM messaging.messages m WHERE m.conversation_id = c.id) top
      LEFT JOIN LATERAL (SELECT m.id, m.created_at FROM messaging.messages m
                          WHERE m.conversation_id = c.id AND m.seq = c.last_seq LIMIT 1) newest ON true
     WHERE top.seq > c.last_seq
        OR (newest.id IS NOT NULL AND (c.last_message_id IS DISTINCT FROM newest.id
                                       OR c.last_message_at IS DISTINCT FROM newest.created_at))
     ORDER BY c.id
     LIMIT :limit
    """
)


async def _find_last_message(db: AsyncConnection, limit: int) -> list[Fault]:
    faults = []
    for row in await db.execute(_LAST_MESSAGE, {"limit": limit}):
        if row.highest is not None and row.highest > row.last_seq:
            detail = f"last_seq is {row.last_seq} but a message has the sequence {row.highest}"
        else:
            detail = (
                f"the last message is {row.last_message_id}; the message at last_seq {row.last_seq} is {row.newest_id}"
            )
        faults.append(Fault(f"conversation {row.id}", detail, (row.id,)))
    return faults


async def _fix_conversation(db: AsyncConnection, fault: Fault) -> None:
    await db.execute(text("SELECT compliance.repair_conversation_counters(:id)"), {"id": fault.key[0]})


_MARKERS = text(
    """
    SELECT p.conversation_id, p.user_id, p.read_seq, p.delivered_seq, c.last_seq
      FROM messaging.participants p JOIN messaging.conversations c ON c.id = p.conversation_id
     WHERE greatest(p.read_seq, p.delivered_seq) > c.last_seq
     ORDER BY p.conversation_id, p.user_id
     LIMIT :limit
    """
)
# A marker past the last message says messages were read that never were: back to the last.
_CLAMP_MARKERS = text(
    """
    UPDATE messaging.participants p
       SET read_seq = least(p.read_seq, c.last_seq), delivered_seq = least(p.delivered_seq, c.last_seq)
      FROM messaging.conversations c
     WHERE c.id = p.conversation_id AND p.conversation_id = :conversation AND p.user_id = :user_id
    """
)


async def _find_markers(db: AsyncConnection, limit: int) -> list[Fault]:
    return [
        Fault(
            f"participant {row.user_id} of conversation {row.conversation_id}",
            f"read_seq {row.read_seq}, delivered_seq {row.delivered_seq}: past last_seq {row.last_seq}",
            (row.conversation_id, row.user_id),
        )
        for row in await db.execute(_MARKERS, {"limit": limit})
    ]


async def _fix_markers(db: AsyncConnection, fault: Fault) -> None:
    conversation, user_id = fault.key
    await db.execute(_CLAMP_MARKERS, {"conversation": conversation, "user_id": user_id})


_ATTACHMENT_COUNTS = text(
    """
    SELECT m.conversation_id, m.id, m.attachment_count, coalesce(a.n, 0) AS actual
      FROM messaging.messages m
      LEFT JOIN (SELECT conversation_id, message_id, count(*) AS n FROM media.attachments
                  GROUP BY conversation_id, message_id) a
        ON a.conversation_id = m.conversation_id AND a.message_id = m.id
     WHERE m.deleted_at IS NULL AND m.attachment_count <> coalesce(a.n, 0)
     ORDER BY m.conversation_id, m.id
     LIMIT :limit
    """
)


async def _find_attachment_counts(db: AsyncConnection, limit: int) -> list[Fault]:
    return [
        Fault(
            f"message {row.id} of conversation {row.conversation_id}",
            f"attachment_count is {row.attachment_count}; it carries {row.actual}",
            (row.conversation_id, row.id),
        )
        for row in await db.execute(_ATTACHMENT_COUNTS, {"limit": limit})
    ]


async def _fix_attachment_count(db: AsyncConnection, fault: Fault) -> None:
    conversation, message = fault.key
    await db.execute(
        text("SELECT compliance.repair_attachment_count(:conversation, :message)"),
        {"conversation": conversation, "message": message},
    )


_THREAD_COUNTS = text(
    """
    SELECT t.id, t.conversation_id, t.message_count, n.actual
      FROM messaging.threads t
     CROSS JOIN LATERAL (SELECT count(*) AS actual FROM messaging.messages m
                          WHERE m.conversation_id = t.conversation_id AND m.thread_id = t.id) n
     WHERE t.message_count <> n.actual
     ORDER BY t.id
     LIMIT :limit
    """
)


async def _find_thread_counts(db: AsyncConnection, limit: int) -> list[Fault]:
    return [
        Fault(
            f"thread {row.id} of conversation {row.conversation_id}",
            f"message_count is {row.message_count}; {row.actual} messages are in it",
            (row.id,),
        )
        for row in await db.execute(_THREAD_COUNTS, {"limit": limit})
    ]


async def _fix_thread_count(db: AsyncConnection, fault: Fault) -> None:
    await db.execute(text("SELECT compliance.repair_thread_count(:id)"), {"id": fault.key[0]})


# --- partitions -----------------------------------------------------------------------------

# The months kernel.ensure_partitions() keeps: from the current one (UTC) through months_ahead.
_MISSING_PARTITIONS = text(
    """
    SELECT mp.parent::text AS parent, c.relname || '_p' || to_char(m.month, 'YYYYMM') AS name, m.month
      FROM kernel.monthly_partitions mp
      JOIN pg_class c ON c.oid = mp.parent
     CROSS JOIN LATERAL generate_series(0, mp.months_ahead) AS ahead
     CROSS JOIN LATERAL (SELECT (date_trunc('month', now() AT TIME ZONE 'UTC')
                                 + make_interval(months => ahead))::date AS month) m
     WHERE NOT EXISTS (SELECT 1 FROM pg_inherits h JOIN pg_class p ON p.oid = h.inhrelid
                        WHERE h.inhparent = mp.parent AND p.relname = c.relname || '_p' || to_char(m.month, 'YYYYMM'))
     ORDER BY 1, m.month
     LIMIT :limit
    """
)


async def _find_partitions(db: AsyncConnection, limit: int) -> list[Fault]:
    return [
        Fault(f"{row.parent}", f"no partition {row.name} for {row.month:%Y-%m}", (row.parent, row.name))
        for row in await db.execute(_MISSING_PARTITIONS, {"limit": limit})
    ]


async def _fix_partitions(db: AsyncConnection, fault: Fault) -> None:
    # Makes every missing one at once; the faults after the first find nothing left to do.
    await db.execute(text("SELECT kernel.ensure_partitions()"))


CHECKS: tuple[Check, ...] = (
    Check(
        "message-remains",
        "rows of messages that are gone (mentions, retractions, hidden marks, reactions, pins, versions, "
        "idempotency keys, reports, attachments)",
        "removes them",
        _find_remains,
        _fix_remains,
    ),
    Check(
        "orphan-threads",
        "reply threads whose root message is gone (nobody sees them)",
        "removes them",
        _find_orphan_threads,
        _fix_orphan_thread,
    ),
    Check(
        "unnormalised-addresses",
        "e-mail addresses that are not trimmed and lower-cased (seed 000's mismatches)",
        "normalises them, unless another row already holds the normal form",
        _find_addresses,
        _fix_address,
    ),
    Check(
        "member-counts",
        "conversations whose member_count differs from the participants who take part",
        "recounts them",
        _find_member_counts,
        _fix_conversation,
    ),
    Check(
        "last-message",
        "conversations whose last_seq is below a message's, or whose last message is not the one at last_seq",
        "raises last_seq to the highest message and points at the message there",
        _find_last_message,
        _fix_conversation,
    ),
    Check(
        "markers-past-last-message",
        "participants whose read or delivered marker is past their conversation's last message",
        "moves the markers back to the last message",
        _find_markers,
        _fix_markers,
    ),
    Check(
        "attachment-counts",
        "messages whose attachment_count differs from the files they carry",
        "recounts them",
        _find_attachment_counts,
        _fix_attachment_count,
    ),
    Check(
        "thread-counts",
        "threads whose message_count differs from the messages in them",
        "recounts them",
        _find_thread_counts,
        _fix_thread_count,
    ),
    Check(
        "partitions-ahead",
        "monthly partitions missing from this month through the months kept ahead",
        "makes them (kernel.ensure_partitions)",
        _find_partitions,
        _fix_partitions,
    ),
)

BY_NAME = {check.name: check for check in CHECKS}


class UnknownCheck(ValueError):
    """A check name that is not one of CHECKS."""


async def run_checks(
    engine: SystemEngine, *, fix: bool = False, only: Collection[str] | None = None, limit: int = LIMIT
) -> list[CheckResult]:
    """Run every check (or those named in `only`) and, with `fix`, repair what each found,
    one fault per transaction.

    Raises:
        UnknownCheck: `only` names a check that does not exist.
    """
    unknown = sorted(set(only or ()) - BY_NAME.keys())
    if unknown:
        raise UnknownCheck(f"No check is named {', '.join(unknown)}: one of {', '.join(BY_NAME)}.")
    results = []
    for check in CHECKS:
        if only is not None and check.name not in only:
            continue
        async with system_transaction(engine) as db:
            faults = await check.find(db, limit + 1)
        result = CheckResult(check.name, check.description, check.repair, faults[:limit], len(faults) > limit)
        if fix and check.fix is not None:
            for fault in result.faults:
                try:
                    async with system_transaction(engine) as db:
                        await check.fix(db, fault)
                except Unfixable as exc:
                    result.unfixed.append((fault, str(exc)))
                except DBAPIError as exc:
                    cause = exc.orig.__cause__ if exc.orig is not None else None
                    result.unfixed.append((fault, f"refused: {cause or exc.orig}"))
                else:
                    result.fixed += 1
        results.append(result)
    return results
