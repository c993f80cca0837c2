"""Serving stored bytes over HTTP: one byte range (RFC 9110 §14), validators, and the
headers that keep an upload from ever acting as a page of Rapport's origin.

Every download of media (a file, a thumbnail, a version, a shared link) goes through
`prepare`: it answers a conditional request (`If-None-Match` → 304), a single range
(`bytes=a-b`, `bytes=a-`, `bytes=-n` → 206, `If-Range` honoured) or the whole (200), with
`ETag` = the served bytes' SHA-256, `Content-Disposition` (RFC 6266, `filename*` for any
name), `X-Content-Type-Options: nosniff` and `Content-Security-Policy: sandbox`, so that
even bytes a browser would take for HTML cannot run script; only images, video, audio and
PDF are shown inline. The body streams from storage, a chunk at a time.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from rapport.media._storage import Storage
from rapport.media.errors import RangeNotSatisfiable

_SINGLE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_INLINE_MAJOR = ("image/", "video/", "audio/")
# What RFC 5987's attr-char allows unescaped in `filename*`.
_ATTR_CHARS = "!#$&+-.^_`|~"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # An upload is never a page: no script, no plugin, no form, whatever a browser makes of it.
    "Content-Security-Policy": "sandbox; default-src 'none'",
}


@dataclass(frozen=True)
class Blob:
    """The bytes to serve, as the database names them."""

    sha256: bytes
    size: int
    content_type: str
    storage_key: str

    @property
    def etag(self) -> str:
        return f'"{self.sha256.hex()}"'


@dataclass(frozen=True)
class Download:
    """An answer to give: status, headers and, unless 304, the body streamed from storage."""

    status: int
    headers: dict[str, str]
    body: AsyncIterator[bytes] | None

    @property
    def is_whole(self) -> bool:
        """The whole of the bytes is sent (200): what counts as a download."""
        return self.status == 200


def content_disposition(file_name: str, content_type: str) -> str:
    """RFC 6266: `inline` only for what a browser shows as media (image, video, audio, PDF),
    `attachment` for everything else; an ASCII `filename` for old clients and the exact
    name in `filename*`."""
    disposition = (
        "inline" if content_type.startswith(_INLINE_MAJOR) or content_type == "application/pdf" else "attachment"
    )
    fallback = "".join(char if 0x20 <= ord(char) < 0x7F and char not in '"\\%' else "_" for char in file_name)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe=_ATTR_CHARS)}"


def _served_type(content_type: str) -> str:
    # Text is stored as UTF-8 (rapport.media._sniff): say so, or a browser guesses.
    return f"{content_type}; charset=utf-8" if content_type.startswith("text/") else content_type


def _etag_listed(header: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2): `*`, or any listed tag equal once `W/` is dropped."""
    tags = [tag.strip() for tag in header.split(",")]
    return any(tag == "*" or tag.removeprefix("W/") == etag for tag in tags)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one range asked for, as (first, last) inclusive, or None to send the whole:
    no Range, one this server does not serve (several ranges, another unit) or one that
    does not parse (RFC 9110 §14.2: ignored).

    Raises:
        RangeNotSatisfiable: a valid range that holds no byte of the file (416).
    """
    if header is None:
        return None
    match = _SINGLE_RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text:
            return None
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(size - suffix, 0), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None
    if first >= size:
        raise RangeNotSatisfiable(size)
    last = int(last_text) if last_text else size - 1
    return first, min(last, size - 1)


def prepare(
    storage: Storage,
    blob: Blob,
    *,
    file_name: str,
    request_headers: Mapping[str, str],
    cache_control: str = "private, max-age=0, must-revalidate",
) -> Download:
    """The answer to a GET of these bytes, given the request's headers (lower-case names,
    or a case-insensitive mapping). Nothing is read from storage until the body is iterated.

    Raises:
        RangeNotSatisfiable: a valid range beyond the end (416, with `Content-Range: bytes */size`).
    """
    headers = {
        "ETag": blob.etag,
        "Cache-Control": cache_control,
        "Accept-Ranges": "bytes",
        "Content-Type": _served_type(blob.content_type),
        "Content-Disposition": content_disposition(file_name, blob.content_type),
        **SECURITY_HEADERS,
    }
    if_none_match = request_headers.get("if-none-match")
    if if_none_match is not None and _etag_listed(if_none_match, blob.etag):
        return Download(304, {key: value for key, value in headers.items() if key != "Content-Type"}, None)
    asked = request_headers.get("range")
    if_range = request_headers.get("if-range")
    # If-Range: the range holds only for the representation the client has (a strong
    # match of its ETag; a date cannot match, none is sent).
    if asked is not None and if_range is not None and if_range.strip() != blob.etag:
        asked = None
    span = byte_range(asked, blob.size)
    if span is None:
        headers["Content-Length"] = str(blob.size)
        return Download(200, headers, storage.open(blob.storage_key))
    first, last = span
    headers["Content-Length"] = str(last - first + 1)
    headers["Content-Range"] = f"bytes {first}-{last}/{blob.size}"
    return Download(206, headers, storage.open(blob.storage_key, first, last))


async def primed(download: Download) -> Download:
    """The same answer with its first chunk already read from storage: bytes missing from
    storage, or storage out of reach, raise here (503), before a header is sent, rather
    than cutting a 200 short."""
    body = download.body
    if body is None:
        return download
    first = await anext(body, None)

    async def rest() -> AsyncIterator[bytes]:
        try:
            if first is not None:
                yield first
            async for chunk in body:
                yield chunk
        finally:
            # A client that goes away closes this stream: the storage's (a file, a
            # connection) is closed now, not when collected.
            close = getattr(body, "aclose", None)
            if close is not None:
                await close()

    return Download(download.status, download.headers, rest())
