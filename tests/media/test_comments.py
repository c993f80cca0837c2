"""Comments on a file: GET/POST /v1/media/{id}/comments, PATCH/DELETE
/v1/media/comments/{comment_id}.

Alice owns the file. Bob has it shared with him for comment, carol to view only; mallory
is a stranger. Whoever reads the file reads its comments; the owner and comment shares
write them; authors edit and delete their own, and the owner deletes any on her file."""

from __future__ import annotations

import uuid

import pytest

from tests.media.collections_support import block, events_to, image, refused, share
from tests.media.upload_support import MEDIA, processed

pytestmark = pytest.mark.module_database


@pytest.fixture
async def photo(client, alice, bob, carol) -> dict:
    """Alice's image, shared with bob for comment and with carol to view."""
    file = await image(client, alice)
    await share(client, alice, f"{MEDIA}/{file['id']}", user_id=bob.user_id, permission="comment")
    await share(client, alice, f"{MEDIA}/{file['id']}", user_id=carol.user_id)
    return file


async def comment(client, persona, file_id: str, body: str = "Lovely", **extra) -> dict:
    response = await client.post(f"{MEDIA}/{file_id}/comments", headers=persona.headers, json={"body": body, **extra})
    assert response.status_code == 201, response.text
    made: dict = response.json()
    return made


async def bodies(client, persona, file_id: str) -> list[str]:
    response = await client.get(f"{MEDIA}/{file_id}/comments", headers=persona.headers)
    assert response.status_code == 200, response.text
    return [c["body"] for c in response.json()["items"]]


# Writing and reading


async def test_the_owner_and_a_comment_share_comment_and_every_reader_reads(client, photo, alice, bob, carol):
    mine = await comment(client, alice, photo["id"], "  My favourite  ")
    await comment(client, bob, photo["id"], "Mine too")

    assert (mine["author_id"], mine["body"], mine["file_id"], mine["edited_at"]) == (
        alice.user_id,
        "My favourite",
        photo["id"],
        None,
    )
    for reader in (alice, bob, carol):
        assert await bodies(client, reader, photo["id"]) == ["My favourite", "Mine too"]


async def test_a_share_to_view_does_not_comment(client, photo, carol):
    response = await client.post(f"{MEDIA}/{photo['id']}/comments", headers=carol.headers, json={"body": "Me too"})
    refused(response, 403, "cannot-comment")


async def test_a_stranger_neither_reads_nor_writes_comments(client, photo, alice, mallory):
    await comment(client, alice, photo["id"])
    path = f"{MEDIA}/{photo['id']}/comments"

    refused(await client.get(path, headers=mallory.headers), 404, "file-not-found")
    refused(await client.post(path, headers=mallory.headers, json={"body": "Hi"}), 404, "file-not-found")
    refused(await client.get(f"{MEDIA}/{uuid.uuid4()}/comments", headers=alice.headers), 404, "file-not-found")


async def test_comments_come_oldest_first_in_pages(client, photo, alice):
    for n in range(5):
        await comment(client, alice, photo["id"], f"Comment {n}")
    path = f"{MEDIA}/{photo['id']}/comments"

    first = (await client.get(path, headers=alice.headers, params={"limit": 3})).json()
    rest = (await client.get(path, headers=alice.headers, params={"limit": 3, "cursor": first["next"]})).json()

    assert [c["body"] for c in first["items"] + rest["items"]] == [f"Comment {n}" for n in range(5)]
    assert rest["next"] is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"body": ""},
        {"body": "   "},
        {"body": "x" * 4001},
        {"body": 5},
        {"body": "Hi", "author_id": str(uuid.uuid4())},
    ],
    ids=["nothing", "empty", "blank", "too-long", "not-text", "unknown-field"],
)
async def test_a_comment_has_a_body_of_1_to_4000_characters(client, photo, alice, body):
    response = await client.post(f"{MEDIA}/{photo['id']}/comments", headers=alice.headers, json=body)
    refused(response, 422, "validation-error")


async def test_a_revoked_share_takes_the_comments_away(client, photo, alice, carol):
    await comment(client, alice, photo["id"])
    [to_carol] = [
        s
        for s in (await client.get(f"{MEDIA}/{photo['id']}/shares", headers=alice.headers)).json()["items"]
        if s["shared_with"] == carol.user_id
    ]

    await client.delete(f"{MEDIA}/shares/{to_carol['id']}", headers=alice.headers)

    refused(await client.get(f"{MEDIA}/{photo['id']}/comments", headers=carol.headers), 404, "file-not-found")


# Replies and attachments


async def test_a_reply_answers_a_live_comment_on_the_same_file(client, photo, alice, bob):
    first = await comment(client, alice, photo["id"], "What do you think?")
    other = await image(client, alice)
    elsewhere = await comment(client, alice, other["id"], "Another file")

    reply = await comment(client, bob, photo["id"], "Beautiful", parent_id=first["id"])

    assert reply["parent_id"] == first["id"]
    for parent in (elsewhere["id"], str(uuid.uuid4())):
        response = await client.post(
            f"{MEDIA}/{photo['id']}/comments", headers=bob.headers, json={"body": "Hm", "parent_id": parent}
        )
        refused(response, 422, "parent-comment-not-found")


async def test_a_comments_attachment_is_read_by_those_who_read_the_comment(client, app, photo, alice, bob, mallory):
    mine = await image(client, bob, name="reply.png")
    await processed(app)

    made = await comment(client, bob, photo["id"], "Here is mine", attachment_file_id=mine["id"])

    assert made["attachment_file_id"] == mine["id"]
    assert (await client.get(f"{MEDIA}/{mine['id']}/content", headers=alice.headers)).status_code == 200
    refused(await client.get(f"{MEDIA}/{mine['id']}", headers=mallory.headers), 404, "file-not-found")


async def test_a_comment_carries_only_its_authors_own_file(client, photo, alice, bob):
    alices = await image(client, alice)
    path = f"{MEDIA}/{photo['id']}/comments"

    for file_id in (alices["id"], str(uuid.uuid4())):
        response = await client.post(path, headers=bob.headers, json={"body": "Look", "attachment_file_id": file_id})
        refused(response, 422, "file-not-usable")


# Who is told


async def test_the_owner_and_earlier_commenters_are_told_of_a_new_comment(client, runtime, photo, alice, bob, carol):
    first = await comment(client, bob, photo["id"], "First")
    second = await comment(client, alice, photo["id"], "Second")

    told_alice = await events_to(runtime, alice, "media.comment_added")
    told_bob = await events_to(runtime, bob, "media.comment_added")

    assert told_alice == [{"file_id": photo["id"], "comment_id": first["id"], "author_id": bob.user_id}]
    assert told_bob == [{"file_id": photo["id"], "comment_id": second["id"], "author_id": alice.user_id}]
    assert await events_to(runtime, carol, "media.comment_added") == []


async def test_an_earlier_commenter_who_blocks_the_author_is_not_told(client, runtime, photo, alice, bob):
    await comment(client, bob, photo["id"], "First")
    await block(client, bob, alice)

    await comment(client, alice, photo["id"], "Second")

    assert await events_to(runtime, bob, "media.comment_added") == []


# Editing and deleting


async def test_an_author_edits_their_own_comment_only(client, photo, alice, bob, mallory):
    made = await comment(client, bob, photo["id"], "Nice")
    path = f"{MEDIA}/comments/{made['id']}"

    edited = await client.patch(path, headers=bob.headers, json={"body": "Very nice"})

    assert edited.status_code == 200, edited.text
    assert (edited.json()["body"], edited.json()["edited_at"] is not None) == ("Very nice", True)
    refused(
        await client.patch(path, headers=alice.headers, json={"body": "Edited by alice"}), 403, "not-comment-author"
    )
    refused(await client.patch(path, headers=mallory.headers, json={"body": "Mine"}), 404, "comment-not-found")
    refused(await client.patch(path, headers=bob.headers, json={"body": ""}), 422, "validation-error")
    refused(await client.patch(path, headers=bob.headers, json={"body": None}), 422, "validation-error")
    assert await bodies(client, alice, photo["id"]) == ["Very nice"]


async def test_an_author_and_the_owner_delete_comments_no_one_else(client, photo, alice, bob, carol, mallory):
    bobs = await comment(client, bob, photo["id"], "Bob's")
    alices = await comment(client, alice, photo["id"], "Alice's")
    again = await comment(client, bob, photo["id"], "Bob's again")

    refused(await client.delete(f"{MEDIA}/comments/{alices['id']}", headers=bob.headers), 403, "not-comment-author")
    refused(await client.delete(f"{MEDIA}/comments/{bobs['id']}", headers=carol.headers), 403, "not-comment-author")
    refused(await client.delete(f"{MEDIA}/comments/{bobs['id']}", headers=mallory.headers), 404, "comment-not-found")
    assert (await client.delete(f"{MEDIA}/comments/{bobs['id']}", headers=alice.headers)).status_code == 204
    assert (await client.delete(f"{MEDIA}/comments/{again['id']}", headers=bob.headers)).status_code == 204

    assert await bodies(client, carol, photo["id"]) == ["Alice's"]
    refused(await client.delete(f"{MEDIA}/comments/{bobs['id']}", headers=alice.headers), 404, "comment-not-found")
    refused(
        await client.patch(f"{MEDIA}/comments/{again['id']}", headers=bob.headers, json={"body": "x"}),
        404,
        "comment-not-found",
    )
