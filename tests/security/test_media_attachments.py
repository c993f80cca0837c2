"""A file sent into a conversation is read by the people who may read that message, and
by no one else: not a stranger, not someone removed from the conversation, not by its
id nor by a guess at where its bytes are kept. Through the API, and through SQL as
rapport_app."""

from __future__ import annotations

import hashlib
from uuid import UUID

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.media.upload_support import MEDIA, png_bytes, upload
from tests.messaging.support import make_conversation, send
from tests.security.messaging_sql import DENIED, attempt
from tests.support import Persona

pytestmark = pytest.mark.module_database

MISSING = "019e8b67-6d5f-7ae8-a839-8f9f4ba71ab7"


async def sent_photo(
    client, app_engine: AsyncEngine, jobs_done, alice: Persona, *members: Persona
) -> tuple[UUID, str, bytes]:
    """Alice's photo, scanned (others may download it), sent to a group of hers."""
    data = png_bytes(32, 32)
    response = await upload(client, alice, data, name="photo.png", content_type="image/png")
    assert response.status_code == 201, response.text
    file_id = response.json()["id"]
    await jobs_done()
    room = await make_conversation(app_engine, alice, *members)
    await send(client, alice, room, "a photo", attachments=[file_id])
    return room, file_id, data


async def answers(client, persona: Persona, file_id: str) -> list[tuple[int, str]]:
    """What each read route answers: status and problem type (or the bytes' hash)."""
    found = []
    for path in ("", "/content", "/thumbnails/small"):
        response = await client.get(f"{MEDIA}/{file_id}{path}", headers=persona.headers)
        body = (
            response.json().get("type", "")
            if response.status_code >= 400
            else hashlib.sha256(response.content).hexdigest()
        )
        found.append((response.status_code, body))
    return found


async def test_a_stranger_gets_what_a_missing_file_gets(client, app_engine, alice, bob, mallory, jobs_done):
    _, file_id, data = await sent_photo(client, app_engine, jobs_done, alice, bob)
    assert (await client.get(f"{MEDIA}/{file_id}/content", headers=bob.headers)).content == data

    assert await answers(client, mallory, file_id) == await answers(client, mallory, MISSING)
    assert all(status == 404 for status, _ in await answers(client, mallory, file_id))


async def test_a_removed_participant_no_longer_reads_the_conversations_files(
    client, app_engine, alice, bob, carol, jobs_done
):
    room, file_id, data = await sent_photo(client, app_engine, jobs_done, alice, bob, carol)
    assert (await client.get(f"{MEDIA}/{file_id}/content", headers=bob.headers)).content == data

    removed = await client.delete(f"/v1/conversations/{room}/participants/{bob.user_id}", headers=alice.headers)
    assert removed.status_code == 204, removed.text

    assert await answers(client, bob, file_id) == await answers(client, bob, MISSING)
    # Carol, still there, reads it as before.
    assert (await client.get(f"{MEDIA}/{file_id}/content", headers=carol.headers)).content == data


async def test_a_file_is_not_reached_by_its_hash_or_its_storage_key(client, app_engine, alice, bob, mallory, jobs_done):
    _, _, data = await sent_photo(client, app_engine, jobs_done, alice, bob)
    digest = hashlib.sha256(data).hexdigest()
    for path in (
        f"{MEDIA}/{digest}",
        f"{MEDIA}/{digest}/content",
        f"/media/blobs/{digest[:2]}/{digest[2:4]}/{digest}",
        f"/blobs/{digest[:2]}/{digest[2:4]}/{digest}",
    ):
        response = await client.get(path, headers=mallory.headers)
        assert response.status_code in (404, 422), (path, response.status_code)
        assert response.content != data


async def test_through_sql_only_participants_see_a_message_s_files(
    app_engine, client, alice, bob, carol, mallory, jobs_done
):
    room, file_id, _ = await sent_photo(client, app_engine, jobs_done, alice, bob, carol)
    removed = await client.delete(f"/v1/conversations/{room}/participants/{carol.user_id}", headers=alice.headers)
    assert removed.status_code == 204

    rows = "SELECT count(*) FROM media.attachments WHERE file_id = :f"
    files = "SELECT count(*) FROM media.files WHERE id = :f"
    assert await attempt(app_engine, bob, rows, f=UUID(file_id)) == 1
    assert await attempt(app_engine, bob, files, f=UUID(file_id)) == 1
    assert await attempt(app_engine, mallory, rows, f=UUID(file_id)) == 0
    # Carol keeps the history she was there for (messages_read), the message's mention of
    # the file included, but not the file itself.
    for outsider in (mallory, carol):
        assert await attempt(app_engine, outsider, files, f=UUID(file_id)) == 0
        assert (
            await attempt(
                app_engine, outsider, "SELECT count(*) FROM media.thumbnails WHERE file_id = :f", f=UUID(file_id)
            )
            == 0
        )
    assert await attempt(app_engine, None, rows, f=UUID(file_id)) == 0
    # Only the send writes attachments: no one links a file to a message by hand.
    forged = (
        "INSERT INTO media.attachments (message_id, message_created_at, conversation_id, seq, file_id)"
        " VALUES (:f, now(), :c, 99, :f)"
    )
    for who in (mallory, alice):
        assert await attempt(app_engine, who, forged, f=UUID(file_id), c=room) == DENIED
