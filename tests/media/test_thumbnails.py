"""Thumbnails end to end: an uploaded image is processed by the server's worker, then its
metadata shows its dimensions, colour and blurhash and its three thumbnails are served;
the EICAR file is quarantined and served to no one; what others download of a photo has
no location."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from rapport.media._processing._exif import GPS_IFD_TAG
from rapport.media._processing._scan import EICAR
from tests.media.processing_support import jpeg, registered_file
from tests.media.upload_support import MEDIA, uploaded
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

BOXES = {"small": 96, "medium": 320, "large": 1024}


async def processed(app: Any) -> None:
    # The scan queues the other steps once the bytes are clean: the worker goes round twice.
    await app.state.worker.wait_idle()
    await app.state.worker.wait_idle()


async def thumbnail(client: Any, persona: Persona, file_id: str, size: str, **headers: str) -> Any:
    return await client.get(f"{MEDIA}/{file_id}/thumbnails/{size}", headers={**persona.headers, **headers})


async def test_an_uploaded_image_gets_its_facts_and_three_thumbnails(client, app, alice):
    photo = Image.new("RGB", (1500, 1000), (40, 160, 90))
    photo.paste((250, 250, 250), (0, 0, 1500, 100))
    data = io.BytesIO()
    photo.save(data, "PNG")
    file = await uploaded(client, alice, data.getvalue(), name="meadow.png", content_type="image/png")

    await processed(app)

    meta = (await client.get(f"{MEDIA}/{file['id']}", headers=alice.headers)).json()
    assert (meta["status"], meta["scan_status"], meta["kind"]) == ("ready", "clean", "image")
    assert (meta["width"], meta["height"], meta["has_alpha"]) == (1500, 1000, False)
    assert meta["dominant_color"] == "#28a05a"
    assert len(meta["blurhash"]) == 28
    listed = {t["size"]: (t["width"], t["height"]) for t in meta["thumbnails"]}
    assert listed == {"small": (96, 64), "medium": (320, 213), "large": (1024, 683)}
    for size, box in BOXES.items():
        response = await thumbnail(client, alice, file["id"], size)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/webp"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["content-disposition"].startswith(f'inline; filename="meadow-{size}.webp"')
        image = Image.open(io.BytesIO(response.content))
        assert image.format == "WEBP"
        assert image.size == listed[size]
        assert max(image.size) == box
        assert meta["urls"]["thumbnails"][size] == f"{MEDIA}/{file['id']}/thumbnails/{size}"


async def test_a_thumbnail_is_validated_by_its_etag(client, app, alice):
    file = await uploaded(client, alice, jpeg(400, 300), name="small.jpg", content_type="image/jpeg")
    await processed(app)

    first = await thumbnail(client, alice, file["id"], "medium")
    again = await thumbnail(client, alice, file["id"], "medium", **{"If-None-Match": first.headers["etag"]})

    assert first.status_code == 200
    assert again.status_code == 304
    assert again.content == b""


async def test_only_the_three_sizes_exist(client, app, alice):
    file = await uploaded(client, alice, jpeg(200, 200), name="square.jpg", content_type="image/jpeg")

    response = await thumbnail(client, alice, file["id"], "huge")

    assert response.status_code == 422


async def test_a_file_that_is_no_image_has_no_thumbnails(client, app, alice):
    file = await uploaded(
        client, alice, b"Minutes of the meeting.\n" * 40, name="minutes.txt", content_type="text/plain"
    )
    await processed(app)

    response = await thumbnail(client, alice, file["id"], "small")

    assert response.status_code == 404
    assert problem_type(response) == "thumbnail-not-found"


async def test_an_image_still_processing_answers_409_with_retry_after(client, app, runtime, alice):
    # Registered as an upload leaves it, its processing not yet run.
    file_id = await registered_file(
        runtime,
        alice.user_id,
        jpeg(300, 200),
        file_name="new.jpg",
        content_type="image/jpeg",
        kind="image",
        start=False,
    )

    response = await thumbnail(client, alice, str(file_id), "small")

    assert response.status_code == 409
    assert problem_type(response) == "file-not-ready"
    assert int(response.headers["retry-after"]) > 0


async def test_a_stranger_gets_404_as_for_a_file_that_does_not_exist(client, app, alice, mallory):
    file = await uploaded(client, alice, jpeg(300, 200), name="private.jpg", content_type="image/jpeg")
    await processed(app)

    theirs = await thumbnail(client, mallory, file["id"], "small")
    nothing = await thumbnail(client, mallory, "01900000-0000-7000-8000-000000000000", "small")

    assert theirs.status_code == nothing.status_code == 404
    assert problem_type(theirs) == problem_type(nothing) == "file-not-found"


async def test_the_eicar_file_is_quarantined_and_never_served(client, app, alice):
    file = await uploaded(client, alice, EICAR, name="eicar.txt", content_type="text/plain")
    await processed(app)

    meta = (await client.get(f"{MEDIA}/{file['id']}", headers=alice.headers)).json()
    content = await client.get(f"{MEDIA}/{file['id']}/content", headers=alice.headers)
    small = await thumbnail(client, alice, file["id"], "small")

    assert (meta["status"], meta["scan_status"]) == ("quarantined", "infected")
    assert content.status_code == small.status_code == 403
    assert problem_type(content) == problem_type(small) == "file-quarantined"
    assert EICAR not in content.content


async def test_an_infected_image_is_quarantined_with_no_thumbnails(client, app, alice):
    data = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 0, 0)).save(data, "PNG")
    # Bytes after a PNG's end are ignored by decoders, not by scanners.
    file = await uploaded(client, alice, data.getvalue() + EICAR, name="trojan.png", content_type="image/png")
    await processed(app)

    meta = (await client.get(f"{MEDIA}/{file['id']}", headers=alice.headers)).json()
    response = await thumbnail(client, alice, file["id"], "large")

    assert (meta["status"], meta["thumbnails"], meta["width"]) == ("quarantined", [], None)
    assert response.status_code == 403


async def test_others_download_a_photo_without_its_location(client, app, alice, bob):
    original = jpeg(800, 600, gps=True)
    file = await uploaded(client, alice, original, name="home.jpg", content_type="image/jpeg")
    await processed(app)
    shared = await client.post(f"{MEDIA}/{file['id']}/shares", headers=alice.headers, json={"user_id": bob.user_id})
    assert shared.status_code == 201, shared.text

    hers = await client.get(f"{MEDIA}/{file['id']}/content", headers=alice.headers)
    his = await client.get(f"{MEDIA}/{file['id']}/content", headers=bob.headers)
    his_thumbnail = await thumbnail(client, bob, file["id"], "large")

    assert hers.content == original
    assert Image.open(io.BytesIO(hers.content)).getexif().get_ifd(GPS_IFD_TAG)[1] == "N"
    assert his.status_code == 200
    assert his.content != original
    with Image.open(io.BytesIO(his.content)) as variant:
        assert variant.getexif().get_ifd(GPS_IFD_TAG) == {}
        assert variant.getexif()[0x010F] == "Rapport Camera"
        assert variant.size == (800, 600)
    assert his.headers["etag"] != hers.headers["etag"]
    assert his_thumbnail.status_code == 200
    assert Image.open(io.BytesIO(his_thumbnail.content)).getexif().get_ifd(GPS_IFD_TAG) == {}


@pytest.mark.parametrize("size", ["small", "medium", "large"])
async def test_a_thumbnail_is_never_larger_than_the_image(client, app, alice, size):
    file = await uploaded(client, alice, jpeg(80, 50), name="tiny.jpg", content_type="image/jpeg")
    await processed(app)

    response = await thumbnail(client, alice, file["id"], size)

    assert Image.open(io.BytesIO(response.content)).size == (80, 50)
