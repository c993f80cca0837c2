"""The media domain's public service: what routers and other domains call.

Uploads and downloads take the caller's transaction factory (`caller.transaction` of the
routers) rather than one open transaction: an upload's bytes are read and stored between
transactions, and a download's bytes are streamed after its transaction has ended."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from rapport.kernel import jobs
from rapport.kernel.pagination import Page, PageRequest
from rapport.media import _download, _files
from rapport.media._download import Blob, Download, content_disposition, prepare, primed
from rapport.media._files import Transaction, access_file, check_servable, list_files, open_download, save_upload
from rapport.media._photos import list_profile_photos
from rapport.media._processing import thumbnail_of
from rapport.media._store import MediaStore
from rapport.media._tus import remove_uploads_of
from rapport.media._upload import Receive, Staged, stage_multipart
from rapport.media.errors import ClientGone, FileNotFound
from rapport.media.models import Kind, Purpose, ThumbnailSize
from rapport.media.schemas import FileOut
from rapport.media.tasks import QUEUE, Collector
from rapport.media.tasks import collect as collect_task

__all__ = [
    "QUEUE",
    "Blob",
    "ClientGone",
    "Collector",
    "Download",
    "FileOut",
    "Kind",
    "MediaStore",
    "Purpose",
    "Receive",
    "Staged",
    "ThumbnailSize",
    "Transaction",
    "access_file",
    "check_servable",
    "content_disposition",
    "do_delete_file",
    "download_file",
    "download_thumbnail",
    "get_file",
    "list_files",
    "list_own_files",
    "list_profile_photos",
    "open_download",
    "prepare",
    "primed",
    "remove_uploads_of",
    "save_upload",
    "stage_multipart",
    "stage_upload",
    "upload_file",
]


async def stage_upload(store: MediaStore, receive: Receive, headers: Mapping[str, str]) -> Staged:
    """A multipart upload (field `file`, and optionally `purpose`) streamed to staging,
    within the limits of the store (see rapport.media._upload.stage_multipart)."""
    return await stage_multipart(
        receive,
        headers,
        store.staging,
        store.limits.largest,
        limit_for_head=_files.limit_for_head(store),
        fields=("purpose",),
    )


async def upload_file(
    transaction: Transaction, store: MediaStore, receive: Receive, headers: Mapping[str, str]
) -> FileOut:
    """`POST /v1/media`: stage the body, check it, store the bytes, register the file.

    Raises:
        MultipartRequired, MalformedMultipart, FileRequired, ValidationFailed: the body.
        FileTooLarge: past the limit of its kind (413).
        EmptyFile, UnsupportedMediaType: what the bytes are (422, 415).
        StorageUnavailable: the storage would not take them (503).
        ClientGone: the client went away midway.
    """
    staged = await stage_upload(store, receive, headers)
    try:
        purpose = _files.purpose_of(staged.fields)
    except BaseException:
        staged.discard()
        raise
    return await save_upload(transaction, store, staged, purpose=purpose)


async def list_own_files(
    transaction: Transaction, *, page: PageRequest, kind: Kind | None, purpose: Purpose | None
) -> Page[FileOut]:
    async with transaction() as (db, actor):
        return await list_files(db, owner=actor.user_id, page=page, kind=kind, purpose=purpose)


async def get_file(transaction: Transaction, *, file_id: UUID) -> FileOut:
    async with transaction() as (db, actor):
        return await access_file(db, viewer=actor.user_id, file_id=file_id)


async def download_file(
    transaction: Transaction, store: MediaStore, *, file_id: UUID, request_headers: Mapping[str, str]
) -> Download:
    """`GET /v1/media/{id}/content`: the answer, its body streamed after the transaction.

    Raises:
        FileNotFound: no such file, or one the caller may not read (never told apart).
        FileQuarantined, FileNotReady: as `check_servable`.
        RangeNotSatisfiable: a range beyond the end (416).
        StorageUnavailable: the bytes cannot be read (503).
    """
    async with transaction() as (db, actor):
        download = await _files.open_download(
            db, store, viewer=actor.user_id, file_id=file_id, request_headers=request_headers
        )
    return await primed(download)


async def download_thumbnail(
    transaction: Transaction,
    store: MediaStore,
    *,
    file_id: UUID,
    size: ThumbnailSize,
    request_headers: Mapping[str, str],
) -> Download:
    """`GET /v1/media/{id}/thumbnails/{size}`: served as the file's content is, to whoever
    may be served the file (rapport.media._processing.thumbnail_of says which bytes).

    Raises:
        FileNotFound: no such file, or one the caller may not read.
        FileQuarantined, FileNotReady: as `check_servable`; FileNotReady too while an
            image's thumbnails are being made.
        ThumbnailNotFound: the file has none (not an image, or one that could not be decoded).
        RangeNotSatisfiable, StorageUnavailable: as `download_file`.
    """
    async with transaction() as (db, actor):
        row = await _files.find_file(db, file_id=file_id)
        if row is None:
            raise FileNotFound
        check_servable(row, viewer=actor.user_id)
        thumbnail = await thumbnail_of(db, file=row, size=size)
        download = _download.prepare(
            store.storage, thumbnail.blob, file_name=thumbnail.file_name, request_headers=request_headers
        )
    return await primed(download)


async def do_delete_file(transaction: Transaction, *, file_id: UUID) -> None:
    """`DELETE /v1/media/{id}`: the owner deletes a file; the collector is queued at once.

    Raises:
        FileNotFound: not the caller's, already deleted, or no such file.
    """
    async with transaction() as (db, _):
        await _files.delete_file(db, file_id=file_id)
        await jobs.enqueue(db, collect_task, {})
