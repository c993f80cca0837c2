"""Blob keys and the checks both backends share."""

from __future__ import annotations

import os
import re
from pathlib import Path

from rapport.media._storage.errors import InvalidRange

# What one read or one chunk of a stream holds: the most of a blob in memory at a time.
CHUNK_BYTES = 256 * 1024

_KEY = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}")


def blob_key(sha256: bytes) -> str:
    """`ab/cd/abcd…` (the 64 hex digits of the hash): two levels of 256 folders, so that
    no folder of a local store holds more than a few thousand files at millions of blobs."""
    if len(sha256) != 32:
        raise ValueError("a SHA-256 digest is 32 bytes")
    digest = sha256.hex()
    return f"{digest[:2]}/{digest[2:4]}/{digest}"


def is_blob_key(key: str) -> bool:
    return _KEY.fullmatch(key) is not None


def checked_key(key: str) -> str:
    # Keys are made by blob_key; anything else (`..`, an absolute path) is a bug upstream.
    if not is_blob_key(key):
        raise ValueError(f"not a blob key: {key!r}")
    return key


def check_range(start: int, end: int | None) -> None:
    if start < 0 or (end is not None and end < start):
        raise InvalidRange(f"bytes {start}-{'' if end is None else end} is not a range")


def check_source(source: Path, size: int) -> None:
    actual = os.stat(source).st_size
    if actual != size:
        raise ValueError(f"{source} holds {actual} bytes, not the {size} given")
