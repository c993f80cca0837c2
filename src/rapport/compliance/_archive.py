"""The archive of everything Rapport holds about one person: a zip of JSON Lines files,
one per table, and their files' bytes, written to disk as it is read and never held whole.

What goes in:
- every row of every table with a foreign key to `auth.users` that deletes with the
  account (those rows are the person's: sessions, sign-in history, profile and its parts,
  settings, contacts, blocks they made, reactions, drafts, notifications, consents, files,
  exports...), found in the catalog, so that a table added later is in the next archive;
  where such a table names two people and a row is the first one's, the other gets it only
  as the database shows it to them (`AS_THE_OTHER_SEES_IT`);
- the rows about them that outlive the account: every message they sent (and its earlier
  versions), the conversations they take part in, the threads, pins, calls, invites and
  reports they made, their co-parenting pairings (either parent's) and their steps, the
  audit of sensitive reads of their data, their sign-in and export records and their
  compliance log;
- `files/<id>/<name>`: the bytes of each of their files (and `versions/<n>/<name>` of the
  earlier versions), read from the media storage;
- `manifest.json` (what each file holds) and `README.txt`.
Secrets never leave: password, token, code and key hashes, encrypted secrets and push
keys are left out, as are derived search vectors and the audit's chain hashes.

Everything is read in one read-only, repeatable-read transaction (a consistent snapshot;
it takes no transaction id, so it holds back neither the outbox nor anyone's writes),
through server-side cursors, a thousand rows at a time.
"""

from __future__ import annotations

import asyncio
import hashlib
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.db import SystemEngine, system_transaction
from rapport.media import service as media_service

FORMAT = "rapport-export/1"
# What one thread hop writes: the most of the archive in memory at a time.
CHUNK_BYTES = 256 * 1024
ROWS_PER_FETCH = 1000

# Columns never exported, in whichever table they are.
HIDDEN = [
    "password_hash",
    "token_hash",
    "code_hash",
    "key_hash",
    "link_token_hash",
    "invite_token_hash",
    "secret_encrypted",
    "p256dh",
    "auth",
    "search",
    "search_vector",
    "chain_position",
    "content_hash",
    "chain_hash",
]

# Every table whose rows go with the account, and the query that reads one person's rows
# (its parameters escaped here, bound when it runs). Identifiers come from the catalog,
# quoted by format(%I).
_OWNED_TABLES = text(
    """
    SELECT n.nspname || '/' || c.relname || '.jsonl' AS path,
           format('SELECT (to_jsonb(t) - CAST(\\:hidden AS text[]))::text FROM %I.%I t WHERE %s',
                  n.nspname, c.relname,
                  string_agg(format('t.%I = \\:user_id', a.attname), ' OR ' ORDER BY a.attname)) AS query
      FROM pg_constraint k
      JOIN pg_class c ON c.oid = k.conrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
     WHERE k.contype = 'f' AND k.confrelid = 'auth.users'::regclass AND k.confdeltype = 'c'
       AND k.conparentid = 0 AND cardinality(k.conkey) = 1
     GROUP BY n.nspname, c.relname
     ORDER BY 1
    """
)


def _rows(source: str, condition: str, *, hide: tuple[str, ...] = ()) -> str:
    hidden = "CAST(:hidden AS text[])" + "".join(f" - '{column}'" for column in hide)
    return f"SELECT (to_jsonb(t) - {hidden})::text FROM {source} t WHERE {condition}"


_THEIR_MESSAGES = "SELECT m.conversation_id, m.id FROM messaging.messages m WHERE m.sender_id = :user_id"
_THEIR_FILES = "SELECT f.id FROM media.files f WHERE f.owner_id = :user_id"
_THEIR_PAIRINGS = (
    "SELECT s.id FROM coparenting.pairing_sessions s WHERE s.parent_a_id = :user_id OR s.parent_b_id = :user_id"
)

# Rows about them that the account's deletion does not take: what they did in shared
# places (the account is gone, the conversation stays), and the records kept about them.
ABOUT_THEM: dict[str, str] = {
    "auth/users.jsonl": _rows("auth.users", "t.id = :user_id"),
    "messaging/messages.jsonl": _rows("messaging.messages", "t.sender_id = :user_id"),
    "messaging/message_history.jsonl": _rows(
        "messaging.message_history", f"(t.conversation_id, t.message_id) IN ({_THEIR_MESSAGES})"
    ),
    "messaging/conversations.jsonl": _rows(
        "messaging.conversations",
        "t.id IN (SELECT p.conversation_id FROM messaging.participants p WHERE p.user_id = :user_id)"
        " OR t.creator_id = :user_id",
    ),
    "messaging/threads.jsonl": _rows("messaging.threads", "t.creator_id = :user_id"),
    "messaging/pins.jsonl": _rows("messaging.pins", "t.pinned_by = :user_id"),
    "messaging/calls.jsonl": _rows("messaging.calls", "t.started_by = :user_id"),
    "messaging/invites.jsonl": _rows("messaging.invites", "t.created_by = :user_id"),
    # What they reported, without the reported words and sender: those are someone else's.
    "messaging/reports.jsonl": _rows(
        "messaging.reports", "t.reporter_id = :user_id", hide=("message_content", "message_sender_id")
    ),
    "messaging/blocked_terms.jsonl": _rows("messaging.blocked_terms", "t.created_by = :user_id"),
    "media/file_versions.jsonl": _rows("media.file_versions", f"t.file_id IN ({_THEIR_FILES})"),
    "media/album_items.jsonl": _rows(
        "media.album_items", "t.album_id IN (SELECT a.id FROM media.albums a WHERE a.owner_id = :user_id)"
    ),
    "media/attachments.jsonl": _rows("media.attachments", f"t.file_id IN ({_THEIR_FILES})"),
    # Their pairings are the other parent's too (the account's deletion leaves them to
    # them); a pairing code is a secret like a token.
    "coparenting/pairing_sessions.jsonl": _rows(
        "coparenting.pairing_sessions", f"t.id IN ({_THEIR_PAIRINGS})", hide=("pairing_code",)
    ),
    "coparenting/pairing_audit_log.jsonl": _rows(
        "coparenting.pairing_audit_log", f"t.actor_id = :user_id OR t.pairing_id IN ({_THEIR_PAIRINGS})"
    ),
    "audit/sensitive_data_access.jsonl": _rows("audit.sensitive_data_access", "t.user_id = :user_id"),
    "audit/auth_events.jsonl": _rows("audit.auth_events", "t.user_id = :user_id"),
    "audit/data_exports.jsonl": _rows("audit.data_exports", "t.user_id = :user_id"),
    "compliance/compliance_logs.jsonl": _rows("compliance.compliance_logs", "t.user_id = :user_id"),
}

# Tables whose rows go with either of two accounts but are the first person's: the other
# person's archive holds only what row-level security lets them read (a match of someone
# else's once liked or mutual, never a pass; never someone else's list of people like them).
AS_THE_OTHER_SEES_IT: dict[str, str] = {
    "matching/matches.jsonl": _rows(
        "matching.matches",
        "t.user_id = :user_id OR (t.matched_user_id = :user_id AND t.status IN ('liked', 'mutual'))",
    ),
    "matching/match_results.jsonl": _rows("matching.match_results", "t.user_id = :user_id"),
}

# The bytes of their files: the current version of each, then the earlier ones.
_FILES = text(
    """
    SELECT f.id AS file_id, f.file_name, NULL::integer AS version, b.storage_key
      FROM media.files f JOIN media.blobs b ON b.sha256 = f.sha256
     WHERE f.owner_id = :user_id
    UNION ALL
    SELECT f.id, f.file_name, v.version, b.storage_key
      FROM media.file_versions v
      JOIN media.files f ON f.id = v.file_id
      JOIN media.blobs b ON b.sha256 = v.sha256
     WHERE f.owner_id = :user_id AND v.version <> f.version
    """
)
# Exporting sensitive data (the profile's parts, a child's or a co-parent's details, the
# communication profile) is a read of it like any other: it is recorded.
SENSITIVE_TABLES = (
    "social.user_health_context",
    "social.user_financials",
    "coparenting.child_details",
    "coparenting.coparent_details",
    "coparenting.communication_profiles",
)
_RECORD_SENSITIVE_READS = text(
    "\nUNION ALL\n".join(
        f"SELECT audit.record_sensitive_access(:user_id, '{table}', 'read', '{{}}')"
        f" WHERE EXISTS (SELECT 1 FROM {table} WHERE user_id = :user_id)"
        for table in SENSITIVE_TABLES
    )
)
_READ_ONLY_SNAPSHOT = text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
_SET_SYSTEM = text("SELECT set_config('rapport.system', 'on', true)")

README = """\
Everything Rapport holds about you, as of {made_at} (UTC).

Each .jsonl file holds one table's rows that are yours or about you, one JSON object per
line, named by the table they come from (auth/ for your account, sessions and sign-ins,
social/ for your profile, settings, contacts and blocks, messaging/ for your messages and
conversations, notifications/, media/, coparenting/ for your pairings, family details,
tasks and mediation, compliance/ for your consents and requests, audit/ for who read your
sensitive data, encryption/ for your devices' public keys and the end-to-end encrypted
messages you sent or that wait for your devices, as ciphertexts Rapport cannot read).
files/ holds the bytes of your files. manifest.json lists every file and
how many rows it holds.

Secrets (password, token and code hashes, encryption keys) are left out.
"""


@dataclass(frozen=True)
class Built:
    """A made archive, stored: what the export row records."""

    sha256: bytes
    size_bytes: int
    storage_key: str
    sections: dict[str, int]


def storage_key(sha256: bytes) -> str:
    """The key of stored bytes: the form every key of the media storage takes
    (content-addressed, `ab/cd/<64 hex digits>`); the storage refuses any other."""
    digest = sha256.hex()
    return f"{digest[:2]}/{digest[2:4]}/{digest}"


def entry_name(file_name: str) -> str:
    """A file's name as a zip entry's last part: no folders, no control characters."""
    name = "".join(char if char.isprintable() and char not in "/\\" else "_" for char in file_name).strip()
    if name in ("", ".", ".."):
        return "file"
    return name[:200]


class _Zip:
    """A zip file written entry by entry; every write runs in a thread."""

    def __init__(self, archive: zipfile.ZipFile, made_at: datetime) -> None:
        self._archive = archive
        self._stamp = made_at.timetuple()[:6]

    @classmethod
    async def create(cls, path: Path, made_at: datetime) -> _Zip:
        archive = await asyncio.to_thread(zipfile.ZipFile, path, "w", zipfile.ZIP_DEFLATED, True)
        return cls(archive, made_at)

    async def write(self, name: str, chunks: AsyncIterator[bytes], *, compress: bool = True) -> None:
        info = zipfile.ZipInfo(name, date_time=self._stamp)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        entry = await asyncio.to_thread(self._archive.open, info, "w", force_zip64=True)
        try:
            async for chunk in chunks:
                await asyncio.to_thread(entry.write, chunk)
        finally:
            await asyncio.to_thread(entry.close)

    async def close(self) -> None:
        await asyncio.to_thread(self._archive.close)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _lines(db: AsyncConnection, query: str, params: dict[str, Any], counted: list[int]) -> AsyncIterator[bytes]:
    """The rows of a query (each one JSON text) as JSON Lines, in chunks; counts them."""
    result = await db.stream(text(query).execution_options(yield_per=ROWS_PER_FETCH), params)
    buffer = bytearray()
    async for (line,) in result:
        buffer += line.encode()
        buffer += b"\n"
        counted[0] += 1
        if len(buffer) >= CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


@asynccontextmanager
async def _snapshot(engine: SystemEngine) -> AsyncIterator[AsyncConnection]:
    """A read-only, repeatable-read system transaction: one consistent view of everything."""
    async with engine.engine.connect() as conn, conn.begin():
        await conn.execute(_READ_ONLY_SNAPSHOT)
        await conn.execute(_SET_SYSTEM)
        yield conn


async def _sections(db: AsyncConnection) -> dict[str, str]:
    owned = {row.path: row.query for row in await db.execute(_OWNED_TABLES)}
    owned.update({path: query for path, query in AS_THE_OTHER_SEES_IT.items() if path in owned})
    return {**owned, **{path: query for path, query in ABOUT_THEM.items() if path not in owned}}


async def _write_files(db: AsyncConnection, archive: _Zip, store: media_service.MediaStore, user_id: UUID) -> int:
    result = await db.stream(_FILES.execution_options(yield_per=ROWS_PER_FETCH), {"user_id": user_id})
    written = 0
    async for row in result:
        folder = f"files/{row.file_id}" if row.version is None else f"files/{row.file_id}/versions/{row.version}"
        await archive.write(
            f"{folder}/{entry_name(row.file_name)}", store.storage.open(row.storage_key), compress=False
        )
        written += 1
    return written


def _digest(path: Path) -> tuple[bytes, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.digest(), size


async def build_archive(
    engine: SystemEngine, store: media_service.MediaStore, *, export_id: UUID, user_id: UUID
) -> Built:
    """Make one person's archive (see the module's docstring) and put it in the media
    storage; the staged file is gone afterwards, whatever happens.

    Raises:
        StorageUnavailable: a file's bytes could not be read, or the archive not stored.
        BlobMissing: a file's bytes are missing from the storage.
    """
    made_at = datetime.now(UTC)
    async with system_transaction(engine) as db:
        await db.execute(_RECORD_SENSITIVE_READS, {"user_id": user_id})
    path = store.staging / f"export-{export_id}.zip.tmp"
    try:
        archive = await _Zip.create(path, made_at)
        sections: dict[str, int] = {}
        try:
            await archive.write("README.txt", _one(README.format(made_at=made_at.isoformat()).encode()))
            async with _snapshot(engine) as db:
                params = {"user_id": user_id, "hidden": HIDDEN}
                for name, query in sorted((await _sections(db)).items()):
                    counted = [0]
                    await archive.write(name, _lines(db, query, params, counted))
                    sections[name] = counted[0]
                files = await _write_files(db, archive, store, user_id)
            manifest = {
                "format": FORMAT,
                "export_id": str(export_id),
                "user_id": str(user_id),
                "made_at": made_at.isoformat(),
                "sections": sections,
                "files": files,
            }
            await archive.write("manifest.json", _one(orjson.dumps(manifest, option=orjson.OPT_INDENT_2)))
        finally:
            await archive.close()
        sha256, size = await asyncio.to_thread(_digest, path)
        key = storage_key(sha256)
        await store.storage.put(key, path, sha256_hex=sha256.hex(), size=size, content_type="application/zip")
    finally:
        path.unlink(missing_ok=True)
    return Built(sha256=sha256, size_bytes=size, storage_key=key, sections=sections)
