"""POST /v1/media: a multipart upload streamed to storage and read back byte for byte,
whatever its size (the app's 1 MB limit of other bodies does not apply); its type read
from its bytes; limits per kind refused with 413 as soon as they are passed (with or
without a Content-Length), spoofed and markup files refused with 415, and every bad
input answered with a 4xx problem, leaving nothing staged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from rapport.config import Settings
from tests.media.upload_support import (
    MEDIA,
    blob_count,
    file_rows,
    png_bytes,
    random_bytes,
    staged_files,
    stored_path,
    text_bytes,
    upload,
    uploaded,
)
from tests.support import Mailbox, make_settings, problem_type

pytestmark = pytest.mark.module_database

IMAGE_LIMIT = 300_000
OTHER_LIMIT = 4_000_000
BOUNDARY = "rapport-test-boundary"


@pytest.fixture(scope="module")
def module_settings(smtp_server: tuple[Controller, Mailbox], module_media_dir: Path) -> Settings:
    controller, _ = smtp_server
    return make_settings(
        smtp_host="127.0.0.1",
        smtp_port=controller.port,
        media_dir=module_media_dir,
        media_max_image_bytes=IMAGE_LIMIT,
        media_max_other_bytes=OTHER_LIMIT,
        media_max_document_bytes=OTHER_LIMIT,
        media_max_video_bytes=OTHER_LIMIT,
        media_max_audio_bytes=OTHER_LIMIT,
    )


def multipart(parts: list[tuple[str, str | None, bytes]], *, close: bool = True) -> bytes:
    """A multipart/form-data body of (field, file name or None, content) parts."""
    out = b""
    for name, file_name, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{file_name}"' if file_name is not None else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if file_name is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + content + b"\r\n"
    return out + (f"--{BOUNDARY}--\r\n".encode() if close else b"")


async def chunked(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """The body as a stream of unknown length: sent without a Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def send_raw(client, persona, body, *, streamed: bool = False):
    headers = {**persona.headers, "content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    return await client.post(MEDIA, headers=headers, content=chunked(body) if streamed else body)


# -- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 1000, 8193, 1_500_000, 3_000_000])
async def test_uploaded_bytes_come_back_equal(client, alice, module_settings, size):
    data = random_bytes(size)

    created = await uploaded(client, alice, data, name="archive.bin")
    content = await client.get(created["urls"]["content"], headers=alice.headers)

    assert content.status_code == 200
    assert content.content == data
    assert created["size_bytes"] == size and created["file_name"] == "archive.bin"
    assert created["sha256"] == content.headers["etag"].strip('"')
    assert created["kind"] == "other" and created["content_type"] == "application/octet-stream"
    assert created["owner_id"] == alice.user_id and created["status"] in ("processing", "ready")
    assert stored_path(module_settings, data).read_bytes() == data


async def test_a_file_larger_than_the_apps_body_limit_streamed_without_a_content_length(client, alice, module_settings):
    data = random_bytes(2_500_000)

    response = await send_raw(client, alice, multipart([("file", "big.bin", data)]), streamed=True)

    assert response.status_code == 201, response.text
    content = await client.get(response.json()["urls"]["content"], headers=alice.headers)
    assert content.content == data
    assert staged_files(module_settings) == []


async def test_the_type_comes_from_the_bytes(client, alice):
    image = await uploaded(client, alice, png_bytes(), name="holiday.png", content_type="application/octet-stream")
    notes = await uploaded(client, alice, text_bytes(), name="notes.txt", content_type="application/octet-stream")
    pdf = await uploaded(client, alice, b"%PDF-1.7\n" + random_bytes(500), name="report.pdf")

    assert (image["content_type"], image["kind"]) == ("image/png", "image")
    assert (notes["content_type"], notes["kind"]) == ("text/plain", "document")
    assert (pdf["content_type"], pdf["kind"]) == ("application/pdf", "document")


async def test_the_purpose_is_kept_and_general_by_default(client, alice):
    general = await uploaded(client, alice, random_bytes(100))
    photo = await uploaded(client, alice, png_bytes(), name="me.png", purpose="profile_photo")

    assert general["purpose"] == "general"
    assert photo["purpose"] == "profile_photo"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("C:\\Users\\alice\\été.txt", "été.txt"),
        ("tab\there.txt", "tab_here.txt"),
        ("bell\x07.txt", "bell_.txt"),
        ("a" * 300 + ".txt", "a" * 251 + ".txt"),
    ],
)
async def test_the_file_name_is_kept_without_its_path_or_controls(client, alice, given, kept):
    # Sent as written, not as httpx would percent-encode some characters.
    response = await send_raw(client, alice, multipart([("file", given, text_bytes())]))

    assert response.status_code == 201, response.text
    assert response.json()["file_name"] == kept


async def test_an_empty_file_is_refused(client, alice, runtime, module_settings):
    """An empty file has no type to read, nothing to show or share: a client bug, refused."""
    response = await upload(client, alice, b"", name="empty.txt")

    assert response.status_code == 422
    assert problem_type(response) == "empty-file"
    assert await file_rows(runtime, b"") == []
    assert staged_files(module_settings) == []


# -- limits ------------------------------------------------------------------------------


async def test_a_content_length_past_the_limit_is_refused_before_reading(client, alice, runtime, module_settings):
    data = random_bytes(OTHER_LIMIT + 100_000)

    response = await upload(client, alice, data, name="huge.bin")

    assert response.status_code == 413
    assert problem_type(response) == "file-too-large"
    assert response.json()["limit_bytes"] == OTHER_LIMIT
    assert await blob_count(runtime, data) == 0
    assert staged_files(module_settings) == []


async def test_a_stream_past_the_limit_is_refused_and_its_staged_bytes_removed(client, alice, runtime, module_settings):
    data = random_bytes(OTHER_LIMIT + 1)

    response = await send_raw(client, alice, multipart([("file", "huge.bin", data)]), streamed=True)

    assert response.status_code == 413
    assert problem_type(response) == "file-too-large"
    assert await blob_count(runtime, data) == 0
    assert staged_files(module_settings) == []


async def test_the_limit_of_the_kind_applies_once_the_first_bytes_tell_it(client, alice, runtime, module_settings):
    image = png_bytes(400, 300)
    assert IMAGE_LIMIT < len(image) < OTHER_LIMIT
    same_size = random_bytes(len(image))

    refused = await upload(client, alice, image, name="large.png", content_type="image/png")
    accepted = await upload(client, alice, same_size, name="large.bin")

    assert refused.status_code == 413
    assert refused.json()["limit_bytes"] == IMAGE_LIMIT
    assert accepted.status_code == 201
    assert await blob_count(runtime, image) == 0
    assert staged_files(module_settings) == []


# -- types refused -----------------------------------------------------------------------

HTML = b"<!DOCTYPE html><html><body><script>fetch('/v1/auth/me')</script></body></html>"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect/></svg>'
XHTML = b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body/></html>'
PROGRAM = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(200)


@pytest.mark.parametrize(
    ("data", "name", "declared"),
    [
        (HTML, "photo.jpg", "image/jpeg"),
        (HTML, "page.html", "text/html"),
        (HTML, "notes.txt", "text/plain"),
        (SVG, "drawing.svg", "image/svg+xml"),
        (SVG, "drawing.png", "image/png"),
        (XHTML, "page.xhtml", "application/xhtml+xml"),
        (PROGRAM, "photo.jpg", "image/jpeg"),
        (PROGRAM, "invoice.pdf", "application/pdf"),
        (b"just some words that are not a picture\n", "photo.jpg", "application/octet-stream"),
        (b"just some words that are not a picture\n", "words", "image/jpeg"),
    ],
)
async def test_markup_and_spoofed_types_are_refused(client, alice, runtime, module_settings, data, name, declared):
    response = await upload(client, alice, data, name=name, content_type=declared)

    assert response.status_code == 415, response.text
    assert problem_type(response) == "unsupported-media-type"
    assert await blob_count(runtime, data) == 0
    assert staged_files(module_settings) == []


async def test_an_image_named_for_another_image_format_is_accepted(client, alice):
    created = await uploaded(client, alice, png_bytes(), name="scan.jpg", content_type="image/jpeg")

    assert created["content_type"] == "image/png"


# -- bad input ---------------------------------------------------------------------------


async def test_no_file_field_is_refused(client, alice):
    response = await send_raw(client, alice, multipart([("purpose", None, b"general")]))

    assert response.status_code == 422
    assert problem_type(response) == "file-required"


async def test_a_file_field_without_a_file_name_is_refused(client, alice):
    response = await send_raw(client, alice, multipart([("file", None, b"not a file")]))

    assert response.status_code == 422
    assert problem_type(response) == "file-required"


async def test_an_unknown_purpose_is_refused(client, alice, runtime, module_settings):
    data = random_bytes(500)

    response = await upload(client, alice, data, purpose="wallpaper")

    assert response.status_code == 422
    assert problem_type(response) == "validation-error"
    assert response.json()["errors"][0]["loc"] == ["body", "purpose"]
    assert await blob_count(runtime, data) == 0
    assert staged_files(module_settings) == []


async def test_an_unknown_field_is_refused(client, alice):
    response = await upload(client, alice, random_bytes(50), caption="hello")

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "caption"]


async def test_two_files_are_refused(client, alice):
    body = multipart([("file", "a.bin", random_bytes(10)), ("file", "b.bin", random_bytes(10))])

    response = await send_raw(client, alice, body)

    assert response.status_code == 422


async def test_a_body_that_is_not_multipart_is_refused(client, alice):
    response = await client.post(MEDIA, headers=alice.headers, json={"file": "aGVsbG8="})

    assert response.status_code == 415
    assert problem_type(response) == "multipart-required"


async def test_a_multipart_body_cut_short_is_refused(client, alice, module_settings):
    body = multipart([("file", "cut.bin", random_bytes(5000))], close=False)[:-100]

    response = await send_raw(client, alice, body)

    assert response.status_code == 400
    assert problem_type(response) == "malformed-multipart"
    assert staged_files(module_settings) == []


async def test_an_upload_needs_a_signed_in_caller(client, module_settings):
    response = await client.post(MEDIA, files={"file": ("a.bin", random_bytes(10), "application/octet-stream")})

    assert response.status_code == 401
    assert problem_type(response) == "unauthenticated"
    assert staged_files(module_settings) == []
