"""Media on S3, end to end through the API of a running app whose `media_storage` is "s3"
(moto's server mode, checking every request's signature): an upload lands in the bucket
under its blob key and nowhere on the local disk; it downloads whole and by range; an
image's thumbnails are made from the bucket's bytes, stored there and served; the same
bytes uploaded by two people are one object, removed by the collector once both delete
their files; a resumable (tus) upload completes into the bucket. The bucket is looked at
with boto3, independently of Rapport's own S3 code."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from rapport.config import Settings
from rapport.media._storage import CHUNK_BYTES, blob_key, media_root
from tests.media.processing_support import png
from tests.media.s3_server import S3Server, s3_server_fixture  # noqa: F401 (`s3_server`)
from tests.media.tus_support import created, patch
from tests.media.upload_support import MEDIA, blob_count, collect_now, random_bytes, sha256, staged_files, uploaded
from tests.support import Mailbox, make_settings

pytestmark = pytest.mark.module_database

BOXES = {"small": 96, "medium": 320, "large": 1024}


@pytest.fixture(scope="module")
def module_settings(smtp_server: tuple[Controller, Mailbox], module_media_dir: Path, s3_server: S3Server) -> Settings:
    controller, _ = smtp_server
    return make_settings(
        smtp_host="127.0.0.1",
        smtp_port=controller.port,
        media_dir=module_media_dir,
        **s3_server.settings_overrides(),
    )


def key_of(data: bytes) -> str:
    return blob_key(sha256(data))


def object_bytes(s3_server: S3Server, key: str) -> bytes:
    stored: bytes = s3_server.client().get_object(Bucket=s3_server.bucket, Key=key)["Body"].read()
    return stored


def local_blobs(settings: Settings) -> list[Path]:
    """What the local backend would have stored: nothing, with S3 chosen."""
    return [path for path in (media_root(settings) / "blobs").rglob("*") if path.is_file()]


async def test_an_upload_is_stored_in_the_bucket_under_its_blob_key(
    client, jobs_done, module_settings, s3_server, alice
):
    data = random_bytes(300_000)

    created_file = await uploaded(client, alice, data, name="report.bin")
    await jobs_done()

    assert created_file["sha256"] == sha256(data).hex()
    assert key_of(data) in s3_server.list_keys()
    assert object_bytes(s3_server, key_of(data)) == data
    assert local_blobs(module_settings) == []
    assert staged_files(module_settings) == []


async def test_a_download_reads_the_bucket_whole_and_by_range(client, alice):
    data = random_bytes(4 * CHUNK_BYTES + 1000)  # several of the backend's chunks
    url = (await uploaded(client, alice, data, name="clip.bin"))["urls"]["content"]
    first, last = CHUNK_BYTES - 10, 3 * CHUNK_BYTES + 10  # across chunk boundaries

    whole = await client.get(url, headers=alice.headers)
    part = await client.get(url, headers={**alice.headers, "range": f"bytes={first}-{last}"})

    assert whole.status_code == 200
    assert whole.content == data
    assert part.status_code == 206
    assert part.content == data[first : last + 1]
    assert part.headers["content-range"] == f"bytes {first}-{last}/{len(data)}"


async def test_an_images_thumbnails_are_made_from_the_bucket_and_served(
    client, jobs_done, module_settings, s3_server, alice
):
    data = png(1500, 1000, (40, 160, 90))
    file = await uploaded(client, alice, data, name="meadow.png", content_type="image/png")

    await jobs_done()

    meta = (await client.get(f"{MEDIA}/{file['id']}", headers=alice.headers)).json()
    assert (meta["status"], meta["width"], meta["height"]) == ("ready", 1500, 1000)
    assert {thumbnail["size"] for thumbnail in meta["thumbnails"]} == set(BOXES)
    keys = s3_server.list_keys()
    for size, box in BOXES.items():
        response = await client.get(meta["urls"]["thumbnails"][size], headers=alice.headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/webp"
        thumbnail = next(t for t in meta["thumbnails"] if t["size"] == size)
        assert max(thumbnail["width"], thumbnail["height"]) == box
        # What is served is the object stored under the thumbnail's own hash.
        assert key_of(response.content) in keys
        assert object_bytes(s3_server, key_of(response.content)) == response.content
    assert local_blobs(module_settings) == []


async def test_the_same_bytes_are_one_object_removed_once_both_files_are_deleted(
    client, jobs_done, runtime, s3_server, alice, bob
):
    data = random_bytes(200_000)
    before = set(s3_server.list_keys())

    alices = await uploaded(client, alice, data, name="mine.bin")
    bobs = await uploaded(client, bob, data, name="also-mine.bin")
    await jobs_done()

    assert set(s3_server.list_keys()) - before == {key_of(data)}
    assert await blob_count(runtime, data) == 1

    for persona, file in ((alice, alices), (bob, bobs)):
        response = await client.delete(f"{MEDIA}/{file['id']}", headers=persona.headers)
        assert response.status_code == 204, response.text
    await jobs_done()  # the `media.collect` the deletions queued
    collected = await collect_now(runtime)

    assert collected.blobs >= 1
    assert await blob_count(runtime, data) == 0
    assert key_of(data) not in s3_server.list_keys()


async def test_a_resumable_upload_completes_into_the_bucket(client, jobs_done, module_settings, s3_server, alice):
    data = random_bytes(600_000)
    location = await created(client, alice, len(data), filename="holiday.bin")

    sent = await patch(client, alice, location, 0, data)
    await jobs_done()

    assert sent.status_code == 204, sent.text
    assert key_of(data) in s3_server.list_keys()
    assert object_bytes(s3_server, key_of(data)) == data
    content = await client.get(f"{MEDIA}/{sent.headers['rapport-file-id']}/content", headers=alice.headers)
    assert content.content == data
    assert local_blobs(module_settings) == []
