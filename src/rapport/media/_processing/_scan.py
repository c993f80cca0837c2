"""The scan of an upload: clamd when RAPPORT_CLAMD names one, else a built-in check, and
in both cases Rapport's own rule that a file's bytes may not contradict its name.

The built-in check is no antivirus. It finds the EICAR test file (so that the whole
quarantine path can be tried on any installation, as with a real scanner) and files whose
name promises a harmless format while the bytes are a program or a web page (`photo.jpg`
that is a Windows executable: opened by a careless double click after download, it runs).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

from rapport.media._processing import _clamd

# The EICAR test file (eicar.org): 68 printable characters that every scanner reports.
# Written in two halves so that this source file is not itself reported by one.
EICAR: Final = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_SIGNATURE: Final = "Eicar-Test-Signature"
TYPE_MISMATCH_SIGNATURE: Final = "Rapport.TypeMismatch"
# The standard says the file starts with the string; scanners find it anywhere near the
# start, and so does this check.
HEAD_BYTES: Final = 4096

# Programs, whatever their name says.
_EXECUTABLE_MAGIC: Final = (
    b"\x7fELF",  # Linux and most Unix
    b"\xfe\xed\xfa\xce",  # Mach-O, 32 and 64 bits, both byte orders
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",  # Mach-O universal (and Java classes: programs too)
    b"L\x00\x00\x00\x01\x14\x02\x00",  # Windows shortcut (.lnk), a classic disguise
)
# Names under which a program is what one expects to download.
_PROGRAM_EXTENSIONS: Final = frozenset(
    {"exe", "dll", "sys", "scr", "com", "msi", "cpl", "ocx", "so", "o", "ko", "bin", "elf", "out", "run", "app"}
    | {"dylib", "bundle", "class", "jar", "lnk", "apk"}
)
# Formats that are never text: markup or a script under one of these names is a disguise.
_BINARY_EXTENSIONS: Final = frozenset(
    {"jpg", "jpeg", "jpe", "jfif", "png", "gif", "webp", "bmp", "tif", "tiff", "heic", "heif", "avif", "ico"}
    | {"mp3", "wav", "ogg", "oga", "opus", "flac", "m4a", "aac", "weba", "aif", "aiff"}
    | {"mp4", "m4v", "mov", "webm", "mkv", "avi", "ogv", "3gp", "wmv"}
    | {"pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp", "rtf", "epub"}
    | {"zip", "gz", "tgz", "7z", "rar", "tar", "bz2", "xz"}
)
_MARKUP_OR_SCRIPT = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*(?:#!|<!doctype\s+html|<html|<head|<body|<script|<svg|<\?xml)", re.I
)

Opener = Callable[[int, int | None], AsyncIterator[bytes]]


@dataclass(frozen=True)
class ScanVerdict:
    infected: bool
    signature: str | None
    scanner: str  # 'clamd' or 'builtin'


def _extension(file_name: str) -> str:
    return PurePosixPath(file_name.replace("\\", "/")).suffix.lower().removeprefix(".")


def _is_windows_program(head: bytes) -> bool:
    if not head.startswith(b"MZ"):
        return False
    # "MZ" alone is two letters a text could start with: a program also has the PE
    # header where the DOS header points, or the DOS stub's message.
    if len(head) >= 64:
        pe = int.from_bytes(head[60:64], "little")
        if head[pe : pe + 4] == b"PE\x00\x00":
            return True
    return b"This program cannot be run in DOS mode" in head[:1024]


def is_program(head: bytes) -> bool:
    return head.startswith(_EXECUTABLE_MAGIC) or _is_windows_program(head)


def contradicts_name(head: bytes, file_name: str) -> bool:
    """Whether the first bytes are a program under a name that is not a program's, or
    markup or a script under the name of a binary format."""
    extension = _extension(file_name)
    if not extension or extension in _PROGRAM_EXTENSIONS:
        return False
    if is_program(head):
        return True
    return extension in _BINARY_EXTENSIONS and _MARKUP_OR_SCRIPT.match(head) is not None


def has_eicar(head: bytes) -> bool:
    return EICAR in head[:HEAD_BYTES]


def builtin_check(head: bytes, file_name: str) -> ScanVerdict:
    """The check made without clamd, on the file's first `HEAD_BYTES` bytes."""
    if has_eicar(head):
        return ScanVerdict(infected=True, signature=EICAR_SIGNATURE, scanner="builtin")
    if contradicts_name(head, file_name):
        return ScanVerdict(infected=True, signature=TYPE_MISMATCH_SIGNATURE, scanner="builtin")
    return ScanVerdict(infected=False, signature=None, scanner="builtin")


async def read_head(stream: AsyncIterator[bytes], limit: int = HEAD_BYTES) -> bytes:
    head = bytearray()
    try:
        async for chunk in stream:
            head += chunk
            if len(head) >= limit:
                break
    finally:
        await _clamd.close_stream(stream)
    return bytes(head[:limit])


async def scan(open_bytes: Opener, *, file_name: str, clamd: str | None, within: float = 120.0) -> ScanVerdict:
    """Scan a stored file; `open_bytes(start, end)` streams its bytes (end inclusive, None
    for the end of the file).

    Raises:
        ValueError: `clamd` is no address clamd can be reached at.
        _clamd.ClamdUnavailable: clamd could not be reached (worth another try).
        _clamd.ClamdRefused: clamd refused the stream (another try would not help).
    """
    head = await read_head(open_bytes(0, HEAD_BYTES - 1))
    if clamd is None:
        return builtin_check(head, file_name)
    verdict = await _clamd.instream(_clamd.parse_address(clamd), open_bytes(0, None), within=within)
    if verdict.infected:
        return ScanVerdict(infected=True, signature=verdict.signature, scanner="clamd")
    if contradicts_name(head, file_name):
        return ScanVerdict(infected=True, signature=TYPE_MISMATCH_SIGNATURE, scanner="clamd")
    return ScanVerdict(infected=False, signature=None, scanner="clamd")
