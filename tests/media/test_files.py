"""A file's metadata, one's own files listed, a file deleted; who is served its bytes: the
owner at once, others once its scan passed, nobody while it is quarantined; others get the
public variant (an image without its location), the owner what they uploaded. A deleted
file stays readable where a live message carries it, and goes with the message."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import text

from rapport.kernel.db import system_transaction, user_transaction
from rapport.media import _collect
from rapport.media._storage import blob_key, staging_dir, storage_from_settings
from tests.media.upload_support import (
    MEDIA,
    attach,
    file_rows,
    png_bytes,
    processed,
    random_bytes,
    set_file,
    text_bytes,
    uploaded,
)
from tests.messaging.support import make_conversation, send
from tests.support import problem_type

pytestmark = pytest.mark.module_database


async def collect_now(runtime) -> None:
    storage = storage_from_settings(runtime.settings)
    try:
        await _collect.collect(runtime.system_engine, storage, grace=timedelta(0))
    finally:
        await storage.close()


@pytest.fixture
async def shared(client, app, app_engine, owner_engine, alice, bob):
    """A file of alice's attached to a message of hers in a conversation with bob, scanned."""
    data = random_bytes(20_000)
    created = await uploaded(client, alice, data, name="minutes.bin")
    conversation = await make_conversation(app_engine, alice, bob)
    message = await send(client, alice, conversation, "the minutes")
    await attach(owner_engine, message, created["id"])
    await processed(app)
    return created, data, message


# -- metadata ------------------------------------------------------------------------------


async def test_the_owner_sees_the_metadata_and_processing_of_a_file(client, app, alice):
    created = await uploaded(client, alice, png_bytes(120, 80), name="cat.png")
    await processed(app)

    response = await client.get(f"{MEDIA}/{created['id']}", headers=alice.headers)

    file = response.json()
    assert response.status_code == 200
    assert file["id"] == created["id"] and file["file_name"] == "cat.png"
    assert file["kind"] == "image" and file["size_bytes"] == created["size_bytes"]
    assert file["size_text"].endswith(("B", "KB"))
    assert file["scan_status"] == "clean" and file["status"] == "ready"
    assert {step["step"] for step in file["processing"]} == {"scan", "metadata", "thumbnails"}
    assert isinstance(file["metadata"], dict)
    assert file["urls"]["content"] == f"{MEDIA}/{created['id']}/content"


async def test_an_unknown_or_malformed_id_is_a_problem(client, alice):
    unknown = await client.get(f"{MEDIA}/01930000-0000-7000-8000-000000000000", headers=alice.headers)
    malformed = await client.get(f"{MEDIA}/not-an-id", headers=alice.headers)
    malformed_content = await client.get(f"{MEDIA}/not-an-id/content", headers=alice.headers)

    assert unknown.status_code == 404 and problem_type(unknown) == "file-not-found"
    assert malformed.status_code == 422 and problem_type(malformed) == "validation-error"
    assert malformed_content.status_code == 422
    assert malformed.headers["content-type"] == "application/problem+json"


async def test_the_list_holds_ones_own_live_files_newest_first_by_pages(client, app, alice, bob):
    mine = [await uploaded(client, alice, random_bytes(100 + n)) for n in range(3)]
    image = await uploaded(client, alice, png_bytes(), name="a.png")
    gone = await uploaded(client, alice, random_bytes(50))
    await uploaded(client, bob, random_bytes(60))
    await client.delete(f"{MEDIA}/{gone['id']}", headers=alice.headers)
    await processed(app)

    first = await client.get(MEDIA, headers=alice.headers, params={"limit": 2})
    second = await client.get(MEDIA, headers=alice.headers, params={"limit": 2, "cursor": first.json()["next"]})
    images = await client.get(MEDIA, headers=alice.headers, params={"kind": "image"})

    listed = [item["id"] for item in first.json()["items"] + second.json()["items"]]
    assert listed == [image["id"], *(file["id"] for file in reversed(mine))]
    assert second.json()["next"] is None
    assert [item["id"] for item in images.json()["items"]] == [image["id"]]


async def test_a_bad_filter_or_cursor_is_a_problem(client, alice):
    kind = await client.get(MEDIA, headers=alice.headers, params={"kind": "spreadsheet"})
    cursor = await client.get(MEDIA, headers=alice.headers, params={"cursor": "!!"})

    assert kind.status_code == 422
    assert cursor.status_code == 400 and problem_type(cursor) == "invalid-cursor"


# -- deleting --------------------------------------------------------------------------------


async def test_a_deleted_file_is_gone_for_its_owner(client, app, runtime, alice):
    data = random_bytes(1000)
    created = await uploaded(client, alice, data)
    await processed(app)  # a file being processed is skipped by the collector, left for its next round

    deleted = await client.delete(f"{MEDIA}/{created['id']}", headers=alice.headers)
    again = await client.delete(f"{MEDIA}/{created['id']}", headers=alice.headers)
    metadata = await client.get(f"{MEDIA}/{created['id']}", headers=alice.headers)
    content = await client.get(f"{MEDIA}/{created['id']}/content", headers=alice.headers)
    await processed(app)

    assert deleted.status_code == 204
    assert again.status_code == 404 and problem_type(again) == "file-not-found"
    assert metadata.status_code == 404 and content.status_code == 404
    # Carried by no message: the collector the deletion queued removed its row.
    assert await file_rows(runtime, data) == []


async def test_a_deleted_file_stays_readable_where_a_live_message_carries_it(client, app, runtime, shared, alice, bob):
    created, data, message = shared

    await client.delete(f"{MEDIA}/{created['id']}", headers=alice.headers)
    await processed(app)
    await collect_now(runtime)

    for persona in (alice, bob):
        content = await client.get(created["urls"]["content"], headers=persona.headers)
        assert content.status_code == 200 and content.content == data
    listed = await client.get(MEDIA, headers=alice.headers)
    assert created["id"] not in [item["id"] for item in listed.json()["items"]]

    retracted = await client.delete(
        f"/v1/conversations/{message['conversation_id']}/messages/{message['id']}", headers=alice.headers
    )
    assert retracted.status_code == 204
    for persona in (alice, bob):
        gone = await client.get(created["urls"]["content"], headers=persona.headers)
        assert gone.status_code == 404
    await collect_now(runtime)
    assert [str(row.id) for row in await file_rows(runtime, data)] == []


# -- who is served the bytes ----------------------------------------------------------------


async def test_others_wait_for_the_scan_the_owner_does_not(client, runtime, shared, alice, bob):
    created, data, _ = shared
    await set_file(runtime, created["id"], scan_status="pending", status="processing")

    owner = await client.get(created["urls"]["content"], headers=alice.headers)
    other = await client.get(created["urls"]["content"], headers=bob.headers)
    metadata = await client.get(f"{MEDIA}/{created['id']}", headers=bob.headers)

    assert owner.status_code == 200 and owner.content == data
    assert other.status_code == 409 and problem_type(other) == "file-not-ready"
    assert int(other.headers["retry-after"]) > 0
    assert metadata.status_code == 200 and metadata.json()["scan_status"] == "pending"


async def test_a_quarantined_file_is_served_to_no_one(client, runtime, shared, alice, bob):
    created, _, _ = shared
    await set_file(runtime, created["id"], scan_status="infected", status="quarantined")

    for persona in (alice, bob):
        response = await client.get(created["urls"]["content"], headers=persona.headers)
        assert response.status_code == 403
        assert problem_type(response) == "file-quarantined"


async def test_others_get_the_public_variant_the_owner_the_original(client, runtime, shared, alice, bob):
    created, data, _ = shared
    variant = random_bytes(7000)
    digest = hashlib.sha256(variant).digest()
    staged = staging_dir(runtime.settings) / "variant.part"
    staged.write_bytes(variant)
    storage = storage_from_settings(runtime.settings)
    try:
        await storage.put(blob_key(digest), staged, sha256_hex=digest.hex(), size=len(variant), content_type="x/y")
    finally:
        await storage.close()
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text(
                "INSERT INTO media.blobs (sha256, size_bytes, content_type, storage_provider, storage_key)"
                " VALUES (:h, :n, 'application/octet-stream', 'local', :k)"
            ),
            {"h": digest, "n": len(variant), "k": blob_key(digest)},
        )
    await set_file(runtime, created["id"], public_sha256=digest)

    owner = await client.get(created["urls"]["content"], headers=alice.headers)
    other = await client.get(created["urls"]["content"], headers=bob.headers)
    others_view = await client.get(f"{MEDIA}/{created['id']}", headers=bob.headers)

    assert owner.content == data and owner.headers["etag"] == f'"{created["sha256"]}"'
    assert other.content == variant and other.headers["etag"] == f'"{digest.hex()}"'
    assert others_view.json()["sha256"] == digest.hex()
    assert others_view.json()["metadata"] is None and others_view.json()["processing"] is None


async def test_a_text_file_attached_is_read_by_the_conversation(client, app, app_engine, owner_engine, alice, bob):
    created = await uploaded(client, alice, text_bytes(), name="agenda.txt")
    conversation = await make_conversation(app_engine, alice, bob)
    message = await send(client, alice, conversation, "agenda")
    await attach(owner_engine, message, created["id"])
    await processed(app)

    response = await client.get(created["urls"]["content"], headers=bob.headers)

    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment;")


async def test_the_storage_summary_counts_ones_own_live_files_by_kind(client, app, app_engine, alice, bob):
    await uploaded(client, alice, random_bytes(1536), name="a.bin")
    await uploaded(client, alice, random_bytes(2048), name="b.bin")
    await uploaded(client, alice, png_bytes(), name="c.png")
    gone = await uploaded(client, alice, random_bytes(4096), name="d.bin")
    await uploaded(client, bob, random_bytes(9999), name="e.bin")
    await client.delete(f"{MEDIA}/{gone['id']}", headers=alice.headers)
    await processed(app)

    async with user_transaction(app_engine, alice.user_id) as db:
        rows = (
            await db.execute(text("SELECT kind, file_count, total_bytes, total_size FROM media.storage_summary"))
        ).all()

    by_kind = {row.kind: row for row in rows}
    assert set(by_kind) == {"other", "image"}
    assert (by_kind["other"].file_count, by_kind["other"].total_bytes) == (2, 3584)
    assert by_kind["other"].total_size == "3.5 KB"


@pytest.mark.parametrize(
    ("size", "text_size"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1 KB"), (1536, "1.5 KB"), (1572864, "1.5 MB"), (3 * 1024**3, "3 GB")],
)
async def test_file_sizes_read_as_people_read_them(app_engine, size, text_size):
    async with app_engine.connect() as db:
        shown = (await db.execute(text("SELECT media.format_file_size(:n)"), {"n": size})).scalar_one()

    assert shown == text_size
