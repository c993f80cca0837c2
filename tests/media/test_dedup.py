"""Bytes stored once by their SHA-256: two uploads of the same bytes (by two people, or by
one twice) are two files over one blob; deleting one file keeps the bytes for the other;
once no file names them the collector removes the blob's row and its stored bytes, but
never a blob an upload claimed within the hour (it may be storing those bytes now)."""

from __future__ import annotations

import os
import time

import pytest
from sqlalchemy import text

from rapport.kernel.db import user_transaction
from rapport.kernel.ids import uuid7
from rapport.media import _collect
from rapport.media._storage import blob_key, staging_dir, storage_from_settings
from tests.media.upload_support import (
    blob_count,
    collect_now,
    file_rows,
    processed,
    random_bytes,
    sha256,
    stored_path,
    uploaded,
)

pytestmark = pytest.mark.module_database


async def test_two_people_uploading_the_same_bytes_share_one_blob(client, app, runtime, module_settings, alice, bob):
    data = random_bytes(300_000)

    alices = await uploaded(client, alice, data, name="mine.bin")
    bobs = await uploaded(client, bob, data, name="also-mine.bin")

    assert alices["id"] != bobs["id"]
    assert alices["sha256"] == bobs["sha256"] == sha256(data).hex()
    assert await blob_count(runtime, data) == 1
    assert {str(row.owner_id) for row in await file_rows(runtime, data)} == {alice.user_id, bob.user_id}
    assert stored_path(module_settings, data).read_bytes() == data
    for persona, created in ((alice, alices), (bob, bobs)):
        content = await client.get(created["urls"]["content"], headers=persona.headers)
        assert content.content == data
    await processed(app)


async def test_one_person_uploading_twice_gets_two_files_over_one_blob(client, app, runtime, alice):
    data = random_bytes(5000)

    first = await uploaded(client, alice, data, name="a.bin")
    second = await uploaded(client, alice, data, name="b.bin")

    assert first["id"] != second["id"]
    assert await blob_count(runtime, data) == 1
    assert len(await file_rows(runtime, data)) == 2
    await processed(app)


async def test_deleting_one_file_keeps_the_bytes_for_the_other(client, app, runtime, module_settings, alice, bob):
    data = random_bytes(200_000)
    alices = await uploaded(client, alice, data)
    bobs = await uploaded(client, bob, data)

    deleted = await client.delete(f"/v1/media/{alices['id']}", headers=alice.headers)
    await processed(app)  # the collector the deletion queued
    await collect_now(runtime)

    assert deleted.status_code == 204
    assert [str(row.id) for row in await file_rows(runtime, data)] == [bobs["id"]]
    assert await blob_count(runtime, data) == 1
    assert stored_path(module_settings, data).exists()
    content = await client.get(bobs["urls"]["content"], headers=bob.headers)
    assert content.content == data


async def test_deleting_every_file_lets_the_collector_remove_the_blob_and_its_bytes(
    client, app, runtime, module_settings, alice, bob
):
    data = random_bytes(200_000)
    alices = await uploaded(client, alice, data)
    bobs = await uploaded(client, bob, data)
    await processed(app)

    for persona, created in ((alice, alices), (bob, bobs)):
        response = await client.delete(f"/v1/media/{created['id']}", headers=persona.headers)
        assert response.status_code == 204
    await processed(app)
    collected = await collect_now(runtime)

    assert await file_rows(runtime, data) == []
    assert await blob_count(runtime, data) == 0
    assert not stored_path(module_settings, data).exists()
    assert collected.blobs >= 1


async def test_the_collector_leaves_a_blob_an_upload_claimed_within_the_hour(client, runtime, module_settings, alice):
    """An upload claims its blob before storing the bytes; a failed upload leaves the
    claim and the bytes, which go once the claim is an hour old."""
    data = random_bytes(10_000)
    digest = sha256(data)
    async with user_transaction(runtime.engine, alice.user_id) as db:
        await db.execute(
            text("SELECT media.register_blob(:h, :n, 'application/octet-stream', 'local', :k)"),
            {"h": digest, "n": len(data), "k": blob_key(digest)},
        )
    staged = staging_dir(module_settings) / "claimed.part"
    staged.write_bytes(data)
    storage = storage_from_settings(runtime.settings)
    try:
        await storage.put(blob_key(digest), staged, sha256_hex=digest.hex(), size=len(data), content_type="x/y")
        await _collect.collect(runtime.system_engine, storage)
    finally:
        await storage.close()

    assert await blob_count(runtime, data) == 1
    assert stored_path(module_settings, data).exists()

    await collect_now(runtime)

    assert await blob_count(runtime, data) == 0
    assert not stored_path(module_settings, data).exists()


async def test_the_collector_removes_staged_files_a_crashed_upload_left_a_day_ago(runtime, module_settings):
    staging = staging_dir(module_settings)
    old, fresh = staging / f"{uuid7().hex}.part", staging / f"{uuid7().hex}.part"
    old.write_bytes(b"half an upload")
    fresh.write_bytes(b"an upload in flight")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    storage = storage_from_settings(runtime.settings)
    try:
        collected = await _collect.collect(runtime.system_engine, storage, staging=staging)
    finally:
        await storage.close()

    assert not old.exists()
    assert fresh.exists()
    assert collected.staged_files == 1
    fresh.unlink()
