"""What the processing tests share: files registered straight into the database and the
storage (as an upload leaves them), images made with Pillow, and reading back what
processing wrote, as the worker's role sees it."""

from __future__ import annotations

import hashlib
import io
import os
from typing import Any
from uuid import UUID

from PIL import Image
from sqlalchemy import insert, select, text

from rapport.kernel.db import system_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.runtime import Runtime
from rapport.media._processing import start_processing
from rapport.media._processing._exif import GPS_IFD_TAG
from rapport.media._storage import blob_key, staging_dir, storage_from_settings
from rapport.media.models import files, processing, thumbnails

GPS = {1: "N", 2: (48.0, 51.0, 30.0), 3: "E", 4: (2.0, 17.0, 40.0)}


def jpeg(width: int, height: int, colour: tuple[int, int, int] = (30, 60, 220), *, gps: bool = False) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Rapport Camera"
    if gps:
        exif[GPS_IFD_TAG] = GPS
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def png(width: int, height: int, colour: tuple[int, ...] = (30, 60, 220)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA" if len(colour) == 4 else "RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


async def put_bytes(runtime: Runtime, data: bytes, *, content_type: str) -> bytes:
    """Store bytes as an upload does; their SHA-256."""
    digest = hashlib.sha256(data).digest()
    storage = storage_from_settings(runtime.settings)
    staged = staging_dir(runtime.settings) / f"test-{os.urandom(8).hex()}"
    staged.write_bytes(data)
    try:
        await storage.put(blob_key(digest), staged, sha256_hex=digest.hex(), size=len(data), content_type=content_type)
    finally:
        await storage.close()
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text("SELECT media.register_blob(:hash, :size, :type, :provider, :key)"),
            {"hash": digest, "size": len(data), "type": content_type, "provider": "local", "key": blob_key(digest)},
        )
    return digest


async def registered_file(
    runtime: Runtime,
    owner_id: str | UUID,
    data: bytes,
    *,
    file_name: str,
    content_type: str,
    kind: str,
    start: bool = True,
) -> UUID:
    """A file as an upload registers it: its bytes stored, its row, its three processing
    steps queued, and (unless `start` is off) its processing started."""
    digest = await put_bytes(runtime, data, content_type=content_type)
    file_id = uuid7()
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            insert(files).values(
                id=file_id,
                owner_id=UUID(str(owner_id)),
                file_name=file_name,
                content_type=content_type,
                kind=kind,
                size_bytes=len(data),
                sha256=digest,
            )
        )
        await db.execute(
            insert(processing), [{"file_id": file_id, "step": step} for step in ("scan", "metadata", "thumbnails")]
        )
        if start:
            await start_processing(db, file_id=file_id)
    return file_id


_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".txt": "text/plain", ".pdf": "application/pdf"}


async def image_file(runtime: Runtime, owner_id: str | UUID, data: bytes, file_name: str) -> UUID:
    """An image registered under this name (its type from the name's extension)."""
    content_type = _TYPES[file_name[file_name.rindex(".") :]]
    return await registered_file(runtime, owner_id, data, file_name=file_name, content_type=content_type, kind="image")


async def file_row(runtime: Runtime, file_id: UUID) -> Any:
    async with system_transaction(runtime.system_engine) as db:
        return (await db.execute(select(files).where(files.c.id == file_id))).one()


async def steps_of(runtime: Runtime, file_id: UUID) -> dict[str, Any]:
    async with system_transaction(runtime.system_engine) as db:
        rows = await db.execute(select(processing).where(processing.c.file_id == file_id))
        return {row.step: row for row in rows}


async def thumbnails_of(runtime: Runtime, file_id: UUID) -> dict[str, Any]:
    async with system_transaction(runtime.system_engine) as db:
        rows = await db.execute(select(thumbnails).where(thumbnails.c.file_id == file_id))
        return {row.size: row for row in rows}


async def events_of(runtime: Runtime, user_id: str | UUID) -> list[tuple[str, dict[str, Any]]]:
    """The events addressed to one user, oldest first (kernel.events, as its readers see it)."""
    async with system_transaction(runtime.system_engine) as db:
        rows = await db.execute(
            text(
                "SELECT type, payload FROM kernel.events"
                " WHERE scope_kind = 'user' AND scope_id = :user ORDER BY position"
            ),
            {"user": UUID(str(user_id))},
        )
        return [(row.type, row.payload) for row in rows]


async def stored(runtime: Runtime, sha256: bytes) -> bytes:
    storage = storage_from_settings(runtime.settings)
    try:
        return b"".join([chunk async for chunk in storage.open(blob_key(bytes(sha256)))])
    finally:
        await storage.close()
