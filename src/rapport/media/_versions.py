"""Versions of a file: its owner uploads new bytes for it; the file row takes them (same id,
name, shares, albums and comments) and is processed again, while the bytes it held go to
`media.file_versions` (media.add_version does both in one statement). The owner lists the
versions and downloads any of them.

A new version is of the same kind as the file (an image stays an image), so that what
holds it (an album of images and videos, a profile photo slot) stays true."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow
from rapport.media import _download, _files
from rapport.media._members import owned_file
from rapport.media._processing import start_processing
from rapport.media._sniff import Sniffed
from rapport.media._store import MediaStore
from rapport.media._upload import Staged
from rapport.media.errors import FileQuarantined, VersionKindMismatch, VersionNotFound
from rapport.media.models import file_versions
from rapport.media.schemas_collections import VersionList, VersionOut

_ADD_VERSION = text("SELECT media.add_version(:file_id, :sha256, :size, :content_type, :declared, :kind)")
_VERSION_BLOB = text("SELECT sha256, size_bytes, content_type, storage_key FROM media.version_blob(:file_id, :version)")


def version_content_url(file_id: UUID, version: int) -> str:
    return f"/v1/media/{file_id}/versions/{version}/content"


async def access_versioned_file(db: AsyncConnection, *, actor: Actor, file_id: UUID) -> AnyRow:
    """One of the actor's files, that may take a new version: not a quarantined one,
    whose bytes would otherwise be kept, downloadable, among its versions.

    Raises:
        FileNotFound, NotFileOwner: as owned_file.
        FileQuarantined: the scan found something in it: upload a new file instead.
    """
    row = await owned_file(db, actor=actor, file_id=file_id)
    if row.status == "quarantined" or row.scan_status == "infected":
        raise FileQuarantined("A quarantined file takes no new version: upload a new file instead.")
    return row


def check_kind(row: AnyRow, sniffed: Sniffed) -> None:
    """Raises:
    VersionKindMismatch: the new bytes are of another kind than the file.
    """
    if sniffed.kind != row.kind:
        raise VersionKindMismatch(f"This file is {row.kind}; the new version's bytes are {sniffed.kind}.")


async def do_add_version(
    db: AsyncConnection, *, actor: Actor, store: MediaStore, file_id: UUID, staged: Staged, sniffed: Sniffed
) -> int:
    """Make staged bytes the file's current version: their blob claimed, then stored, then
    registered, all in the actor's transaction (the claim holds the blob's row locked until
    it ends, so the collector never takes bytes being stored); processing is queued again.
    Returns the new version's number.

    Raises:
        FileNotFound, NotFileOwner, FileQuarantined: as access_versioned_file.
        VersionKindMismatch: the bytes are of another kind than the file.
        StorageUnavailable: the storage did not take the bytes.
    """
    row = await access_versioned_file(db, actor=actor, file_id=file_id)
    check_kind(row, sniffed)
    provider = _files.storage_provider(store)
    await _files.reserve_blob(
        db, sha256=staged.sha256, size=staged.size, content_type=sniffed.content_type, provider=provider
    )
    await _files.put_blob(store, staged.sha256, staged.path, size=staged.size, content_type=sniffed.content_type)
    version: int = (
        await db.execute(
            _ADD_VERSION,
            {
                "file_id": file_id,
                "sha256": staged.sha256,
                "size": staged.size,
                "content_type": sniffed.content_type,
                "declared": staged.declared_type,
                "kind": sniffed.kind,
            },
        )
    ).scalar_one()
    await start_processing(db, file_id=file_id)
    return version


async def list_versions(db: AsyncConnection, *, actor: Actor, file_id: UUID) -> VersionList:
    """Every version of one of the actor's files, newest (the current one) first.

    Raises:
        FileNotFound, NotFileOwner: as owned_file.
    """
    row = await owned_file(db, actor=actor, file_id=file_id)
    current = VersionOut(
        version=row.version,
        size_bytes=row.size_bytes,
        content_type=row.content_type,
        created_by=row.owner_id,
        created_at=row.updated_at if row.version > 1 else row.created_at,
        is_current=True,
        content_url=version_content_url(file_id, row.version),
    )
    earlier = await db.execute(
        select(file_versions).where(file_versions.c.file_id == file_id).order_by(file_versions.c.version.desc())
    )
    return VersionList(
        items=[
            current,
            *(
                VersionOut(
                    version=v.version,
                    size_bytes=v.size_bytes,
                    content_type=v.content_type,
                    created_by=v.created_by,
                    created_at=v.created_at,
                    is_current=False,
                    content_url=version_content_url(file_id, v.version),
                )
                for v in earlier
            ),
        ]
    )


async def version_blob(
    db: AsyncConnection, *, actor: Actor, file_id: UUID, version: int
) -> tuple[AnyRow, _download.Blob | None]:
    """One of the actor's files and, for an earlier version, that version's bytes (None for
    the current one, which is served as the file's content is).

    Raises:
        FileNotFound, NotFileOwner: as owned_file.
        VersionNotFound: the file has no such version.
    """
    row = await owned_file(db, actor=actor, file_id=file_id)
    if version == row.version:
        return row, None
    found = (await db.execute(_VERSION_BLOB, {"file_id": file_id, "version": version})).one_or_none()
    if found is None:
        raise VersionNotFound(f"This file's versions are 1 to {row.version}.")
    blob = _download.Blob(
        sha256=found.sha256, size=found.size_bytes, content_type=found.content_type, storage_key=found.storage_key
    )
    return row, blob
