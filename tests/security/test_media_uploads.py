"""Resumable uploads as mallory: alice's upload in progress is invisible to her through
the tus API (HEAD, PATCH and DELETE answer 404, as for an upload that does not exist,
and the upload is left as it was), and straight through SQL as `rapport_app` in her
context (or in nobody's) media.uploads shows, changes and deletes none of alice's rows,
nor lets her write one in alice's name or point one at alice's file."""

from __future__ import annotations

import base64
from pathlib import Path
from uuid import UUID

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.config import Settings
from rapport.kernel.ids import uuid7
from tests.media.upload_support import random_bytes
from tests.security.messaging_sql import POLICY, attempt, changed
from tests.support import Mailbox, Persona, make_settings, problem_type

pytestmark = pytest.mark.module_database

UPLOADS = "/v1/media/uploads"
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture(scope="module")
def module_settings(smtp_server: tuple[Controller, Mailbox], tmp_path_factory: pytest.TempPathFactory) -> Settings:
    controller, _ = smtp_server
    media: Path = tmp_path_factory.mktemp("media")
    return make_settings(smtp_host="127.0.0.1", smtp_port=controller.port, media_dir=media)


async def _patch(client, persona: Persona, location: str, offset: int, data: bytes):
    headers = {
        **persona.headers,
        **TUS,
        "Content-Type": "application/offset+octet-stream",
        "Upload-Offset": str(offset),
    }
    return await client.patch(location, headers=headers, content=data)


@pytest.fixture
async def alices_upload(client, alice: Persona) -> str:
    """Alice's upload of 30 000 bytes, 10 000 of them sent; its location."""
    name = base64.b64encode(b"private.bin").decode()
    created = await client.post(
        UPLOADS, headers={**alice.headers, **TUS, "Upload-Length": "30000", "Upload-Metadata": f"filename {name}"}
    )
    assert created.status_code == 201, created.text
    location: str = created.headers["location"]
    assert (await _patch(client, alice, location, 0, random_bytes(10_000))).status_code == 204
    return location


async def test_mallory_cannot_see_resume_or_end_alices_upload(client, alice, mallory, alices_upload):
    location = alices_upload

    seen = await client.head(location, headers={**mallory.headers, **TUS})
    resumed = await _patch(client, mallory, location, 10_000, random_bytes(20_000))
    ended = await client.delete(location, headers={**mallory.headers, **TUS})

    assert [seen.status_code, resumed.status_code, ended.status_code] == [404, 404, 404]
    assert problem_type(resumed) == problem_type(ended) == "upload-not-found"
    still = await client.head(location, headers={**alice.headers, **TUS})
    assert (still.status_code, still.headers["upload-offset"]) == (200, "10000")


async def test_through_sql_alices_uploads_are_out_of_mallorys_reach(
    app_engine: AsyncEngine, alice: Persona, mallory: Persona, alices_upload: str
):
    upload_id = UUID(alices_upload.rsplit("/", 1)[-1])

    for who in (mallory, None):
        assert await attempt(app_engine, who, "SELECT count(*) FROM media.uploads") == 0
        assert await attempt(app_engine, who, "SELECT file_name FROM media.uploads WHERE id = :i", i=upload_id) is None
    assert (
        await changed(
            app_engine, mallory, 'UPDATE media.uploads SET "offset" = 30000 WHERE id = :i RETURNING 1', i=upload_id
        )
        == 0
    )
    assert (
        await changed(
            app_engine, mallory, "UPDATE media.uploads SET expires_at = now() WHERE id = :i RETURNING 1", i=upload_id
        )
        == 0
    )
    assert await changed(app_engine, mallory, "DELETE FROM media.uploads WHERE id = :i RETURNING 1", i=upload_id) == 0
    in_alices_name = await attempt(
        app_engine,
        mallory,
        "INSERT INTO media.uploads (id, owner_id, length, file_name) VALUES (:i, :u, 1000, 'planted.bin')",
        i=uuid7(),
        u=UUID(alice.user_id),
    )
    assert in_alices_name == POLICY
    assert await attempt(app_engine, alice, 'SELECT "offset" FROM media.uploads WHERE id = :i', i=upload_id) == 10_000


async def test_mallory_cannot_point_her_upload_at_alices_file(
    client, app_engine: AsyncEngine, alice: Persona, mallory: Persona
):
    data = random_bytes(2_000)
    name = base64.b64encode(b"alices.bin").decode()
    made = await client.post(
        UPLOADS,
        headers={
            **alice.headers,
            **TUS,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": f"filename {name}",
            "Content-Type": "application/offset+octet-stream",
        },
        content=data,
    )
    alices_file = UUID(made.headers["rapport-file-id"])
    mine = await client.post(UPLOADS, headers={**mallory.headers, **TUS, "Upload-Length": str(len(data))})
    my_upload = UUID(mine.headers["location"].rsplit("/", 1)[-1])

    pointed = await attempt(
        app_engine,
        mallory,
        'UPDATE media.uploads SET "offset" = length, file_id = :f WHERE id = :i RETURNING 1',
        f=alices_file,
        i=my_upload,
    )

    assert pointed == POLICY
