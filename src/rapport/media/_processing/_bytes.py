"""Processing's way to the stored bytes: a local file to read a blob from (Pillow, mutagen
and pypdf seek in files), and new blobs (thumbnails, the public variant) stored by content
like uploads are, so that the same thumbnail made twice is kept once."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from rapport.kernel.db import SystemEngine, system_transaction
from rapport.media._processing import _records
from rapport.media._storage import LocalStorage, Storage, blob_key


@asynccontextmanager
async def local_copy(storage: Storage, key: str, staging: Path) -> AsyncIterator[Path]:
    """A path to the blob's bytes for the block's duration: the stored file itself on the
    local backend, else a copy in the staging folder, removed afterwards."""
    if isinstance(storage, LocalStorage):
        yield storage.path_of(key)
        return
    handle = tempfile.NamedTemporaryFile(dir=staging, prefix=".processing-", delete=False)  # noqa: SIM115
    path = Path(handle.name)
    try:
        with handle:
            async for chunk in storage.open(key):
                await asyncio.to_thread(handle.write, chunk)
        yield path
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)


async def read_all(storage: Storage, key: str) -> bytes:
    """The whole blob in memory: only for images, whose size the upload limits."""
    return b"".join([chunk async for chunk in storage.open(key)])


def _write_staged(staging: Path, data: bytes) -> Path:
    handle = tempfile.NamedTemporaryFile(dir=staging, prefix=".made-", delete=False)  # noqa: SIM115
    with handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return Path(handle.name)


async def store(engine: SystemEngine, storage: Storage, staging: Path, data: bytes, *, content_type: str) -> bytes:
    """Store bytes processing made and return their SHA-256. The blob row is reserved
    first, in a transaction of its own, so that the collector keeps it while the bytes are
    put; the caller's transaction then names it."""
    digest = hashlib.sha256(data).digest()
    key = blob_key(digest)
    async with system_transaction(engine) as db:
        await _records.register_blob(
            db, sha256=digest, size=len(data), content_type=content_type, provider=storage.provider, key=key
        )
    source = await asyncio.to_thread(_write_staged, staging, data)
    try:
        await storage.put(key, source, sha256_hex=digest.hex(), size=len(data), content_type=content_type)
    finally:
        await asyncio.to_thread(source.unlink, missing_ok=True)  # put takes it when it succeeds
    return digest
