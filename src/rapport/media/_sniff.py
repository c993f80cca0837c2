"""The type of a file, from its first bytes: never from what the client says.

`filetype` knows the binary formats by their magic numbers; text, PDF and markup are
checked here. HTML, SVG and XHTML are refused outright: served from Rapport's origin they
would be pages running its scripts (stored XSS), whatever headers went with them on some
client. A name or declared type that says one kind of file when the bytes are another (a
`.jpg` that is a program or a page) is refused too: the name is what people trust.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass

import filetype

from rapport.media.errors import UnsupportedMediaType
from rapport.media.models import Kind

# How much of the start of a file the sniffing reads (and the upload keeps as `head`).
HEAD_BYTES = 8 * 1024

OCTET_STREAM = "application/octet-stream"
# Types that are never stored: a browser would run them as pages of Rapport's origin.
FORBIDDEN_TYPES = frozenset({"text/html", "image/svg+xml", "application/xhtml+xml"})

# The built-in table only: the machine's /etc/mime.types differs from one host to the next.
_TYPES = mimetypes.MimeTypes(filenames=())
# Formats that are ZIP files inside, told apart by their name alone in the first bytes.
_ZIP_CONTAINERS = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".epub": "application/epub+zip",
}
# Text files keep a more precise type when their name gives one; anything else is plain text.
_TEXT_TYPES = {
    ".csv": "text/csv",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".json": "application/json",
    ".tsv": "text/tab-separated-values",
    ".ics": "text/calendar",
    ".vcf": "text/vcard",
}
_DOCUMENT_TYPES = frozenset(
    {
        "application/pdf",
        "application/json",
        "application/rtf",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "application/epub+zip",
        *_ZIP_CONTAINERS.values(),
    }
)

# What browsers take for HTML when they sniff (WHATWG MIME Sniffing, "identifying a
# resource with an unknown MIME type"), and the markup that makes SVG or XHTML.
_HTML_START = re.compile(
    rb"<(?:!doctype\s+html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body|br|p|!--)[\s>/]",
    re.IGNORECASE,
)
_SVG = re.compile(rb"<svg[\s>/]|http://www\.w3\.org/2000/svg", re.IGNORECASE)
_XHTML = re.compile(rb"http://www\.w3\.org/1999/xhtml", re.IGNORECASE)
_HTML_ANYWHERE = re.compile(rb"<html[\s>/]|<script[\s>/]", re.IGNORECASE)
# Control characters text files do not hold (tab, newlines, form feed and escape aside).
_BINARY_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")


@dataclass(frozen=True)
class Sniffed:
    content_type: str
    kind: Kind
    # The name's extension says another kind of file than the bytes are.
    extension_mismatch: bool
    # HTML, SVG or XHTML: never stored.
    forbidden: bool


def kind_of(content_type: str) -> Kind:
    """The kind a type belongs to (what its size limit, thumbnails and metadata follow)."""
    major = content_type.split("/", 1)[0]
    if major in ("image", "video", "audio"):
        return major  # type: ignore[return-value]
    if major == "text" or content_type in _DOCUMENT_TYPES:
        return "document"
    return "other"


def extension_of(file_name: str) -> str:
    dot = file_name.rfind(".")
    return file_name[dot:].lower() if dot > 0 else ""


def type_for_name(file_name: str) -> str | None:
    """The type a file's name claims, from its extension, or None when it claims none."""
    extension = extension_of(file_name)
    if extension in _ZIP_CONTAINERS:
        return _ZIP_CONTAINERS[extension]
    guessed, _ = _TYPES.guess_type("x" + extension, strict=False) if extension else (None, None)
    return guessed


def _markup_type(head: bytes) -> str | None:
    """text/html, image/svg+xml or application/xhtml+xml when the bytes are such markup."""
    start = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if not start.startswith(b"<"):
        return None
    # Any markup (XML, or a fragment) holding SVG, XHTML or HTML is taken for it.
    if _SVG.search(head):
        return "image/svg+xml"
    if _XHTML.search(head):
        return "application/xhtml+xml"
    if _HTML_START.match(start) or _HTML_ANYWHERE.search(head):
        return "text/html"
    return None


def _is_text(head: bytes, *, complete: bool) -> bool:
    if _BINARY_CONTROL.search(head):
        return False
    # A head cut in the middle of a character is still text.
    for cut in (0, 1, 2, 3) if not complete else (0,):
        try:
            (head[: len(head) - cut] if cut else head).decode("utf-8")
        except UnicodeDecodeError:
            continue
        return True
    return False


def _type_of(head: bytes, file_name: str, *, complete: bool) -> str:
    markup = _markup_type(head)
    if markup is not None:
        return markup
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    guessed: str | None = filetype.guess_mime(head)
    if guessed == "application/zip":
        return _ZIP_CONTAINERS.get(extension_of(file_name), guessed)
    if guessed is not None:
        return guessed
    if head and _is_text(head, complete=complete):
        return _TEXT_TYPES.get(extension_of(file_name), "text/plain")
    return OCTET_STREAM


def _compatible(claimed: Kind, actual: Kind) -> bool:
    # A video container holding sound only (and the other way round) is common: .mp4
    # songs, .ogg and .webm either way.
    return claimed == actual or {claimed, actual} == {"audio", "video"}


def _contradicts(claimed_type: str | None, content_type: str, kind: Kind) -> bool:
    if claimed_type is None or claimed_type == OCTET_STREAM:
        return False
    claimed = kind_of(claimed_type)
    if claimed == "other":
        # A name claiming an archive, a program or a format unknown here: what the bytes
        # are is not at odds with anything people would open in a viewer.
        return False
    if claimed_type == "application/pdf" or content_type == "application/pdf":
        return claimed_type != content_type
    return not _compatible(claimed, kind)


def sniff(head: bytes, file_name: str, *, complete: bool = False) -> Sniffed:
    """The type and kind of a file from its first bytes (up to HEAD_BYTES), and whether
    its name's extension contradicts them. `complete`: `head` is the whole file."""
    content_type = _type_of(head, file_name, complete=complete)
    kind = kind_of(content_type)
    return Sniffed(
        content_type=content_type,
        kind=kind,
        extension_mismatch=_contradicts(type_for_name(file_name), content_type, kind),
        forbidden=content_type in FORBIDDEN_TYPES,
    )


def accept(head: bytes, file_name: str, declared_type: str | None, *, complete: bool = False) -> Sniffed:
    """`sniff`, refusing what is never stored.

    Raises:
        UnsupportedMediaType: the bytes are HTML, SVG or XHTML, or the file's name or
            declared type says another kind of file than the bytes are.
    """
    sniffed = sniff(head, file_name, complete=complete)
    if sniffed.forbidden:
        raise UnsupportedMediaType("HTML, SVG and XHTML files are not accepted: a browser would run them as pages.")
    declared = declared_type.split(";", 1)[0].strip().lower() if declared_type else None
    if declared in FORBIDDEN_TYPES:
        raise UnsupportedMediaType(f"Files declared as {declared} are not accepted.")
    if sniffed.extension_mismatch or _contradicts(declared, sniffed.content_type, sniffed.kind):
        raise UnsupportedMediaType(
            f"The file's name or declared type does not match its content, which is {sniffed.content_type}."
        )
    return sniffed
