"""A file's thumbnail, for a reader the content's rule lets see the file
(`service.check_servable`): which bytes to serve, or why there are none."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.db import AnyRow
from rapport.media._download import Blob
from rapport.media._processing.errors import ThumbnailNotFound
from rapport.media.errors import FileNotReady

_THUMBNAIL_BLOB = text(
    "SELECT sha256, size_bytes, content_type, storage_key FROM media.thumbnail_blob(:file_id, :thumbnail_size)"
)
_EXTENSIONS = {"image/webp": "webp", "image/jpeg": "jpg"}


@dataclass(frozen=True)
class ServedThumbnail:
    blob: Blob
    file_name: str  # what a browser saves it as: the file's name, the size, the thumbnail's type


async def thumbnail_of(db: AsyncConnection, *, file: AnyRow, size: str) -> ServedThumbnail:
    """The thumbnail of that size of a file (a `media.files` row the acting user may read
    and be served).

    Raises:
        FileNotReady: an image whose thumbnails are still being made.
        ThumbnailNotFound: a file that has no thumbnails (not an image, or one that could
            not be decoded).
    """
    row = (await db.execute(_THUMBNAIL_BLOB, {"file_id": file.id, "thumbnail_size": size})).one_or_none()
    if row is None:
        if file.kind == "image" and file.status == "processing":
            raise FileNotReady("The thumbnails of this image are being made.")
        raise ThumbnailNotFound(f"This file has no {size} thumbnail: only images that could be decoded have them.")
    blob = Blob(sha256=row.sha256, size=row.size_bytes, content_type=row.content_type, storage_key=row.storage_key)
    stem = PurePosixPath(file.file_name).stem or "thumbnail"
    return ServedThumbnail(blob=blob, file_name=f"{stem}-{size}.{_EXTENSIONS.get(blob.content_type, 'img')}")
