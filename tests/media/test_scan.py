"""The scan step: the client of clamd's INSTREAM protocol against a daemon speaking it (on
a unix socket and over TCP), and the built-in check used without clamd (the EICAR test
file, and bytes that contradict the file's name)."""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from rapport.media._processing import _clamd, _scan
from rapport.media._processing._scan import EICAR, EICAR_SIGNATURE, TYPE_MISMATCH_SIGNATURE
from tests.media.clamd import SIGNATURE, FakeClamd

# A minimal Windows program's start: DOS header pointing at a PE header.
WINDOWS_PROGRAM = b"MZ" + bytes(58) + struct.pack("<I", 64) + b"PE\x00\x00" + bytes(200)
LINUX_PROGRAM = b"\x7fELF\x02\x01\x01" + bytes(100)


def opener(data: bytes, *, piece: int = 100_000) -> Callable[[int, int | None], AsyncIterator[bytes]]:
    """What Storage.open gives the scan: the bytes of a range, in pieces."""

    def open_bytes(start: int, end: int | None) -> AsyncIterator[bytes]:
        async def pieces() -> AsyncIterator[bytes]:
            stop = len(data) if end is None else min(end + 1, len(data))
            for at in range(start, stop, piece):
                yield data[at : min(at + piece, stop)]

        return pieces()

    return open_bytes


async def chunks_of(data: bytes, piece: int = 100_000) -> AsyncIterator[bytes]:
    for at in range(0, len(data), piece):
        yield data[at : at + piece]


@asynccontextmanager
async def serving(transport: str, tmp_path: Path) -> AsyncIterator[FakeClamd]:
    if transport == "tcp":
        daemon = await FakeClamd().start_tcp()
        try:
            yield daemon
        finally:
            await daemon.close()
        return
    # A short folder: unix socket paths are limited to about a hundred bytes.
    folder = Path(tempfile.mkdtemp(prefix="clamd-", dir="/tmp"))
    daemon = await FakeClamd().start_unix(folder / "clamd.sock")
    try:
        yield daemon
    finally:
        await daemon.close()
        shutil.rmtree(folder)


@pytest.fixture
async def unix_clamd(tmp_path: Path) -> AsyncIterator[FakeClamd]:
    async with serving("unix", tmp_path) as daemon:
        yield daemon


@pytest.fixture
async def tcp_clamd(tmp_path: Path) -> AsyncIterator[FakeClamd]:
    async with serving("tcp", tmp_path) as daemon:
        yield daemon


@pytest.fixture(params=["unix", "tcp"])
async def any_clamd(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FakeClamd]:
    """clamd on each transport it offers."""
    async with serving(request.param, tmp_path) as daemon:
        yield daemon


# -- the built-in check --------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [EICAR, EICAR + b"\r\n  \t", b"harmless preamble " * 50 + EICAR, EICAR + os.urandom(3000)],
    ids=["exactly", "followed-by-whitespace", "within-the-first-4-kib", "followed-by-bytes"],
)
def test_the_builtin_check_finds_the_eicar_test_file(content):
    verdict = _scan.builtin_check(content[: _scan.HEAD_BYTES], "notes.txt")

    assert (verdict.infected, verdict.signature, verdict.scanner) == (True, EICAR_SIGNATURE, "builtin")


def test_eicar_past_the_first_4_kib_is_not_the_test_file():
    content = b"a" * _scan.HEAD_BYTES + EICAR

    assert not _scan.builtin_check(content[: _scan.HEAD_BYTES], "notes.txt").infected


def test_an_ordinary_file_is_clean():
    verdict = _scan.builtin_check(b"Minutes of the meeting.\n" * 100, "minutes.txt")

    assert (verdict.infected, verdict.signature) == (False, None)


@pytest.mark.parametrize(
    ("head", "name"),
    [
        (WINDOWS_PROGRAM, "invoice.pdf"),
        (LINUX_PROGRAM, "holiday.jpg"),
        (b"\xcf\xfa\xed\xfe" + bytes(60), "song.mp3"),
        (b"<!DOCTYPE html><html><script>alert(1)</script>", "photo.png"),
        (b"\xef\xbb\xbf  <svg xmlns='http://www.w3.org/2000/svg'/>", "photo.jpeg"),
        (b"#!/bin/sh\nrm -rf ~\n", "report.docx"),
        (WINDOWS_PROGRAM, "readme.txt"),
    ],
)
def test_bytes_that_contradict_the_name_are_a_type_mismatch(head, name):
    verdict = _scan.builtin_check(head, name)

    assert (verdict.infected, verdict.signature) == (True, TYPE_MISMATCH_SIGNATURE)


@pytest.mark.parametrize(
    ("head", "name"),
    [
        (WINDOWS_PROGRAM, "setup.exe"),
        (LINUX_PROGRAM, "tool.bin"),
        (LINUX_PROGRAM, "no-extension"),
        (b"<html><body>saved page</body></html>", "page.txt"),
        (b"#!/bin/sh\necho hello\n", "hello.sh"),
        (b"MZ is where the story starts.", "story.txt"),
        (b"%PDF-1.7\n", "invoice.pdf"),
    ],
)
def test_bytes_matching_their_name_are_no_mismatch(head, name):
    assert not _scan.builtin_check(head, name).infected


# -- the clamd client ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("unix:/run/clamav/clamd.ctl", _clamd.ClamdAddress("unix", path="/run/clamav/clamd.ctl")),
        ("tcp:scanner.internal:3310", _clamd.ClamdAddress("tcp", host="scanner.internal", port=3310)),
        ("tcp:[::1]:3310", _clamd.ClamdAddress("tcp", host="::1", port=3310)),
    ],
)
def test_clamd_addresses_are_a_unix_socket_or_tcp(value, expected):
    assert _clamd.parse_address(value) == expected
    assert str(expected).startswith(value.split(":")[0])


@pytest.mark.parametrize("value", ["clamd.sock", "unix:", "tcp:scanner", "tcp:scanner:99999", "http://x:1"])
def test_anything_else_is_no_clamd_address(value):
    with pytest.raises(ValueError):
        _clamd.parse_address(value)


async def test_clamd_says_ok_for_clean_bytes_sent_in_framed_chunks(any_clamd):
    daemon = any_clamd
    content = os.urandom(700_000)

    verdict = await _clamd.instream(_clamd.parse_address(daemon.address), chunks_of(content))

    assert verdict == _clamd.ClamdVerdict(infected=False, signature=None)
    [stream] = daemon.streams
    assert bytes(stream.data) == content
    assert max(stream.chunks) <= _clamd.CHUNK_BYTES
    assert daemon.errors == []


async def test_clamd_reports_the_eicar_test_file_by_its_signature(any_clamd):
    daemon = any_clamd

    verdict = await _clamd.instream(_clamd.parse_address(daemon.address), chunks_of(EICAR))

    assert verdict == _clamd.ClamdVerdict(infected=True, signature=SIGNATURE)


async def test_clamd_answers_ping(unix_clamd):
    assert await _clamd.ping(_clamd.parse_address(unix_clamd.address))


async def test_a_stream_past_clamds_limit_is_refused(tcp_clamd):
    tcp_clamd.max_stream = 300_000

    with pytest.raises(_clamd.ClamdRefused, match="size limit"):
        await _clamd.instream(_clamd.parse_address(tcp_clamd.address), chunks_of(os.urandom(2_000_000)))


async def test_a_clamd_that_does_not_answer_times_out():
    daemon = await FakeClamd(stall=True).start_tcp()
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(_clamd.ClamdUnavailable, match="did not answer"):
            await _clamd.instream(_clamd.parse_address(daemon.address), chunks_of(b"data"), within=0.5)
        assert loop.time() - started < 3
    finally:
        await daemon.close()


async def test_a_clamd_that_is_not_there_is_unavailable(tmp_path):
    with pytest.raises(_clamd.ClamdUnavailable, match="not reachable"):
        await _clamd.instream(_clamd.ClamdAddress("unix", path=str(tmp_path / "absent.sock")), chunks_of(b"data"))


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        (b"stream: OK\x00", _clamd.ClamdVerdict(False, None)),
        (b"stream: Win.Trojan.Agent-123 FOUND\x00", _clamd.ClamdVerdict(True, "Win.Trojan.Agent-123")),
    ],
)
def test_clamd_replies_are_read_as_verdicts(reply, verdict):
    assert _clamd.parse_reply(reply) == verdict


@pytest.mark.parametrize("reply", [b"stream: Can't allocate memory ERROR\x00", b"UNKNOWN COMMAND\x00", b""])
def test_clamd_errors_and_unknown_replies_are_refusals(reply):
    with pytest.raises(_clamd.ClamdRefused):
        _clamd.parse_reply(reply)


# -- the scan, with and without clamd ----------------------------------------------------


async def test_without_clamd_the_scan_runs_the_builtin_check():
    verdict = await _scan.scan(opener(EICAR), file_name="eicar.com.txt", clamd=None)

    assert (verdict.infected, verdict.signature, verdict.scanner) == (True, EICAR_SIGNATURE, "builtin")


async def test_with_clamd_the_scan_streams_the_whole_file_to_it(unix_clamd):
    content = os.urandom(1_000_000) + EICAR  # past the built-in check's reach

    verdict = await _scan.scan(opener(content), file_name="archive.bin", clamd=unix_clamd.address)

    assert (verdict.infected, verdict.signature, verdict.scanner) == (True, SIGNATURE, "clamd")
    assert bytes(unix_clamd.streams[0].data) == content


async def test_with_clamd_a_clean_file_is_clean(tcp_clamd):
    verdict = await _scan.scan(opener(b"%PDF-1.7\n" + bytes(5000)), file_name="report.pdf", clamd=tcp_clamd.address)

    assert (verdict.infected, verdict.scanner) == (False, "clamd")


async def test_with_clamd_a_disguised_program_is_still_a_type_mismatch(tcp_clamd):
    verdict = await _scan.scan(opener(WINDOWS_PROGRAM), file_name="invoice.pdf", clamd=tcp_clamd.address)

    assert (verdict.infected, verdict.signature) == (True, TYPE_MISMATCH_SIGNATURE)
