"""Exports' public service: what the routers, the jobs and other domains call.

The download takes the caller's transaction factory (`caller.transaction` of the routers)
rather than one open transaction: the archive's bytes are streamed after its transaction
has ended, as a media download's are."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Protocol
from uuid import UUID

from rapport.compliance import _exports
from rapport.compliance._exports import expire_exports, get_export, list_exports
from rapport.compliance.schemas_exports import ExportOut
from rapport.compliance.tasks import build_export
from rapport.kernel.actor import Acting
from rapport.kernel.pagination import Page, PageRequest
from rapport.media import service as media_service

__all__ = [
    "Transaction",
    "do_request_export",
    "download_export",
    "expire_exports",
    "get_export",
    "get_own_export",
    "list_exports",
    "list_own_exports",
]


class Transaction(Protocol):
    """The caller's transaction factory (`caller.transaction` of the routers)."""

    def __call__(self, *, session_required: bool = False) -> AbstractAsyncContextManager[Acting]: ...


async def do_request_export(transaction: Transaction) -> tuple[ExportOut, bool]:
    """`POST /v1/me/exports`: queue an archive of everything held about the caller, or
    answer with the one being made. Returns it, and whether it is new."""
    async with transaction(session_required=True) as (db, actor):
        return await _exports.do_request_export(db, actor=actor, task=build_export)


async def get_own_export(transaction: Transaction, *, export_id: UUID) -> ExportOut:
    """Raises:
    ExportNotFound: no such export, or someone else's.
    """
    async with transaction(session_required=True) as (db, actor):
        return await get_export(db, actor=actor, export_id=export_id)


async def list_own_exports(transaction: Transaction, *, page: PageRequest) -> Page[ExportOut]:
    async with transaction(session_required=True) as (db, actor):
        return await list_exports(db, actor=actor, page=page)


async def download_export(
    transaction: Transaction,
    store: media_service.MediaStore,
    *,
    export_id: UUID,
    request_headers: Mapping[str, str],
) -> media_service.Download:
    """`GET /v1/me/exports/{id}/download`: the zip, its body streamed after the transaction.

    Raises:
        ExportNotFound, ExportNotReady, ExportFailed, ExportExpired: as _exports.open_download.
        RangeNotSatisfiable: a range beyond the end (416).
        StorageUnavailable: the bytes cannot be read (503).
    """
    async with transaction(session_required=True) as (db, actor):
        download = await _exports.open_download(
            db, store, actor=actor, export_id=export_id, request_headers=request_headers
        )
    return await media_service.primed(download)
