"""What tus 1.0.0 says on the wire: its version and extensions, and its headers and how
they are read (its refusals are in rapport.media._tus.errors)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import get_args
from uuid import UUID

from rapport.kernel.errors import ValidationFailed
from rapport.media._limits import Limits
from rapport.media._tus.errors import OFFSET_OCTET_STREAM, TUS_VERSION, InvalidUploadHeader
from rapport.media._upload import sanitise_file_name
from rapport.media.errors import FileTooLarge
from rapport.media.models import Purpose

TUS_EXTENSIONS = ("creation", "creation-with-upload", "termination", "expiration")

# Upload-Metadata is small: a name, a type, a purpose, a few of the client's own keys.
MAX_METADATA_HEADER = 4096
MAX_METADATA_PAIRS = 32
MAX_DECLARED_TYPE = 255
_METADATA_KEY = re.compile(r"^[!-+\--~]+$")  # printable ASCII but space and comma
_DIGITS = re.compile(r"^[0-9]{1,19}$")
_PURPOSES: tuple[Purpose, ...] = get_args(Purpose)


@dataclass(frozen=True)
class NewUpload:
    """What a creation request asks for, read from its headers."""

    length: int
    metadata: dict[str, str]
    file_name: str
    declared_type: str | None
    purpose: Purpose


@dataclass(frozen=True)
class TusUpload:
    id: UUID
    length: int
    offset: int
    file_name: str
    declared_type: str | None
    purpose: Purpose
    metadata: dict[str, str]
    file_id: UUID | None
    expires_at: datetime

    @property
    def complete(self) -> bool:
        return self.offset == self.length

    @property
    def expires_header(self) -> str:
        """`Upload-Expires` (an HTTP date)."""
        return format_datetime(self.expires_at, usegmt=True)

    @property
    def metadata_header(self) -> str | None:
        """`Upload-Metadata` as the client sent it, or None when it sent none."""
        return encode_metadata(self.metadata) if self.metadata else None


def tus_capabilities(limits: Limits) -> dict[str, str]:
    """What OPTIONS tells a client about this server's tus support: the largest upload is
    the largest file of any kind (a kind's own limit applies once its first bytes are in)."""
    return {
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": ",".join(TUS_EXTENSIONS),
        "Tus-Max-Size": str(limits.largest),
    }


def parse_upload_offset(value: str | None, *, header: str = "Upload-Offset") -> int:
    """A header holding a non-negative integer.

    Raises:
        InvalidUploadHeader: missing, or not a non-negative integer.
    """
    if value is None or not _DIGITS.match(value.strip()):
        raise InvalidUploadHeader(f"{header} must be a non-negative integer.")
    return int(value.strip())


def is_offset_octet_stream(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == OFFSET_OCTET_STREAM


def parse_metadata(value: str | None) -> dict[str, str]:
    """The Upload-Metadata pairs: `key base64value`, comma-separated, keys unique; a value
    may be empty (and its space left out). Values are kept as text, so they must be UTF-8.

    Raises:
        InvalidUploadHeader: a pair that breaks these rules, or too many, or too long.
    """
    if value is None or not value.strip():
        return {}
    if len(value) > MAX_METADATA_HEADER:
        raise InvalidUploadHeader(f"Upload-Metadata is limited to {MAX_METADATA_HEADER} characters.")
    pairs = value.split(",")
    if len(pairs) > MAX_METADATA_PAIRS:
        raise InvalidUploadHeader(f"Upload-Metadata holds at most {MAX_METADATA_PAIRS} pairs.")
    metadata: dict[str, str] = {}
    for pair in pairs:
        key, _, encoded = pair.strip().partition(" ")
        encoded = encoded.strip()
        if not _METADATA_KEY.match(key) or " " in encoded:
            raise InvalidUploadHeader("Each Upload-Metadata pair is a key, a space and a base64 value.")
        if key in metadata:
            raise InvalidUploadHeader(f"Upload-Metadata names {key!r} twice.")
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidUploadHeader(f"The Upload-Metadata value of {key!r} is not base64 of UTF-8 text.") from None
        if "\x00" in decoded:
            raise InvalidUploadHeader(f"The Upload-Metadata value of {key!r} holds a NUL character.")
        metadata[key] = decoded
    return metadata


def encode_metadata(metadata: Mapping[str, str]) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" if value else key for key, value in metadata.items()
    )


def _purpose(value: str) -> Purpose:
    for purpose in _PURPOSES:
        if value == purpose:
            return purpose
    message = f"purpose must be one of {', '.join(_PURPOSES)}."
    raise ValidationFailed(
        message, errors=[{"loc": ["header", "Upload-Metadata", "purpose"], "msg": message, "type": "literal_error"}]
    )


def parse_tus_creation(length: str | None, metadata_header: str | None, *, limits: Limits) -> NewUpload:
    """A creation request's Upload-Length and Upload-Metadata: `filename` (or `name`),
    `filetype` (or `type`) and `purpose` are read; every pair is kept for HEAD to give back.

    Raises:
        InvalidUploadHeader: no Upload-Length (lengths cannot be deferred here), or a
            malformed header.
        FileTooLarge: Upload-Length is above Tus-Max-Size.
        ValidationFailed: a `purpose` that is not one of the purposes.
    """
    if length is None:
        raise InvalidUploadHeader("Upload-Length is required: this server does not take deferred lengths.")
    size = parse_upload_offset(length, header="Upload-Length")
    if size > limits.largest:
        raise FileTooLarge(limits.largest)
    metadata = parse_metadata(metadata_header)
    declared = (metadata.get("filetype") or metadata.get("type") or "").split(";", 1)[0].strip().lower()
    return NewUpload(
        length=size,
        metadata=metadata,
        file_name=sanitise_file_name(metadata.get("filename") or metadata.get("name") or ""),
        declared_type=declared[:MAX_DECLARED_TYPE] or None,
        purpose=_purpose(metadata.get("purpose") or "general"),
    )
