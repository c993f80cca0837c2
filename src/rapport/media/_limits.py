"""How large an upload of each kind may be (settings `media_max_*_bytes`)."""

from __future__ import annotations

from dataclasses import dataclass

from rapport.config import Settings
from rapport.media.models import Kind

# What multipart framing adds around a file (boundaries, part headers, a `purpose` field):
# a Content-Length up to the limit plus this may still carry a file within the limit.
MULTIPART_OVERHEAD = 16 * 1024


@dataclass(frozen=True)
class Limits:
    image: int
    video: int
    audio: int
    document: int
    other: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            image=settings.media_max_image_bytes,
            video=settings.media_max_video_bytes,
            audio=settings.media_max_audio_bytes,
            document=settings.media_max_document_bytes,
            other=settings.media_max_other_bytes,
        )

    def for_kind(self, kind: Kind) -> int:
        limit: int = getattr(self, kind)
        return limit

    @property
    def largest(self) -> int:
        """What applies while the kind is not known yet: before the first bytes are read."""
        return max(self.image, self.video, self.audio, self.document, self.other)
