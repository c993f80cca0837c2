"""Where the bytes of files live: stored once, by their SHA-256, in a local folder or an
S3-compatible bucket, and read back as a stream.

    storage = storage_from_settings(settings)
    await storage.put(blob_key(staged.sha256), staged.path, sha256_hex=..., size=..., content_type=...)
    async for chunk in storage.open(key, start, end):   # end inclusive; 256 KiB chunks at most
        ...
    await storage.close()                               # at shutdown: the S3 backend's connections

`put` takes the file it is given: once it returns, `source` is gone (moved into place, or
uploaded and removed). When it raises, `source` is left for the caller to remove. A key is
always what `blob_key` makes, so no key can reach outside the storage.

`open` is an async generator: nothing is read, and no error is raised, until the first
chunk is asked for. A missing blob raises `BlobMissing` then; a range that starts at or past
the end raises `InvalidRange`; a storage that cannot be reached or refuses raises
`StorageUnavailable` (503 to a client, the reason in the log).

Uploads are first written to `staging_dir(settings)`, on the same filesystem as the local
backend's blobs, so that storing one is a rename.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from rapport.config import Settings
from rapport.media._storage._keys import CHUNK_BYTES, blob_key, is_blob_key
from rapport.media._storage._local import LocalStorage
from rapport.media._storage._s3 import S3Storage
from rapport.media._storage.errors import BlobMissing, InvalidRange, StorageRefused, StorageUnavailable

__all__ = [
    "CHUNK_BYTES",
    "BlobMissing",
    "InvalidRange",
    "LocalStorage",
    "S3Storage",
    "Storage",
    "StorageRefused",
    "StorageUnavailable",
    "blob_key",
    "is_blob_key",
    "media_root",
    "staging_dir",
    "storage_from_settings",
]


class Storage(Protocol):
    provider: str  # 'local' | 's3', as media.blobs.storage_provider records it

    async def put(self, key: str, source: Path, *, sha256_hex: str, size: int, content_type: str) -> None:
        """Store the file at `source` (and take it: see the module's docstring)."""
        ...

    def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes from `start` to `end` inclusive (to the end when None), in chunks."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the blob; nothing happens when it is not there."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def close(self) -> None:
        """Release connections; the backend may not be used afterwards."""
        ...


def media_root(settings: Settings) -> Path:
    return settings.media_dir if settings.media_dir is not None else settings.data_dir / "media"


def staging_dir(settings: Settings) -> Path:
    """`<media dir>/staging`, created when missing: uploads are written here before they are stored."""
    path = media_root(settings) / "staging"
    path.mkdir(parents=True, exist_ok=True)
    return path


def storage_from_settings(settings: Settings) -> Storage:
    if settings.media_storage == "local":
        return LocalStorage(media_root(settings) / "blobs")
    # Settings refuses s3 without these; checked again for the type checker's sake.
    endpoint, bucket = settings.s3_endpoint, settings.s3_bucket
    key_id, secret = settings.s3_access_key_id, settings.s3_secret_access_key
    if not (endpoint and bucket and key_id and secret):
        raise StorageUnavailable("RAPPORT_MEDIA_STORAGE=s3 needs the endpoint, bucket and both keys")
    return S3Storage(
        endpoint=endpoint,
        bucket=bucket,
        region=settings.s3_region,
        access_key_id=key_id,
        secret_access_key=secret.get_secret_value(),
    )
