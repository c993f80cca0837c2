"""An image's thumbnails: `GET /v1/media/{id}/thumbnails/{small|medium|large}`."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response

from rapport.kernel.deps import CallerDep
from rapport.media import service
from rapport.media.api import MediaDep, as_response

router = APIRouter(prefix="/v1", tags=["media"])

_THUMBNAIL_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/webp": {}, "image/jpeg": {}}, "description": "The thumbnail."},
    206: {"description": "The range asked for (`Content-Range`)."},
    304: {"description": "Not modified: your copy (`If-None-Match`) is current."},
}


@router.get("/media/{file_id}/thumbnails/{size}", response_class=Response, responses=_THUMBNAIL_RESPONSES)
async def get_thumbnail(
    file_id: UUID, size: service.ThumbnailSize, request: Request, caller: CallerDep, media: MediaDep
) -> Response:
    """A thumbnail of an image you may read: `small` fits 96×96 pixels, `medium` 320×320,
    `large` 1024×1024, each keeping the image's shape and never larger than the image
    (WebP, or JPEG where WebP cannot be written). The file's dimensions, dominant colour
    and blurhash are in its metadata (`GET /v1/media/{id}`). Served as its content is
    (`ETag`, `If-None-Match`, ranges): 404 when the file has no thumbnails (it is not an
    image), 409 (`Retry-After`) while they are being made, 403 when the file is
    quarantined."""
    download = await service.download_thumbnail(
        caller.transaction, media, file_id=file_id, size=size, request_headers=request.headers
    )
    return as_response(download)
