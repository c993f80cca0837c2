"""Crash reports: counted together by the fingerprint of their stack once normalised, so
that the same fault on many devices, builds and memory layouts is one row with a count.

Normalising keeps what names the code and drops what varies from one occurrence to the
next: memory addresses (`0x7ffd…`), line and column numbers (`file.py:123:45`, `line 12`),
offsets (`+ 124`), frame numbers, long hexadecimal ids, quoted values (a message's `'…'`
parts) and spacing; blank lines go, and at most MAX_FRAMES lines stay (the top of the
stack, where the fault is). The fingerprint is the SHA-256 of the platform, the exception
type and that text.

The crash's row holds no one's text: the message the client sent (which may quote what
the person typed) is kept with the reporter's link (analytics.crash_report_users), which
goes with them when their account is erased.

Consent: the reporter's link and message are kept only while their `privacy_policy`
consent is given, the rule of client events (rapport.analytics._ingest). Without it the
crash is still counted, with nothing of the person: its row is the fault of the software
(the normalised stack keeps no quoted values, numbers or addresses, and names no one),
which the service needs to know of to keep working for everyone, them included; what
identifies the person, or may quote them, is dropped."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.analytics.schemas import CrashAccepted, CrashIn, CrashOut
from rapport.kernel.db import AnyRow
from rapport.kernel.pagination import Page, PageRequest, make_page

MAX_FRAMES = 50
MAX_STACK = 20_000

_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")
_LINE_WORD = re.compile(r"\bline\s+\d+", re.IGNORECASE)
_POSITION = re.compile(r":\d+(?::\d+)?")
_OFFSET = re.compile(r"\+\s*\d+")
_LONG_HEX = re.compile(r"\b[0-9a-fA-F]{8,}\b")
_NUMBER = re.compile(r"\b\d+\b")
_SPACES = re.compile(r"\s+")


def normalise_stack(stack: str) -> str:
    """The stack without what varies between occurrences of one fault."""
    lines: list[str] = []
    for raw in stack.splitlines():
        line = _ADDRESS.sub("0x?", raw)
        line = _QUOTED.sub("'?'", line)
        line = _LINE_WORD.sub("line ?", line)
        line = _POSITION.sub(":?", line)
        line = _OFFSET.sub("+ ?", line)
        line = _LONG_HEX.sub("?", line)
        line = _NUMBER.sub("?", line)
        line = _SPACES.sub(" ", line).strip()
        if line:
            lines.append(line)
        if len(lines) == MAX_FRAMES:
            break
    return "\n".join(lines)[:MAX_STACK]


def fingerprint(platform: str, exception_type: str, normalised: str) -> bytes:
    return hashlib.sha256(f"{platform}\n{exception_type}\n{normalised}".encode()).digest()


_RECORD = text(
    """
    WITH crash AS (
        INSERT INTO analytics.crash_reports AS c (
            fingerprint, platform, exception_type, stack_trace, first_app_version, last_app_version,
            last_os_version, first_seen, last_seen)
        VALUES (:fingerprint, :platform, :exception_type, :stack_trace, :app_version, :app_version,
                :os_version, coalesce(CAST(:at AS timestamptz), now()), coalesce(CAST(:at AS timestamptz), now()))
        ON CONFLICT (fingerprint) DO UPDATE
           SET occurrences = c.occurrences + 1,
               first_seen = least(c.first_seen, excluded.first_seen),
               last_seen = greatest(c.last_seen, excluded.last_seen),
               first_app_version = coalesce(c.first_app_version, excluded.first_app_version),
               last_app_version = coalesce(excluded.last_app_version, c.last_app_version),
               last_os_version = coalesce(excluded.last_os_version, c.last_os_version)
        RETURNING c.id, c.occurrences
    ), reporter AS (
        INSERT INTO analytics.crash_report_users AS u (crash_id, user_id, last_message, first_seen, last_seen)
        SELECT crash.id, :user_id, :message, coalesce(CAST(:at AS timestamptz), now()),
               coalesce(CAST(:at AS timestamptz), now())
          FROM crash
         WHERE CAST(:user_id AS uuid) IS NOT NULL
        ON CONFLICT (crash_id, user_id) DO UPDATE
           SET occurrences = u.occurrences + 1,
               last_message = coalesce(excluded.last_message, u.last_message),
               first_seen = least(u.first_seen, excluded.first_seen),
               last_seen = greatest(u.last_seen, excluded.last_seen)
    )
    SELECT id, occurrences FROM crash
    """
)

_LIST = text(
    """
    SELECT c.*, (SELECT count(*) FROM analytics.crash_report_users u WHERE u.crash_id = c.id) AS affected_users
      FROM analytics.crash_reports c
     WHERE CAST(:after_seen AS timestamptz) IS NULL
        OR (c.last_seen, c.id) < (CAST(:after_seen AS timestamptz), CAST(:after_id AS uuid))
     ORDER BY c.last_seen DESC, c.id DESC
     LIMIT :limit
    """
)
_ONE = text(
    """
    SELECT c.*, (SELECT count(*) FROM analytics.crash_report_users u WHERE u.crash_id = c.id) AS affected_users
      FROM analytics.crash_reports c
     WHERE c.id = :crash_id
    """
)
_SEEN_OF = text("SELECT last_seen FROM analytics.crash_reports WHERE id = :crash_id")


async def record_crash(db: AsyncConnection, *, user_id: UUID | None, crash: CrashIn) -> CrashAccepted:
    """Count a report under its crash (made on its first report), and link the reporter
    unless None (system work): the message goes with the link, or nowhere."""
    normalised = normalise_stack(crash.stack_trace)
    row = (
        await db.execute(
            _RECORD,
            {
                "fingerprint": fingerprint(crash.platform, crash.exception_type, normalised),
                "platform": crash.platform,
                "exception_type": crash.exception_type,
                "stack_trace": normalised,
                "app_version": crash.app_version,
                "os_version": crash.os_version,
                "at": crash.occurred_at,
                "user_id": user_id,
                "message": crash.message if user_id is not None else None,
            },
        )
    ).one()
    return CrashAccepted(crash_id=row.id, occurrences=row.occurrences)


def _crash(row: AnyRow) -> CrashOut:
    return CrashOut(
        id=row.id,
        platform=row.platform,
        exception_type=row.exception_type,
        stack_trace=row.stack_trace,
        fingerprint=bytes(row.fingerprint).hex(),
        first_app_version=row.first_app_version,
        last_app_version=row.last_app_version,
        last_os_version=row.last_os_version,
        occurrences=row.occurrences,
        affected_users=row.affected_users,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
    )


async def list_crashes(db: AsyncConnection, *, page: PageRequest) -> Page[CrashOut]:
    """Crashes, most recently seen first (the caller's transaction: the policies admit
    platform administrators only)."""
    after_seen: datetime | None = None
    if page.after_id is not None:
        after_seen = (await db.execute(_SEEN_OF, {"crash_id": page.after_id})).scalar_one_or_none()
    rows = (
        await db.execute(_LIST, {"after_seen": after_seen, "after_id": page.after_id, "limit": page.limit + 1})
    ).all()
    return make_page([_crash(row) for row in rows], page)


async def get_crash(db: AsyncConnection, *, crash_id: UUID) -> CrashOut | None:
    row = (await db.execute(_ONE, {"crash_id": crash_id})).one_or_none()
    return _crash(row) if row is not None else None
