"""Profile search ("Find people"): by username, display name and bio, best first.

The query is cut into words here (letters and digits; everything else separates them),
and the words go to `social.search_profiles()` as plain strings: each is read by the same
parser and dictionary as the profiles, and becomes a prefix (`word:*`) only as a quoted
lexeme, so nothing typed is ever parsed as tsquery syntax. A query that looks like a
username (`alice.b`, `@alice_b`) also finds usernames that start with it, in order.

Ranking, highest first: the username is the query; the username starts with it; every
word is a word of the name (username or display name); every word starts a word of the
name; every word starts a word somewhere, bio included. Within a tier, `ts_rank` (name
words weigh five times bio words), then the user id, so the order is total and a cursor
(score, user_id) resumes exactly after the last row of a page.

What is searched: profiles the caller may see (public ones, contacts-only ones of people
who have the caller as a contact), minus anyone who blocked the caller or whom the caller
blocked, and never the caller's own profile (it is at GET /v1/profile; searching is for
finding others).

Bounded work: each of the function's sources ranks at most CANDIDATES matches (the first
ones in table order) so a one-letter query costs about what a full name does; a query
matching more people than that shows the best of those candidates, and a longer query
finds the rest. docs/PERFORMANCE.md has the measurements.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import zlib
from dataclasses import dataclass
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.errors import InvalidCursor
from rapport.kernel.pagination import Page
from rapport.social.errors import InvalidSearchQuery

MAX_QUERY_LENGTH = 100
MAX_WORDS = 10
DEFAULT_LIMIT = 20
MAX_LIMIT = 50
# Matches ranked per source (usernames, name words, all words): up to 3 × this many
# results per query, over about as many pages as the client cares to read.
CANDIDATES = 300
BIO_PREVIEW = 160

# Letters and digits of any script; "_" is a separator, as in the text-search parser.
_WORD = re.compile(r"[^\W_]+")
_USERNAME_PREFIX = re.compile(r"[a-z0-9_.]{1,30}")
_CURSOR_VERSION = 1
_CURSOR = struct.Struct(">BiI16s")  # version, score, query checksum, user id


class ProfileMatch(BaseModel):
    """One person found: enough to show a result and open their profile."""

    user_id: UUID
    username: str
    display_name: str
    avatar_url: str | None
    bio: str
    is_verified: bool


@dataclass(frozen=True)
class SearchTerms:
    words: list[str]
    username_prefix: str | None
    checksum: int  # ties a cursor to its query


def parse_query(query: str) -> SearchTerms:
    """The words of a query, and the username prefix it may be.

    Raises:
        InvalidSearchQuery: empty, too long, no letter or digit, or too many words.
    """
    stripped = query.strip()
    if not stripped:
        raise InvalidSearchQuery("Type at least one letter or digit.")
    if len(stripped) > MAX_QUERY_LENGTH:
        raise InvalidSearchQuery(f"Search queries are limited to {MAX_QUERY_LENGTH} characters.")
    words = list(dict.fromkeys(word.lower() for word in _WORD.findall(stripped)))
    if not words:
        raise InvalidSearchQuery("Type at least one letter or digit.")
    if len(words) > MAX_WORDS:
        raise InvalidSearchQuery(f"Search with at most {MAX_WORDS} words.")
    handle = stripped.removeprefix("@").lower()
    username_prefix = handle if _USERNAME_PREFIX.fullmatch(handle) else None
    checksum = zlib.crc32(" ".join([*words, username_prefix or ""]).encode())
    return SearchTerms(words=words, username_prefix=username_prefix, checksum=checksum)


def encode_search_cursor(terms: SearchTerms, *, score: int, user_id: UUID) -> str:
    raw = _CURSOR.pack(_CURSOR_VERSION, score, terms.checksum, user_id.bytes)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_search_cursor(terms: SearchTerms, cursor: str) -> tuple[int, UUID]:
    """The (score, user_id) a page resumes after.

    Raises:
        InvalidCursor: not a cursor of this server, or of another query.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, score, checksum, user_id = _CURSOR.unpack(raw)
    except (binascii.Error, ValueError, struct.error) as exc:
        raise InvalidCursor("The cursor was not issued by this server.") from exc
    if version != _CURSOR_VERSION:
        raise InvalidCursor("The cursor was not issued by this server.")
    if checksum != terms.checksum:
        raise InvalidCursor("The cursor belongs to another search query.")
    return score, UUID(bytes=user_id)


# The function picks the candidates and orders one page under the definer's view; the
# columns are then read as the caller, so row-level security vets every row shown.
SEARCH_STATEMENT = text(
    """
    SELECT s.user_id, s.score, p.username, p.display_name, p.avatar_url,
           left(p.bio, :bio_preview) AS bio, p.is_verified
      FROM social.search_profiles(:words, :username_prefix, :max_rows, :after_score, :after_user_id,
                                  :candidates) WITH ORDINALITY AS s (user_id, score, position)
      LEFT JOIN social.profiles p ON p.user_id = s.user_id
     ORDER BY s.position
    """
)


def statement_parameters(terms: SearchTerms, *, limit: int, cursor: str | None) -> dict[str, object]:
    """SEARCH_STATEMENT's parameters for one page (limit + 1 rows: the last tells whether
    another page follows)."""
    after_score, after_user_id = decode_search_cursor(terms, cursor) if cursor else (None, None)
    return {
        "words": terms.words,
        "username_prefix": terms.username_prefix,
        "max_rows": limit + 1,
        "after_score": after_score,
        "after_user_id": after_user_id,
        "candidates": CANDIDATES,
        "bio_preview": BIO_PREVIEW,
    }


async def search_profiles(
    db: AsyncConnection, *, actor: Actor, query: str, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> Page[ProfileMatch]:
    """People the actor may see whose username, display name or bio match the query,
    best first, one page at a time. What the actor may see is decided in the database by
    the transaction's security context (`db` must act as the actor).

    Raises:
        InvalidSearchQuery: the query has no word to search for, or too many.
        InvalidCursor: the cursor is malformed or belongs to another query.
    """
    terms = parse_query(query)
    limit = max(1, min(limit, MAX_LIMIT))
    rows = (await db.execute(SEARCH_STATEMENT, statement_parameters(terms, limit=limit, cursor=cursor))).all()
    page, more = rows[:limit], len(rows) > limit
    items = [
        ProfileMatch(
            user_id=row.user_id,
            username=row.username,
            display_name=row.display_name,
            avatar_url=row.avatar_url,
            bio=row.bio,
            is_verified=row.is_verified,
        )
        for row in page
        if row.username is not None  # row-level security disagreed with the function: not shown
    ]
    next_cursor = encode_search_cursor(terms, score=page[-1].score, user_id=page[-1].user_id) if more else None
    return Page[ProfileMatch](items=items, next=next_cursor)
