"""Blobs as files under one folder, `<root>/ab/cd/<sha256 hex>`.

A blob appears whole or not at all: the staged file is renamed into place (after its bytes
are on disk), or, from another filesystem, copied to a temporary name beside the target and
renamed. Disk work runs in threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from rapport.media._storage._keys import CHUNK_BYTES, check_range, check_source, checked_key
from rapport.media._storage.errors import BlobMissing, InvalidRange


class LocalStorage:
    provider = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, key: str) -> Path:
        return self.root / checked_key(key)

    async def put(self, key: str, source: Path, *, sha256_hex: str, size: int, content_type: str) -> None:
        target = self.path_of(key)
        await asyncio.to_thread(_store, source, target, size)

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        check_range(start, end)
        path = self.path_of(key)
        try:
            fd = await asyncio.to_thread(os.open, path, os.O_RDONLY)
        except FileNotFoundError:
            raise BlobMissing(f"blob {key} is not in {self.root}") from None
        try:
            size = os.fstat(fd).st_size
            # As S3 answers a Range header (416): a range starting past the end; the whole
            # of an empty blob is fine.
            if start >= size and (start > 0 or end is not None):
                raise InvalidRange(f"bytes {start}- of a blob of {size} bytes")
            stop = size if end is None else min(end + 1, size)
            position = start
            while position < stop:
                chunk = await asyncio.to_thread(os.pread, fd, min(CHUNK_BYTES, stop - position), position)
                if not chunk:  # truncated since fstat: the bytes that were there are served
                    break
                position += len(chunk)
                yield chunk
        finally:
            os.close(fd)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path_of(key).unlink, missing_ok=True)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path_of(key).is_file)

    async def close(self) -> None:
        return None


def _store(source: Path, target: Path, size: int) -> None:
    check_source(source, size)
    if target.is_file() and target.stat().st_size == size:
        # Content-addressed: the same key holds the same bytes already.
        source.unlink()
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    _fsync_file(source)
    try:
        os.replace(source, target)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        _copy_into_place(source, target)
        source.unlink()
    _fsync_dir(target.parent)


def _copy_into_place(source: Path, target: Path) -> None:
    # The staging folder is on another filesystem: copy beside the target, then rename, so
    # that a reader never finds half a blob under its name.
    handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=".incoming-", delete=False)  # noqa: SIM115
    temporary = Path(handle.name)
    try:
        with handle, source.open("rb") as reader:
            shutil.copyfileobj(reader, handle, CHUNK_BYTES)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    # The rename is durable only once the folder's entry is.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
