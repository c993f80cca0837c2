"""What the albums, shares, versions, comments and profile photo tests share: files of
each kind uploaded through the API, the collections' routes, and what only time or the
system does (a share expiring, a file quarantined by its scan)."""

from __future__ import annotations

import os
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from sqlalchemy import text

from rapport.kernel.db import system_transaction
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from rapport.kernel.runtime import Runtime
from tests.media.processing_support import events_of
from tests.media.upload_support import MEDIA, png_bytes, text_bytes, uploaded
from tests.support import Persona, problem_type

ALBUMS = f"{MEDIA}/albums"
PHOTOS = f"{MEDIA}/profile-photos"
SHARED_WITH_ME = f"{MEDIA}/shared-with-me"


def refused(response: httpx.Response, status: int, slug: str) -> None:
    assert (response.status_code, problem_type(response)) == (status, slug), response.text


def mp4_bytes() -> bytes:
    """The start of an MP4 file (its `ftyp` box), which makes it a video, and bytes no
    other test uploads."""
    return b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + os.urandom(2048)


async def image(client: httpx.AsyncClient, persona: Persona, *, name: str = "photo.png") -> dict[str, Any]:
    return await uploaded(client, persona, png_bytes(), name=name, content_type="image/png")


async def video(client: httpx.AsyncClient, persona: Persona) -> dict[str, Any]:
    return await uploaded(client, persona, mp4_bytes(), name="clip.mp4", content_type="video/mp4")


async def document(client: httpx.AsyncClient, persona: Persona, data: bytes | None = None) -> dict[str, Any]:
    return await uploaded(client, persona, data or text_bytes(), name="notes.txt", content_type="text/plain")


async def make_album(client: httpx.AsyncClient, persona: Persona, **body: Any) -> dict[str, Any]:
    response = await client.post(ALBUMS, headers=persona.headers, json={"title": "Holidays", **body})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


async def add_item(
    client: httpx.AsyncClient, persona: Persona, album_id: str, file_id: str, **body: Any
) -> httpx.Response:
    return await client.post(f"{ALBUMS}/{album_id}/items", headers=persona.headers, json={"file_id": file_id, **body})


async def album_of(client: httpx.AsyncClient, persona: Persona, album_id: str) -> dict[str, Any]:
    response = await client.get(f"{ALBUMS}/{album_id}", headers=persona.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def item_ids(album: dict[str, Any]) -> list[str]:
    """The album's file ids in order, checking that positions run 1..n."""
    assert [item["position"] for item in album["items"]] == list(range(1, len(album["items"]) + 1))
    return [item["file_id"] for item in album["items"]]


async def share(client: httpx.AsyncClient, owner: Persona, path: str, **body: Any) -> dict[str, Any]:
    """Share what `path` names (`/v1/media/{id}` or `/v1/media/albums/{id}`); the share made."""
    response = await client.post(f"{path}/shares", headers=owner.headers, json=body)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


async def block(client: httpx.AsyncClient, blocker: Persona, blocked: Persona) -> None:
    response = await client.put(f"/v1/blocks/{blocked.user_id}", headers=blocker.headers)
    assert response.status_code == 200, response.text


async def expire(database: DatabaseUrls, share_id: str) -> None:
    """Move a share's expiry into the past, as time would (no role of the server may)."""
    conn = await asyncpg.connect(asyncpg_dsn(database.admin.set(database=database.app.database)))
    try:
        await conn.execute(
            "UPDATE media.shared_files SET expires_at = now() - interval '1 second' WHERE id = $1", UUID(share_id)
        )
    finally:
        await conn.close()


async def quarantine(runtime: Runtime, file_id: str) -> None:
    """What the scan does to a file it finds a virus in. Call it once the file's own
    processing has run (`processed`), which would otherwise undo it."""
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text(
                "UPDATE media.files SET status = 'quarantined', scan_status = 'infected',"
                " scan_signature = 'Eicar-Test-Signature' WHERE id = :id"
            ),
            {"id": UUID(file_id)},
        )


async def unscanned(runtime: Runtime, file_id: str) -> None:
    """A file as it is before its scan has run. Call it once the file's own processing has
    run (`processed`), which would otherwise undo it."""
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text("UPDATE media.files SET status = 'processing', scan_status = 'pending' WHERE id = :id"),
            {"id": UUID(file_id)},
        )


async def events_to(runtime: Runtime, persona: Persona, type: str) -> list[dict[str, Any]]:
    """The payloads of the events of this type addressed to one person, oldest first."""
    return [payload for kind, payload in await events_of(runtime, persona.user_id) if kind == type]
