"""The media API: uploading a file, reading its metadata and bytes, listing and deleting
one's own. `as_response` and `MediaDep` serve every media router that sends bytes."""

from __future__ import annotations

from typing import Annotated, Any, get_args
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from rapport.kernel.deps import NO_CONTENT, CallerDep, PageDep
from rapport.kernel.pagination import Page
from rapport.media import schemas as s
from rapport.media import service

router = APIRouter(prefix="/v1", tags=["media"])

# Routes that read their body as a stream and bound it themselves, by kind of file
# (settings media_max_*_bytes): the app's limit of bodies read whole (max_body_bytes)
# does not apply to them (rapport.kernel.http.BodyLimitMiddleware). Uploads: multipart,
# a new version of a file, and tus's creation-with-upload and PATCH.
STREAMED_ROUTES = (
    ("POST", r"/v1/media"),
    ("POST", r"/v1/media/[^/]+/versions"),
    ("POST", r"/v1/media/uploads"),
    ("PATCH", r"/v1/media/uploads/[^/]+"),
)

_MULTIPART_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "The file, with its name."},
                        "purpose": {
                            "type": "string",
                            "enum": list(get_args(service.Purpose)),
                            "default": "general",
                            "description": "What the file is for.",
                        },
                    },
                    "additionalProperties": False,
                }
            }
        },
    }
}

_BYTES_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "The bytes, of the file's own type."},
    206: {"description": "The range asked for (`Content-Range`)."},
    304: {"description": "Not modified: your copy (`If-None-Match`) is current."},
}


async def get_media(request: Request) -> service.MediaStore:
    store: service.MediaStore = request.app.state.media
    return store


MediaDep = Annotated[service.MediaStore, Depends(get_media)]


def as_response(download: service.Download) -> Response:
    """The HTTP answer of a prepared download: streamed, unless it has no body (304)."""
    if download.body is None:
        return Response(status_code=download.status, headers=download.headers)
    return StreamingResponse(download.body, status_code=download.status, headers=download.headers)


@router.post(
    "/media",
    status_code=status.HTTP_201_CREATED,
    response_model=s.FileOut,
    openapi_extra=_MULTIPART_BODY,
)
async def upload_file(request: Request, caller: CallerDep, media: MediaDep) -> s.FileOut:
    """Upload a file: `multipart/form-data` with the file in the field `file` (its name is
    kept) and optionally `purpose`. It is streamed, never held whole; its type is read from
    its bytes (HTML, SVG and XHTML are refused, and so are bytes at odds with the name or
    declared type: 415). Limits are per kind of file (413 as soon as one is passed). The
    file is then scanned and read (`status` processing, then ready): until its scan passes
    only you may download it."""
    # The session is checked before a byte is read: a revoked one uploads nothing.
    async with caller.transaction():
        pass
    return await service.upload_file(caller.transaction, media, request.receive, request.headers)


@router.get("/media", response_model=Page[s.FileOut])
async def list_files(
    caller: CallerDep,
    page: PageDep,
    kind: Annotated[service.Kind | None, Query(description="Only files of this kind.")] = None,
    purpose: Annotated[service.Purpose | None, Query(description="Only files uploaded for this.")] = None,
) -> Page[s.FileOut]:
    """Your files, newest first (deleted ones are gone from here at once)."""
    return await service.list_own_files(caller.transaction, page=page, kind=kind, purpose=purpose)


@router.get("/media/{file_id}", response_model=s.FileOut)
async def get_file(file_id: UUID, caller: CallerDep) -> s.FileOut:
    """A file's metadata and processing status: yours, or one you may read (a message's
    attachment in your conversation, a profile photo you may see, a file shared with you).
    404 for any other, as for one that does not exist."""
    return await service.get_file(caller.transaction, file_id=file_id)


@router.get("/media/{file_id}/content", response_class=Response, responses=_BYTES_RESPONSES)
async def get_content(file_id: UUID, request: Request, caller: CallerDep, media: MediaDep) -> Response:
    """A file's bytes. One byte range (`Range: bytes=0-99`, `bytes=100-`, `bytes=-100`) →
    206, or 416 beyond the end; `ETag` is the bytes' SHA-256, so `If-None-Match` → 304 and
    `If-Range` resumes only the same bytes. Shown inline for images, video, audio and PDF,
    a download otherwise; never run as a page (`Content-Security-Policy: sandbox`,
    `nosniff`). 403 while quarantined; 409 (`Retry-After`) to others than its owner while
    its scan has not passed."""
    download = await service.download_file(caller.transaction, media, file_id=file_id, request_headers=request.headers)
    return as_response(download)


@router.delete("/media/{file_id}", **NO_CONTENT)
async def delete_file(file_id: UUID, caller: CallerDep) -> None:
    """Delete one of your files: it leaves your list, albums, profile photos and shares at
    once. Where a message carries it, it stays readable in that conversation until the
    message is deleted; its bytes go when nothing uses them any more."""
    await service.do_delete_file(caller.transaction, file_id=file_id)
