"""The media domain's service for albums, shares, versions, comments and profile photos:
what their routers call. Most take the caller's open transaction, as every service does;
those that move bytes (a new version's upload, a version's or a link's download) take the
transaction factory or the engine instead, since bytes are read and stored between
transactions and a download streams after its transaction has ended.

Every download goes through rapport.media._download (Range, validators, the headers that
keep an upload from acting as a page), after the checks every reader passes
(`service.check_servable`)."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rapport.media import _download, _files
from rapport.media._albums import (
    do_add_item,
    do_create_album,
    do_delete_album,
    do_remove_item,
    do_reorder_items,
    do_update_album,
    get_album,
    list_albums,
)
from rapport.media._comments import do_add_comment, do_delete_comment, do_edit_comment, list_comments
from rapport.media._download import Download
from rapport.media._photos import (
    do_remove_profile_photo,
    do_reorder_profile_photos,
    do_set_profile_photo,
    list_profile_photos,
)
from rapport.media._processing import thumbnail_of
from rapport.media._shares import (
    do_revoke_share,
    do_share_album,
    do_share_file,
    link_file,
    link_transaction,
    list_album_shares,
    list_file_shares,
    list_shared_with_me,
    open_link,
)
from rapport.media._store import MediaStore
from rapport.media._upload import Receive, stage_multipart
from rapport.media._versions import access_versioned_file, check_kind, do_add_version, list_versions, version_blob
from rapport.media.errors import FileNotFound
from rapport.media.models import ThumbnailSize
from rapport.media.schemas import FileOut
from rapport.media.schemas_collections import LinkOut
from rapport.media.service import Transaction, check_servable

__all__ = [
    "ThumbnailSize",
    "add_version",
    "do_add_comment",
    "do_add_item",
    "do_create_album",
    "do_delete_album",
    "do_delete_comment",
    "do_edit_comment",
    "do_remove_item",
    "do_remove_profile_photo",
    "do_reorder_items",
    "do_reorder_profile_photos",
    "do_revoke_share",
    "do_set_profile_photo",
    "do_share_album",
    "do_share_file",
    "do_update_album",
    "download_link",
    "download_link_thumbnail",
    "download_version",
    "get_album",
    "get_link",
    "list_album_shares",
    "list_albums",
    "list_comments",
    "list_file_shares",
    "list_profile_photos",
    "list_shared_with_me",
    "list_versions",
]


async def _open_download(
    db: AsyncConnection, store: MediaStore, *, viewer: UUID | None, file_id: UUID, request_headers: Mapping[str, str]
) -> Download:
    """A file's current bytes as `viewer` may download them, in the transaction that
    decides it (its body is read after: prime it once the transaction has ended).

    Raises:
        FileNotFound: no such file, or one the acting user (or link) may not read.
        FileQuarantined, FileNotReady: as check_servable.
        RangeNotSatisfiable: a range beyond the end.
    """
    row = await _files.find_file(db, file_id=file_id)
    if row is None:
        raise FileNotFound
    check_servable(row, viewer=viewer)
    blob = await _files.served_blob(db, file_id=file_id)
    if blob is None:
        raise FileNotFound
    download = _download.prepare(store.storage, blob, file_name=row.file_name, request_headers=request_headers)
    if download.is_whole:
        await _files.count_download(db, file_id=file_id)
    return download


# Links: no sign-in, the token is the capability.


async def get_link(engine: AsyncEngine, *, token: str) -> LinkOut:
    """`GET /v1/media/shared/{token}`: what a live link shares.

    Raises:
        ShareLinkNotFound: a wrong, expired or revoked link, or its file or album is gone.
    """
    async with link_transaction(engine, token=token) as db:
        return await open_link(db, token=token)


async def download_link(
    engine: AsyncEngine,
    store: MediaStore,
    *,
    token: str,
    file_id: UUID | None,
    request_headers: Mapping[str, str],
) -> Download:
    """The bytes a live link gives: its file, or one file of its album.

    Raises:
        ShareLinkNotFound: as open_link, or a file the link does not give.
        FileQuarantined, FileNotReady, RangeNotSatisfiable: as _open_download.
        StorageUnavailable: the bytes cannot be read.
    """
    async with link_transaction(engine, token=token) as db:
        target = await link_file(db, token=token, file_id=file_id)
        download = await _open_download(db, store, viewer=None, file_id=target, request_headers=request_headers)
    return await _download.primed(download)


async def download_link_thumbnail(
    engine: AsyncEngine,
    store: MediaStore,
    *,
    token: str,
    file_id: UUID,
    size: ThumbnailSize,
    request_headers: Mapping[str, str],
) -> Download:
    """A thumbnail of a file a live link gives, served as `GET /v1/media/{id}/thumbnails/{size}` is.

    Raises:
        ShareLinkNotFound: as link_file.
        FileQuarantined, FileNotReady: as check_servable; FileNotReady too while an
            image's thumbnails are being made.
        ThumbnailNotFound: the file has none (not an image, or one that could not be decoded).
        RangeNotSatisfiable, StorageUnavailable: as any download.
    """
    async with link_transaction(engine, token=token) as db:
        target = await link_file(db, token=token, file_id=file_id)
        row = await _files.find_file(db, file_id=target)
        if row is None:
            raise FileNotFound
        check_servable(row, viewer=None)
        thumbnail = await thumbnail_of(db, file=row, size=size)
        download = _download.prepare(
            store.storage, thumbnail.blob, file_name=thumbnail.file_name, request_headers=request_headers
        )
    return await _download.primed(download)


# Versions: the owner's, bytes in and out.


async def add_version(
    transaction: Transaction, store: MediaStore, receive: Receive, headers: Mapping[str, str], *, file_id: UUID
) -> FileOut:
    """`POST /v1/media/{id}/versions`: a multipart upload (field `file`) that becomes the
    file's current version, staged, checked and stored as an upload is.

    Raises:
        FileNotFound, NotFileOwner, FileQuarantined: the file (checked before a byte is read).
        MultipartRequired, MalformedMultipart, FileRequired, ValidationFailed: the body.
        FileTooLarge, EmptyFile, UnsupportedMediaType: the bytes, as for an upload.
        VersionKindMismatch: the bytes are of another kind than the file.
        StorageUnavailable: the storage would not take them.
    """
    async with transaction() as (db, actor):
        row = await access_versioned_file(db, actor=actor, file_id=file_id)
    staged = await stage_multipart(
        receive, headers, store.staging, store.limits.largest, limit_for_head=_files.limit_for_head(store)
    )
    try:
        sniffed = _files.accept_staged(store, staged)
        # Told before the bytes are stored, as the file was checked before they were read.
        check_kind(row, sniffed)
        async with transaction() as (db, actor):
            await do_add_version(db, actor=actor, store=store, file_id=file_id, staged=staged, sniffed=sniffed)
            return await _files.access_file(db, viewer=actor.user_id, file_id=file_id)
    finally:
        staged.discard()


async def download_version(
    transaction: Transaction,
    store: MediaStore,
    *,
    file_id: UUID,
    version: int,
    request_headers: Mapping[str, str],
) -> Download:
    """`GET /v1/media/{id}/versions/{n}/content`: the bytes of one version of the
    caller's file (the current one as its content is served).

    Raises:
        FileNotFound, NotFileOwner: the file.
        VersionNotFound: no such version.
        FileQuarantined: the current version, quarantined.
        RangeNotSatisfiable, StorageUnavailable: as any download.
    """
    async with transaction() as (db, actor):
        row, blob = await version_blob(db, actor=actor, file_id=file_id, version=version)
        if blob is None:
            download = await _open_download(
                db, store, viewer=actor.user_id, file_id=file_id, request_headers=request_headers
            )
        else:
            download = _download.prepare(store.storage, blob, file_name=row.file_name, request_headers=request_headers)
    return await _download.primed(download)
