"""Processing's jobs (kernel.jobs, docs/decisions/0010), payload `{"file_id": ...}`:

- `media.scan`: clamd or the built-in check; a clean image also gets its public variant
  (its location removed) in the same transaction that makes it clean, so no one else is
  ever served the original. Queues the two steps below; an infected file is quarantined
  and nothing is made from it.
- `media.metadata`: what mutagen (audio, video), pypdf (PDF pages and words) or the
  EXIF header (camera, date) say.
- `media.thumbnails`: an image's three thumbnails, dimensions, transparency, dominant
  colour and blurhash.

Each step records itself in `media.processing`; the last one to complete makes the file
ready, and its owner hears of it (`media.file_ready`, or `media.file_quarantined`,
`media.file_failed`). A step that can never succeed (a decompression bomb, clamd refusing
the stream) fails the file with its reason instead of being retried; one that may succeed
later (storage or clamd unreachable) is retried by the queue, and fails the file when its
attempts are spent. Every step is safe to run twice: it does nothing once completed, and
writes only while the file still holds the bytes it read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel import jobs
from rapport.kernel.db import SystemEngine, system_transaction
from rapport.kernel.runtime import Runtime
from rapport.media._processing import _bytes, _clamd, _exif, _images, _metadata, _records, _scan
from rapport.media._processing._records import FileToProcess
from rapport.media._storage import BlobMissing, Storage, staging_dir, storage_from_settings

log = structlog.get_logger(__name__)

QUEUE: Final = "media"


class StepFailed(Exception):
    """The step cannot succeed for these bytes, now or later."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Step:
    """What a step's work runs with."""

    runtime: Runtime
    storage: Storage
    staging: Path
    file: FileToProcess

    @property
    def engine(self) -> SystemEngine:
        return self.runtime.system_engine


Work = Callable[[_Step], Awaitable[None]]


@asynccontextmanager
async def _storage(runtime: Runtime) -> AsyncIterator[Storage]:
    storage = storage_from_settings(runtime.settings)
    try:
        yield storage
    finally:
        await storage.close()


async def _may_run(db: AsyncConnection, file: FileToProcess, step: str) -> bool:
    if file.status == "quarantined":
        return False
    if step != "scan" and file.scan_status != "clean":
        # Nothing is made from bytes not known to be clean: the scan queues this step
        # again once they are.
        return False
    return await _records.step_status(db, file_id=file.id, step=step) != "completed"


async def _drive(ctx: jobs.JobContext, payload: jobs.JsonObject, step: str, work: Work) -> None:
    runtime = ctx.runtime
    file_id = UUID(payload["file_id"])
    async with system_transaction(runtime.system_engine) as db:
        file = await _records.load_file(db, file_id=file_id)
        if file is None or not await _may_run(db, file, step):
            return
        await _records.start_step(db, file_id=file_id, step=step)
    try:
        async with _storage(runtime) as storage:
            await work(_Step(runtime, storage, staging_dir(runtime.settings), file))
    except StepFailed as failure:
        log.warning("media.step_failed", file_id=str(file_id), step=step, reason=failure.reason)
        await _end(runtime.system_engine, file, step=step, reason=failure.reason, retry=False)
    except Exception as error:
        # Storage or clamd unreachable, or a bug: another attempt may do better. The last
        # one fails the file, so that it does not stay "processing" for ever.
        retry = ctx.job.attempt < ctx.job.max_attempts
        reason = f"{type(error).__name__}: {error}"
        log.warning("media.step_error", file_id=str(file_id), step=step, reason=reason, retry=retry)
        await _end(runtime.system_engine, file, step=step, reason=reason, retry=retry)
        if retry:
            raise


async def _end(engine: SystemEngine, file: FileToProcess, *, step: str, reason: str, retry: bool) -> None:
    async with system_transaction(engine) as db:
        current = await _records.lock_current(db, file)
        if current is None:
            return
        if retry:
            await _records.set_step(db, file_id=file.id, step=step, status="queued", error=reason)
        else:
            await _records.fail(db, current, step=step, reason=reason)


# -- scan ---------------------------------------------------------------------------------


async def _scan_work(step: _Step) -> None:
    file, storage = step.file, step.storage

    def open_bytes(start: int, end: int | None) -> AsyncIterator[bytes]:
        # Ranges within the file: storage refuses one that starts past the end.
        if start >= file.size_bytes:
            return _no_bytes()
        return storage.open(file.storage_key, start, None if end is None else min(end, file.size_bytes - 1))

    try:
        verdict = await _scan.scan(open_bytes, file_name=file.file_name, clamd=step.runtime.settings.clamd)
    except (_clamd.ClamdRefused, ValueError) as error:
        raise StepFailed(f"The scan could not be made: {error}") from error
    except BlobMissing as error:
        raise StepFailed("The file's bytes are missing from storage.") from error
    variant = None if verdict.infected or file.kind != "image" else await _public_variant(step)
    async with system_transaction(step.engine) as db:
        current = await _records.lock_current(db, file)
        if current is None:
            return
        if verdict.infected:
            log.warning("media.quarantined", file_id=str(file.id), signature=verdict.signature)
            await _records.quarantine(db, current, signature=verdict.signature)
            return
        await _records.update_file(
            db,
            file_id=file.id,
            scan_status="clean",
            scan_signature=None,
            public_sha256=variant,
            metadata={"scanned_by": verdict.scanner},
        )
        await _records.set_step(db, file_id=file.id, step="scan", status="completed")
        for follower in await _records.steps_to_run(db, file_id=file.id):
            await _records.enqueue(db, FOLLOWERS[follower], file_id=file.id)
        await _records.finish_if_done(db, current)


async def _no_bytes() -> AsyncIterator[bytes]:
    nothing: tuple[bytes, ...] = ()
    for chunk in nothing:  # an async generator that yields nothing
        yield chunk


async def _public_variant(step: _Step) -> bytes | None:
    """The bytes others download of an image whose metadata says where it was taken."""
    data = await _bytes.read_all(step.storage, step.file.storage_key)
    stripped = await asyncio.to_thread(_exif.remove_location, data)
    if stripped is None:
        return None
    return await _bytes.store(step.engine, step.storage, step.staging, stripped, content_type=step.file.content_type)


# -- metadata -----------------------------------------------------------------------------


async def _metadata_work(step: _Step) -> None:
    file = step.file
    columns: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    if file.kind in ("image", "audio", "video") or file.content_type == "application/pdf":
        async with _bytes.local_copy(step.storage, file.storage_key, step.staging) as path:
            columns, extra = await asyncio.to_thread(_read_metadata, file, path)
    async with system_transaction(step.engine) as db:
        current = await _records.lock_current(db, file)
        if current is None:
            return
        await _records.update_file(db, file_id=file.id, metadata=extra, **columns)
        await _records.set_step(db, file_id=file.id, step="metadata", status="completed")
        await _records.finish_if_done(db, current)


def _read_metadata(file: FileToProcess, path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The file's metadata columns and what else goes into its `metadata`. Metadata is read
    where the machine can: headers it cannot read are noted, and fail nothing."""
    if file.kind == "image":
        return {}, _images.camera_facts(path)
    try:
        if file.content_type == "application/pdf":
            document = _metadata.read_pdf(path)
            return {"page_count": document.page_count, "word_count": document.word_count}, document.extra
        media = _metadata.read_media(path)
    except _metadata.MetadataUnreadable as error:
        return {}, {"metadata_unreadable": str(error)[:300]}
    if media is None:
        return {}, {}
    return {
        "duration_seconds": None if media.duration_seconds is None else Decimal(str(media.duration_seconds)),
        "bitrate": media.bitrate,
        "sample_rate": media.sample_rate,
        "audio_channels": media.audio_channels,
        "codec": media.codec,
        "frame_rate": None if media.frame_rate is None else Decimal(str(media.frame_rate)),
    }, media.extra


# -- thumbnails ---------------------------------------------------------------------------


async def _thumbnails_work(step: _Step) -> None:
    file = step.file
    facts: _images.ImageFacts | None = None
    rows: list[dict[str, Any]] = []
    if file.kind == "image":
        async with _bytes.local_copy(step.storage, file.storage_key, step.staging) as path:
            try:
                facts = await asyncio.to_thread(_images.process_image, path)
            except _images.ImageUnsupported:
                facts = None
            except _images.ImageRefused as refused:
                raise StepFailed(refused.reason) from refused
        for thumbnail in facts.thumbnails if facts else ():
            digest = await _bytes.store(
                step.engine, step.storage, step.staging, thumbnail.data, content_type=thumbnail.content_type
            )
            rows.append(
                {
                    "size": thumbnail.size,
                    "sha256": digest,
                    "width": thumbnail.width,
                    "height": thumbnail.height,
                    "content_type": thumbnail.content_type,
                }
            )
    async with system_transaction(step.engine) as db:
        current = await _records.lock_current(db, file)
        if current is None or current.scan_status != "clean":
            return
        await _records.replace_thumbnails(db, file_id=file.id, rows=rows)
        if facts is not None:
            await _records.update_file(
                db,
                file_id=file.id,
                width=facts.width,
                height=facts.height,
                has_alpha=facts.has_alpha,
                dominant_color=facts.dominant_color,
                blurhash=facts.blurhash,
                metadata={"format": facts.format, "animated": facts.animated},
            )
        elif file.kind == "image":
            await _records.update_file(db, file_id=file.id, metadata={"thumbnails": "format not supported"})
        await _records.set_step(db, file_id=file.id, step="thumbnails", status="completed")
        await _records.finish_if_done(db, current)


# -- the tasks ------------------------------------------------------------------------------


async def scan(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    await _drive(ctx, payload, "scan", _scan_work)


async def metadata(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    await _drive(ctx, payload, "metadata", _metadata_work)


async def thumbnails(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    await _drive(ctx, payload, "thumbnails", _thumbnails_work)


# The scan waits out a clamd restart (six attempts: about five minutes of backoff) and
# streams up to the largest upload; the others read and decode, in a thread.
SCAN: Final = jobs.Task("media.scan", scan, QUEUE, max_attempts=6, timeout_seconds=900.0)
METADATA: Final = jobs.Task("media.metadata", metadata, QUEUE, max_attempts=3, timeout_seconds=300.0)
THUMBNAILS: Final = jobs.Task("media.thumbnails", thumbnails, QUEUE, max_attempts=3, timeout_seconds=300.0)
TASKS: Final = (SCAN, METADATA, THUMBNAILS)
FOLLOWERS: Final = {"metadata": METADATA, "thumbnails": THUMBNAILS}


def register_tasks(registry: jobs.TaskRegistry = jobs.tasks) -> None:
    """Make processing's tasks runnable by the workers of `registry` (the server's by
    default). Registering again changes nothing."""
    for task in TASKS:
        if registry.get(task.name) is None:
            registry.task(
                task.name, queue=task.queue, max_attempts=task.max_attempts, timeout_seconds=task.timeout_seconds
            )(task.handler)


async def start_processing(db: AsyncConnection, *, file_id: UUID) -> None:
    """Queue the processing of a file just registered (or given a new version), in the
    caller's transaction: the scan first, which queues the rest once the bytes are clean."""
    await _records.enqueue(db, SCAN, file_id=file_id)
