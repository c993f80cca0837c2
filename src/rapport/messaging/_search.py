"""Message search: every message the caller may see, best match first, with filters.

The query is parsed by PostgreSQL with `websearch_to_tsquery` (`"a phrase"`, `or`,
`-word`) through `messaging.message_query()`; the last word typed, when it is a plain
word at the very end, matches as a prefix ('hel' finds 'hello'). The text typed is always
a bound parameter, never spliced into SQL or tsquery syntax. A query with no word to find
(only punctuation, or only negated words, which no index can serve) is refused.

A page is one statement on the hot paths' pool, `messaging.search_page()` (migration
2026_11_30_0026): it checks who acts, parses the query, and has
`messaging.search_messages()` (a definer function, docs/decisions/0007 and 0023) pick one
page of (message, rank) among the newest CANDIDATES matches in the caller's
conversations, within each one's window (from joining when history is withheld, up to
leaving), without messages deleted for everyone or hidden by the caller; the page's
messages are shaped as history shapes them (`messaging.render_message`) with their `rank`
and a `snippet`: the content around the matches as escaped HTML, matches in `<mark>`.

Ranked by `ts_rank_cd` (normalised by length, 0 to 1), then newest first. A search that
finds its candidates slowly stops after SEARCH_BUDGET with what it found, and the page
says so with `older_until`, an `until` that reaches older matches. The cursor holds the
last row's (rank, id), the span the first page read (its moment, so later pages leave
out what arrived since, and how far back it got, so they read no further), and a
checksum of the query and filters it belongs to: every page sees the same candidates.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
from pydantic import BaseModel, Field

from rapport.kernel.actor import Actor
from rapport.kernel.errors import InvalidCursor, ValidationFailed
from rapport.kernel.runtime import Runtime
from rapport.messaging._refusals import refusals
from rapport.messaging.errors import InvalidMessageSearch
from rapport.messaging.models import MessageType
from rapport.messaging.schemas import MessageOut

MAX_QUERY_LENGTH = 200
DEFAULT_LIMIT = 20
MAX_LIMIT = 50
# The newest matches ranked per search (see the migration): fifteen pages of twenty.
CANDIDATES = 300
# How long a first page may spend finding candidates before it answers with what it has.
SEARCH_BUDGET = timedelta(milliseconds=30)

# The last word typed, when nothing but letters and digits (an opening quote aside)
# follows the last space: it becomes a prefix. A word after `-` is a negation, and a
# closed phrase or trailing punctuation means the word is finished.
_LAST_WORD = re.compile(r'(?:^|\s)"?([^\W_]+)$')
_CURSOR_VERSION = 1
# version, rank, horizon and floor (µs since the epoch; a floor of 0 is none), checksum, message id
_CURSOR = struct.Struct(">BfqqI16s")


class MessageHit(MessageOut):
    """A message found, as history shows it, with how well it matches."""

    rank: float = Field(description="How well it matches, from 0 to 1 (ts_rank_cd, normalised by length).")
    snippet: str = Field(
        description="The content around the matches as HTML: the text escaped, each match in `<mark>`."
    )


class MessageSearchPage(BaseModel):
    items: list[MessageHit]
    next: str | None = Field(description="Pass it as `cursor`, with the same query and filters, for the next page.")
    older_until: datetime | None = Field(
        description="Older messages match too, beyond what these pages rank: pass this as `until` (without "
        "`cursor`) to search them. Null when the search covered everything."
    )


@dataclass(frozen=True)
class SearchFilters:
    """What narrows a search besides its words."""

    conversation_id: UUID | None = None
    sender_id: UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    type: MessageType | None = None


@dataclass(frozen=True)
class Cursor:
    rank: float
    message_id: UUID
    horizon: datetime
    floor: datetime | None  # how far back the first page read, when it stopped early


def _utc(moment: datetime | None) -> datetime | None:
    """A moment with its time zone; one given without is read as UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def normalise(query: str, filters: SearchFilters) -> SearchFilters:
    """Checks the query's length, and gives the filters their time zones. The query itself
    is searched as typed: a space after the last word says that word is finished.

    Raises:
        InvalidMessageSearch: a query of spaces only, or one over MAX_QUERY_LENGTH characters.
        ValidationFailed: `since` is after `until`.
    """
    if not query.strip():
        raise InvalidMessageSearch("Type a word to search for.")
    if len(query) > MAX_QUERY_LENGTH:
        raise InvalidMessageSearch(f"Search queries are limited to {MAX_QUERY_LENGTH} characters.")
    since, until = _utc(filters.since), _utc(filters.until)
    if since is not None and until is not None and since > until:
        raise ValidationFailed("`since` is after `until`.")
    return SearchFilters(
        conversation_id=filters.conversation_id,
        sender_id=filters.sender_id,
        since=since,
        until=until,
        type=filters.type,
    )


def last_word(query: str) -> str | None:
    """The word being typed at the end of the query, to match as a prefix, or None."""
    found = _LAST_WORD.search(query)
    return found.group(1) if found else None


def _checksum(query: str, filters: SearchFilters) -> int:
    parts = [query, filters.conversation_id, filters.sender_id, filters.since, filters.until, filters.type]
    return zlib.crc32("\x1f".join("" if part is None else str(part) for part in parts).encode())


def _microseconds(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


def encode_cursor(query: str, filters: SearchFilters, cursor: Cursor) -> str:
    floor = _microseconds(cursor.floor) if cursor.floor else 0
    raw = _CURSOR.pack(
        _CURSOR_VERSION,
        cursor.rank,
        _microseconds(cursor.horizon),
        floor,
        _checksum(query, filters),
        cursor.message_id.bytes,
    )
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(query: str, filters: SearchFilters, cursor: str) -> Cursor:
    """Where a page resumes.

    Raises:
        InvalidCursor: not a cursor of this server, or of another query or other filters.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, rank, horizon, floor, checksum, message_id = _CURSOR.unpack(raw)
        moment = datetime.fromtimestamp(horizon / 1_000_000, UTC)
        lowest = datetime.fromtimestamp(floor / 1_000_000, UTC) if floor else None
    except (binascii.Error, ValueError, struct.error, OverflowError, OSError) as exc:
        raise InvalidCursor("The cursor was not issued by this server.") from exc
    if version != _CURSOR_VERSION or not math.isfinite(rank):
        raise InvalidCursor("The cursor was not issued by this server.")
    if checksum != _checksum(query, filters):
        raise InvalidCursor("The cursor belongs to another search or other filters.")
    return Cursor(rank=rank, message_id=UUID(bytes=message_id), horizon=moment, floor=lowest)


# One page (migration 2026_11_30_0026): who acts, the query parsed, the candidates chosen
# under the definer's view of the caller's conversations, and the page's messages as JSON,
# in one statement on the hot paths' pool.
PAGE_STATEMENT = (
    "SELECT searchable, searched_from, older_until, items, more, last_rank, last_id"
    " FROM messaging.search_page($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
)


def page_arguments(
    *, actor: Actor, query: str, filters: SearchFilters, limit: int, cursor: Cursor | None, horizon: datetime
) -> tuple[object, ...]:
    """PAGE_STATEMENT's arguments for one page of `limit` results. Later pages read the
    span the first one read, without a budget."""
    until = horizon if filters.until is None else min(filters.until, horizon)
    since = filters.since
    if cursor is not None and cursor.floor is not None:
        since = cursor.floor if since is None else max(since, cursor.floor)
    return (
        actor.user_id,
        actor.session_id,
        actor.api_key_id,
        query,
        last_word(query),
        filters.conversation_id,
        filters.sender_id,
        since,
        until,
        filters.type,
        limit,
        cursor.rank if cursor else None,
        cursor.message_id if cursor else None,
        CANDIDATES,
        SEARCH_BUDGET if cursor is None else None,
    )


def page_json(
    row: asyncpg.Record, *, query: str, filters: SearchFilters, resumed: Cursor | None, horizon: datetime
) -> str:
    """The page PAGE_STATEMENT's row describes, as MessageSearchPage's JSON.

    Raises:
        InvalidMessageSearch: the query has no word to search for.
    """
    if not row["searchable"]:
        raise InvalidMessageSearch("Search for at least one word that is not excluded with `-`.")
    # How far back the first page read: later pages read to there, and say so alike.
    floor = resumed.floor if resumed else row["searched_from"]
    following = "null"
    if row["more"]:
        position = Cursor(rank=row["last_rank"], message_id=row["last_id"], horizon=horizon, floor=floor)
        following = f'"{encode_cursor(query, filters, position)}"'
    older_until = row["older_until"]
    if older_until is None and floor is not None:
        older_until = floor - timedelta(microseconds=1)
    older = f'"{older_until.isoformat()}"' if older_until else "null"
    return f'{{"items":[{row["items"]}],"next":{following},"older_until":{older}}}'


async def search_messages(
    runtime: Runtime,
    actor: Actor,
    *,
    query: str,
    filters: SearchFilters | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> str:
    """The messages the actor may see that match the query and filters, best first, one
    page at a time, as JSON: `{"items": [...], "next": cursor or null, "older_until": ...}`
    (MessageSearchPage).

    Raises:
        InvalidMessageSearch: the query is empty, too long, or has no word to search for.
        ValidationFailed: `since` is after `until`.
        InvalidCursor: the cursor is malformed or belongs to another search.
        InvalidToken: the actor's session or key no longer holds.
    """
    filters = normalise(query, filters or SearchFilters())
    resumed = decode_cursor(query, filters, cursor) if cursor else None
    limit = max(1, min(limit, MAX_LIMIT))
    horizon = resumed.horizon if resumed else datetime.now(UTC)
    arguments = page_arguments(actor=actor, query=query, filters=filters, limit=limit, cursor=resumed, horizon=horizon)
    async with refusals():
        # Lag-tolerant: the replica's when it has caught up with the primary (rapport.kernel.replica).
        row = await runtime.reads.fetchrow(PAGE_STATEMENT, *arguments)
    assert row is not None  # the function returns exactly one row
    return page_json(row, query=query, filters=filters, resumed=resumed, horizon=horizon)
