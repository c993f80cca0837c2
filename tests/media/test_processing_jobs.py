"""Processing as the worker runs it: a registered file is scanned, read and thumbnailed by
the `media.*` jobs, ends ready (or quarantined, or failed with its reason), and its
owner hears of it through the outbox."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from PIL import Image

from rapport.config import Settings
from rapport.kernel import jobs
from rapport.kernel.db import system_transaction
from rapport.media._processing import METADATA, QUEUE, SCAN, tasks
from rapport.media._processing._exif import GPS_IFD_TAG
from rapport.media._processing._scan import EICAR, EICAR_SIGNATURE
from tests.media.clamd import SIGNATURE, FakeClamd
from tests.media.processing_support import (
    events_of,
    file_row,
    image_file,
    jpeg,
    png,
    registered_file,
    steps_of,
    stored,
    thumbnails_of,
)
from tests.media.test_processing import png_declaring
from tests.support import Mailbox, make_settings

pytestmark = pytest.mark.module_database


@pytest.fixture
async def fake_clamd() -> AsyncIterator[FakeClamd]:
    daemon = await FakeClamd().start_tcp()
    yield daemon
    await daemon.close()


@pytest.fixture
def clamd() -> str | None:
    """RAPPORT_CLAMD for the test's app: none (the built-in check) unless a test
    parametrizes it, with an address or STAND_IN for the stand-in daemon."""
    return None


STAND_IN = "stand-in"


@pytest.fixture
def settings(
    request: pytest.FixtureRequest, smtp_server: tuple[Controller, Mailbox], tmp_path: Path, clamd: str | None
) -> Settings:
    controller, _ = smtp_server
    if clamd == STAND_IN:
        clamd = request.getfixturevalue("fake_clamd").address
    return make_settings(smtp_host="127.0.0.1", smtp_port=controller.port, media_dir=tmp_path / "media", clamd=clamd)


@pytest.fixture
async def owner(runtime) -> str:
    from tests.support import create_verified_user

    return await create_verified_user(runtime, "owner@example.com")


def close_to(colour: str, expected: tuple[int, int, int], tolerance: int = 3) -> bool:
    actual = bytes.fromhex(colour.removeprefix("#"))
    return all(abs(a - b) <= tolerance for a, b in zip(actual, expected, strict=True))


async def processed(jobs_done) -> None:
    # The scan queues the other steps: twice round the queue.
    await jobs_done()
    await jobs_done()


async def test_the_server_knows_the_processing_tasks_and_runs_their_queue(app):
    assert [jobs.tasks.get(task.name) for task in tasks.TASKS] == list(tasks.TASKS)
    assert QUEUE in app.state.worker.queues


async def test_an_image_is_scanned_measured_and_thumbnailed_then_ready(runtime, owner, jobs_done):
    file_id = await registered_file(
        runtime,
        owner,
        jpeg(1600, 1200, (200, 30, 40)),
        file_name="holiday.jpg",
        content_type="image/jpeg",
        kind="image",
    )

    await processed(jobs_done)

    row = await file_row(runtime, file_id)
    assert (row.status, row.scan_status, row.scan_signature) == ("ready", "clean", None)
    assert (row.width, row.height, row.has_alpha) == (1600, 1200, False)
    assert close_to(row.dominant_color, (200, 30, 40))  # JPEG moves a colour by a unit or two
    assert len(row.blurhash) == 28
    assert row.metadata["camera_make"] == "Rapport Camera"
    assert row.public_sha256 is None  # nothing to remove: everyone gets the original
    made = await thumbnails_of(runtime, file_id)
    assert {size: (t.width, t.height) for size, t in made.items()} == {
        "small": (96, 72),
        "medium": (320, 240),
        "large": (1024, 768),
    }
    for thumbnail in made.values():
        image = Image.open(io.BytesIO(await stored(runtime, thumbnail.sha256)))
        assert (image.format, image.size) == ("WEBP", (thumbnail.width, thumbnail.height))
        assert thumbnail.content_type == "image/webp"
    steps = await steps_of(runtime, file_id)
    assert {step: (s.status, s.attempts, s.error) for step, s in steps.items()} == {
        "scan": ("completed", 1, None),
        "metadata": ("completed", 1, None),
        "thumbnails": ("completed", 1, None),
    }
    assert all(s.started_at <= s.completed_at for s in steps.values())
    assert await events_of(runtime, owner) == [("media.file_ready", {"file_id": str(file_id), "status": "ready"})]


async def test_the_same_thumbnail_twice_is_stored_once(runtime, owner, jobs_done):
    first = await image_file(runtime, owner, png(200, 100), "a.png")
    second = await image_file(runtime, owner, png(200, 100), "copy.png")

    await processed(jobs_done)

    ours, theirs = await thumbnails_of(runtime, first), await thumbnails_of(runtime, second)
    assert {size: t.sha256 for size, t in ours.items()} == {size: t.sha256 for size, t in theirs.items()}
    # Never enlarged: 200 × 100 is already within the medium and large boxes, one blob for both.
    assert ours["medium"].sha256 == ours["large"].sha256


async def test_an_image_with_a_location_gets_a_public_variant_without_it(runtime, owner, jobs_done):
    original = jpeg(640, 480, gps=True)
    file_id = await image_file(runtime, owner, original, "home.jpg")

    await processed(jobs_done)

    row = await file_row(runtime, file_id)
    assert row.status == "ready"
    assert await stored(runtime, row.sha256) == original
    with Image.open(io.BytesIO(await stored(runtime, row.public_sha256))) as variant:
        assert variant.getexif().get_ifd(GPS_IFD_TAG) == {}
        assert variant.getexif()[0x010F] == "Rapport Camera"
        assert variant.size == (640, 480)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(GPS_IFD_TAG)[1] == "N"
    # That it had one, never where: the metadata is shown to every reader.
    assert row.metadata == {
        "camera_make": "Rapport Camera",
        "had_location": True,
        "scanned_by": "builtin",
        "format": "JPEG",
        "animated": False,
    }
    for thumbnail in (await thumbnails_of(runtime, file_id)).values():
        assert Image.open(io.BytesIO(await stored(runtime, thumbnail.sha256))).getexif().get_ifd(GPS_IFD_TAG) == {}


async def test_the_eicar_file_is_quarantined_and_nothing_is_made_from_it(runtime, owner, jobs_done):
    file_id = await registered_file(
        runtime, owner, EICAR, file_name="eicar.com.txt", content_type="text/plain", kind="document"
    )

    await processed(jobs_done)

    row = await file_row(runtime, file_id)
    assert (row.status, row.scan_status, row.scan_signature) == ("quarantined", "infected", EICAR_SIGNATURE)
    steps = await steps_of(runtime, file_id)
    assert steps["scan"].status == "completed"
    assert steps["metadata"].status == steps["thumbnails"].status == "failed"
    assert "quarantined" in steps["thumbnails"].error
    assert await events_of(runtime, owner) == [
        (
            "media.file_quarantined",
            {"file_id": str(file_id), "status": "quarantined", "scan_signature": EICAR_SIGNATURE},
        )
    ]


async def test_an_infected_image_gets_no_thumbnails_even_if_its_steps_are_queued_at_once(runtime, owner, jobs_done):
    # An image whose bytes also carry the test signature: queued all together, the other
    # steps wait for the scan, which quarantines it.
    content = png(300, 200) + EICAR
    file_id = await image_file(runtime, owner, content, "x.png")
    async with system_transaction(runtime.system_engine) as db:
        await jobs.enqueue(db, METADATA, {"file_id": str(file_id)})

    await processed(jobs_done)

    row = await file_row(runtime, file_id)
    assert (row.status, row.width, row.blurhash) == ("quarantined", None, None)
    assert await thumbnails_of(runtime, file_id) == {}


async def test_a_program_named_like_a_document_is_quarantined_as_a_type_mismatch(runtime, owner, jobs_done):
    program = b"\x7fELF\x02\x01\x01" + os.urandom(500)
    file_id = await registered_file(
        runtime, owner, program, file_name="invoice.pdf", content_type="application/octet-stream", kind="other"
    )

    await processed(jobs_done)

    row = await file_row(runtime, file_id)
    assert (row.status, row.scan_signature) == ("quarantined", "Rapport.TypeMismatch")


async def test_a_decompression_bomb_fails_the_file_with_its_reason_and_the_worker_goes_on(runtime, owner, jobs_done):
    bomb = await image_file(runtime, owner, png_declaring(100_000, 100_000), "bomb.png")
    await processed(jobs_done)
    after = await image_file(runtime, owner, png(64, 64), "fine.png")
    await processed(jobs_done)

    row = await file_row(runtime, bomb)
    assert (row.status, row.scan_status) == ("failed", "clean")
    steps = await steps_of(runtime, bomb)
    assert steps["thumbnails"].status == "failed"
    assert "decompression bomb" in steps["thumbnails"].error and "10000000000 pixels" in steps["thumbnails"].error
    assert steps["thumbnails"].attempts == 1  # refused for good, not retried
    assert await thumbnails_of(runtime, bomb) == {}
    [failed, ready] = await events_of(runtime, owner)
    assert failed[0] == "media.file_failed"
    assert failed[1]["step"] == "thumbnails" and "pixels" in failed[1]["error"]
    assert ready == ("media.file_ready", {"file_id": str(after), "status": "ready"})
    assert (await file_row(runtime, after)).status == "ready"


async def test_an_audio_file_gets_its_stream_facts_and_no_thumbnails(runtime, owner, jobs_done, tmp_path):
    import wave

    path = tmp_path / "voice.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(bytes(2 * 16_000 * 2))
    file_id = await registered_file(
        runtime, owner, path.read_bytes(), file_name="voice.wav", content_type="audio/wav", kind="audio"
    )

    await processed(jobs_done)

    row = await file_row(runtime, file_id)
    assert row.status == "ready"
    assert (float(row.duration_seconds), row.sample_rate, row.audio_channels, row.codec) == (2.0, 16_000, 1, "pcm")
    assert row.bitrate == 256_000
    assert await thumbnails_of(runtime, file_id) == {}
    assert (row.width, row.blurhash) == (None, None)


async def test_a_pdf_gets_its_page_count(runtime, owner, jobs_done):
    from tests.media.test_processing import pdf_with_text

    content = pdf_with_text(["First page here", "Second"])
    file_id = await registered_file(
        runtime, owner, content, file_name="notes.pdf", content_type="application/pdf", kind="document"
    )

    await processed(jobs_done)

    row = await file_row(runtime, file_id)
    assert (row.status, row.page_count, row.word_count) == ("ready", 2, 4)


async def test_running_a_step_again_changes_nothing(runtime, owner, jobs_done):
    file_id = await image_file(runtime, owner, png(120, 80), "p.png")
    await processed(jobs_done)
    before = await file_row(runtime, file_id)

    async with system_transaction(runtime.system_engine) as db:
        await jobs.enqueue(db, SCAN, {"file_id": str(file_id)})
    await processed(jobs_done)

    assert await file_row(runtime, file_id) == before
    assert [kind for kind, _ in await events_of(runtime, owner)] == ["media.file_ready"]
    assert {s.attempts for s in (await steps_of(runtime, file_id)).values()} == {1}


class TestWithClamd:
    """A database and an app of their own, started with the test's RAPPORT_CLAMD: the
    module's app, over the module's database, would run the scan with the built-in check."""

    @pytest.fixture
    def database(self, fresh_database):
        return fresh_database

    @pytest.fixture
    def app(self, fresh_app):
        return fresh_app

    @pytest.mark.parametrize("clamd", [STAND_IN])
    async def test_with_clamd_the_upload_is_streamed_to_it_and_its_verdict_kept(
        self, runtime, owner, jobs_done, clamd, fake_clamd
    ):
        clean = await image_file(runtime, owner, png(80, 60), "ok.png")
        infected = await registered_file(
            runtime, owner, b"header " + EICAR, file_name="tool.txt", content_type="text/plain", kind="document"
        )

        await processed(jobs_done)

        assert (await file_row(runtime, clean)).status == "ready"
        assert (await file_row(runtime, clean)).metadata["scanned_by"] == "clamd"
        row = await file_row(runtime, infected)
        assert (row.status, row.scan_signature) == ("quarantined", SIGNATURE)
        assert sorted(len(stream.data) for stream in fake_clamd.streams) == sorted(
            [len(png(80, 60)), len(b"header " + EICAR)]
        )

    @pytest.mark.parametrize("clamd", ["unix:/nonexistent/clamd.sock"])
    async def test_a_clamd_that_cannot_be_reached_leaves_the_scan_to_be_retried(self, runtime, owner, jobs_done, clamd):
        file_id = await image_file(runtime, owner, png(80, 60), "p.png")

        await jobs_done()

        steps = await steps_of(runtime, file_id)
        assert (steps["scan"].status, steps["scan"].attempts) == ("queued", 1)
        assert "ClamdUnavailable" in steps["scan"].error
        row = await file_row(runtime, file_id)
        # The next attempt waits for its backoff, past this test.
        assert (row.status, row.scan_status) == ("processing", "pending")
