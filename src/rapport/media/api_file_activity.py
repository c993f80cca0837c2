"""What happens to one file after its upload: new versions of it, and comments on it.

Included by rapport.media.api_collections' router, under its /v1 prefix."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Request, Response, status

from rapport.kernel.deps import NO_CONTENT, CallerDep, PageDep
from rapport.kernel.pagination import Page
from rapport.media import schemas_collections as s
from rapport.media import service_collections as service
from rapport.media.api import MediaDep, as_response
from rapport.media.schemas import FileOut

router = APIRouter(tags=["media"])

BYTES_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "The bytes, of their own type."},
    206: {"description": "The range asked for (`Content-Range`)."},
    304: {"description": "Not modified: your copy (`If-None-Match`) is current."},
}

THUMBNAIL_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/webp": {}, "image/jpeg": {}}, "description": "The thumbnail."},
    206: {"description": "The range asked for (`Content-Range`)."},
    304: {"description": "Not modified: your copy (`If-None-Match`) is current."},
}

_VERSION_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary", "description": "The new bytes."}},
                    "additionalProperties": False,
                }
            }
        },
    }
}

VersionNumber = Annotated[int, Path(ge=1, le=2_147_483_647, description="1 is the first upload.")]


# Versions


@router.post(
    "/media/{file_id}/versions",
    response_model=FileOut,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_VERSION_BODY,
)
async def add_version(file_id: UUID, request: Request, caller: CallerDep, media: MediaDep) -> FileOut:
    """Upload new bytes for one of your files, as `POST /v1/media` does (multipart, field
    `file`; streamed; the same limits and type checks). The file keeps its id, name,
    albums, shares and comments and takes the new bytes as its current `version`; the
    bytes it held stay downloadable by you as an earlier version. It is processed again
    (`status` processing): until its scan passes only you download it.

    The new bytes are of the file's kind (422 `version-kind-mismatch`). 403
    `not-file-owner` for a file shared with you, 403 `file-quarantined` for a
    quarantined one (upload a new file)."""
    return await service.add_version(caller.transaction, media, request.receive, request.headers, file_id=file_id)


@router.get("/media/{file_id}/versions", response_model=s.VersionList)
async def list_versions(file_id: UUID, caller: CallerDep) -> s.VersionList:
    """Every version of one of your files, the current one first."""
    async with caller.transaction() as (db, actor):
        return await service.list_versions(db, actor=actor, file_id=file_id)


@router.get("/media/{file_id}/versions/{version}/content", response_class=Response, responses=BYTES_RESPONSES)
async def get_version_content(
    file_id: UUID, version: VersionNumber, request: Request, caller: CallerDep, media: MediaDep
) -> Response:
    """The bytes of one version of your file, served as a file's content is (Range,
    `ETag`, never run as a page). 404 `version-not-found` for a version it never had."""
    download = await service.download_version(
        caller.transaction, media, file_id=file_id, version=version, request_headers=request.headers
    )
    return as_response(download)


# Comments


@router.get("/media/{file_id}/comments", response_model=Page[s.CommentOut])
async def list_comments(file_id: UUID, caller: CallerDep, page: PageDep) -> Page[s.CommentOut]:
    """A file's comments, oldest first: for whoever may read the file."""
    async with caller.transaction() as (db, _):
        return await service.list_comments(db, file_id=file_id, page=page)


@router.post("/media/{file_id}/comments", response_model=s.CommentOut, status_code=status.HTTP_201_CREATED)
async def add_comment(file_id: UUID, body: s.CommentCreate, caller: CallerDep) -> s.CommentOut:
    """Comment on a file: its owner, or someone it is shared with for comment (403
    `cannot-comment` for a share to view). `attachment_file_id` is one of your own files
    (422 `file-not-usable` otherwise); `parent_id` a comment on the same file it answers.
    The file's owner and earlier commenters are told (`media.comment_added`)."""
    async with caller.transaction() as (db, actor):
        return await service.do_add_comment(db, actor=actor, file_id=file_id, body=body)


@router.patch("/media/comments/{comment_id}", response_model=s.CommentOut)
async def edit_comment(comment_id: UUID, body: s.CommentUpdate, caller: CallerDep) -> s.CommentOut:
    """Change the text of your comment (`edited_at` shows it was). 403
    `not-comment-author` on someone else's."""
    async with caller.transaction() as (db, actor):
        return await service.do_edit_comment(db, actor=actor, comment_id=comment_id, changes=body)


@router.delete("/media/comments/{comment_id}", **NO_CONTENT)
async def delete_comment(comment_id: UUID, caller: CallerDep) -> None:
    """Delete a comment: yours, or any on your file."""
    async with caller.transaction() as (db, actor):
        await service.do_delete_comment(db, actor=actor, comment_id=comment_id)
