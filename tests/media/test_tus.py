"""Resumable uploads over tus 1.0.0 at /v1/media/uploads: OPTIONS says what the server
offers; an upload is created (with or without its first bytes), sent in one PATCH or
several, resumed from HEAD's Upload-Offset after a broken connection (against a real
server), and once complete it is a file like any multipart upload (its bytes read back
equal). The protocol's refusals: 409 offset mismatch, 415 wrong Content-Type, 412 another
version, 413 too long, 410 expired, 404 for anyone but the owner; termination and
expiry remove the staged bytes."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit
from uuid import UUID

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.config import Settings
from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.runtime import Runtime
from rapport.media import service_tus
from rapport.media._storage import staging_dir
from rapport.media._tus import _uploads as tus_uploads
from tests.kernel.live_server import live_server
from tests.media.tus_support import OFFSET_STREAM, TUS, UPLOADS, create, created, decoded, patch
from tests.media.upload_support import png_bytes, random_bytes, text_bytes
from tests.support import Mailbox, Persona, make_settings, problem_type

pytestmark = pytest.mark.module_database

IMAGE_LIMIT = 300_000
LARGEST = 4_000_000
# Above the app's 1 MB limit of bodies read whole: PATCH bodies are streamed.
LARGE = 1_500_000


@pytest.fixture(scope="module")
def module_settings(smtp_server: tuple[Controller, Mailbox], module_media_dir: Path) -> Settings:
    controller, _ = smtp_server
    return make_settings(
        smtp_host="127.0.0.1",
        smtp_port=controller.port,
        media_dir=module_media_dir,
        media_max_image_bytes=IMAGE_LIMIT,
        media_max_other_bytes=LARGEST,
        media_max_document_bytes=LARGEST,
        media_max_video_bytes=LARGEST,
        media_max_audio_bytes=LARGEST,
    )


async def head(client: httpx.AsyncClient, persona: Persona, location: str) -> httpx.Response:
    return await client.head(location, headers={**persona.headers, **TUS})


async def content(client: httpx.AsyncClient, persona: Persona, file_id: str) -> bytes:
    response = await client.get(f"/v1/media/{file_id}/content", headers=persona.headers)
    assert response.status_code == 200, response.text
    return response.content


def staged(settings: Settings, location: str) -> Path:
    return staging_dir(settings) / location.rsplit("/", 1)[-1]


def problem(response: httpx.Response) -> str:
    """The problem type of a tus refusal, which carries the tus header like every answer."""
    assert response.headers["tus-resumable"] == "1.0.0"
    return problem_type(response)


# -- discovery ----------------------------------------------------------------------------


async def test_options_says_what_the_server_offers(client):
    response = await client.options(UPLOADS)

    assert response.status_code == 204
    assert response.headers["tus-resumable"] == "1.0.0"
    assert response.headers["tus-version"] == "1.0.0"
    extensions = set(response.headers["tus-extension"].split(","))
    assert extensions == {"creation", "creation-with-upload", "termination", "expiration"}
    assert int(response.headers["tus-max-size"]) == LARGEST


# -- complete uploads ---------------------------------------------------------------------


async def test_one_patch_completes_the_upload_into_a_file(client, alice, module_settings):
    data = random_bytes(LARGE)
    response = await create(client, alice, len(data), filename="holiday.bin")

    assert response.status_code == 201, response.text
    location = response.headers["location"]
    assert location.startswith(f"{UPLOADS}/") and UUID(location.rsplit("/", 1)[-1])
    assert response.headers["upload-offset"] == "0"
    assert "upload-expires" in response.headers
    assert staged(module_settings, location).exists()

    sent = await patch(client, alice, location, 0, data)

    assert sent.status_code == 204, sent.text
    assert sent.headers["upload-offset"] == str(len(data))
    file_id = sent.headers["rapport-file-id"]
    assert await content(client, alice, file_id) == data
    described = (await client.get(f"/v1/media/{file_id}", headers=alice.headers)).json()
    assert (described["file_name"], described["size_bytes"]) == ("holiday.bin", len(data))
    assert not staged(module_settings, location).exists()


async def test_an_upload_sent_in_three_chunks(client, alice):
    data = random_bytes(LARGE)
    location = await created(client, alice, len(data))
    cuts = [0, 400_000, 1_100_000, len(data)]

    for start, end in itertools.pairwise(cuts):
        offset = await head(client, alice, location)
        assert offset.headers["upload-offset"] == str(start)
        sent = await patch(client, alice, location, start, data[start:end])
        assert sent.status_code == 204, sent.text
        assert sent.headers["upload-offset"] == str(end)

    assert await content(client, alice, sent.headers["rapport-file-id"]) == data


async def test_head_tells_where_an_upload_stands(client, alice):
    data = random_bytes(50_000)
    location = await created(client, alice, len(data), filename="report.bin", purpose="album", note="été")
    await patch(client, alice, location, 0, data[:20_000])

    response = await head(client, alice, location)

    assert response.status_code == 200
    assert response.headers["upload-offset"] == "20000"
    assert response.headers["upload-length"] == str(len(data))
    assert response.headers["cache-control"] == "no-store"
    assert "upload-expires" in response.headers
    assert "rapport-file-id" not in response.headers
    assert decoded(response.headers["upload-metadata"]) == {
        "filename": "report.bin",
        "purpose": "album",
        "note": "été",
    }


async def test_a_complete_upload_names_its_file_to_head_and_keeps_its_purpose(client, alice):
    data = png_bytes(seed=41)
    location = await created(client, alice, len(data), filename="me.png", filetype="image/png", purpose="album")
    file_id = (await patch(client, alice, location, 0, data)).headers["rapport-file-id"]

    response = await head(client, alice, location)

    assert response.headers["upload-offset"] == str(len(data))
    assert response.headers["rapport-file-id"] == file_id
    described = (await client.get(f"/v1/media/{file_id}", headers=alice.headers)).json()
    assert (described["kind"], described["content_type"], described["purpose"]) == ("image", "image/png", "album")


async def test_creation_with_upload_takes_the_first_bytes(client, alice):
    data = random_bytes(300_000)
    response = await create(client, alice, len(data), body=data[:100_000])

    assert response.status_code == 201, response.text
    assert response.headers["upload-offset"] == "100000"
    location = response.headers["location"]
    rest = await patch(client, alice, location, 100_000, data[100_000:])
    assert await content(client, alice, rest.headers["rapport-file-id"]) == data


async def test_creation_with_upload_of_every_byte_makes_the_file_at_once(client, alice):
    data = text_bytes(5_000)
    response = await create(client, alice, len(data), body=data, filename="notes.txt")

    assert response.status_code == 201, response.text
    assert response.headers["upload-offset"] == str(len(data))
    assert await content(client, alice, response.headers["rapport-file-id"]) == data


# -- a broken connection, resumed (a real server) -----------------------------------------


async def _send_part_and_hang_up(base_url: str, persona: Persona, location: str, total: int, part: bytes) -> None:
    """A PATCH announcing `total` bytes whose client sends `part`, waits, and disconnects."""
    url = urlsplit(base_url)
    _, writer = await asyncio.open_connection(url.hostname, url.port)
    request = (
        f"PATCH {location} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: {persona.headers['Authorization']}\r\n"
        f"Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
        f"Content-Length: {total}\r\n\r\n"
    )
    writer.write(request.encode() + part)
    await writer.drain()
    await asyncio.sleep(0.5)  # the server reads what was sent
    writer.close()
    await writer.wait_closed()


async def test_an_interrupted_upload_resumes_from_heads_offset(app, alice, module_settings):
    data = random_bytes(LARGE)
    async with live_server(app, module_settings) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        location = await created(http, alice, len(data))

        await _send_part_and_hang_up(base_url, alice, location, len(data), data[:600_000])

        offset = 0
        async with asyncio.timeout(15):
            while offset == 0:
                answer = await head(http, alice, location)
                assert answer.status_code == 200, answer.text
                offset = int(answer.headers["upload-offset"])
                await asyncio.sleep(0.05)
        assert 0 < offset <= 600_000
        resumed = await patch(http, alice, location, offset, data[offset:])
        assert resumed.status_code == 204, resumed.text
        assert resumed.headers["upload-offset"] == str(len(data))
        assert await content(http, alice, resumed.headers["rapport-file-id"]) == data


# -- the protocol's refusals --------------------------------------------------------------


async def test_a_patch_at_another_offset_is_refused_and_changes_nothing(client, alice):
    data = random_bytes(40_000)
    location = await created(client, alice, len(data))
    await patch(client, alice, location, 0, data[:10_000])

    for wrong in (0, 5_000, 20_000):
        response = await patch(client, alice, location, wrong, data[wrong : wrong + 1000])
        assert response.status_code == 409
        assert problem(response) == "upload-offset-mismatch"

    assert (await head(client, alice, location)).headers["upload-offset"] == "10000"


async def test_racing_patches_at_one_offset_apply_once(client, alice):
    data = random_bytes(200_000)
    location = await created(client, alice, len(data))

    async def slowly(part: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(part), 20_000):
            yield part[start : start + 20_000]
            await asyncio.sleep(0.02)

    answers = await asyncio.gather(
        patch(client, alice, location, 0, slowly(data[:100_000])),
        patch(client, alice, location, 0, slowly(data[:100_000])),
    )

    assert sorted(answer.status_code for answer in answers) == [204, 409]
    assert (await head(client, alice, location)).headers["upload-offset"] == "100000"
    rest = await patch(client, alice, location, 100_000, data[100_000:])
    assert await content(client, alice, rest.headers["rapport-file-id"]) == data


async def test_a_patch_that_cannot_get_the_upload_in_time_is_told_it_is_busy(client, alice, app_engine, monkeypatch):
    monkeypatch.setattr(tus_uploads, "LOCK_WAIT", "200ms")
    data = random_bytes(1000)
    location = await created(client, alice, len(data))

    # Another request still writing to the upload holds its row.
    async with user_transaction(app_engine, UUID(alice.user_id)) as db:
        await db.execute(
            text("SELECT 1 FROM media.uploads WHERE id = :id FOR UPDATE"), {"id": location.rsplit("/", 1)[-1]}
        )
        busy = await patch(client, alice, location, 0, data)

    assert busy.status_code == 423
    assert problem(busy) == "upload-busy"
    done = await patch(client, alice, location, 0, data)
    assert done.status_code == 204, done.text


async def test_a_patch_must_be_an_offset_octet_stream(client, alice):
    location = await created(client, alice, 1000)
    headers = {**alice.headers, **TUS, "Upload-Offset": "0", "Content-Type": "application/octet-stream"}

    response = await client.patch(location, headers=headers, content=random_bytes(1000))

    assert response.status_code == 415
    assert problem(response) == "offset-octet-stream-required"
    assert (await head(client, alice, location)).headers["upload-offset"] == "0"


@pytest.mark.parametrize("version", ["0.2.2", "2.0.0", None])
async def test_another_protocol_version_is_refused_before_anything_is_done(client, alice, app_engine, version):
    headers = {**alice.headers, "Upload-Length": "100"}
    if version is not None:
        headers["Tus-Resumable"] = version

    response = await client.post(UPLOADS, headers=headers)

    assert response.status_code == 412
    assert response.headers["tus-version"] == "1.0.0"
    assert problem(response) == "tus-version-unsupported"
    async with user_transaction(app_engine, UUID(alice.user_id)) as db:
        assert (await db.execute(text("SELECT count(*) FROM media.uploads"))).scalar_one() == 0


async def test_a_patch_of_another_version_leaves_the_upload_alone(client, alice):
    location = await created(client, alice, 1000)
    headers = {**alice.headers, **OFFSET_STREAM, "Tus-Resumable": "0.2.2", "Upload-Offset": "0"}

    response = await client.patch(location, headers=headers, content=random_bytes(1000))

    assert response.status_code == 412
    assert (await head(client, alice, location)).headers["upload-offset"] == "0"


async def test_an_upload_above_the_largest_size_is_refused_at_creation(client, alice):
    response = await create(client, alice, LARGEST + 1)

    assert response.status_code == 413
    assert problem(response) == "file-too-large"
    assert response.json()["limit_bytes"] == LARGEST


async def test_an_upload_past_its_kinds_limit_is_refused_once_its_first_bytes_are_in(client, alice, module_settings):
    image = png_bytes(400, 300)  # noise: it does not compress below the head's 8 KiB
    length = IMAGE_LIMIT + 1  # within Tus-Max-Size, past what an image may be
    location = await created(client, alice, length, filename="big.png")

    response = await patch(client, alice, location, 0, image[:9000])

    assert response.status_code == 413
    assert problem(response) == "file-too-large"
    assert response.json()["limit_bytes"] == IMAGE_LIMIT
    assert (await head(client, alice, location)).status_code == 404
    assert not staged(module_settings, location).exists()


async def test_bytes_past_the_upload_length_are_refused(client, alice):
    data = random_bytes(10_000)
    location = await created(client, alice, len(data))

    response = await patch(client, alice, location, 0, data + b"more")

    assert response.status_code == 413
    assert problem(response) == "upload-length-exceeded"
    assert (await head(client, alice, location)).headers["upload-offset"] == "0"


async def test_a_spoofed_type_ends_the_upload_as_a_multipart_one_is_refused(client, alice, module_settings):
    page = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"
    location = await created(client, alice, len(page), filename="cat.jpg", filetype="image/jpeg")

    response = await patch(client, alice, location, 0, page)

    assert response.status_code == 415
    assert problem(response) == "unsupported-media-type"
    assert (await head(client, alice, location)).status_code == 404
    assert not staged(module_settings, location).exists()


async def test_an_empty_upload_is_refused_like_an_empty_file(client, alice):
    response = await create(client, alice, 0)

    assert response.status_code == 422
    assert problem(response) == "empty-file"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Upload-Length": "-1"},
        {"Upload-Length": "ten"},
        {"Upload-Length": "10", "Upload-Metadata": "filename not-base64!"},
        {"Upload-Length": "10", "Upload-Metadata": "filename YQ==,filename Yg=="},
        {"Upload-Length": "10", "Upload-Metadata": "file name YQ=="},
    ],
)
async def test_malformed_creation_headers_are_bad_requests(client, alice, headers):
    response = await client.post(UPLOADS, headers={**alice.headers, **TUS, **headers})

    assert response.status_code == 400
    assert problem(response) == "invalid-upload-header"


async def test_an_unknown_purpose_is_refused(client, alice):
    response = await create(client, alice, 10, purpose="wallpaper")

    assert response.status_code == 422
    assert problem(response) == "validation-error"


async def test_a_patch_needs_an_offset(client, alice):
    location = await created(client, alice, 10)
    headers = {**alice.headers, **TUS, **OFFSET_STREAM}

    response = await client.patch(location, headers=headers, content=b"0123456789")

    assert response.status_code == 400
    assert problem(response) == "invalid-upload-header"


async def test_uploads_need_a_signed_in_caller(client):
    response = await client.post(UPLOADS, headers={**TUS, "Upload-Length": "10"})

    assert response.status_code == 401
    assert problem(response) == "unauthenticated"


# -- only the owner -----------------------------------------------------------------------


async def test_another_person_cannot_see_touch_or_end_an_upload(client, alice, mallory, module_settings):
    data = random_bytes(30_000)
    location = await created(client, alice, len(data))
    await patch(client, alice, location, 0, data[:10_000])

    answers = [
        await head(client, mallory, location),
        await patch(client, mallory, location, 10_000, data[10_000:]),
        await client.delete(location, headers={**mallory.headers, **TUS}),
    ]

    assert [answer.status_code for answer in answers] == [404, 404, 404]
    assert all(problem(answer) == "upload-not-found" for answer in answers[1:])
    assert (await head(client, alice, location)).headers["upload-offset"] == "10000"
    assert staged(module_settings, location).exists()


async def test_an_unknown_or_malformed_upload_id_is_not_found(client, alice):
    for location in (f"{UPLOADS}/0190d6a0-0000-7000-8000-000000000000", f"{UPLOADS}/not-an-id"):
        response = await patch(client, alice, location, 0, b"x")
        assert response.status_code == 404
        assert problem(response) == "upload-not-found"


# -- termination and expiry ---------------------------------------------------------------


async def test_termination_removes_the_upload_and_its_bytes(client, alice, module_settings):
    data = random_bytes(30_000)
    location = await created(client, alice, len(data))
    await patch(client, alice, location, 0, data[:10_000])

    ended = await client.delete(location, headers={**alice.headers, **TUS})

    assert ended.status_code == 204
    assert ended.headers["tus-resumable"] == "1.0.0"
    assert not staged(module_settings, location).exists()
    assert (await head(client, alice, location)).status_code == 404
    assert (await patch(client, alice, location, 10_000, data[10_000:])).status_code == 404


async def test_terminating_a_complete_upload_keeps_its_file(client, alice):
    data = random_bytes(5_000)
    location = await created(client, alice, len(data))
    file_id = (await patch(client, alice, location, 0, data)).headers["rapport-file-id"]

    assert (await client.delete(location, headers={**alice.headers, **TUS})).status_code == 204

    assert await content(client, alice, file_id) == data


async def _expire(app_engine: AsyncEngine, persona: Persona, location: str) -> None:
    """Let an upload's day run out (as its owner: the server's role may move expires_at)."""
    async with user_transaction(app_engine, UUID(persona.user_id)) as db:
        await db.execute(
            text("UPDATE media.uploads SET expires_at = now() - interval '1 minute' WHERE id = :id"),
            {"id": location.rsplit("/", 1)[-1]},
        )


async def test_an_expired_upload_is_gone_and_collected_with_its_bytes(
    client, alice, app_engine, runtime: Runtime, module_settings
):
    data = random_bytes(30_000)
    location = await created(client, alice, len(data))
    await patch(client, alice, location, 0, data[:10_000])
    await _expire(app_engine, alice, location)

    assert (await head(client, alice, location)).status_code == 410
    resumed = await patch(client, alice, location, 10_000, data[10_000:])
    assert resumed.status_code == 410
    assert problem(resumed) == "upload-expired"

    async with system_transaction(runtime.system_engine) as db:
        removed = await service_tus.collect_expired_uploads(db, staging=staging_dir(module_settings))

    assert removed == 1
    assert not staged(module_settings, location).exists()
    assert (await head(client, alice, location)).status_code == 404


async def test_collecting_leaves_live_uploads_and_removes_strays(client, alice, runtime: Runtime, module_settings):
    live = await created(client, alice, 1000)
    staging = staging_dir(module_settings)
    stray = staging / "0190d6a0-0000-7000-8000-00000000abcd"
    stray.write_bytes(b"left by a creation that rolled back")
    long_ago = 1_000_000_000
    os.utime(stray, (long_ago, long_ago))

    async with system_transaction(runtime.system_engine) as db:
        removed = await service_tus.collect_expired_uploads(db, staging=staging)

    assert removed == 0
    assert staged(module_settings, live).exists()
    assert not stray.exists()
