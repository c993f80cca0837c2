"""What the machine can read of audio, video and PDF files: mutagen for the streams'
headers (duration, bit rate, sample rate, channels, codec; no decoding), pypdf for page
and word counts. Video frames and containers mutagen does not know (Matroska, WebM)
would need ffprobe, which Rapport does not require: their columns stay empty.

Synchronous and file-based (both libraries seek): the job runs it in a thread over a
local copy of the bytes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import mutagen
from pypdf import PdfReader
from pypdf.errors import PdfReadError, PyPdfError

# The codec of formats whose stream info does not name it.
_CODECS: Final = {
    "AAC": "aac",
    "AC3": "ac3",
    "AIFF": "pcm",
    "DSDIFF": "dsd",
    "DSF": "dsd",
    "FLAC": "flac",
    "MonkeysAudio": "ape",
    "Musepack": "musepack",
    "OggFLAC": "flac",
    "OggOpus": "opus",
    "OggSpeex": "speex",
    "OggTheora": "theora",
    "OggVorbis": "vorbis",
    "OptimFROG": "optimfrog",
    "SMF": "midi",
    "TAK": "tak",
    "TrueAudio": "tta",
    "WAVE": "pcm",
    "WavPack": "wavpack",
}
# The tags worth showing beside a file, from mutagen's format-independent ("easy") names.
_TAGS: Final = ("title", "artist", "album", "albumartist", "date", "genre", "tracknumber")
_TAG_MAX = 200
_CODEC_MAX = 100  # media.files.codec's CHECK
# Words are counted only while it stays cheap: text extraction costs tens of
# milliseconds a page, and a 2 000-page manual is no reason to hold a worker for a minute.
_WORD_COUNT_MAX_PAGES = 300
_WORD_COUNT_BUDGET_S = 5.0


class MetadataUnreadable(Exception):
    """The file's headers cannot be read (corrupt, or not what its type says)."""


@dataclass(frozen=True)
class MediaFacts:
    duration_seconds: float | None = None
    bitrate: int | None = None  # bits per second
    sample_rate: int | None = None
    audio_channels: int | None = None
    codec: str | None = None
    frame_rate: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DocumentFacts:
    page_count: int | None = None
    word_count: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _text(value: object) -> str:
    # jsonb stores no NUL, and a tag is a label, not a document.
    return str(value).replace("\x00", "")[:_TAG_MAX]


def _positive_int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and value > 0 else None


def read_media(path: Path) -> MediaFacts | None:
    """The stream facts of an audio or video file, or None when mutagen knows no such format.

    Raises:
        MetadataUnreadable: the format is recognised but its headers are corrupt.
    """
    try:
        found = mutagen.File(path, easy=True)
    except (mutagen.MutagenError, OSError, ValueError, EOFError, IndexError, KeyError) as error:
        raise MetadataUnreadable(f"The file's headers cannot be read: {error}") from error
    if found is None or found.info is None:
        return None
    info = found.info
    kind = type(found).__name__.removeprefix("Easy")
    codec = getattr(info, "codec", None) or getattr(info, "codec_name", None) or _CODECS.get(kind)
    if kind == "MP3":
        codec = f"mp{getattr(info, 'layer', 3)}"
    length = getattr(info, "length", None)
    frame_rate = getattr(info, "fps", None)
    extra: dict[str, Any] = {"container": kind}
    if bits := _positive_int(getattr(info, "bits_per_sample", None)):
        extra["bits_per_sample"] = bits
    tags = {name: _text(found.tags[name][0]) for name in _TAGS if found.tags is not None and found.tags.get(name)}
    if tags:
        extra["tags"] = tags
    return MediaFacts(
        duration_seconds=round(float(length), 3) if isinstance(length, int | float) and length > 0 else None,
        bitrate=_positive_int(getattr(info, "bitrate", None)),
        sample_rate=_positive_int(getattr(info, "sample_rate", None)),
        audio_channels=_positive_int(getattr(info, "channels", None)),
        codec=_text(codec)[:_CODEC_MAX] if codec else None,
        frame_rate=round(float(frame_rate), 3) if isinstance(frame_rate, int | float) and frame_rate > 0 else None,
        extra=extra,
    )


def read_pdf(path: Path) -> DocumentFacts:
    """A PDF's page count, and its word count when counting is cheap.

    Raises:
        MetadataUnreadable: not a PDF pypdf can read.
    """
    try:
        reader = PdfReader(path, strict=False)
        extra: dict[str, Any] = {}
        if reader.is_encrypted:
            extra["encrypted"] = True
            # Many PDFs are "encrypted" with an empty user password (printing or copying
            # restrictions only): those can still be counted.
            if not reader.decrypt(""):
                return DocumentFacts(extra=extra)
        pages = len(reader.pages)
        title = reader.metadata.title if reader.metadata is not None else None
        if title:
            extra["title"] = _text(title)
        return DocumentFacts(page_count=pages, word_count=_word_count(reader, pages), extra=extra)
    except (PyPdfError, PdfReadError, OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise MetadataUnreadable(f"The PDF cannot be read: {error}") from error


def _word_count(reader: PdfReader, pages: int) -> int | None:
    if pages > _WORD_COUNT_MAX_PAGES:
        return None
    deadline = time.monotonic() + _WORD_COUNT_BUDGET_S
    words = 0
    for page in reader.pages:
        if time.monotonic() > deadline:
            return None
        try:
            words += len(page.extract_text().split())
        except (PyPdfError, ValueError, KeyError, TypeError, AttributeError):
            return None
    return words
