"""Versions of a file: POST /v1/media/{id}/versions (multipart, as an upload), GET
/v1/media/{id}/versions and GET /v1/media/{id}/versions/{n}/content.

Alice owns the file; bob has it shared with him; mallory is a stranger. The file keeps
its id and takes the new bytes, which are processed again; the bytes it held stay
downloadable by its owner."""

from __future__ import annotations

import uuid

import pytest

from tests.media.collections_support import add_item, document, make_album, quarantine, refused, share
from tests.media.upload_support import MEDIA, png_bytes, processed, sha256, staged_files, text_bytes, uploaded
from tests.support import Persona

pytestmark = pytest.mark.module_database


async def new_version(client, persona: Persona, file_id: str, data: bytes, *, name: str = "photo.png", **options):
    content_type = options.pop("content_type", "image/png")
    return await client.post(
        f"{MEDIA}/{file_id}/versions", headers=persona.headers, files={"file": (name, data, content_type)}, **options
    )


async def photo(client, app, persona: Persona, data: bytes | None = None) -> tuple[dict, bytes]:
    data = data or png_bytes(40, 30)
    file = await uploaded(client, persona, data, name="photo.png", content_type="image/png")
    await processed(app)
    return file, data


async def test_a_new_version_becomes_the_files_content_under_the_same_id(client, app, alice):
    file, _ = await photo(client, app, alice)
    second = png_bytes(80, 60)

    response = await new_version(client, alice, file["id"], second)

    assert response.status_code == 201, response.text
    changed = response.json()
    assert (changed["id"], changed["version"], changed["file_name"]) == (file["id"], 2, "photo.png")
    assert (changed["status"], changed["sha256"], changed["size_bytes"]) == (
        "processing",
        sha256(second).hex(),
        len(second),
    )
    assert (await client.get(f"{MEDIA}/{file['id']}/content", headers=alice.headers)).content == second


async def test_the_new_bytes_are_processed_again(client, app, alice):
    file, _ = await photo(client, app, alice)
    assert (file["width"], file["height"]) in ((None, None), (40, 30))

    await new_version(client, alice, file["id"], png_bytes(200, 100))
    await processed(app)

    shown = (await client.get(f"{MEDIA}/{file['id']}", headers=alice.headers)).json()
    assert (shown["status"], shown["scan_status"], shown["width"], shown["height"]) == ("ready", "clean", 200, 100)
    assert {t["size"]: (t["width"], t["height"]) for t in shown["thumbnails"]}["small"] == (96, 48)


async def test_every_version_is_listed_and_downloadable_by_the_owner(client, app, alice):
    file, first = await photo(client, app, alice)
    second, third = png_bytes(50, 50), png_bytes(60, 60)
    await new_version(client, alice, file["id"], second)
    await new_version(client, alice, file["id"], third)

    listed = (await client.get(f"{MEDIA}/{file['id']}/versions", headers=alice.headers)).json()["items"]

    assert [(v["version"], v["is_current"], v["size_bytes"]) for v in listed] == [
        (3, True, len(third)),
        (2, False, len(second)),
        (1, False, len(first)),
    ]
    assert {v["created_by"] for v in listed} == {alice.user_id}
    for version, data in ((1, first), (2, second), (3, third)):
        content = await client.get(f"{MEDIA}/{file['id']}/versions/{version}/content", headers=alice.headers)
        assert (content.status_code, content.content) == (200, data)
        assert content.headers["etag"] == f'"{sha256(data).hex()}"'
    assert [v["content_url"] for v in listed][-1] == f"{MEDIA}/{file['id']}/versions/1/content"
    ranged = await client.get(
        f"{MEDIA}/{file['id']}/versions/1/content", headers={**alice.headers, "Range": "bytes=0-7"}
    )
    assert (ranged.status_code, ranged.content) == (206, first[:8])


async def test_a_version_the_file_never_had_is_not_found(client, app, alice):
    file, _ = await photo(client, app, alice)
    path = f"{MEDIA}/{file['id']}/versions"

    refused(await client.get(f"{path}/2/content", headers=alice.headers), 404, "version-not-found")
    refused(await client.get(f"{path}/0/content", headers=alice.headers), 422, "validation-error")
    refused(await client.get(f"{path}/one/content", headers=alice.headers), 422, "validation-error")


async def test_a_new_version_is_of_the_files_kind(client, app, alice, module_settings):
    file, first = await photo(client, app, alice)

    response = await new_version(client, alice, file["id"], text_bytes(), name="notes.txt", content_type="text/plain")

    refused(response, 422, "version-kind-mismatch")
    shown = (await client.get(f"{MEDIA}/{file['id']}", headers=alice.headers)).json()
    assert (shown["version"], shown["sha256"]) == (1, sha256(first).hex())
    assert staged_files(module_settings) == []


async def test_a_document_takes_a_new_document(client, alice):
    notes = await document(client, alice)
    response = await new_version(
        client, alice, notes["id"], text_bytes(300), name="notes.txt", content_type="text/plain"
    )
    assert (response.status_code, response.json()["version"]) == (201, 2)


async def test_only_the_owner_versions_a_file(client, app, alice, bob, mallory, module_settings):
    file, first = await photo(client, app, alice)
    await share(client, alice, f"{MEDIA}/{file['id']}", user_id=bob.user_id)
    path = f"{MEDIA}/{file['id']}/versions"

    refused(await new_version(client, bob, file["id"], png_bytes()), 403, "not-file-owner")
    refused(await client.get(path, headers=bob.headers), 403, "not-file-owner")
    refused(await client.get(f"{path}/1/content", headers=bob.headers), 403, "not-file-owner")
    for response in (
        await new_version(client, mallory, file["id"], png_bytes()),
        await client.get(path, headers=mallory.headers),
        await client.get(f"{path}/1/content", headers=mallory.headers),
        await new_version(client, alice, str(uuid.uuid4()), png_bytes()),
    ):
        refused(response, 404, "file-not-found")
    assert (await client.get(f"{MEDIA}/{file['id']}/content", headers=alice.headers)).content == first
    assert staged_files(module_settings) == []


async def test_those_it_is_shared_with_read_the_new_version_once_scanned(client, app, alice, bob):
    file, _ = await photo(client, app, alice)
    album = await make_album(client, alice)
    await add_item(client, alice, album["id"], file["id"])
    await share(client, alice, f"{MEDIA}/{file['id']}", user_id=bob.user_id)
    second = png_bytes(70, 20)

    await new_version(client, alice, file["id"], second)
    await processed(app)

    assert (await client.get(f"{MEDIA}/{file['id']}/content", headers=bob.headers)).content == second
    items = (await client.get(f"{MEDIA}/albums/{album['id']}", headers=alice.headers)).json()["items"]
    assert [(i["file_id"], i["file"]["version"]) for i in items] == [(file["id"], 2)]


async def test_a_quarantined_file_takes_no_new_version(client, runtime, app, alice):
    file, _ = await photo(client, app, alice)
    await processed(app)
    await quarantine(runtime, file["id"])

    refused(await new_version(client, alice, file["id"], png_bytes()), 403, "file-quarantined")


async def test_a_new_version_is_a_multipart_upload_with_a_file(client, app, alice, module_settings):
    file, _ = await photo(client, app, alice)
    path = f"{MEDIA}/{file['id']}/versions"

    refused(await client.post(path, headers=alice.headers, json={"file": "aGVsbG8="}), 415, "multipart-required")
    refused(
        await client.post(path, headers=alice.headers, files={"other": ("a.png", png_bytes(), "image/png")}),
        422,
        "validation-error",
    )
    refused(await new_version(client, alice, file["id"], b""), 422, "empty-file")
    refused(
        await new_version(client, alice, file["id"], b"<html><script>alert(1)</script></html>", name="x.png"),
        415,
        "unsupported-media-type",
    )
    refused(await client.post(path, files={"file": ("a.png", png_bytes(), "image/png")}), 401, "unauthenticated")
    assert (await client.get(f"{MEDIA}/{file['id']}", headers=alice.headers)).json()["version"] == 1
    assert staged_files(module_settings) == []
