"""Message search: every message the caller may see, best match first, with filters.

The query is parsed by PostgreSQL with `websearch_to_tsquery` (`"a phrase"`, `or`,
`-word`) through `messaging.message_query()`; the last word typed, when it is a plain
word at the very end, matches as a prefix ('hel' finds 'hello'). The text typed is always
a bound parameter, never spliced into SQL or tsquery syntax. A query with no word to find
(only punctuation, or only negated words, which no index can serve) is refused.

`messaging.search_messages()` (migration 2026_11_29_0016, a definer function: see its
docstring and docs/decisions/0007) picks one page of (message, rank) among the newest
CANDIDATES matches in the caller's conversations, within each one's window (from joining
when history is withheld, up to leaving), without messages deleted for everyone or hidden
by the caller. The page's messages are then read here as the caller, through row-level
security, and shaped as history shapes them (`messaging.render_message`) with their
`rank` and a `snippet`: the content around the matches as escaped HTML, matches in
`<mark>`.

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

from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.errors import InvalidCursor, ValidationFailed
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


# The query as a tsquery, and whether any of it can be looked up in an index ('T' or ''
# when not: no word, or only negated ones).
QUERY_STATEMENT = text(
    """
    SELECT q.parsed::text AS query, querytree(q.parsed) NOT IN ('', 'T') AS searchable
      FROM (SELECT messaging.message_query(:q, :last_word) AS parsed) AS q
    """
)

# The function picks one page under the definer's view; the messages are then read as the
# caller, so row-level security vets every row shown (a row it refuses is left out). One
# row, with no message, when the page is empty: it still says how far the search read.
SEARCH_STATEMENT = text(
    """
    SELECT s.searched_from, s.older_until, p.message_id, p.rank, m.id IS NOT NULL AS visible,
           (messaging.render_message(m, :viewer)
            || jsonb_build_object('rank', p.rank,
                                  'snippet', messaging.search_snippet(m.content, CAST(:query AS tsquery))))::text
               AS item
      FROM messaging.search_messages(CAST(:query AS tsquery), :conversation_id, :sender_id, :since, :until,
                                     :type, :max_rows, :after_rank, :after_id, :candidates, :budget) AS s
      LEFT JOIN LATERAL unnest(s.conversation_ids, s.message_ids, s.created_ats, s.ranks) WITH ORDINALITY
           AS p (conversation_id, message_id, created_at, rank, position) ON true
      LEFT JOIN messaging.messages m
        ON m.conversation_id = p.conversation_id AND m.id = p.message_id AND m.created_at = p.created_at
     ORDER BY p.position
    """
)


def statement_parameters(
    *, viewer: UUID, query: str, filters: SearchFilters, limit: int, cursor: Cursor | None, horizon: datetime
) -> dict[str, object]:
    """SEARCH_STATEMENT's parameters for one page (limit + 1 rows: the last tells whether
    another page follows). `query` is the tsquery's text, as QUERY_STATEMENT made it. Later
    pages read the span the first one read, without a budget."""
    until = horizon if filters.until is None else min(filters.until, horizon)
    since = filters.since
    if cursor is not None and cursor.floor is not None:
        since = cursor.floor if since is None else max(since, cursor.floor)
    return {
        "viewer": viewer,
        "query": query,
        "conversation_id": filters.conversation_id,
        "sender_id": filters.sender_id,
        "since": since,
        "until": until,
        "type": filters.type,
        "max_rows": limit + 1,
        "after_rank": cursor.rank if cursor else None,
        "after_id": cursor.message_id if cursor else None,
        "candidates": CANDIDATES,
        "budget": SEARCH_BUDGET if cursor is None else None,
    }


async def parse_query(db: AsyncConnection, query: str) -> str:
    """The text of the tsquery a search runs.

    Raises:
        InvalidMessageSearch: the query has no word that can be searched for.
    """
    row = (await db.execute(QUERY_STATEMENT, {"q": query, "last_word": last_word(query)})).one()
    if not row.searchable:
        raise InvalidMessageSearch("Search for at least one word that is not excluded with `-`.")
    parsed: str = row.query
    return parsed


async def search_messages(
    db: AsyncConnection,
    *,
    actor: Actor,
    query: str,
    filters: SearchFilters | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> str:
    """The messages the actor may see that match the query and filters, best first, one
    page at a time, as JSON: `{"items": [...], "next": cursor or null, "older_until": ...}`
    (MessageSearchPage).
    What the actor may see is decided in the database by the transaction's security
    context (`db` must act as the actor).

    Raises:
        InvalidMessageSearch: the query is empty, too long, or has no word to search for.
        ValidationFailed: `since` is after `until`.
        InvalidCursor: the cursor is malformed or belongs to another search.
    """
    filters = normalise(query, filters or SearchFilters())
    resumed = decode_cursor(query, filters, cursor) if cursor else None
    limit = max(1, min(limit, MAX_LIMIT))
    horizon = resumed.horizon if resumed else datetime.now(UTC)
    parsed = await parse_query(db, query)
    parameters = statement_parameters(
        viewer=actor.user_id, query=parsed, filters=filters, limit=limit, cursor=resumed, horizon=horizon
    )
    found = (await db.execute(SEARCH_STATEMENT, parameters)).all()
    rows = [row for row in found if row.message_id is not None]
    page, more = rows[:limit], len(rows) > limit
    # How far back the first page read: later pages read to there, and say so alike.
    floor = resumed.floor if resumed else (found[0].searched_from if found else None)
    following = "null"
    if more:
        position = Cursor(rank=page[-1].rank, message_id=page[-1].message_id, horizon=horizon, floor=floor)
        following = f'"{encode_cursor(query, filters, position)}"'
    older_until = found[0].older_until if found else None
    if older_until is None and floor is not None:
        older_until = floor - timedelta(microseconds=1)
    older = f'"{older_until.isoformat()}"' if older_until else "null"
    items = ",".join(row.item for row in page if row.visible)
    return f'{{"items":[{items}],"next":{following},"older_until":{older}}}'
