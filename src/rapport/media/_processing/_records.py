"""The rows processing reads and writes, as the worker's role (system work): the file,
its steps in `media.processing`, its thumbnails, and the blobs processing makes.

A step's results are written only while the file still holds the bytes the step read
(`lock_current`): a new version uploaded meanwhile starts its own processing, and the
results of the old bytes are dropped. Locking the file row also puts the steps of one
file in a line, so that exactly one of them finds all three completed and makes the
file ready.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

from sqlalchemy import bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel import jobs
from rapport.kernel.outbox import Scope, publish
from rapport.media.models import blobs, files, processing, thumbnails

STEPS: Final = ("scan", "metadata", "thumbnails")
FILE_READY: Final = "media.file_ready"
FILE_QUARANTINED: Final = "media.file_quarantined"
FILE_FAILED: Final = "media.file_failed"
_ERROR_MAX = 2000


@dataclass(frozen=True)
class FileToProcess:
    id: UUID
    owner_id: UUID
    file_name: str
    content_type: str
    kind: str
    size_bytes: int
    sha256: bytes
    status: str
    scan_status: str
    storage_key: str


_FILE_COLUMNS = (
    files.c.id,
    files.c.owner_id,
    files.c.file_name,
    files.c.content_type,
    files.c.kind,
    files.c.size_bytes,
    files.c.sha256,
    files.c.status,
    files.c.scan_status,
    blobs.c.storage_key,
)


def _file(row: Any) -> FileToProcess:
    return FileToProcess(
        id=row.id,
        owner_id=row.owner_id,
        file_name=row.file_name,
        content_type=row.content_type,
        kind=row.kind,
        size_bytes=row.size_bytes,
        sha256=bytes(row.sha256),
        status=row.status,
        scan_status=row.scan_status,
        storage_key=row.storage_key,
    )


async def load_file(db: AsyncConnection, *, file_id: UUID) -> FileToProcess | None:
    """The file as it is now, or None once it is gone."""
    row = (
        await db.execute(
            select(*_FILE_COLUMNS)
            .join_from(files, blobs, blobs.c.sha256 == files.c.sha256)
            .where(files.c.id == file_id)
        )
    ).one_or_none()
    return None if row is None else _file(row)


async def lock_current(db: AsyncConnection, file: FileToProcess) -> FileToProcess | None:
    """The file, locked until the transaction ends, if it still holds the bytes `file`
    names; None when a new version replaced them or the file is gone."""
    row = (
        await db.execute(
            select(*_FILE_COLUMNS)
            .join_from(files, blobs, blobs.c.sha256 == files.c.sha256)
            .where(files.c.id == file.id, files.c.sha256 == file.sha256)
            .with_for_update(of=files)
        )
    ).one_or_none()
    return None if row is None else _file(row)


async def step_status(db: AsyncConnection, *, file_id: UUID, step: str) -> str | None:
    status: str | None = (
        await db.execute(select(processing.c.status).where(processing.c.file_id == file_id, processing.c.step == step))
    ).scalar_one_or_none()
    return status


async def start_step(db: AsyncConnection, *, file_id: UUID, step: str) -> None:
    """Mark a step running and count the attempt (the row is made if the upload made none)."""
    statement = insert(processing).values(
        file_id=file_id, step=step, status="running", attempts=1, started_at=func.now()
    )
    await db.execute(
        statement.on_conflict_do_update(
            index_elements=[processing.c.file_id, processing.c.step],
            set_={
                "status": "running",
                "attempts": processing.c.attempts + 1,
                "started_at": func.now(),
                "completed_at": None,
                "error": None,
            },
        )
    )


async def set_step(db: AsyncConnection, *, file_id: UUID, step: str, status: str, error: str | None = None) -> None:
    """Record how a step ended: completed, failed (for good), or queued again (to be retried)."""
    values: dict[str, Any] = {"status": status, "error": error[:_ERROR_MAX] if error else None}
    if status in ("completed", "failed"):
        values["completed_at"] = func.now()
    await db.execute(
        update(processing).where(processing.c.file_id == file_id, processing.c.step == step).values(**values)
    )


async def steps_to_run(db: AsyncConnection, *, file_id: UUID) -> list[str]:
    """The steps after the scan that have not completed."""
    done = set(
        (
            await db.execute(
                select(processing.c.step).where(processing.c.file_id == file_id, processing.c.status == "completed")
            )
        ).scalars()
    )
    return [step for step in STEPS[1:] if step not in done]


async def enqueue(db: AsyncConnection, task: jobs.Task, *, file_id: UUID) -> None:
    await jobs.enqueue(db, task, {"file_id": str(file_id)})


async def register_blob(
    db: AsyncConnection, *, sha256: bytes, size: int, content_type: str, provider: str, key: str
) -> None:
    """Make the blob row of bytes about to be stored, or renew its reservation: the
    collector leaves a freshly reserved blob alone while its bytes are put."""
    await db.execute(
        text("SELECT media.register_blob(:hash, :size, :type, :provider, :key)"),
        {"hash": sha256, "size": size, "type": content_type, "provider": provider, "key": key},
    )


async def update_file(
    db: AsyncConnection, *, file_id: UUID, metadata: dict[str, Any] | None = None, **values: Any
) -> None:
    """Set columns of the file; `metadata` is merged into what its metadata holds."""
    if metadata:
        values["metadata"] = files.c.metadata.op("||")(bindparam("extra_metadata", metadata, type_=JSONB))
    if values:
        await db.execute(update(files).where(files.c.id == file_id).values(**values))


async def replace_thumbnails(db: AsyncConnection, *, file_id: UUID, rows: list[dict[str, Any]]) -> None:
    await db.execute(delete(thumbnails).where(thumbnails.c.file_id == file_id))
    if rows:
        await db.execute(insert(thumbnails).values([{"file_id": file_id, **row} for row in rows]))


async def finish_if_done(db: AsyncConnection, file: FileToProcess) -> None:
    """Make a file that is still processing ready once its three steps completed, and tell
    its owner. Call it with the file locked (`lock_current`)."""
    if file.status != "processing":
        return
    completed = set(
        (
            await db.execute(
                select(processing.c.step).where(processing.c.file_id == file.id, processing.c.status == "completed")
            )
        ).scalars()
    )
    if not completed.issuperset(STEPS):
        return
    await update_file(db, file_id=file.id, status="ready")
    await publish(
        db,
        scope=Scope.user(file.owner_id),
        type=FILE_READY,
        payload={"file_id": str(file.id), "status": "ready"},
        actor_id=None,
    )


async def quarantine(db: AsyncConnection, file: FileToProcess, *, signature: str | None) -> None:
    """The scan found something: never served again, nothing made from it (thumbnails
    and the public variant go; their blobs, unreferenced, go with the next collection)."""
    await update_file(
        db,
        file_id=file.id,
        status="quarantined",
        scan_status="infected",
        scan_signature=(signature or "unknown")[:500],
        public_sha256=None,
        width=None,
        height=None,
        has_alpha=None,
        dominant_color=None,
        blurhash=None,
    )
    await replace_thumbnails(db, file_id=file.id, rows=[])
    for step in STEPS[1:]:
        await set_step(db, file_id=file.id, step=step, status="failed", error="Not processed: the file is quarantined.")
    await set_step(db, file_id=file.id, step="scan", status="completed")
    await publish(
        db,
        scope=Scope.user(file.owner_id),
        type=FILE_QUARANTINED,
        payload={"file_id": str(file.id), "status": "quarantined", "scan_signature": signature},
        actor_id=None,
    )


async def fail(db: AsyncConnection, file: FileToProcess, *, step: str, reason: str) -> None:
    """A step cannot be done for this file, now or on another try: the step and (unless it
    is already quarantined) the file are failed, with the reason, and the owner is told."""
    await set_step(db, file_id=file.id, step=step, status="failed", error=reason)
    if file.status == "quarantined":
        return
    changes: dict[str, Any] = {"status": "failed"}
    if step == "scan":
        changes["scan_status"] = "error"
    await update_file(db, file_id=file.id, **changes)
    if file.status == "failed":
        return  # the owner heard of the first failure
    await publish(
        db,
        scope=Scope.user(file.owner_id),
        type=FILE_FAILED,
        payload={"file_id": str(file.id), "status": "failed", "step": step, "error": reason[:300]},
        actor_id=None,
    )
