"""Uploads as rows of `media.uploads` and the steps that move them: create, append a
chunk (and, with the last one, register the file), terminate, and collect the expired.

A PATCH runs in one transaction holding the upload's row lock while it streams, and moves
`offset` in it once the bytes are on disk: two racing chunks cannot both apply (the second
waits, then finds the offset moved: 409), and a crash between the write and the commit
leaves bytes past the recorded offset, which the next PATCH at that offset overwrites.

The PATCH that brings the last byte registers the file before it commits, as a multipart
upload is registered (rapport.media._files): the same checks of the bytes, the blob
claimed, the bytes put into storage, then the file row with its processing rows and jobs,
all in the PATCH's transaction with the upload's new offset and `file_id`. An upload is
complete only with its file: when storing fails (a storage out of reach), the offset stays
where it was and the client sends its last chunk again, the staged bytes still there (the
storage is handed a second name of the file, not the file).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterable, AsyncIterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow
from rapport.kernel.errors import RapportError
from rapport.kernel.ids import uuid7
from rapport.media._files import (
    Transaction,
    accept_staged,
    put_blob,
    register_file,
    reserve_blob,
    storage_provider,
)
from rapport.media._store import MediaStore
from rapport.media._tus._protocol import NewUpload, TusUpload
from rapport.media._tus._staging import StagedBytesLost, digest, put_path, receive_at, staged_path, stale_staged_files
from rapport.media._tus.errors import (
    UploadBusy,
    UploadExpired,
    UploadLengthExceeded,
    UploadNotFound,
    UploadOffsetMismatch,
)
from rapport.media._upload import Staged
from rapport.media.models import uploads

UPLOAD_TTL = timedelta(hours=24)
# How long a PATCH waits for another PATCH of the same upload before it is told the upload
# is busy: long enough for a request whose client has just gone to notice it and store
# what it received.
LOCK_WAIT = "5s"
# Uploads removed by one run of the collector: a backlog is worked through by several runs.
COLLECT_BATCH = 1000
_LOCK_NOT_AVAILABLE = "55P03"

_LOCK_TIMEOUT = text("SELECT set_config('lock_timeout', :wait, true)")
_LOCK_TIMEOUT_DEFAULT = text("SET LOCAL lock_timeout TO DEFAULT")
_EXPIRED = (uploads.c.expires_at <= func.now()).label("expired")
# No SKIP LOCKED (that needs an UPDATE grant the worker does not hold): an expired upload is
# one no PATCH has touched for a day, and a PATCH refuses it, so none holds it for long. A
# PATCH that began just before the end moves expires_at on, and the DELETE, which waited
# for it, then finds the row no longer expired.
_COLLECT = text(
    """
    DELETE FROM media.uploads u
     WHERE u.expires_at <= now()
       AND u.id IN (SELECT e.id FROM media.uploads e WHERE e.expires_at <= now() ORDER BY e.expires_at LIMIT :batch)
    RETURNING u.id
    """
)


def _upload(row: AnyRow) -> TusUpload:
    return TusUpload(
        id=row.id,
        length=row.length,
        offset=row.offset,
        file_name=row.file_name,
        declared_type=row.declared_type,
        purpose=row.purpose,
        metadata=dict(row.metadata),
        file_id=row.file_id,
        expires_at=row.expires_at,
    )


def _upload_id(value: UUID | str) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(value)
    except ValueError:
        raise UploadNotFound from None


def _sqlstate(error: DBAPIError) -> str | None:
    for candidate in (error.orig, getattr(error.orig, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str):
            return state
    return None


def _refusal(error: RapportError) -> bool:
    """Whether checking the bytes refused them for good (a 4xx: they can never make a
    file here), rather than failed for a while (a storage out of reach: 503)."""
    return 400 <= error.status < 500


def _usable(row: AnyRow | None) -> TusUpload:
    if row is None:
        raise UploadNotFound
    if row.expired and row.offset < row.length:
        raise UploadExpired
    return _upload(row)


async def _lock(db: AsyncConnection, actor: Actor, upload_id: UUID) -> TusUpload:
    """The actor's upload, its row locked for the rest of the transaction.

    Raises:
        UploadNotFound, UploadExpired: as access_upload.
        UploadBusy: another transaction held the lock past LOCK_WAIT.
    """
    await db.execute(_LOCK_TIMEOUT, {"wait": LOCK_WAIT})
    query = select(uploads, _EXPIRED).where(uploads.c.id == upload_id, uploads.c.owner_id == actor.user_id)
    try:
        row = (await db.execute(query.with_for_update(of=uploads))).one_or_none()
    except DBAPIError as error:
        if _sqlstate(error) == _LOCK_NOT_AVAILABLE:
            raise UploadBusy from None
        raise
    await db.execute(_LOCK_TIMEOUT_DEFAULT)
    return _usable(row)


async def _forget(db: AsyncConnection, store: MediaStore, upload_id: UUID) -> None:
    """End an upload whose bytes can never make a file, or are gone."""
    await db.execute(delete(uploads).where(uploads.c.id == upload_id))
    staged_path(store.staging, upload_id).unlink(missing_ok=True)


async def _append(
    db: AsyncConnection,
    store: MediaStore,
    upload: TusUpload,
    *,
    owner: UUID,
    body: AsyncIterable[bytes],
    content_length: int | None,
) -> tuple[TusUpload, RapportError | None]:
    """Write the body at the (locked) upload's offset, move the offset past it, and
    register the file when that completes the upload. A refusal of the bytes ends the
    upload: it is returned, for the caller to raise once the end is committed."""
    room = upload.length - upload.offset
    if content_length is not None and content_length > room:
        raise UploadLengthExceeded(f"The upload lacks {room} bytes; this request carries {content_length}.")
    path = staged_path(store.staging, upload.id)
    try:
        received = await receive_at(path, upload=upload, body=body, limits=store.limits)
        offset = upload.offset + received
        file_id = upload.file_id
        if offset == upload.length and file_id is None:
            file_id = await _register(db, store, upload, owner=owner)
    except StagedBytesLost:
        await _forget(db, store, upload.id)
        return upload, UploadExpired("The bytes received so far are gone: start a new upload.")
    except RapportError as error:
        if not _refusal(error) or isinstance(error, UploadLengthExceeded):
            raise
        await _forget(db, store, upload.id)
        return upload, error
    row = (
        await db.execute(
            update(uploads)
            .where(uploads.c.id == upload.id)
            .values(offset=offset, file_id=file_id, expires_at=func.clock_timestamp() + UPLOAD_TTL)
            .returning(*uploads.c)
        )
    ).one()
    return _upload(row), None


async def _register(db: AsyncConnection, store: MediaStore, upload: TusUpload, *, owner: UUID) -> UUID:
    """Check, store and register the complete staged file in `db`, the PATCH's
    transaction; the new file's id (see the module's docstring).

    Raises:
        EmptyFile, UnsupportedMediaType, FileTooLarge: see rapport.media._files.accept_staged.
        StorageUnavailable: the storage did not take the bytes.
    """
    path = staged_path(store.staging, upload.id)
    sha256, head = await asyncio.to_thread(digest, path, upload.length)
    staged = Staged(
        path=path,
        sha256=sha256,
        size=upload.length,
        file_name=upload.file_name,
        declared_type=upload.declared_type,
        head=head,
    )
    sniffed = accept_staged(store, staged)
    provider = storage_provider(store)
    # Claimed before the bytes are put: the upsert keeps the blob row locked until this
    # transaction ends, and the collector skips locked rows (rapport.media._collect).
    await reserve_blob(db, sha256=sha256, size=upload.length, content_type=sniffed.content_type, provider=provider)
    handed = put_path(store.staging, upload.id)
    handed.unlink(missing_ok=True)
    await asyncio.to_thread(os.link, path, handed)
    try:
        await put_blob(store, sha256, handed, size=upload.length, content_type=sniffed.content_type)
    finally:
        handed.unlink(missing_ok=True)
    return await register_file(
        db, owner=owner, staged=staged, sniffed=sniffed, purpose=upload.purpose, provider=provider
    )


async def _nothing() -> AsyncIterator[bytes]:
    """A body of no bytes: an upload of length 0 is complete as soon as it is created."""
    empty: tuple[bytes, ...] = ()
    for chunk in empty:
        yield chunk


async def do_create_upload(
    transaction: Transaction,
    store: MediaStore,
    *,
    new: NewUpload,
    body: AsyncIterable[bytes] | None = None,
    content_length: int | None = None,
) -> TusUpload:
    """Start an upload of the caller's, and write the body's bytes at offset 0 when the
    request carries some (creation-with-upload). An upload complete at once (all its bytes
    sent, or of length 0) has its file registered, as `do_append_upload` does.

    Raises:
        UploadLengthExceeded: the body holds more than Upload-Length.
        UnsupportedMediaType, FileTooLarge, EmptyFile: the bytes are refused (the upload
            is ended).
        StorageUnavailable: the storage did not take the complete file (nothing is kept).
    """
    upload_id = uuid7()
    path = staged_path(store.staging, upload_id)
    try:
        async with transaction() as (db, actor):
            row = (
                await db.execute(
                    insert(uploads)
                    .values(
                        id=upload_id,
                        owner_id=actor.user_id,
                        length=new.length,
                        file_name=new.file_name,
                        declared_type=new.declared_type,
                        purpose=new.purpose,
                        metadata=new.metadata,
                        expires_at=func.now() + UPLOAD_TTL,
                    )
                    .returning(*uploads.c)
                )
            ).one()
            upload, refused = _upload(row), None
            path.touch(mode=0o600)
            if body is not None or upload.length == 0:
                upload, refused = await _append(
                    db,
                    store,
                    upload,
                    owner=actor.user_id,
                    body=body if body is not None else _nothing(),
                    content_length=content_length,
                )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if refused is not None:
        raise refused
    if upload.file_id is not None:
        path.unlink(missing_ok=True)
    return upload


async def access_upload(transaction: Transaction, *, upload_id: UUID | str) -> TusUpload:
    """One of the caller's uploads.

    Raises:
        UploadNotFound: missing, or not the caller's.
        UploadExpired: unfinished, and left longer than UPLOAD_TTL.
    """
    async with transaction() as (db, actor):
        query = select(uploads, _EXPIRED).where(
            uploads.c.id == _upload_id(upload_id), uploads.c.owner_id == actor.user_id
        )
        return _usable((await db.execute(query)).one_or_none())


async def do_append_upload(
    transaction: Transaction,
    store: MediaStore,
    *,
    upload_id: UUID | str,
    offset: int,
    body: AsyncIterable[bytes],
    content_length: int | None = None,
) -> TusUpload:
    """Write the body's bytes at `offset` of one of the caller's uploads. A body that ends
    early (the client went away) keeps what arrived. The bytes that complete the upload
    register its file, in the same transaction.

    Raises:
        UploadNotFound, UploadExpired: as access_upload; UploadExpired too when the staged
            bytes are gone (the upload is ended).
        UploadBusy: another PATCH of this upload holds it.
        UploadOffsetMismatch: `offset` is not the upload's offset.
        UploadLengthExceeded: the body holds more than the upload lacks.
        UnsupportedMediaType, FileTooLarge, EmptyFile: the bytes are refused (the upload
            is ended).
        StorageUnavailable: the storage did not take the complete file (the offset stays
            where it was: send the last chunk again).
    """
    async with transaction() as (db, actor):
        upload = await _lock(db, actor, _upload_id(upload_id))
        if offset != upload.offset:
            raise UploadOffsetMismatch(upload.offset)
        upload, refused = await _append(
            db, store, upload, owner=actor.user_id, body=body, content_length=content_length
        )
    if refused is not None:
        raise refused
    if upload.file_id is not None:
        # Stored now: the staged bytes are no longer needed.
        staged_path(store.staging, upload.id).unlink(missing_ok=True)
    return upload


async def do_terminate_upload(transaction: Transaction, store: MediaStore, *, upload_id: UUID | str) -> None:
    """End one of the caller's uploads, complete or not, and remove its staged bytes. A
    file it made stays (deleting that is `DELETE /v1/media/{id}`).

    Raises:
        UploadNotFound: missing, or not the caller's.
    """
    async with transaction() as (db, actor):
        ended = (
            await db.execute(
                delete(uploads)
                .where(uploads.c.id == _upload_id(upload_id), uploads.c.owner_id == actor.user_id)
                .returning(uploads.c.id)
            )
        ).scalar_one_or_none()
        if ended is None:
            raise UploadNotFound
    staged_path(store.staging, ended).unlink(missing_ok=True)


async def remove_uploads_of(db: AsyncConnection, store: MediaStore, *, owner_id: UUID) -> int:
    """Remove every resumable upload of one person, finished or not, with its staged bytes
    (their account's erasure: a row going with the account would leave its bytes behind);
    how many went. System work: `db` is a system transaction. A file an upload made stays
    for its own erasure."""
    ended = list(
        (await db.execute(delete(uploads).where(uploads.c.owner_id == owner_id).returning(uploads.c.id))).scalars()
    )
    for upload_id in ended:
        staged_path(store.staging, upload_id).unlink(missing_ok=True)
        put_path(store.staging, upload_id).unlink(missing_ok=True)
    return len(ended)


async def collect_expired_uploads(db: AsyncConnection, *, staging: Path, batch: int = COLLECT_BATCH) -> int:
    """Remove uploads whose time ran out (complete ones too: their file lives on) with
    their staged bytes, and staged files no upload names any more (an upload whose
    creation rolled back); how many uploads went. System work: `db` is a system
    transaction."""
    ids = list((await db.execute(_COLLECT, {"batch": batch})).scalars())
    for upload_id in ids:
        staged_path(staging, upload_id).unlink(missing_ok=True)
    stale = stale_staged_files(staging, older_than=UPLOAD_TTL)
    if stale:
        known = set((await db.execute(select(uploads.c.id).where(uploads.c.id.in_(list(stale))))).scalars())
        for upload_id, path in stale.items():
            if upload_id not in known:
                path.unlink(missing_ok=True)
                put_path(staging, upload_id).unlink(missing_ok=True)
    return len(ids)
