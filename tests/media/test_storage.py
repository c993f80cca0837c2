"""The storage backends: the same cases against the local folder and against S3 (moto's
server mode, checking signatures), then what only one of them has: the rename of the local
one, the signatures and refusals of the S3 one."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from rapport.config import Settings
from rapport.media._storage import (
    CHUNK_BYTES,
    BlobMissing,
    InvalidRange,
    S3Storage,
    Storage,
    StorageRefused,
    StorageUnavailable,
    _local,
    _sigv4,
    blob_key,
    media_root,
    staging_dir,
    storage_from_settings,
)
from tests.media.s3_server import S3Server, s3_server_fixture  # noqa: F401 (`s3_server`)
from tests.support import free_port, make_settings

DATA = bytes(range(256)) * 40 + b"the end"  # 10,247 bytes, every offset distinguishable


@dataclass(frozen=True)
class Staged:
    path: Path
    sha256_hex: str
    size: int

    @property
    def key(self) -> str:
        return blob_key(bytes.fromhex(self.sha256_hex))


def stage(settings: Settings, data: bytes) -> Staged:
    path = staging_dir(settings) / str(uuid.uuid4())
    path.write_bytes(data)
    return Staged(path, hashlib.sha256(data).hexdigest(), len(data))


async def put(storage: Storage, staged: Staged, content_type: str = "application/octet-stream") -> str:
    await storage.put(
        staged.key, staged.path, sha256_hex=staged.sha256_hex, size=staged.size, content_type=content_type
    )
    return staged.key


async def read(storage: Storage, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in storage.open(key, start, end)])


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    overrides: dict[str, Any] = {"data_dir": tmp_path / "data", "media_dir": None}
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        server.empty()
        overrides |= server.settings_overrides()
    return make_settings(**overrides)


@pytest.fixture
async def storage(settings: Settings) -> AsyncIterator[Storage]:
    backend = storage_from_settings(settings)
    yield backend
    await backend.close()


# -- the same cases, both backends ------------------------------------------------------------


async def test_a_stored_file_reads_back_whole(settings: Settings, storage: Storage) -> None:
    staged = stage(settings, DATA)

    key = await put(storage, staged)

    assert await read(storage, key) == DATA


async def test_put_takes_the_staged_file(settings: Settings, storage: Storage) -> None:
    staged = stage(settings, DATA)

    await put(storage, staged)

    assert not staged.path.exists()


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (1000, None, DATA[1000:]),  # from an offset to the end (a video seek)
        (256, 511, DATA[256:512]),  # start to end, both inclusive
        (len(DATA) - 1, len(DATA) - 1, DATA[-1:]),  # the last byte alone
        (0, 0, DATA[:1]),  # the first byte alone
        (10_000, 10**9, DATA[10_000:]),  # an end past the blob's stops at its end
    ],
    ids=["start-only", "start-end", "last-byte", "first-byte", "end-past-the-end"],
)
async def test_a_range_reads_those_bytes(
    settings: Settings, storage: Storage, start: int, end: int | None, expected: bytes
) -> None:
    key = await put(storage, stage(settings, DATA))

    assert await read(storage, key, start, end) == expected


async def test_a_range_starting_past_the_end_is_refused(settings: Settings, storage: Storage) -> None:
    key = await put(storage, stage(settings, DATA))

    with pytest.raises(InvalidRange):
        await read(storage, key, len(DATA), None)


async def test_a_range_ending_before_it_starts_is_refused(settings: Settings, storage: Storage) -> None:
    key = await put(storage, stage(settings, DATA))

    with pytest.raises(InvalidRange):
        await read(storage, key, 10, 9)


async def test_an_empty_file_reads_back_empty(settings: Settings, storage: Storage) -> None:
    key = await put(storage, stage(settings, b""))

    assert await read(storage, key) == b""


async def test_exists_until_deleted(settings: Settings, storage: Storage) -> None:
    staged = stage(settings, DATA)
    assert not await storage.exists(staged.key)

    key = await put(storage, staged)
    assert await storage.exists(key)

    await storage.delete(key)
    assert not await storage.exists(key)


async def test_deleting_what_is_not_there_is_no_error(settings: Settings, storage: Storage) -> None:
    await storage.delete(blob_key(hashlib.sha256(b"never stored").digest()))


async def test_reading_a_missing_blob_raises_blob_missing(settings: Settings, storage: Storage) -> None:
    with pytest.raises(BlobMissing):
        await read(storage, blob_key(hashlib.sha256(b"never stored").digest()))


async def test_storing_the_same_bytes_twice_keeps_one_blob(settings: Settings, storage: Storage) -> None:
    first, second = stage(settings, DATA), stage(settings, DATA)

    await put(storage, first)
    await put(storage, second)

    assert not second.path.exists()
    assert await read(storage, first.key) == DATA
    await storage.delete(first.key)
    assert not await storage.exists(second.key)


async def test_a_size_that_is_not_the_files_is_refused_and_the_file_kept(settings: Settings, storage: Storage) -> None:
    staged = stage(settings, DATA)

    with pytest.raises(ValueError, match="bytes"):
        await storage.put(staged.key, staged.path, sha256_hex=staged.sha256_hex, size=staged.size + 1, content_type="")

    assert staged.path.exists()
    assert not await storage.exists(staged.key)


@pytest.mark.parametrize("key", ["../../etc/passwd", "/etc/passwd", "ab/cd/not-a-hash", "AB/CD/" + "A" * 64])
async def test_only_blob_keys_are_accepted(settings: Settings, storage: Storage, key: str) -> None:
    with pytest.raises(ValueError, match="not a blob key"):
        await storage.exists(key)
    with pytest.raises(ValueError, match="not a blob key"):
        await read(storage, key)


async def test_keys_are_laid_out_by_the_hash(
    settings: Settings, storage: Storage, request: pytest.FixtureRequest
) -> None:
    staged = stage(settings, DATA)
    digest = staged.sha256_hex

    key = await put(storage, staged)

    assert key == f"{digest[:2]}/{digest[2:4]}/{digest}"
    if storage.provider == "local":
        assert (media_root(settings) / "blobs" / digest[:2] / digest[2:4] / digest).read_bytes() == DATA
    else:
        # Seen by another S3 client (boto3): the object is where the key says, with those bytes.
        s3_server: S3Server = request.getfixturevalue("s3_server")
        assert key in s3_server.list_keys()
        stored = s3_server.client().get_object(Bucket=s3_server.bucket, Key=key)
        assert stored["Body"].read() == DATA


async def test_twenty_megabytes_go_through_in_bounded_chunks(settings: Settings, storage: Storage) -> None:
    """Neither storing nor reading holds the file whole: Python's allocations stay a small
    fraction of it, and every chunk read is at most CHUNK_BYTES."""
    size = 20 * 1024 * 1024
    path = staging_dir(settings) / "large"
    expected = hashlib.sha256()
    with path.open("wb") as out:  # written a MiB at a time: the test holds it whole neither
        for _ in range(size // (1024 * 1024)):
            piece = os.urandom(1024 * 1024)
            expected.update(piece)
            out.write(piece)
    staged = Staged(path, expected.hexdigest(), size)

    tracemalloc.start()
    try:
        await put(storage, staged)
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        received, chunk_sizes = hashlib.sha256(), []
        async for chunk in storage.open(staged.key):
            received.update(chunk)
            chunk_sizes.append(len(chunk))
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert received.hexdigest() == staged.sha256_hex
    assert sum(chunk_sizes) == size
    assert max(chunk_sizes) <= CHUNK_BYTES
    assert put_peak < size // 8, f"storing took {put_peak} bytes of memory"
    assert read_peak < size // 8, f"reading took {read_peak} bytes of memory"


# -- settings ---------------------------------------------------------------------------------


def test_media_live_in_the_data_folder_unless_told(tmp_path: Path) -> None:
    default = make_settings(data_dir=tmp_path / "data", media_dir=None)
    chosen = make_settings(data_dir=tmp_path / "data", media_dir=tmp_path / "elsewhere")

    assert staging_dir(default) == tmp_path / "data" / "media" / "staging"
    assert staging_dir(default).is_dir()
    assert staging_dir(chosen) == tmp_path / "elsewhere" / "staging"


def test_s3_without_its_settings_is_refused_at_start() -> None:
    with pytest.raises(ValidationError) as refused:
        make_settings(environment="production", media_storage="s3", s3_endpoint="https://s3.example.test")

    message = str(refused.value)
    for name in ("RAPPORT_S3_BUCKET", "RAPPORT_S3_ACCESS_KEY_ID", "RAPPORT_S3_SECRET_ACCESS_KEY"):
        assert name in message
    assert "RAPPORT_S3_ENDPOINT" not in message


def test_the_backend_follows_the_setting(tmp_path: Path, s3_server: S3Server) -> None:
    assert storage_from_settings(make_settings(data_dir=tmp_path, media_dir=None)).provider == "local"
    assert storage_from_settings(make_settings(**s3_server.settings_overrides())).provider == "s3"


# -- the local folder -------------------------------------------------------------------------


@pytest.fixture
def local_settings(tmp_path: Path) -> Settings:
    return make_settings(data_dir=tmp_path / "data", media_dir=None)


async def test_local_put_renames_the_staged_file(local_settings: Settings) -> None:
    storage = storage_from_settings(local_settings)
    staged = stage(local_settings, DATA)
    inode = staged.path.stat().st_ino

    key = await put(storage, staged)

    stored = media_root(local_settings) / "blobs" / key
    assert stored.stat().st_ino == inode  # the same file, moved: no copy was made


async def test_local_put_copies_across_filesystems(local_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = storage_from_settings(local_settings)
    staged = stage(local_settings, DATA)
    rename = os.replace

    def across_devices(source: str | Path, target: str | Path) -> None:
        # The staged file cannot be renamed into place, as from another filesystem.
        if Path(source) == staged.path:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        rename(source, target)

    monkeypatch.setattr(_local.os, "replace", across_devices)

    key = await put(storage, staged)

    folder = media_root(local_settings) / "blobs" / Path(key).parent
    assert (folder / Path(key).name).read_bytes() == DATA
    assert not staged.path.exists()
    assert [entry.name for entry in folder.iterdir()] == [Path(key).name]  # no temporary left


# -- S3 -----------------------------------------------------------------------------------------


def s3_storage(server: S3Server, **changes: str) -> S3Storage:
    values = {
        "endpoint": server.endpoint,
        "bucket": server.bucket,
        "region": server.region,
        "access_key_id": server.access_key_id,
        "secret_access_key": server.secret_access_key,
    }
    values.update(changes)
    return S3Storage(**values)


@pytest.fixture
def s3_settings(tmp_path: Path, s3_server: S3Server) -> Settings:
    s3_server.empty()
    return make_settings(data_dir=tmp_path / "data", **s3_server.settings_overrides())


async def test_a_wrong_secret_is_refused_by_the_server(s3_settings: Settings, s3_server: S3Server) -> None:
    good = storage_from_settings(s3_settings)
    key = await put(good, stage(s3_settings, DATA))
    wrong = s3_storage(s3_server, secret_access_key="not-the-secret")
    try:
        with pytest.raises(StorageRefused) as refused:
            await read(wrong, key)
    finally:
        await wrong.close()
        await good.close()

    assert refused.value.server_status == 403
    assert refused.value.code == "SignatureDoesNotMatch"
    assert "RAPPORT_S3_SECRET_ACCESS_KEY" in str(refused.value)
    assert refused.value.status == 503  # a client is told storage is unavailable, no more
    assert s3_server.secret_access_key not in str(refused.value)


async def test_an_unknown_access_key_is_refused_and_the_file_kept(s3_settings: Settings, s3_server: S3Server) -> None:
    storage = s3_storage(s3_server, access_key_id="AKIAUNKNOWNUNKNOWN00")
    staged = stage(s3_settings, DATA)
    try:
        with pytest.raises(StorageRefused) as refused:
            await put(storage, staged)
    finally:
        await storage.close()

    assert refused.value.code == "InvalidAccessKeyId"
    assert "RAPPORT_S3_ACCESS_KEY_ID" in str(refused.value)
    assert staged.path.exists()  # the caller still has it to retry or remove
    assert staged.key not in s3_server.list_keys()


async def test_a_refused_head_says_what_to_check(s3_server: S3Server) -> None:
    # HEAD answers carry no error document: the status has to be enough.
    storage = s3_storage(s3_server, secret_access_key="not-the-secret")
    try:
        with pytest.raises(StorageRefused) as refused:
            await storage.exists(blob_key(hashlib.sha256(DATA).digest()))
    finally:
        await storage.close()

    assert refused.value.server_status == 403
    assert "RAPPORT_S3_SECRET_ACCESS_KEY" in str(refused.value)


async def test_a_missing_bucket_is_named(s3_settings: Settings, s3_server: S3Server) -> None:
    storage = s3_storage(s3_server, bucket="no-such-bucket")
    try:
        with pytest.raises(StorageRefused) as refused:
            await put(storage, stage(s3_settings, DATA))
    finally:
        await storage.close()

    assert refused.value.code == "NoSuchBucket"
    assert "RAPPORT_S3_BUCKET" in str(refused.value)


async def test_a_server_that_does_not_answer_is_unavailable(s3_server: S3Server) -> None:
    storage = s3_storage(s3_server, endpoint=f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(StorageUnavailable, match="could not be reached"):
            await storage.exists(blob_key(hashlib.sha256(DATA).digest()))
    finally:
        await storage.close()


async def test_the_put_is_a_sized_stream_signed_with_the_files_hash(tmp_path: Path) -> None:
    """What goes on the wire, seen by a bare HTTP server: S3 takes no chunked bodies, so the
    length is given; the signed payload hash is the file's SHA-256, not UNSIGNED-PAYLOAD."""
    seen: dict[str, str] = {}
    body_sizes: list[int] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        seen["request"] = lines[0]
        for line in lines[1:]:
            name, _, value = line.partition(": ")
            seen[name.lower()] = value
        remaining = int(seen["content-length"])
        while remaining:
            piece = await reader.read(min(remaining, 65536))
            body_sizes.append(len(piece))
            remaining -= len(piece)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    storage = S3Storage(
        endpoint=f"http://127.0.0.1:{port}",
        bucket="bucket",
        region="eu-west-3",
        access_key_id="AKIDEXAMPLE",
        secret_access_key="secret",
    )
    data = os.urandom(3 * CHUNK_BYTES + 5)
    source = tmp_path / "staged"
    source.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    try:
        await put(storage, Staged(source, digest, len(data)), content_type="image/png")
    finally:
        await storage.close()
        server.close()
        await server.wait_closed()

    assert seen["request"] == f"PUT /bucket/{digest[:2]}/{digest[2:4]}/{digest} HTTP/1.1"
    assert seen["content-length"] == str(len(data))
    assert "transfer-encoding" not in seen
    assert seen["x-amz-content-sha256"] == digest
    assert seen["content-type"] == "image/png"
    assert seen["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-3/s3/aws4_request" in seen["authorization"]
    assert "x-amz-content-sha256" in seen["authorization"].split("SignedHeaders=")[1]
    assert sum(body_sizes) == len(data)


# -- the signer against AWS's published examples --------------------------------------------------

# The SigV4 test suite's key and time, and the S3 documentation's ("Signature Calculations
# for the Authorization Header", examples GET Object, PUT Object, GET Bucket Lifecycle, List Objects).
SUITE = _sigv4.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SUITE_TIME = "20150830T123600Z"
SUITE_HEADERS = {"Host": "example.amazonaws.com", "X-Amz-Date": SUITE_TIME}
S3_DOCS = _sigv4.Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
S3_DOCS_TIME = "20130524T000000Z"
S3_DOCS_HOST = "examplebucket.s3.amazonaws.com"


def suite_signature(method: str, path: str, query: list[tuple[str, str]] | None = None) -> _sigv4.Signed:
    return _sigv4.sign(
        method,
        path,
        query=query or [],
        headers=SUITE_HEADERS,
        payload_sha256=_sigv4.EMPTY_SHA256,
        credentials=SUITE,
        region="us-east-1",
        service="service",
        timestamp=SUITE_TIME,
    )


def test_signing_keys_match_the_documented_derivation() -> None:
    key = _sigv4.signing_key(SUITE.secret_access_key, "20150830", "us-east-1", "iam")

    assert key.hex() == "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"


def test_get_vanilla_matches_the_test_suite_step_by_step() -> None:
    signed = suite_signature("GET", "/")

    assert signed.canonical_request == (
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" + _sigv4.EMPTY_SHA256
    )
    assert signed.string_to_sign == (
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
        "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
    )
    assert signed.authorization == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )


@pytest.mark.parametrize(
    ("method", "path", "query", "signature"),
    [
        pytest.param(
            "GET",
            "/",
            [("Param2", "value2"), ("Param1", "value1")],
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            id="get-vanilla-query-order-key-case",
        ),
        pytest.param(
            "POST", "/", [], "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b", id="post-vanilla"
        ),
        pytest.param(
            "GET",
            _sigv4.canonical_path("/ሴ"),
            [],
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
            id="get-utf8",
        ),
    ],
)
def test_the_test_suites_cases(method: str, path: str, query: list[tuple[str, str]], signature: str) -> None:
    assert suite_signature(method, path, query).signature == signature


def test_s3s_get_object_example_with_a_range() -> None:
    signed = _sigv4.sign(
        "GET",
        _sigv4.canonical_path("test.txt"),
        headers={
            "host": S3_DOCS_HOST,
            "range": "bytes=0-9",
            "x-amz-content-sha256": _sigv4.EMPTY_SHA256,
            "x-amz-date": S3_DOCS_TIME,
        },
        payload_sha256=_sigv4.EMPTY_SHA256,
        credentials=S3_DOCS,
        region="us-east-1",
        service="s3",
        timestamp=S3_DOCS_TIME,
    )

    assert signed.string_to_sign.endswith("7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972")
    assert signed.signed_headers == "host;range;x-amz-content-sha256;x-amz-date"
    assert signed.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"


def test_s3s_put_object_example_with_a_key_to_encode() -> None:
    body_hash = hashlib.sha256(b"Welcome to Amazon S3.").hexdigest()
    path = _sigv4.canonical_path("test$file.text")

    signed = _sigv4.sign(
        "PUT",
        path,
        headers={
            "date": "Fri, 24 May 2013 00:00:00 GMT",
            "host": S3_DOCS_HOST,
            "x-amz-content-sha256": body_hash,
            "x-amz-date": S3_DOCS_TIME,
            "x-amz-storage-class": "REDUCED_REDUNDANCY",
        },
        payload_sha256=body_hash,
        credentials=S3_DOCS,
        region="us-east-1",
        service="s3",
        timestamp=S3_DOCS_TIME,
    )

    assert path == "/test%24file.text"
    assert body_hash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
    assert signed.signature == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"


@pytest.mark.parametrize(
    ("query", "signature"),
    [
        ([("lifecycle", "")], "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
        ([("prefix", "J"), ("max-keys", "2")], "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
    ],
    ids=["get-bucket-lifecycle", "list-objects"],
)
def test_s3s_bucket_examples_with_a_query(query: list[tuple[str, str]], signature: str) -> None:
    signed = _sigv4.sign(
        "GET",
        "/",
        query=query,
        headers={"host": S3_DOCS_HOST, "x-amz-content-sha256": _sigv4.EMPTY_SHA256, "x-amz-date": S3_DOCS_TIME},
        payload_sha256=_sigv4.EMPTY_SHA256,
        credentials=S3_DOCS,
        region="us-east-1",
        service="s3",
        timestamp=S3_DOCS_TIME,
    )

    assert signed.signature == signature
