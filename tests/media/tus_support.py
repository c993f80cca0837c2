"""What the tus tests share: creating an upload and sending its chunks over tus 1.0.0."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx

from tests.support import Persona

UPLOADS = "/v1/media/uploads"
TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_STREAM = {"Content-Type": "application/offset+octet-stream"}


def metadata(**pairs: str) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in pairs.items())


def decoded(header: str) -> dict[str, str]:
    pairs = (pair.split(" ") for pair in header.split(","))
    return {key: base64.b64decode(value).decode() for key, value in pairs}


async def create(
    client: httpx.AsyncClient,
    persona: Persona,
    length: int,
    *,
    body: bytes | None = None,
    **pairs: str,
) -> httpx.Response:
    headers = {**persona.headers, **TUS, "Upload-Length": str(length)}
    headers["Upload-Metadata"] = metadata(**({"filename": "data.bin"} | pairs))
    if body is not None:
        headers.update(OFFSET_STREAM)
    return await client.post(UPLOADS, headers=headers, content=body)


async def created(client: httpx.AsyncClient, persona: Persona, length: int, **options: str) -> str:
    """A new upload's location; fails the test unless it was made."""
    response = await create(client, persona, length, **options)
    assert response.status_code == 201, response.text
    return response.headers["location"]


async def patch(
    client: httpx.AsyncClient, persona: Persona, location: str, offset: int, data: bytes | AsyncIterator[bytes]
) -> httpx.Response:
    headers = {**persona.headers, **TUS, **OFFSET_STREAM, "Upload-Offset": str(offset)}
    return await client.patch(location, headers=headers, content=data)
