"""Exports of one's data: asking for one, following it, downloading the archive."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse

from rapport.compliance import schemas_exports as s
from rapport.compliance import service_exports as service
from rapport.kernel.deps import CallerDep, PageDep
from rapport.media import service as media_service

router = APIRouter(prefix="/v1/me", tags=["compliance"])

_ZIP_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/zip": {}}, "description": "The archive: a zip, streamed."},
    206: {"description": "The range asked for (`Content-Range`), to resume a download."},
    304: {"description": "Not modified: your copy (`If-None-Match`) is current."},
}


async def get_media(request: Request) -> media_service.MediaStore:
    store: media_service.MediaStore = request.app.state.media
    return store


MediaDep = Annotated[media_service.MediaStore, Depends(get_media)]


@router.post("/exports", status_code=status.HTTP_202_ACCEPTED, response_model=s.ExportOut)
async def request_export(caller: CallerDep) -> JSONResponse:
    """Ask for an archive of everything Rapport holds about you: your account, sessions and
    sign-in history, profile and its parts, settings, contacts, blocks, every message you
    sent and the conversations you are in, reactions, your files' bytes, notifications,
    consents and who read your sensitive data. It is made in the background, whatever its
    size: follow `GET /v1/me/exports/{id}` until it is `completed`, then download it. While
    one is being made, asking again answers with that one."""
    export, _ = await service.do_request_export(caller.transaction)
    return JSONResponse(
        export.model_dump(mode="json"),
        status_code=status.HTTP_202_ACCEPTED,
        headers={"Location": f"/v1/me/exports/{export.id}"},
    )


@router.get("/exports", response_model=s.ExportPage)
async def list_exports(caller: CallerDep, page: PageDep) -> s.ExportPage:
    """Your exports, newest first."""
    found = await service.list_own_exports(caller.transaction, page=page)
    return s.ExportPage(items=found.items, next=found.next)


@router.get("/exports/{export_id}", response_model=s.ExportOut)
async def get_export(export_id: UUID, caller: CallerDep) -> s.ExportOut:
    """An export's status; `download_url` once its archive is ready, until it expires."""
    return await service.get_own_export(caller.transaction, export_id=export_id)


@router.get("/exports/{export_id}/download", response_class=Response, responses=_ZIP_RESPONSES)
async def download_export(export_id: UUID, request: Request, caller: CallerDep, media: MediaDep) -> Response:
    """The archive, a zip streamed from storage however large. One byte range (`Range`) →
    206, to resume; `ETag` is its SHA-256. 409 while it is being made (`Retry-After`), 410
    once it has expired."""
    download = await service.download_export(
        caller.transaction, media, export_id=export_id, request_headers=request.headers
    )
    if download.body is None:
        return Response(status_code=download.status, headers=download.headers)
    return StreamingResponse(download.body, status_code=download.status, headers=download.headers)
