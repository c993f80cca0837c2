"""An upload's bytes in the staging folder, `<staging>/<upload id>`: written in place at
their offset as they arrive, a few hundred KiB at a time (never the whole file in
memory), checked by their head as soon as it is in, and hashed once when complete.

The SHA-256 is computed when the upload completes, by reading the staged file once,
rather than as bytes arrive: a running hash could not be kept between PATCHes (hashlib's
state cannot be stored, and the next PATCH may reach another process or node), and one
sequential read of a file just written costs little next to receiving it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterable
from datetime import datetime, timedelta
from pathlib import Path
from uuid import UUID

from rapport.media._limits import Limits
from rapport.media._sniff import HEAD_BYTES, accept
from rapport.media._tus._protocol import TusUpload
from rapport.media._tus.errors import UploadLengthExceeded
from rapport.media.errors import FileTooLarge

# Received bytes are written out once this much is waiting: the most held at a time.
FLUSH_BYTES = 512 * 1024
_READ_BYTES = 1024 * 1024


class StagedBytesLost(Exception):
    """The staged file is missing, or shorter than the offset the upload records."""


def staged_path(staging: Path, upload_id: UUID) -> Path:
    return staging / str(upload_id)


def put_path(staging: Path, upload_id: UUID) -> Path:
    """A second name of a complete upload's staged file, for the storage to take: if
    storing fails the bytes stay under the first, and the completion can be tried again."""
    return staging / f"{upload_id}.put"


async def receive_at(path: Path, *, upload: TusUpload, body: AsyncIterable[bytes], limits: Limits) -> int:
    """Write the body into the staged file from the upload's offset; how many bytes it
    held. The request whose bytes complete the file's head has it checked.

    Raises:
        StagedBytesLost: the staged bytes before the offset are gone.
        UploadLengthExceeded: more bytes than the upload lacks.
        UnsupportedMediaType, FileTooLarge: what the head shows is refused (`check_head`).
    """
    start = received = upload.offset
    head_end = min(HEAD_BYTES, upload.length)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(descriptor).st_size < start:
            raise StagedBytesLost
        pending: list[bytes] = []
        pending_bytes = 0
        async for chunk in body:
            if len(chunk) > upload.length - received:
                raise UploadLengthExceeded(f"The upload is {upload.length} bytes long.")
            pending.append(chunk)
            pending_bytes += len(chunk)
            head_whole = received < head_end <= received + len(chunk)
            received += len(chunk)
            if pending_bytes >= FLUSH_BYTES or head_whole:
                await asyncio.to_thread(_write_at, descriptor, pending, received - pending_bytes)
                pending, pending_bytes = [], 0
            if head_whole:
                check_head(os.pread(descriptor, head_end, 0), upload=upload, limits=limits)
        if pending:
            await asyncio.to_thread(_write_at, descriptor, pending, received - pending_bytes)
        # On disk before the offset that says so commits.
        await asyncio.to_thread(os.fsync, descriptor)
    finally:
        os.close(descriptor)
    return received - start


def _write_at(descriptor: int, chunks: list[bytes], position: int) -> None:
    """Run in a thread: the event loop serves other requests meanwhile."""
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            written = os.pwrite(descriptor, view, position)
            view = view[written:]
            position += written


def check_head(head: bytes, *, upload: TusUpload, limits: Limits) -> None:
    """Refuse an upload by its first bytes, as a multipart upload is refused: a type
    never stored or at odds with the name or declared type, or a length past the limit
    of the kind the bytes are (known before the rest is sent).

    Raises:
        UnsupportedMediaType: see rapport.media._sniff.accept.
        FileTooLarge: the upload's length is past its kind's limit.
    """
    sniffed = accept(head, upload.file_name, upload.declared_type, complete=len(head) == upload.length)
    limit = limits.for_kind(sniffed.kind)
    if upload.length > limit:
        raise FileTooLarge(limit, sniffed.kind)


def digest(path: Path, length: int) -> tuple[bytes, bytes]:
    """The SHA-256 of the staged file and its head, the file cut to `length` first (a
    PATCH that was refused may have left bytes past what the upload recorded)."""
    os.truncate(path, length)
    sha256 = hashlib.sha256()
    with path.open("rb") as staged:
        head = staged.read(HEAD_BYTES)
        sha256.update(head)
        while block := staged.read(_READ_BYTES):
            sha256.update(block)
    return sha256.digest(), head


def stale_staged_files(staging: Path, *, older_than: timedelta) -> dict[UUID, Path]:
    """Staged files named by an upload id (multipart uploads stage under other names)
    untouched for longer than `older_than`, with their `.put` names."""
    cutoff = datetime.now().timestamp() - older_than.total_seconds()
    stale: dict[UUID, Path] = {}
    for entry in os.scandir(staging):
        name = entry.name.removesuffix(".put")
        try:
            upload_id = UUID(name)
        except ValueError:
            continue
        if name == str(upload_id) and entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
            stale[upload_id] = staged_path(staging, upload_id)
    return stale
