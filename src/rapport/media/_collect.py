"""The `media.collect` job: what nobody can reach any more goes, rows and stored bytes.

1. Files their owner deleted that no live message carries (an attachment keeps a deleted
   file readable in its conversation until the message is deleted, or the conversation).
2. Processing steps completed more than seven days ago (seed 004's retention).
3. Blobs no file, public variant, version or thumbnail names, whose last claim by an upload
   is older than the grace period: their stored bytes are deleted while the rows are still
   locked, before the transaction commits, so that an upload of the same bytes claiming the
   blob meanwhile waits for the collector and then makes the row, and puts the bytes, anew.
   Bytes deleted by a transaction that then fails to commit leave rows without bytes that
   nothing names: the next upload of those bytes puts them again.
4. Resumable uploads whose time ran out, with their staged bytes (rapport.media._tus), and
   multipart uploads' staged files a crashed process left behind, a day old.

System work, as `rapport_worker`. Safe to run again and concurrently: each step takes its
rows with SKIP LOCKED.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import structlog
from sqlalchemy import text

from rapport.kernel.db import SystemEngine, system_transaction
from rapport.media._storage import Storage
from rapport.media._tus import collect_expired_uploads

log = structlog.get_logger(__name__)

# How long a blob claimed by an upload is left alone, referenced or not: longer than any
# upload takes between its claim and its file row.
CLAIM_GRACE = timedelta(hours=1)
PROCESSING_RETENTION = timedelta(days=7)
# Rows taken by one run of each step: a large backlog is worked through by several runs.
BATCH = 1000
# A multipart upload's staged file older than this belongs to no request still running.
STAGED_TTL = timedelta(days=1)

_DELETED_FILES = text(
    """
    DELETE FROM media.files f
     WHERE f.id IN (
        SELECT d.id FROM media.files d
         WHERE d.deleted_at IS NOT NULL
           AND NOT EXISTS (
               SELECT 1 FROM media.attachments a
                 JOIN messaging.conversations c ON c.id = a.conversation_id
                WHERE a.file_id = d.id AND c.deleted_at IS NULL
                  AND NOT EXISTS (SELECT 1 FROM messaging.retractions r
                                   WHERE r.conversation_id = a.conversation_id AND r.seq = a.seq))
         ORDER BY d.deleted_at
         LIMIT :batch
           FOR UPDATE SKIP LOCKED)
    RETURNING f.id
    """
)
_OLD_STEPS = text(
    """
    DELETE FROM media.processing p
     WHERE p.status = 'completed' AND p.completed_at < now() - CAST(:retention AS interval)
    """
)
_UNREFERENCED_BLOBS = text(
    """
    DELETE FROM media.blobs b
     WHERE b.sha256 IN (
        SELECT u.sha256 FROM media.blobs u
         WHERE u.reserved_at < now() - CAST(:grace AS interval)
           AND NOT EXISTS (SELECT 1 FROM media.files f WHERE f.sha256 = u.sha256)
           AND NOT EXISTS (SELECT 1 FROM media.files f WHERE f.public_sha256 = u.sha256)
           AND NOT EXISTS (SELECT 1 FROM media.file_versions v WHERE v.sha256 = u.sha256)
           AND NOT EXISTS (SELECT 1 FROM media.thumbnails t WHERE t.sha256 = u.sha256)
         LIMIT :batch
           FOR UPDATE SKIP LOCKED)
    RETURNING b.storage_key
    """
)


@dataclass(frozen=True)
class Collected:
    files: int
    processing_steps: int
    blobs: int
    uploads: int = 0
    staged_files: int = 0


def _remove_stale_parts(staging: Path, older_than: timedelta) -> int:
    """Run in a thread: multipart uploads' staged files (`<hex>.part`) older than `older_than`."""
    limit = time.time() - older_than.total_seconds()
    removed = 0
    for path in staging.glob("*.part"):
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


async def collect(
    engine: SystemEngine,
    storage: Storage,
    *,
    staging: Path | None = None,
    grace: timedelta = CLAIM_GRACE,
    batch: int = BATCH,
) -> Collected:
    """One run of the collector (see the module's docstring); uploads and staged files
    only when given the staging folder.

    Raises:
        StorageUnavailable: the storage would not delete some bytes; nothing of the blobs'
            step is committed, and the job is tried again.
    """
    async with system_transaction(engine) as db:
        removed_files = len((await db.execute(_DELETED_FILES, {"batch": batch})).all())
        steps = (await db.execute(_OLD_STEPS, {"retention": PROCESSING_RETENTION})).rowcount
    async with system_transaction(engine) as db:
        keys = (await db.execute(_UNREFERENCED_BLOBS, {"grace": grace, "batch": batch})).scalars().all()
        for key in keys:
            await storage.delete(key)
    expired = parts = 0
    if staging is not None:
        async with system_transaction(engine) as db:
            expired = await collect_expired_uploads(db, staging=staging, batch=batch)
        parts = await asyncio.to_thread(_remove_stale_parts, staging, STAGED_TTL)
    collected = Collected(
        files=removed_files, processing_steps=steps, blobs=len(keys), uploads=expired, staged_files=parts
    )
    if removed_files or keys or expired or parts:
        log.info("media.collected", **vars(collected))
    return collected
