"""The audit's hash chains, walked and checked.

Every row of every audit table carries its place in its table's chain (`chain_position`),
the SHA-256 of its content (`content_hash`, by `audit.content_digest`) and the chain hash:
SHA-256 of the previous row's chain hash followed by this row's content hash. The trigger
`audit.chain_append()` sets all three under a lock on the table's row of
`audit.chain_heads`, which keeps the last position and chain hash (and, once retention
pruned the oldest rows through `audit.prune_chain`, the position and chain hash the
remaining rows follow).

Verification walks each chain in order and names the first row that breaks it:

- changed: its content no longer hashes to its content hash (for a row erasure redacted,
  to the hash `audit.redactions` recorded when it was blanked);
- removed: a position is missing, or the chain ends before its head says it does;
- inserted out of order: a row whose chain hash does not follow from the row before it
  while the next row's follows from the one before that (the row was slipped in between),
  or a row outside the positions the head says the chain spans;
- a redaction mark that no (chained) redaction record accounts for.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.db import AnyRow
from rapport.kernel.models import CHAINED_AUDIT_TABLES

# Rows read per round trip while walking a chain.
BATCH = 5000

Kind = Literal["changed", "removed", "inserted", "unlinked", "unaccounted-redaction"]

_UTC = text("SELECT set_config('TimeZone', 'UTC', true)")
_HEAD = text(
    "SELECT chain_position, chain_hash, anchor_position, anchor_hash FROM audit.chain_heads WHERE table_name = :name"
)


@dataclass(frozen=True)
class ChainBreak:
    """The first place a chain does not hold."""

    kind: Kind
    row_id: int | None
    chain_position: int
    message: str


@dataclass(frozen=True)
class ChainReport:
    """One table's chain: how many rows were walked, where its head is, and what broke it."""

    table: str
    rows: int
    head_position: int
    head_hash: str | None
    problem: ChainBreak | None

    @property
    def intact(self) -> bool:
        return self.problem is None


def link(previous: bytes | None, content_hash: bytes) -> bytes:
    """The chain hash of a row whose content hash is `content_hash`, after `previous`."""
    return hashlib.sha256((previous or b"") + content_hash).digest()


def _rows_sql(table: Table) -> str:
    name = table.fullname
    return f"""
        SELECT t.id, t.chain_position, t.content_hash, t.chain_hash, t.redacted_at IS NOT NULL AS redacted,
               audit.content_digest(to_jsonb(t)) AS digest, r.redacted_hash
          FROM {name} t
          LEFT JOIN audit.redactions r ON r.table_name = '{name}' AND r.row_id = t.id
         WHERE t.chain_position > :after AND t.chain_position <= :head
         ORDER BY t.chain_position
         LIMIT :limit
    """


def _outside_sql(table: Table) -> str:
    # One statement, so one snapshot: rows appended while the chain was walked have moved
    # the head along with them and are not outside it.
    return f"""
        SELECT t.id, t.chain_position
          FROM {table.fullname} t
          LEFT JOIN audit.chain_heads h ON h.table_name = '{table.fullname}'
         WHERE t.chain_position > coalesce(h.chain_position, 0) OR t.chain_position <= coalesce(h.anchor_position, 0)
         ORDER BY t.chain_position
         LIMIT 1
    """


async def _walk(db: AsyncConnection, table: Table, after: int, head: int) -> AsyncIterator[AnyRow]:
    """The rows from the chain's start (after `after`) to the head read before (`head`),
    in order: appends that commit meanwhile lie beyond it."""
    statement = text(_rows_sql(table))
    while True:
        rows = (await db.execute(statement, {"after": after, "head": head, "limit": BATCH})).all()
        for row in rows:
            yield row
        if len(rows) < BATCH:
            return
        after = rows[-1].chain_position


def _hex(value: bytes | None) -> str | None:
    return value.hex() if value is not None else None


async def verify_chain(db: AsyncConnection, table: Table) -> ChainReport:
    """Walk one audit table's chain; the first break, if any. Run in a transaction that
    may read every audit row (system work)."""
    await db.execute(_UTC)
    name = table.fullname
    head = (await db.execute(_HEAD, {"name": name})).one_or_none()
    if head is None:
        # A chain never appended to has no head yet (the first append makes it).
        first = (await db.execute(text(f"SELECT min(id) FROM {name}"))).scalar_one()
        if first is None:
            return ChainReport(name, 0, 0, None, None)
        lost = ChainBreak("removed", first, 0, f"{name} has rows but no chain head: audit.chain_heads lost its row")
        return ChainReport(name, 0, 0, None, lost)
    expected = head.anchor_position + 1
    previous: bytes | None = head.anchor_hash
    before_previous: bytes | None = None
    previous_id: int | None = None
    walked = 0
    problem: ChainBreak | None = None
    async for row in _walk(db, table, head.anchor_position, head.chain_position):
        walked += 1
        problem = _check(name, row, expected, previous, before_previous, previous_id)
        if problem is not None:
            break
        before_previous, previous, previous_id = previous, bytes(row.chain_hash), row.id
        expected += 1
    if problem is None and expected - 1 < head.chain_position:
        after = f"after row {previous_id}" if previous_id is not None else "(the whole chain)"
        problem = ChainBreak(
            "removed",
            None,
            expected,
            f"{name}: rows at positions {expected}..{head.chain_position} were removed {after}: "
            f"the chain head records {head.chain_position} rows",
        )
    if problem is None and previous != (bytes(head.chain_hash) if head.chain_hash is not None else None):
        problem = ChainBreak(
            "unlinked", previous_id, expected - 1, f"{name}: the last row's chain hash is not the one the head records"
        )
    if problem is None:
        outside = (await db.execute(text(_outside_sql(table)))).one_or_none()
        if outside is not None:
            problem = ChainBreak(
                "inserted",
                outside.id,
                outside.chain_position,
                f"{name}: row {outside.id} (position {outside.chain_position}) was inserted outside the chain, "
                f"which runs from {head.anchor_position + 1} to its head",
            )
    return ChainReport(name, walked, head.chain_position, _hex(head.chain_hash), problem)


def _check(
    name: str,
    row: AnyRow,
    expected: int,
    previous: bytes | None,
    before_previous: bytes | None,
    previous_id: int | None,
) -> ChainBreak | None:
    position = row.chain_position
    content_hash, chain_hash = bytes(row.content_hash), bytes(row.chain_hash)
    if position > expected:
        where = f"after row {previous_id}" if previous_id is not None else "at the chain's start"
        return ChainBreak(
            "removed",
            row.id,
            expected,
            f"{name}: rows at positions {expected}..{position - 1} were removed {where}, before row {row.id}",
        )
    if row.redacted:
        if row.redacted_hash is None:
            return ChainBreak(
                "unaccounted-redaction",
                row.id,
                position,
                f"{name}: row {row.id} is marked redacted but audit.redactions records no redaction of it",
            )
        if bytes(row.digest) != bytes(row.redacted_hash):
            return ChainBreak("changed", row.id, position, f"{name}: row {row.id} was changed after its redaction")
    elif bytes(row.digest) != content_hash:
        return ChainBreak(
            "changed",
            row.id,
            position,
            f"{name}: row {row.id} was changed: its content does not hash to its content hash",
        )
    if link(previous, content_hash) == chain_hash:
        return None
    if previous_id is not None and link(before_previous, content_hash) == chain_hash:
        return ChainBreak(
            "inserted",
            previous_id,
            position - 1,
            f"{name}: row {previous_id} (position {position - 1}) was inserted out of order: "
            f"row {row.id} follows from the row before it",
        )
    return ChainBreak(
        "unlinked",
        row.id,
        position,
        f"{name}: row {row.id} does not follow from the row before it: a row was removed or inserted "
        f"before it, or its hashes were rewritten",
    )


async def verify_all(db: AsyncConnection) -> list[ChainReport]:
    """Every audit table's chain, checked."""
    return [await verify_chain(db, table) for table in CHAINED_AUDIT_TABLES]


_ERASE = text("SELECT audit.erase_person(:user_id, CAST(:terms AS text[]))")
_PRUNE = text("SELECT audit.prune_chain(:table_name, :older_than)")


async def erase_from_audit(db: AsyncConnection, *, user_id: UUID, terms: Sequence[str] = ()) -> int:
    """System work: blank the person's content in every audit row about or by them
    (audit.erase_person: their id, their account's e-mail while it exists, and `terms`,
    such as their names and phone number), keeping every chain verifiable; how many rows
    were redacted."""
    redacted: int = (await db.execute(_ERASE, {"user_id": user_id, "terms": list(terms)})).scalar_one()
    return redacted


async def prune_audit(db: AsyncConnection, *, table_name: str, older_than: datetime) -> int:
    """System work: remove one audit chain's rows older than `older_than`, from its start
    (audit.prune_chain), keeping the rest verifiable; how many went."""
    removed: int = (await db.execute(_PRUNE, {"table_name": table_name, "older_than": older_than})).scalar_one()
    return removed
