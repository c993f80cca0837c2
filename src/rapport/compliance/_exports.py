"""Exports of one's data (`compliance.exports`): asked for by the person, built by the job
`compliance.build_export` (rapport.compliance._archive), downloaded by the person alone
until they expire (settings.export_ttl_days), then removed with their stored bytes.

Each step is logged (`compliance.log_event`: data_export_requested, data_export_completed)
and recorded in the audit (`audit.record_data_export`: requested, completed, downloaded,
failed, expired).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from uuid import UUID

import orjson
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.compliance._archive import Built
from rapport.compliance.errors import ExportExpired, ExportFailed, ExportNotFound, ExportNotReady
from rapport.compliance.models import DataExportEvent
from rapport.compliance.schemas_exports import ExportOut
from rapport.kernel import jobs
from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow, SystemEngine, system_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.pagination import Page, PageRequest, encode_cursor
from rapport.media import service as media_service

log = structlog.get_logger(__name__)

# Expired exports removed by one run of the job; the next round takes the rest.
EXPIRE_BATCH = 500

_COLUMNS = (
    "id, user_id, status, requested_at, started_at, completed_at, expires_at, size_bytes, sha256, "
    "storage_key, sections, now() AS now"
)
# One export in the making per person: asking again while it is answers with that one.
_REQUEST = text(
    f"""
    INSERT INTO compliance.exports (id, user_id) VALUES (:id, :user_id)
    ON CONFLICT (user_id) WHERE status IN ('pending', 'running') DO NOTHING
    RETURNING {_COLUMNS}
    """
)
_IN_PROGRESS = text(
    f"SELECT {_COLUMNS} FROM compliance.exports WHERE user_id = :user_id AND status IN ('pending', 'running')"
)
_ONE = text(f"SELECT {_COLUMNS} FROM compliance.exports WHERE id = :id AND user_id = :user_id")
_PAGE = text(
    f"""
    SELECT {_COLUMNS} FROM compliance.exports
     WHERE user_id = :user_id AND (CAST(:after AS uuid) IS NULL OR id < CAST(:after AS uuid))
     ORDER BY id DESC LIMIT :limit
    """
)
_LOG = text("SELECT compliance.log_event(:user_id, :event, CAST(:details AS jsonb))")
_AUDIT = text("SELECT audit.record_data_export(:export_id, :user_id, :event, CAST(:details AS jsonb))")

_START = text(
    """
    UPDATE compliance.exports SET status = 'running', started_at = now(), error = NULL
     WHERE id = :id AND status IN ('pending', 'running')
    RETURNING user_id
    """
)
_COMPLETE = text(
    """
    UPDATE compliance.exports
       SET status = 'completed', completed_at = now(), expires_at = now() + make_interval(days => :days),
           size_bytes = :size, sha256 = :sha256, storage_key = :key, sections = CAST(:sections AS jsonb)
     WHERE id = :id AND status = 'running'
    RETURNING user_id, expires_at
    """
)
_FAIL = text(
    """
    UPDATE compliance.exports SET status = 'failed', error = :error
     WHERE id = :id AND status IN ('pending', 'running')
    RETURNING user_id
    """
)
# Completed exports past their time, with whether a file of the media uses the same bytes
# (then the bytes stay: they are that file's too).
_EXPIRED = text(
    """
    SELECT e.id, e.user_id, e.storage_key,
           EXISTS (SELECT 1 FROM media.blobs b WHERE b.sha256 = e.sha256) AS shared
      FROM compliance.exports e
     WHERE e.status = 'completed' AND e.expires_at <= coalesce(CAST(:now AS timestamptz), now())
     ORDER BY e.expires_at
     LIMIT :batch
       FOR UPDATE OF e SKIP LOCKED
    """
)
_MARK_EXPIRED = text(
    "UPDATE compliance.exports SET status = 'expired', storage_key = NULL WHERE id = ANY(CAST(:ids AS uuid[]))"
)


def download_url(export_id: UUID) -> str:
    return f"/v1/me/exports/{export_id}/download"


def _downloadable(row: AnyRow) -> bool:
    return bool(row.status == "completed" and row.expires_at is not None and row.expires_at > row.now)


def export_out(row: AnyRow) -> ExportOut:
    return ExportOut(
        id=row.id,
        # A completed export past its time is expired, whether or not its bytes went yet.
        status="expired" if row.status == "completed" and not _downloadable(row) else row.status,
        requested_at=row.requested_at,
        started_at=row.started_at,
        completed_at=row.completed_at,
        expires_at=row.expires_at,
        size_bytes=row.size_bytes,
        sha256=row.sha256.hex() if row.sha256 is not None else None,
        sections=row.sections,
        download_url=download_url(row.id) if _downloadable(row) else None,
    )


async def _record(
    db: AsyncConnection, *, export_id: UUID, user_id: UUID, event: DataExportEvent, details: dict[str, object]
) -> None:
    await db.execute(
        _AUDIT, {"export_id": export_id, "user_id": user_id, "event": event, "details": orjson.dumps(details).decode()}
    )


async def do_request_export(db: AsyncConnection, *, actor: Actor, task: jobs.Task) -> tuple[ExportOut, bool]:
    """Ask for an archive of everything held about the actor, built by `task`; while one is
    being made, that one. Returns it, and whether it is new."""
    row = (await db.execute(_REQUEST, {"id": uuid7(), "user_id": actor.user_id})).one_or_none()
    if row is None:
        return export_out((await db.execute(_IN_PROGRESS, {"user_id": actor.user_id})).one()), False
    await jobs.enqueue(db, task, {"export_id": str(row.id)})
    details = {"export_id": str(row.id)}
    await db.execute(
        _LOG, {"user_id": actor.user_id, "event": "data_export_requested", "details": orjson.dumps(details).decode()}
    )
    await _record(db, export_id=row.id, user_id=actor.user_id, event="requested", details={})
    return export_out(row), True


async def access_export(db: AsyncConnection, *, actor: Actor, export_id: UUID) -> AnyRow:
    """One of the actor's exports.

    Raises:
        ExportNotFound: no such export, or someone else's.
    """
    row = (await db.execute(_ONE, {"id": export_id, "user_id": actor.user_id})).one_or_none()
    if row is None:
        raise ExportNotFound()
    return row


async def get_export(db: AsyncConnection, *, actor: Actor, export_id: UUID) -> ExportOut:
    """Raises:
    ExportNotFound: as `access_export`.
    """
    return export_out(await access_export(db, actor=actor, export_id=export_id))


async def list_exports(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[ExportOut]:
    rows = (await db.execute(_PAGE, {"user_id": actor.user_id, "after": page.after_id, "limit": page.limit + 1})).all()
    items = [export_out(row) for row in rows[: page.limit]]
    following = encode_cursor(items[-1].id) if len(rows) > page.limit else None
    return Page[ExportOut](items=items, next=following)


async def open_download(
    db: AsyncConnection,
    store: media_service.MediaStore,
    *,
    actor: Actor,
    export_id: UUID,
    request_headers: Mapping[str, str],
) -> media_service.Download:
    """The answer to a download of one of the actor's archives (its body read from storage
    once the transaction has ended). A whole download is recorded in the audit.

    Raises:
        ExportNotFound: as `access_export`.
        ExportNotReady: still being made.
        ExportFailed: it could not be made.
        ExportExpired: past its time.
        RangeNotSatisfiable: a range beyond the end (416).
    """
    row = await access_export(db, actor=actor, export_id=export_id)
    if row.status in ("pending", "running"):
        raise ExportNotReady("The archive is still being made: ask for the export's status, then download it.")
    if row.status == "failed":
        raise ExportFailed("The archive could not be made. Ask for a new export.")
    if not _downloadable(row):
        raise ExportExpired("The archive was removed when it expired. Ask for a new export.")
    blob = media_service.Blob(
        sha256=row.sha256, size=row.size_bytes, content_type="application/zip", storage_key=row.storage_key
    )
    download = media_service.prepare(
        store.storage,
        blob,
        file_name=f"rapport-export-{row.completed_at:%Y-%m-%d}.zip",
        request_headers=request_headers,
        cache_control="private, no-store",
    )
    if download.is_whole:
        await _record(db, export_id=row.id, user_id=actor.user_id, event="downloaded", details={})
    return download


# -- the job's side, as system work ---------------------------------------------------


async def start_export(db: AsyncConnection, *, export_id: UUID) -> UUID | None:
    """Mark the export running; whose it is, or None when there is nothing to build (made
    already, or gone with its account)."""
    user_id: UUID | None = (await db.execute(_START, {"id": export_id})).scalar_one_or_none()
    return user_id


async def complete_export(db: AsyncConnection, *, export_id: UUID, built: Built, ttl_days: int) -> bool:
    """Record the stored archive; False when the export is gone (its account was erased
    meanwhile): its bytes are then the caller's to remove."""
    row = (
        await db.execute(
            _COMPLETE,
            {
                "id": export_id,
                "days": ttl_days,
                "size": built.size_bytes,
                "sha256": built.sha256,
                "key": built.storage_key,
                "sections": orjson.dumps(built.sections).decode(),
            },
        )
    ).one_or_none()
    if row is None:
        return False
    details = {"export_id": str(export_id), "size_bytes": built.size_bytes, "expires_at": row.expires_at.isoformat()}
    await db.execute(
        _LOG, {"user_id": row.user_id, "event": "data_export_completed", "details": orjson.dumps(details).decode()}
    )
    await _record(
        db, export_id=export_id, user_id=row.user_id, event="completed", details={"size_bytes": built.size_bytes}
    )
    return True


async def fail_export(db: AsyncConnection, *, export_id: UUID, error: str) -> None:
    user_id = (await db.execute(_FAIL, {"id": export_id, "error": error[:2000]})).scalar_one_or_none()
    if user_id is not None:
        await _record(db, export_id=export_id, user_id=user_id, event="failed", details={})


async def expire_exports(
    engine: SystemEngine, store: media_service.MediaStore, *, now: datetime | None = None, batch: int = EXPIRE_BATCH
) -> int:
    """Remove the archives past their time (by `now`, the database's clock when None):
    their stored bytes (unless a file uses the same), and their downloadability; the rows
    stay, expired, as the person's history. Returns how many expired.

    Raises:
        StorageUnavailable: some bytes could not be deleted; nothing is marked, and the
            next round tries again.
    """
    async with system_transaction(engine) as db:
        rows = (await db.execute(_EXPIRED, {"now": now, "batch": batch})).all()
        if not rows:
            return 0
        await db.execute(_MARK_EXPIRED, {"ids": [row.id for row in rows]})
        for row in rows:
            await _record(db, export_id=row.id, user_id=row.user_id, event="expired", details={})
        for row in rows:
            if not row.shared:
                await store.storage.delete(row.storage_key)
    log.info("compliance.exports_expired", count=len(rows))
    return len(rows)
