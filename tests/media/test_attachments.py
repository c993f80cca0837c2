"""Files in messages: a message carries files its sender may read, lists them in its JSON
wherever messages appear, and lends them to the conversation's participants for as long
as the message stands."""

from __future__ import annotations

from typing import Any

import pytest

from tests.media.upload_support import MEDIA, png_bytes, random_bytes, text_bytes, upload
from tests.messaging.support import make_conversation, send
from tests.support import Persona

pytestmark = pytest.mark.module_database


async def uploaded(client, persona: Persona, data: bytes, name: str = "notes.txt", kind: str = "text/plain") -> str:
    response = await upload(client, persona, data, name=name, content_type=kind)
    assert response.status_code == 201, response.text
    file_id: str = response.json()["id"]
    return file_id


async def content_of(client, persona: Persona, file_id: str) -> tuple[int, bytes]:
    response = await client.get(f"{MEDIA}/{file_id}/content", headers=persona.headers)
    return response.status_code, response.content


def refused(response: Any, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith(slug), response.json()


async def test_a_message_carries_files_that_its_participants_read(client, app_engine, alice, bob, carol, jobs_done):
    data = text_bytes(3000)
    photo = png_bytes(40, 30)
    notes_id = await uploaded(client, alice, data)
    photo_id = await uploaded(client, alice, photo, name="photo.png", kind="image/png")
    await jobs_done()  # scanned: until then only the owner downloads
    room = await make_conversation(app_engine, alice, bob)

    sent = await send(client, alice, room, "", attachments=[photo_id, notes_id])

    assert [a["id"] for a in sent["attachments"]] == [photo_id, notes_id]
    first = sent["attachments"][0]
    assert (first["file_name"], first["content_type"], first["kind"]) == ("photo.png", "image/png", "image")
    assert sent["attachments"][1]["size_bytes"] == len(data)
    assert await content_of(client, bob, notes_id) == (200, data)
    assert (await client.get(f"{MEDIA}/{photo_id}", headers=bob.headers)).status_code == 200
    # Someone outside the conversation learns nothing of them.
    assert (await content_of(client, carol, notes_id))[0] == 404
    assert (await client.get(f"{MEDIA}/{photo_id}", headers=carol.headers)).status_code == 404

    history = (await client.get(f"/v1/conversations/{room}/messages", headers=bob.headers)).json()
    assert [a["id"] for a in history["items"][0]["attachments"]] == [photo_id, notes_id]
    listed = (await client.get("/v1/conversations", headers=bob.headers)).json()
    [item] = [c for c in listed["items"] if c["id"] == str(room)]
    assert [a["id"] for a in item["last_message"]["attachments"]] == [photo_id, notes_id]
    one = (await client.get(f"/v1/conversations/{room}/messages/{sent['id']}", headers=bob.headers)).json()
    assert len(one["attachments"]) == 2


async def test_a_message_without_files_lists_none(client, app_engine, alice, bob):
    room = await make_conversation(app_engine, alice, bob)
    assert (await send(client, alice, room, "plain"))["attachments"] == []


async def test_a_retry_with_the_same_client_id_answers_the_files_of_the_first_send(client, app_engine, alice, bob):
    file_id = await uploaded(client, alice, text_bytes(100))
    room = await make_conversation(app_engine, alice, bob)
    first = await send(client, alice, room, "see", attachments=[file_id], client_message_id="once")
    again = await send(client, alice, room, "see", attachments=[file_id], client_message_id="once")
    assert again["id"] == first["id"]
    assert [a["id"] for a in again["attachments"]] == [file_id]


async def test_files_the_sender_may_not_read_are_refused_like_files_that_do_not_exist(
    client, app_engine, alice, bob, carol
):
    carols = await uploaded(client, carol, text_bytes(100))
    room = await make_conversation(app_engine, alice, bob)
    path = f"/v1/conversations/{room}/messages"

    for attachments in ([carols], ["019e8b67-6d5f-7ae8-a839-8f9f4ba71ab7"]):
        response = await client.post(path, json={"content": "x", "attachments": attachments}, headers=alice.headers)
        refused(response, 422, "attachment-not-found")
    # Nothing was sent, and Carol's file stays hers alone.
    assert (await client.get(path, headers=bob.headers)).json()["items"] == []
    assert (await content_of(client, bob, carols))[0] == 404


@pytest.mark.parametrize(
    ("attachments", "why"),
    [
        (["not-an-id"], "uuid"),
        (["019e8b67-6d5f-7ae8-a839-8f9f4ba71ab7"] * 2, "once"),
        ([f"019e8b67-6d5f-7ae8-a839-8f9f4ba71a{n:02x}" for n in range(11)], "10"),
    ],
)
async def test_malformed_duplicated_or_too_many_files_are_refused(client, app_engine, alice, bob, attachments, why):
    room = await make_conversation(app_engine, alice, bob)
    response = await client.post(
        f"/v1/conversations/{room}/messages", json={"content": "x", "attachments": attachments}, headers=alice.headers
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert why in response.text


async def test_a_text_message_needs_words_or_files(client, app_engine, alice, bob):
    room = await make_conversation(app_engine, alice, bob)
    response = await client.post(f"/v1/conversations/{room}/messages", json={"content": ""}, headers=alice.headers)
    assert response.status_code == 422


async def test_a_deleted_message_takes_its_files_away_from_the_conversation(client, app_engine, alice, bob, jobs_done):
    data = random_bytes(500)
    file_id = await uploaded(client, alice, data, name="data.bin", kind="application/octet-stream")
    await jobs_done()
    room = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, room, "here", attachments=[file_id])
    assert await content_of(client, bob, file_id) == (200, data)

    deleted = await client.delete(f"/v1/conversations/{room}/messages/{sent['id']}", headers=alice.headers)
    assert deleted.status_code == 204, deleted.text

    assert (await content_of(client, bob, file_id))[0] == 404
    history = (await client.get(f"/v1/conversations/{room}/messages", headers=bob.headers)).json()
    assert history["items"][0]["attachments"] == []
    # The owner keeps their file.
    assert await content_of(client, alice, file_id) == (200, data)


async def test_a_file_its_owner_deletes_stays_readable_where_it_was_sent(client, app_engine, alice, bob, jobs_done):
    data = text_bytes(800)
    file_id = await uploaded(client, alice, data)
    await jobs_done()
    room = await make_conversation(app_engine, alice, bob)
    await send(client, alice, room, "keep this", attachments=[file_id])

    assert (await client.delete(f"{MEDIA}/{file_id}", headers=alice.headers)).status_code == 204

    assert await content_of(client, bob, file_id) == (200, data)
    # It cannot be sent anew once deleted.
    response = await client.post(
        f"/v1/conversations/{room}/messages", json={"content": "again", "attachments": [file_id]}, headers=alice.headers
    )
    refused(response, 422, "attachment-not-found")


async def test_a_forwarded_message_takes_its_files_along(client, app_engine, alice, bob, carol, jobs_done):
    data = text_bytes(600)
    file_id = await uploaded(client, alice, data)
    await jobs_done()
    first = await make_conversation(app_engine, alice, bob)
    second = await make_conversation(app_engine, bob, carol)
    sent = await send(client, alice, first, "look", attachments=[file_id])
    assert (await content_of(client, carol, file_id))[0] == 404

    response = await client.post(
        f"/v1/conversations/{first}/messages/{sent['id']}/forward",
        json={"conversation_ids": [str(second)]},
        headers=bob.headers,
    )
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert [a["id"] for a in result["message"]["attachments"]] == [file_id]
    assert await content_of(client, carol, file_id) == (200, data)


async def test_a_quarantined_file_cannot_be_sent(client, app_engine, runtime, alice, bob):
    from tests.media.collections_support import quarantine

    file_id = await uploaded(client, alice, text_bytes(100))
    await quarantine(runtime, file_id)
    room = await make_conversation(app_engine, alice, bob)
    response = await client.post(
        f"/v1/conversations/{room}/messages", json={"content": "x", "attachments": [file_id]}, headers=alice.headers
    )
    refused(response, 422, "attachment-not-found")
