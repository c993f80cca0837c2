"""Files: registering an upload, reading a file's metadata, listing and deleting one's own.

An upload is stored in three steps (`save_upload`): its blob is claimed in a transaction
of its own (`media.register_blob`), its bytes are put into storage, and then ONE
transaction writes everything else: the blob again (its claim renewed), the file row, its
processing rows and the jobs `media.scan`, `media.metadata`, `media.thumbnails`. Storage
is content-addressed, so putting the bytes before that transaction is safe: a transaction
that fails leaves a blob nothing references, harmless, which the `media.collect` job removes
(row and bytes) once its claim is an hour old. The claim before the put is what keeps the
collector from deleting bytes an upload in flight is putting: it skips blobs claimed within
the hour.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, get_args
from uuid import UUID

from sqlalchemy import bindparam, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Acting
from rapport.kernel.db import AnyRow
from rapport.kernel.ids import uuid7
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.media import _sniff
from rapport.media._download import Blob, Download, prepare
from rapport.media._processing import start_processing
from rapport.media._storage import blob_key
from rapport.media._store import MediaStore
from rapport.media._upload import Staged
from rapport.media.errors import (
    EmptyFile,
    FileNotFound,
    FileNotReady,
    FileQuarantined,
    FileTooLarge,
    field_refused,
)
from rapport.media.models import Kind, Purpose, Step, StorageProvider, files, processing, thumbnails
from rapport.media.schemas import FileOut, FileUrls, ProcessingStepOut, ThumbnailOut

# A transaction acting as the caller: `caller.transaction` of the routers.
Transaction = Callable[[], AbstractAsyncContextManager[Acting]]

PURPOSES: tuple[Purpose, ...] = get_args(Purpose)
PROCESSING_STEPS: tuple[Step, ...] = get_args(Step)

_REGISTER_BLOB = text("SELECT media.register_blob(:sha256, :size, :content_type, :provider, :key)")
_SERVED_BLOB = text("SELECT sha256, size_bytes, content_type, storage_key FROM media.file_blob(:file_id)")
_DELETE = text("SELECT media.delete_file(:file_id)")
_COUNT_DOWNLOAD = text("SELECT media.count_download(:file_id)")


def content_url(file_id: UUID) -> str:
    return f"/v1/media/{file_id}/content"


def thumbnail_url(file_id: UUID, size: str) -> str:
    return f"/v1/media/{file_id}/thumbnails/{size}"


def purpose_of(fields: Mapping[str, str]) -> Purpose:
    """The `purpose` form field, `general` when absent.

    Raises:
        ValidationFailed: not one of the purposes.
    """
    value = fields.get("purpose", "general")
    for purpose in PURPOSES:
        if value == purpose:
            return purpose
    raise field_refused("purpose", f"purpose must be one of {', '.join(PURPOSES)}.", "literal_error")


def limit_for_head(store: MediaStore) -> Callable[[bytes, str], int]:
    """The limit of an upload's kind once its first bytes are known (the staging's check)."""

    def limit(head: bytes, file_name: str) -> int:
        return store.limits.for_kind(_sniff.sniff(head, file_name).kind)

    return limit


async def reserve_blob(
    db: AsyncConnection, *, sha256: bytes, size: int, content_type: str, provider: StorageProvider
) -> None:
    """Make the blob row of these bytes, or renew its claim: says nothing of whether it was there."""
    await db.execute(
        _REGISTER_BLOB,
        {"sha256": sha256, "size": size, "content_type": content_type, "provider": provider, "key": blob_key(sha256)},
    )


async def register_file(
    db: AsyncConnection,
    *,
    owner: UUID,
    staged: Staged,
    sniffed: _sniff.Sniffed,
    purpose: Purpose,
    provider: StorageProvider,
) -> UUID:
    """In the caller's transaction: the blob (claim renewed), the file row, its processing
    rows and jobs. The bytes must be in storage already (`save_upload`). The scan's job is
    queued now; it queues the metadata and thumbnails jobs once the bytes are known clean,
    so that nothing is made from bytes that may be a virus (rapport.media._processing)."""
    file_id = uuid7()
    await reserve_blob(db, sha256=staged.sha256, size=staged.size, content_type=sniffed.content_type, provider=provider)
    await db.execute(
        insert(files).values(
            id=file_id,
            owner_id=owner,
            file_name=staged.file_name,
            content_type=sniffed.content_type,
            declared_type=staged.declared_type,
            kind=sniffed.kind,
            size_bytes=staged.size,
            sha256=staged.sha256,
            purpose=purpose,
        )
    )
    await db.execute(insert(processing), [{"file_id": file_id, "step": step} for step in PROCESSING_STEPS])
    await queue_processing(db, file_id=file_id)
    return file_id


def accept_staged(store: MediaStore, staged: Staged) -> _sniff.Sniffed:
    """What the staged bytes are, once they are whole.

    Raises:
        EmptyFile: no bytes at all: nothing to type, show or share.
        UnsupportedMediaType: HTML, SVG or XHTML, or bytes at odds with the name or declared type.
        FileTooLarge: past the limit of the kind the bytes turned out to be.
    """
    if staged.size == 0:
        raise EmptyFile("An empty file cannot be uploaded.")
    sniffed = _sniff.accept(
        staged.head, staged.file_name, staged.declared_type, complete=staged.size <= len(staged.head)
    )
    limit = store.limits.for_kind(sniffed.kind)
    if staged.size > limit:
        raise FileTooLarge(limit, sniffed.kind)
    return sniffed


async def store_staged(
    transaction: Transaction, store: MediaStore, staged: Staged
) -> tuple[_sniff.Sniffed, StorageProvider]:
    """The first half of storing an upload: check what the staged bytes are, claim their
    blob in a transaction of its own, and put them into storage (the staged file is taken).
    The second half is the caller's one transaction: `register_file`, or a new version.

    Raises:
        EmptyFile, UnsupportedMediaType, FileTooLarge: as `accept_staged`.
        StorageUnavailable: the storage did not take the bytes.
    """
    sniffed = accept_staged(store, staged)
    provider = storage_provider(store)
    async with transaction() as (db, _):
        await reserve_blob(
            db, sha256=staged.sha256, size=staged.size, content_type=sniffed.content_type, provider=provider
        )
    await put_blob(store, staged.sha256, staged.path, size=staged.size, content_type=sniffed.content_type)
    return sniffed, provider


def storage_provider(store: MediaStore) -> StorageProvider:
    """How `media.blobs` names the storage this store keeps bytes in."""
    return "s3" if store.storage.provider == "s3" else "local"


async def put_blob(store: MediaStore, sha256: bytes, path: Path, *, size: int, content_type: str) -> None:
    """Put the bytes of a claimed blob into storage under their hash's key (the file at
    `path` is taken).

    Raises:
        StorageUnavailable: the storage did not take the bytes.
    """
    await store.storage.put(blob_key(sha256), path, sha256_hex=sha256.hex(), size=size, content_type=content_type)


async def queue_processing(db: AsyncConnection, *, file_id: UUID) -> None:
    """Queue a registered file's (or new version's) processing, in the caller's transaction:
    the scan now, and after it, once the bytes are known clean, metadata and thumbnails."""
    await start_processing(db, file_id=file_id)


async def save_upload(transaction: Transaction, store: MediaStore, staged: Staged, *, purpose: Purpose) -> FileOut:
    """Store a staged upload and register it as the caller's file (see the module's
    docstring for the order and why). The staged file is gone when this returns or raises.

    Raises:
        EmptyFile, UnsupportedMediaType, FileTooLarge: as `accept_staged`.
        StorageUnavailable: the storage did not take the bytes.
    """
    try:
        sniffed, provider = await store_staged(transaction, store, staged)
        async with transaction() as (db, actor):
            file_id = await register_file(
                db, owner=actor.user_id, staged=staged, sniffed=sniffed, purpose=purpose, provider=provider
            )
            return await access_file(db, viewer=actor.user_id, file_id=file_id)
    finally:
        staged.discard()


# -- reading ---------------------------------------------------------------------------


def file_query() -> Any:
    return select(files, func.media.format_file_size(files.c.size_bytes).label("size_text"))


async def _thumbnails_of(db: AsyncConnection, ids: Sequence[UUID]) -> dict[UUID, list[AnyRow]]:
    found: dict[UUID, list[AnyRow]] = {file_id: [] for file_id in ids}
    if ids:
        rows = await db.execute(
            select(thumbnails).where(thumbnails.c.file_id.in_(ids)).order_by(thumbnails.c.file_id, thumbnails.c.width)
        )
        for row in rows:
            found[row.file_id].append(row)
    return found


async def _processing_of(db: AsyncConnection, ids: Sequence[UUID]) -> dict[UUID, list[AnyRow]]:
    found: dict[UUID, list[AnyRow]] = {file_id: [] for file_id in ids}
    if ids:
        order = {step: position for position, step in enumerate(PROCESSING_STEPS)}
        rows = (await db.execute(select(processing).where(processing.c.file_id.in_(ids)))).all()
        for row in sorted(rows, key=lambda row: order.get(row.step, len(order))):
            found[row.file_id].append(row)
    return found


def _out(row: AnyRow, viewer: UUID | None, thumbs: list[AnyRow], steps: list[AnyRow]) -> FileOut:
    owner = row.owner_id == viewer
    served = row.sha256 if owner or row.public_sha256 is None else row.public_sha256
    thumbnail_list = [
        ThumbnailOut(
            size=t.size, width=t.width, height=t.height, content_type=t.content_type, url=thumbnail_url(row.id, t.size)
        )
        for t in thumbs
    ]
    return FileOut(
        id=row.id,
        owner_id=row.owner_id,
        file_name=row.file_name,
        content_type=row.content_type,
        kind=row.kind,
        size_bytes=row.size_bytes,
        size_text=row.size_text,
        purpose=row.purpose,
        status=row.status,
        scan_status=row.scan_status,
        sha256=served.hex(),
        width=row.width,
        height=row.height,
        has_alpha=row.has_alpha,
        dominant_color=row.dominant_color,
        blurhash=row.blurhash,
        duration_seconds=float(row.duration_seconds) if row.duration_seconds is not None else None,
        codec=row.codec,
        frame_rate=float(row.frame_rate) if row.frame_rate is not None else None,
        audio_channels=row.audio_channels,
        sample_rate=row.sample_rate,
        bitrate=row.bitrate,
        page_count=row.page_count,
        word_count=row.word_count,
        metadata=row.metadata if owner else None,
        version=row.version,
        download_count=row.download_count,
        thumbnails=thumbnail_list,
        processing=[
            ProcessingStepOut(
                step=s.step,
                status=s.status,
                attempts=s.attempts,
                error=s.error,
                queued_at=s.queued_at,
                started_at=s.started_at,
                completed_at=s.completed_at,
            )
            for s in steps
        ]
        if owner
        else None,
        urls=FileUrls(
            content=content_url(row.id),
            thumbnails={t.size: t.url for t in thumbnail_list} if thumbnail_list else None,
        ),
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
    )


async def file_outs(db: AsyncConnection, rows: Sequence[AnyRow], viewer: UUID | None) -> list[FileOut]:
    ids = [row.id for row in rows]
    thumbs = await _thumbnails_of(db, ids)
    owned = [row.id for row in rows if row.owner_id == viewer]
    steps = await _processing_of(db, owned)
    return [_out(row, viewer, thumbs[row.id], steps.get(row.id, [])) for row in rows]


async def find_file(db: AsyncConnection, *, file_id: UUID) -> AnyRow | None:
    """The file's row if the acting user may read it (row-level security decides), else None."""
    row: AnyRow | None = (await db.execute(file_query().where(files.c.id == file_id))).one_or_none()
    return row


async def access_file(db: AsyncConnection, *, viewer: UUID | None, file_id: UUID) -> FileOut:
    """A file's metadata as `viewer` sees it.

    Raises:
        FileNotFound: no such file, or one the viewer may not read (never told apart).
    """
    row = await find_file(db, file_id=file_id)
    if row is None:
        raise FileNotFound
    (out,) = await file_outs(db, [row], viewer)
    return out


async def list_files(
    db: AsyncConnection, *, owner: UUID, page: PageRequest, kind: Kind | None = None, purpose: Purpose | None = None
) -> Page[FileOut]:
    """The owner's live files, newest first."""
    query = file_query().where(files.c.owner_id == owner, files.c.deleted_at.is_(None))
    if kind is not None:
        query = query.where(files.c.kind == kind)
    if purpose is not None:
        query = query.where(files.c.purpose == purpose)
    rows = (await db.execute(keyset(query, files.c.id, page))).all()
    return make_page(await file_outs(db, rows, owner), page)


async def served_blob(db: AsyncConnection, *, file_id: UUID) -> Blob | None:
    """The bytes the acting user downloads of a file (the public variant unless they own
    it), or None when they may not read it."""
    row = (await db.execute(_SERVED_BLOB, {"file_id": file_id})).one_or_none()
    if row is None:
        return None
    return Blob(sha256=row.sha256, size=row.size_bytes, content_type=row.content_type, storage_key=row.storage_key)


async def count_download(db: AsyncConnection, *, file_id: UUID) -> None:
    await db.execute(_COUNT_DOWNLOAD, {"file_id": file_id})


async def delete_file(db: AsyncConnection, *, file_id: UUID) -> None:
    """Delete one of the acting user's files (media.delete_file).

    Raises:
        FileNotFound: not theirs, already deleted, or no such file.
    """
    deleted = (await db.execute(_DELETE.bindparams(bindparam("file_id", file_id)))).scalar_one()
    if not deleted:
        raise FileNotFound


# -- serving the bytes ---------------------------------------------------------------------


def check_servable(row: AnyRow, *, viewer: UUID | None) -> None:
    """Whether a file's bytes (or thumbnails, or versions) may be served to a reader who
    may read the file.

    Raises:
        FileQuarantined: the scan found something: served to no one, its owner included.
        FileNotReady: its scan has not passed yet, and the reader is not its owner.
    """
    if row.status == "quarantined" or row.scan_status == "infected":
        raise FileQuarantined
    if row.owner_id != viewer and row.scan_status != "clean":
        raise FileNotReady("Its virus scan has not finished; try again shortly.")


async def open_download(
    db: AsyncConnection,
    store: MediaStore,
    *,
    viewer: UUID | None,
    file_id: UUID,
    request_headers: Mapping[str, str],
) -> Download:
    """In a transaction acting as the reader (or none, with a share link set): the answer
    to a GET of a file's content, a whole download counted. Its body is read after the
    transaction: prime it with `_download.primed` once the transaction has ended.

    Raises:
        FileNotFound: no such file, or one the reader may not read (never told apart).
        FileQuarantined, FileNotReady: as `check_servable`.
        RangeNotSatisfiable: a range beyond the end (416).
    """
    row = await find_file(db, file_id=file_id)
    if row is None:
        raise FileNotFound
    check_servable(row, viewer=viewer)
    blob = await served_blob(db, file_id=file_id)
    if blob is None:
        raise FileNotFound
    download = prepare(store.storage, blob, file_name=row.file_name, request_headers=request_headers)
    if download.is_whole:
        await count_download(db, file_id=file_id)
    return download
