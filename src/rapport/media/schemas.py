"""Response shapes of files: what an upload answers, and what a file's metadata shows.

Uploads are multipart bodies read by rapport.media._upload, not pydantic models: their
one form field besides the file, `purpose`, is checked against `Purpose` there."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from rapport.media.models import FileStatus, Kind, Purpose, ScanStatus, Step, StepStatus, ThumbnailSize, ThumbnailType


class ThumbnailOut(BaseModel):
    size: ThumbnailSize
    width: int
    height: int
    content_type: ThumbnailType
    url: str = Field(description="Where its bytes are: GET it with the same credentials.")


class ProcessingStepOut(BaseModel):
    step: Step
    status: StepStatus
    attempts: int
    error: str | None = Field(description="Why the step failed, when it did (shown to the owner only).")
    queued_at: datetime
    started_at: datetime | None
    completed_at: datetime | None


class FileUrls(BaseModel):
    content: str = Field(description="The bytes: GET, with Range support.")
    thumbnails: dict[str, str] | None = Field(
        description="small, medium and large, for an image once its thumbnails are made; null otherwise."
    )


class FileOut(BaseModel):
    id: UUID
    owner_id: UUID
    file_name: str
    content_type: str = Field(description="Sniffed from the bytes, not taken from the client.")
    kind: Kind
    size_bytes: int
    size_text: str = Field(description="The size as people read it: 1.5 MB.")
    purpose: Purpose
    status: FileStatus = Field(
        description="processing until scanned and read; ready; quarantined (never served); failed."
    )
    scan_status: ScanStatus
    sha256: str = Field(description="The hex SHA-256 of the bytes you download: the content's `ETag`.")
    width: int | None
    height: int | None
    has_alpha: bool | None
    dominant_color: str | None = Field(description="#rrggbb, for a placeholder while the image loads.")
    blurhash: str | None = Field(description="A blurred placeholder (blurha.sh) while the image loads.")
    duration_seconds: float | None
    codec: str | None
    frame_rate: float | None
    audio_channels: int | None
    sample_rate: int | None
    bitrate: int | None
    page_count: int | None
    word_count: int | None
    metadata: dict[str, Any] | None = Field(
        description="Whatever else processing read; shown to the owner only (it may say where a photo was taken)."
    )
    version: int
    download_count: int
    thumbnails: list[ThumbnailOut]
    processing: list[ProcessingStepOut] | None = Field(description="Each processing step; the owner's view only.")
    urls: FileUrls
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = Field(
        description="Set when its owner deleted it: still readable where a message carries it."
    )


class FilePage(BaseModel):
    items: list[FileOut]
    next: str | None = Field(None, description="Pass it as `cursor` for the next (older) page; null at the end.")
