"""A multipart upload streamed to a staging file, hashed as it goes: the file is never
held whole in memory, whatever its size.

The request body is read message by message from the ASGI `receive` and fed to
python-multipart's push parser; the file part's bytes are written to
`<staging>/<random>.part` and hashed (SHA-256) in a worker thread, a few hundred KiB at a
time. The limit applies while the bytes arrive: the largest of any kind until the first
bytes tell the kind, then that kind's. Past it the upload stops at once (413) and the
staged bytes are removed, as they are on every other refusal.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import unicodedata
from collections.abc import Awaitable, Callable, Collection, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from rapport.kernel.ids import uuid7
from rapport.media._limits import MULTIPART_OVERHEAD
from rapport.media._sniff import HEAD_BYTES
from rapport.media.errors import (
    ClientGone,
    FileRequired,
    FileTooLarge,
    MalformedMultipart,
    MultipartRequired,
    field_refused,
)

# The ASGI receive callable: the request body arrives through it, message by message.
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
# The limit once the first bytes (and the name) are known: the kind's, in rapport.media._limits.
LimitForHead = Callable[[bytes, str], int]

FILE_FIELD = "file"
# Staged bytes are written out once this much is waiting: the most held in memory at a time
# (with one message of the body).
_FLUSH_BYTES = 512 * 1024
# The most a form field other than the file may hold.
_FIELD_BYTES = 1024
_NAME_BYTES = 255
# Characters a file name keeps out: path separators, controls, and what shells and
# Windows refuse.
_BROWSER_ESCAPES = re.compile(r"%(22|0[aAdD])")
_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')


@dataclass(frozen=True)
class Staged:
    """An upload's file, whole in the staging folder, and what came with it."""

    path: Path
    sha256: bytes
    size: int
    file_name: str
    declared_type: str | None
    head: bytes  # the first HEAD_BYTES bytes (all of them for a smaller file)
    fields: Mapping[str, str] = field(default_factory=dict)  # the other form fields given

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def sanitise_file_name(raw: str) -> str:
    """The name to keep for a file: its last path segment, NFC, without control or path
    characters, at most 255 characters with its extension kept; "file" when nothing is left."""
    name = unicodedata.normalize("NFC", raw.replace("\\", "/").rsplit("/", 1)[-1])
    name = _UNSAFE_NAME.sub("_", name).strip().strip(".").strip()
    if not name:
        return "file"
    if len(name) > _NAME_BYTES:
        dot = name.rfind(".")
        extension = name[dot:] if dot > 0 and len(name) - dot <= 16 else ""
        name = name[: _NAME_BYTES - len(extension)].rstrip() + extension
    return name


def _declared_type(value: str | None) -> str | None:
    if not value:
        return None
    media_type = value.split(";", 1)[0].strip().lower()
    return media_type[:255] or None


def _disposition(raw: bytes) -> tuple[str | None, str | None]:
    """The form field's name and, for a file, its file name (RFC 7578; a `filename*` in
    the RFC 5987 form wins over `filename` when a client sends both)."""
    _, options = parse_options_header(raw)
    name = options.get(b"name")
    filename = options.get(b"filename")
    extended = re.search(rb"filename\*\s*=\s*([\w!#$&+.^`|~-]+)'[^']*'([^;\s]+)", raw, re.IGNORECASE)
    decoded: str | None = None
    if extended:
        charset = extended.group(1).decode("ascii").lower()
        try:
            decoded = unquote(extended.group(2).decode("ascii"), encoding=charset, errors="replace")
        except LookupError:
            decoded = None
    if decoded is None and filename is not None:
        # Browsers (and httpx) write a quote and line breaks in a file name as %22, %0D and
        # %0A (WHATWG HTML, multipart/form-data encoding): the name is what they stand for.
        decoded = _BROWSER_ESCAPES.sub(lambda m: chr(int(m.group(1), 16)), filename.decode("utf-8", errors="replace"))
    return (name.decode("utf-8", errors="replace") if name is not None else None), decoded


def _write(fd: int, digest: Any, chunks: list[bytes]) -> None:
    """Run in a thread: hashing and writing release the GIL for blocks of this size."""
    for chunk in chunks:
        digest.update(chunk)
        view = memoryview(chunk)
        while view:
            written = os.write(fd, view)
            view = view[written:]


class _Upload:
    """The parser's callbacks and what they gather."""

    def __init__(self, *, limit: int, limit_for_head: LimitForHead | None, allowed_fields: Collection[str]) -> None:
        self.limit = limit
        self.limit_for_head = limit_for_head
        self.allowed_fields = allowed_fields
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.part_headers: dict[str, bytes] = {}
        self.in_file = False
        self.field_name: str | None = None
        self.field_value = bytearray()
        self.fields: dict[str, str] = {}
        self.file_seen = False
        self.file_name: str | None = None
        self.declared_type: str | None = None
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.size = 0
        self.head = bytearray()
        self.head_known = False
        self.ended = False

    # -- python-multipart callbacks ---------------------------------------------------

    def on_part_begin(self) -> None:
        self.part_headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.part_headers[self.header_name.decode("latin-1").strip().lower()] = bytes(self.header_value)
        self.header_name.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        name, file_name = _disposition(self.part_headers.get("content-disposition", b""))
        if name == FILE_FIELD:
            if file_name is None:
                raise FileRequired("The `file` field must be a file (a part with a filename).")
            if self.file_seen:
                raise field_refused(FILE_FIELD, "Only one file may be uploaded at a time.", "too_long")
            self.file_seen = self.in_file = True
            self.file_name = sanitise_file_name(file_name)
            self.declared_type = _declared_type(self.part_headers.get("content-type", b"").decode("latin-1"))
        elif name is not None and name in self.allowed_fields:
            if name in self.fields:
                raise field_refused(name, f"`{name}` is given twice.", "too_long")
            self.field_name = name
            self.field_value.clear()
        else:
            shown = name if name is not None else "(unnamed)"
            raise field_refused(shown, f"The upload has no field `{shown}`.", "extra_forbidden")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            chunk = bytes(data[start:end])
            self.size += len(chunk)
            if len(self.head) < HEAD_BYTES:
                self.head += chunk[: HEAD_BYTES - len(self.head)]
            if self.size > self.limit:
                raise FileTooLarge(self.limit)
            self.pending.append(chunk)
            self.pending_bytes += len(chunk)
        elif self.field_name is not None:
            self.field_value += data[start:end]
            if len(self.field_value) > _FIELD_BYTES:
                raise field_refused(self.field_name, f"At most {_FIELD_BYTES} bytes.", "string_too_long")

    def on_part_end(self) -> None:
        if self.in_file:
            self.in_file = False
            self.learn_kind()
        elif self.field_name is not None:
            try:
                self.fields[self.field_name] = self.field_value.decode("utf-8")
            except UnicodeDecodeError:
                raise field_refused(self.field_name, "Not UTF-8 text.", "string_type") from None
            self.field_name = None

    def on_end(self) -> None:
        self.ended = True

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    # -- limits -----------------------------------------------------------------------

    def learn_kind(self) -> None:
        """Once the head is whole (or the file ended before it), the kind's limit applies."""
        if self.head_known or not self.file_seen or (self.in_file and len(self.head) < HEAD_BYTES):
            return
        self.head_known = True
        if self.limit_for_head is not None:
            self.limit = min(self.limit, self.limit_for_head(bytes(self.head), self.file_name or ""))
            if self.size > self.limit:
                raise FileTooLarge(self.limit)

    def take_pending(self) -> list[bytes]:
        chunks, self.pending, self.pending_bytes = self.pending, [], 0
        return chunks


def _parser(headers: Mapping[str, str], upload: _Upload, limit: int) -> MultipartParser:
    media_type, options = parse_options_header(headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise MultipartRequired("Send the file as multipart/form-data, in a field named `file`.")
    declared_length = headers.get("content-length")
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > limit + MULTIPART_OVERHEAD:
        raise FileTooLarge(limit)
    try:
        return MultipartParser(boundary, upload.callbacks())  # type: ignore[arg-type]
    except ValueError as exc:
        raise MultipartRequired(f"The multipart boundary is not usable: {exc}.") from None


async def _read(receive: Receive, parser: MultipartParser, upload: _Upload, fd: int, digest: Any) -> None:
    """Feed the body to the parser, message by message, writing the file out as it comes."""
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        more = bool(message.get("more_body", False))
        try:
            parser.write(message.get("body", b""))
            if not more:
                parser.finalize()
        except MultipartParseError as exc:
            raise MalformedMultipart(f"The multipart body is malformed: {exc}.") from None
        upload.learn_kind()
        if upload.pending_bytes >= _FLUSH_BYTES or (not more and upload.pending):
            await asyncio.to_thread(_write, fd, digest, upload.take_pending())
    if not upload.ended:
        raise MalformedMultipart("The multipart body ended before its closing boundary.")
    if not upload.file_seen:
        raise FileRequired("Send the file in a multipart field named `file`.")


async def stage_multipart(
    receive: Receive,
    headers: Mapping[str, str],
    staging: Path,
    limit: int,
    *,
    limit_for_head: LimitForHead | None = None,
    fields: Collection[str] = (),
) -> Staged:
    """Read a multipart/form-data body whose `file` field holds the file, into a staging
    file (in `staging`, which exists), hashing it as it goes. `limit` is the most the file
    may hold before its kind is known; `limit_for_head(head, file_name)`, when given, the
    most once its first bytes are. `fields` names the other form fields allowed (each at
    most 1 KiB of UTF-8 text).

    Raises:
        MultipartRequired: the body is not multipart/form-data with a boundary.
        FileTooLarge: the Content-Length says more than the limit allows (before a byte is
            read), or the file passed its limit (as soon as it did).
        MalformedMultipart: the body is not well-formed multipart, or ends early.
        FileRequired: no `file` field holding a file.
        ValidationFailed: another field than `file` and `fields`, or one given twice.
        ClientGone: the client disconnected midway.
    """
    upload = _Upload(limit=limit, limit_for_head=limit_for_head, allowed_fields=fields)
    parser = _parser(headers, upload, limit)
    path = staging / f"{uuid7().hex}.part"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    digest = hashlib.sha256()
    try:
        await _read(receive, parser, upload, fd, digest)
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)
    return Staged(
        path=path,
        sha256=digest.digest(),
        size=upload.size,
        file_name=upload.file_name or "file",
        declared_type=upload.declared_type,
        head=bytes(upload.head),
        fields=dict(upload.fields),
    )
