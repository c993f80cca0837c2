"""What the upload, download and dedup tests share: uploading through the API, bytes to
upload, and looking at what the database and the storage hold, as system work sees them."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from PIL import Image
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.config import Settings
from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime
from rapport.media import _collect
from rapport.media._storage import blob_key, media_root, storage_from_settings
from tests.support import Persona

MEDIA = "/v1/media"


def random_bytes(size: int) -> bytes:
    """Bytes no other test uploads, of no type that can be sniffed: random after a control
    character that no text holds."""
    return (b"\x01" + os.urandom(size - 1)) if size else b""


def png_bytes(width: int = 64, height: int = 48, *, seed: int | None = None) -> bytes:
    """A PNG image, different for each seed (or each call)."""
    noise = (
        os.urandom(width * height * 3) if seed is None else bytes((seed + i) % 256 for i in range(width * height * 3))
    )
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), noise).save(out, "PNG")
    return out.getvalue()


def text_bytes(size: int = 200) -> bytes:
    line = f"Notes {os.urandom(6).hex()}: the quick brown fox jumps over the lazy dog.\n".encode()
    return (line * (size // len(line) + 1))[:size]


async def upload(
    client: httpx.AsyncClient,
    persona: Persona,
    data: bytes,
    *,
    name: str = "file.bin",
    content_type: str = "application/octet-stream",
    purpose: str | None = None,
    **fields: str,
) -> httpx.Response:
    form = {**fields, **({"purpose": purpose} if purpose is not None else {})}
    return await client.post(
        MEDIA, headers=persona.headers, files={"file": (name, data, content_type)}, data=form or None
    )


async def uploaded(client: httpx.AsyncClient, persona: Persona, data: bytes, **options: Any) -> dict[str, Any]:
    """Upload and return the file; fails the test unless it was made."""
    response = await upload(client, persona, data, **options)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def processed(app: FastAPI) -> None:
    """Wait until the app's worker has run every job due: the uploads' scans, metadata and thumbnails."""
    await app.state.worker.wait_idle()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def stored_path(settings: Settings, data: bytes) -> Path:
    """Where the local storage keeps these bytes."""
    return media_root(settings) / "blobs" / blob_key(sha256(data))


def staged_files(settings: Settings) -> list[Path]:
    return sorted((media_root(settings) / "staging").glob("*"))


async def attach(owner_engine: AsyncEngine, message: dict[str, Any], file_id: str, position: int = 0) -> None:
    """The attachment row the send writes for a message carrying a file (written as the
    send's definer function does, as rapport_owner)."""
    async with owner_engine.begin() as db:
        await db.execute(
            text(
                "INSERT INTO media.attachments"
                " (message_id, message_created_at, conversation_id, seq, file_id, position)"
                " VALUES (:m, messaging.id_time(:m), :c, :seq, :f, :p)"
            ),
            {"m": message["id"], "c": message["conversation_id"], "seq": message["seq"], "f": file_id, "p": position},
        )


async def set_file(runtime: Runtime, file_id: str, **columns: Any) -> None:
    """Change a file's row as processing would (its scan status, status, public variant)."""
    assignments = ", ".join(f"{name} = :{name}" for name in columns)
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(text(f"UPDATE media.files SET {assignments} WHERE id = :id"), {"id": file_id, **columns})


async def blob_count(runtime: Runtime, data: bytes) -> int:
    async with system_transaction(runtime.system_engine) as db:
        count: int = (
            await db.execute(text("SELECT count(*) FROM media.blobs WHERE sha256 = :h"), {"h": sha256(data)})
        ).scalar_one()
        return count


async def file_rows(runtime: Runtime, data: bytes) -> list[Any]:
    async with system_transaction(runtime.system_engine) as db:
        return list(
            await db.execute(
                text("SELECT id, owner_id, deleted_at FROM media.files WHERE sha256 = :h ORDER BY id"),
                {"h": sha256(data)},
            )
        )


async def collect_now(runtime) -> _collect.Collected:
    """The collector, without the hour's grace for blobs claimed by uploads."""
    storage = storage_from_settings(runtime.settings)
    try:
        return await _collect.collect(runtime.system_engine, storage, grace=timedelta(0))
    finally:
        await storage.close()
