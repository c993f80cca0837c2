"""Shares: POST/GET /v1/media/{id}/shares and /v1/media/albums/{id}/shares, DELETE
/v1/media/shares/{share_id}, GET /v1/media/shared-with-me, and links opened signed out
with GET /v1/media/shared/{token} (+ `/content`, `/files/{file_id}/content`).

Alice shares her files and albums; bob is the person she shares with; carol is a third
person who is given nothing; mallory a stranger. A wrong, expired or revoked link, or
one whose file is gone, answers 404 `share-link-not-found`, all alike."""

from __future__ import annotations

import hashlib
import uuid

import asyncpg
import pytest

from rapport.kernel.provisioning import asyncpg_dsn
from tests.media.collections_support import (
    ALBUMS,
    SHARED_WITH_ME,
    add_item,
    block,
    document,
    events_to,
    expire,
    image,
    make_album,
    quarantine,
    refused,
    share,
    unscanned,
)
from tests.media.upload_support import MEDIA, png_bytes, processed, uploaded

pytestmark = pytest.mark.module_database


async def shared_ids(client, persona) -> list[str]:
    response = await client.get(SHARED_WITH_ME, headers=persona.headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def readable(client, persona, file_id: str) -> bool:
    """Whether the person reads the file's metadata and bytes (a stranger's 404 otherwise)."""
    meta = await client.get(f"{MEDIA}/{file_id}", headers=persona.headers)
    content = await client.get(f"{MEDIA}/{file_id}/content", headers=persona.headers)
    if meta.status_code == 404:
        refused(content, 404, "file-not-found")
        return False
    assert (meta.status_code, content.status_code) == (200, 200), content.text
    return True


async def ready_image(client, app, persona) -> tuple[dict, bytes]:
    """An image whose scan has passed, so that others than its owner may download it."""
    data = png_bytes()
    file = await uploaded(client, persona, data, name="photo.png", content_type="image/png")
    await processed(app)
    return file, data


# With a person


async def test_a_file_shared_with_someone_is_theirs_to_read_and_no_one_elses(client, app, alice, bob, carol):
    file, data = await ready_image(client, app, alice)
    assert not await readable(client, bob, file["id"])

    made = await share(client, alice, f"{MEDIA}/{file['id']}", user_id=bob.user_id)

    assert (made["shared_with"], made["file_id"], made["is_link"], made["token"], made["url"]) == (
        bob.user_id,
        file["id"],
        False,
        None,
        None,
    )
    assert (made["permission"], made["is_live"], made["expires_at"]) == ("view", True, None)
    assert await readable(client, bob, file["id"])
    assert (await client.get(f"{MEDIA}/{file['id']}/content", headers=bob.headers)).content == data
    assert not await readable(client, carol, file["id"])


async def test_what_is_shared_with_someone_is_in_their_shared_with_me(client, alice, bob, carol):
    file = await image(client, alice)
    album = await make_album(client, alice, title="Trip")
    first = await share(client, alice, f"{MEDIA}/{file['id']}", user_id=bob.user_id, permission="comment")
    second = await share(client, alice, f"{ALBUMS}/{album['id']}", user_id=bob.user_id)

    listed = (await client.get(SHARED_WITH_ME, headers=bob.headers)).json()["items"]

    assert [item["id"] for item in listed] == [second["id"], first["id"]]
    assert (listed[0]["album"]["title"], listed[0]["file"]) == ("Trip", None)
    assert (listed[1]["file"]["id"], listed[1]["album"], listed[1]["permission"]) == (file["id"], None, "comment")
    assert await shared_ids(client, carol) == []
    assert await shared_ids(client, alice) == []


async def test_the_person_shared_with_is_told_once(client, runtime, alice, bob, carol):
    file = await image(client, alice)
    made = await share(client, alice, f"{MEDIA}/{file['id']}", user_id=bob.user_id)
    # Shared again (for comment now): it replaces the first share, and bob is not told twice.
    again = await share(client, alice, f"{MEDIA}/{file['id']}", user_id=bob.user_id, permission="comment")

    told = await events_to(runtime, bob, "media.shared")

    assert told == [{"share_id": made["id"], "owner_id": alice.user_id, "file_id": file["id"], "permission": "view"}]
    assert await events_to(runtime, carol, "media.shared") == []
    assert await shared_ids(client, bob) == [again["id"]]
    listed = (await client.get(f"{MEDIA}/{file['id']}/shares", headers=alice.headers)).json()["items"]
    assert [(s["id"], s["is_live"]) for s in listed] == [(again["id"], True), (made["id"], False)]


async def test_an_album_shared_with_someone_gives_them_its_files_those_added_later_too(
    client, app, runtime, alice, bob, carol
):
    album = await make_album(client, alice)
    before, _ = await ready_image(client, app, alice)
    await add_item(client, alice, album["id"], before["id"])
    made = await share(client, alice, f"{ALBUMS}/{album['id']}", user_id=bob.user_id)
    later, _ = await ready_image(client, app, alice)
    await add_item(client, alice, album["id"], later["id"])

    assert made["album_id"] == album["id"] and made["file_id"] is None
    assert await events_to(runtime, bob, "media.shared") == [
        {"share_id": made["id"], "owner_id": alice.user_id, "album_id": album["id"], "permission": "view"}
    ]
    assert await readable(client, bob, before["id"]) and await readable(client, bob, later["id"])
    assert not await readable(client, carol, before["id"])
    # A file taken out of the album is no longer shared by it.
    await client.delete(f"{ALBUMS}/{album['id']}/items/{later['id']}", headers=alice.headers)
    assert not await readable(client, bob, later["id"])


async def test_sharing_with_someone_either_blocks_is_answered_as_an_unknown_person(client, alice, bob, carol):
    file = await image(client, alice)
    await block(client, alice, bob)
    await block(client, carol, alice)
    path = f"{MEDIA}/{file['id']}/shares"

    for user_id in (bob.user_id, carol.user_id, str(uuid.uuid4())):
        refused(await client.post(path, headers=alice.headers, json={"user_id": user_id}), 404, "user-not-found")
    assert (await client.get(path, headers=alice.headers)).json()["items"] == []
    assert await shared_ids(client, bob) == [] and await shared_ids(client, carol) == []


async def test_a_person_whose_profile_is_hidden_from_the_owner_is_unknown(client, alice, bob):
    file = await image(client, alice)
    hidden = await client.patch("/v1/profile", headers=bob.headers, json={"profile_visibility": "private"})
    assert hidden.status_code == 200, hidden.text

    response = await client.post(f"{MEDIA}/{file['id']}/shares", headers=alice.headers, json={"user_id": bob.user_id})

    refused(response, 404, "user-not-found")


async def test_a_block_ends_a_share_made_before_it(client, app, alice, bob):
    file, _ = await ready_image(client, app, alice)
    await share(client, alice, f"{MEDIA}/{file['id']}", user_id=bob.user_id)
    assert await readable(client, bob, file["id"])

    await block(client, alice, bob)

    assert not await readable(client, bob, file["id"])
    assert await shared_ids(client, bob) == []


async def test_one_does_not_share_with_oneself(client, alice):
    file = await image(client, alice)
    response = await client.post(f"{MEDIA}/{file['id']}/shares", headers=alice.headers, json={"user_id": alice.user_id})
    refused(response, 422, "cannot-share-with-yourself")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"user_id": "someone"},
        {"link": True},
        {"link": False, "expires_in_seconds": 3600},
        {"link": True, "expires_in_seconds": 3600, "user_id": str(uuid.uuid4())},
        {"link": True, "expires_in_seconds": 59},
        {"link": True, "expires_in_seconds": 10**9},
        {"link": True, "expires_in_seconds": "3600"},
        {"link": True, "expires_in_seconds": 3600, "permission": "comment"},
        {"user_id": str(uuid.uuid4()), "permission": "edit"},
    ],
    ids=[
        "nothing",
        "not-an-id",
        "link-without-expiry",
        "link-false",
        "both",
        "too-short",
        "too-long",
        "seconds-as-text",
        "link-to-comment",
        "unknown-permission",
    ],
)
async def test_a_share_is_with_one_person_or_by_an_expiring_link(client, alice, body):
    file = await image(client, alice)
    refused(
        await client.post(f"{MEDIA}/{file['id']}/shares", headers=alice.headers, json=body), 422, "validation-error"
    )


async def test_only_the_owner_shares_a_file_or_an_album(client, alice, bob, carol, mallory):
    file = await image(client, alice)
    album = await make_album(client, alice)
    await share(client, alice, f"{MEDIA}/{file['id']}", user_id=bob.user_id)
    await share(client, alice, f"{ALBUMS}/{album['id']}", user_id=bob.user_id)
    to_carol = {"user_id": carol.user_id}

    refused(
        await client.post(f"{MEDIA}/{file['id']}/shares", headers=bob.headers, json=to_carol), 403, "not-file-owner"
    )
    refused(await client.get(f"{MEDIA}/{file['id']}/shares", headers=bob.headers), 403, "not-file-owner")
    refused(
        await client.post(f"{ALBUMS}/{album['id']}/shares", headers=bob.headers, json=to_carol), 403, "not-album-owner"
    )
    refused(await client.get(f"{ALBUMS}/{album['id']}/shares", headers=bob.headers), 403, "not-album-owner")
    for path, slug in ((f"{MEDIA}/{file['id']}", "file-not-found"), (f"{ALBUMS}/{album['id']}", "album-not-found")):
        refused(await client.post(f"{path}/shares", headers=mallory.headers, json=to_carol), 404, slug)
        refused(await client.get(f"{path}/shares", headers=mallory.headers), 404, slug)
    assert await shared_ids(client, carol) == []


async def test_a_quarantined_file_is_not_shared(client, app, runtime, alice, bob):
    file = await image(client, alice)
    await processed(app)
    await quarantine(runtime, file["id"])
    response = await client.post(f"{MEDIA}/{file['id']}/shares", headers=alice.headers, json={"user_id": bob.user_id})
    refused(response, 403, "file-quarantined")


# Ending


async def test_a_revoked_share_gives_nothing_more(client, app, alice, bob):
    file, _ = await ready_image(client, app, alice)
    made = await share(client, alice, f"{MEDIA}/{file['id']}", user_id=bob.user_id)

    revoked = await client.delete(f"{MEDIA}/shares/{made['id']}", headers=alice.headers)

    assert revoked.status_code == 204
    assert not await readable(client, bob, file["id"])
    assert await shared_ids(client, bob) == []
    [listed] = (await client.get(f"{MEDIA}/{file['id']}/shares", headers=alice.headers)).json()["items"]
    assert listed["is_live"] is False and listed["revoked_at"] is not None
    assert (await client.delete(f"{MEDIA}/shares/{made['id']}", headers=alice.headers)).status_code == 204


async def test_only_the_person_who_shared_revokes(client, alice, bob, mallory):
    file = await image(client, alice)
    made = await share(client, alice, f"{MEDIA}/{file['id']}", user_id=bob.user_id)

    refused(await client.delete(f"{MEDIA}/shares/{made['id']}", headers=bob.headers), 403, "not-share-owner")
    refused(await client.delete(f"{MEDIA}/shares/{made['id']}", headers=mallory.headers), 404, "share-not-found")
    refused(await client.delete(f"{MEDIA}/shares/{uuid.uuid4()}", headers=alice.headers), 404, "share-not-found")
    assert await shared_ids(client, bob) == [made["id"]]


async def test_an_expired_share_gives_nothing_more(client, app, database, alice, bob):
    file, _ = await ready_image(client, app, alice)
    made = await share(client, alice, f"{MEDIA}/{file['id']}", user_id=bob.user_id, expires_in_seconds=3600)
    assert await readable(client, bob, file["id"])

    await expire(database, made["id"])

    assert not await readable(client, bob, file["id"])
    assert await shared_ids(client, bob) == []


async def test_a_deleted_file_is_no_longer_shared(client, app, alice, bob):
    file, _ = await ready_image(client, app, alice)
    await share(client, alice, f"{MEDIA}/{file['id']}", user_id=bob.user_id)

    await client.delete(f"{MEDIA}/{file['id']}", headers=alice.headers)

    assert not await readable(client, bob, file["id"])
    assert await shared_ids(client, bob) == []


# Links


async def test_a_link_opens_its_file_without_signing_in(client, app, alice):
    file, data = await ready_image(client, app, alice)

    made = await share(client, alice, f"{MEDIA}/{file['id']}", link=True, expires_in_seconds=3600)

    assert made["token"].startswith("rms_") and made["url"] == f"{MEDIA}/shared/{made['token']}"
    assert (made["is_link"], made["shared_with"]) == (True, None)
    opened = await client.get(made["url"])
    assert opened.status_code == 200, opened.text
    shown = opened.json()
    assert (shown["file"]["id"], shown["album"], shown["permission"]) == (file["id"], None, "view")
    assert shown["file"]["urls"]["content"] == f"{made['url']}/content"
    content = await client.get(shown["file"]["urls"]["content"])
    assert content.status_code == 200 and content.content == data
    assert content.headers["content-security-policy"] == "sandbox; default-src 'none'"
    ranged = await client.get(f"{made['url']}/content", headers={"Range": "bytes=0-9"})
    assert (ranged.status_code, ranged.content) == (206, data[:10])


async def test_a_links_thumbnails_are_served_through_it(client, app, alice):
    file, _ = await ready_image(client, app, alice)
    made = await share(client, alice, f"{MEDIA}/{file['id']}", link=True, expires_in_seconds=3600)

    shown = (await client.get(made["url"])).json()["file"]

    small = f"{made['url']}/files/{file['id']}/thumbnails/small"
    assert shown["urls"]["thumbnails"]["small"] == small
    assert {t["size"]: t["url"] for t in shown["thumbnails"]}["small"] == small
    thumbnail = await client.get(small)
    assert thumbnail.status_code == 200, thumbnail.text
    assert thumbnail.headers["content-type"] in ("image/webp", "image/jpeg")
    refused(await client.get(f"{made['url']}/files/{file['id']}/thumbnails/huge"), 422, "validation-error")
    await client.delete(f"{MEDIA}/shares/{made['id']}", headers=alice.headers)
    refused(await client.get(small), 404, "share-link-not-found")


async def test_a_link_to_a_document_has_no_thumbnails(client, app, alice):
    notes = await document(client, alice)
    await processed(app)
    made = await share(client, alice, f"{MEDIA}/{notes['id']}", link=True, expires_in_seconds=3600)

    shown = (await client.get(made["url"])).json()["file"]

    assert (shown["thumbnails"], shown["urls"]["thumbnails"]) == ([], None)
    refused(await client.get(f"{made['url']}/files/{notes['id']}/thumbnails/small"), 404, "thumbnail-not-found")


async def test_a_links_token_is_shown_once_and_kept_as_its_hash(client, database, alice):
    file = await image(client, alice)
    made = await share(client, alice, f"{MEDIA}/{file['id']}", link=True, expires_in_seconds=3600)

    [listed] = (await client.get(f"{MEDIA}/{file['id']}/shares", headers=alice.headers)).json()["items"]
    conn = await asyncpg.connect(asyncpg_dsn(database.admin.set(database=database.app.database)))
    try:
        stored = await conn.fetchval(
            "SELECT link_token_hash FROM media.shared_files WHERE id = $1", uuid.UUID(made["id"])
        )
    finally:
        await conn.close()

    assert listed["id"] == made["id"] and "token" not in listed and listed["is_link"] is True
    assert stored == hashlib.sha256(made["token"].encode()).digest()


async def test_a_link_stops_at_its_expiry_as_at_its_revocation(client, app, database, alice):
    file, _ = await ready_image(client, app, alice)
    expiring = await share(client, alice, f"{MEDIA}/{file['id']}", link=True, expires_in_seconds=3600)
    revoked = await share(client, alice, f"{MEDIA}/{file['id']}", link=True, expires_in_seconds=3600)
    assert (await client.get(f"{expiring['url']}/content")).status_code == 200

    await expire(database, expiring["id"])
    await client.delete(f"{MEDIA}/shares/{revoked['id']}", headers=alice.headers)

    for made in (expiring, revoked):
        refused(await client.get(made["url"]), 404, "share-link-not-found")
        refused(await client.get(f"{made['url']}/content"), 404, "share-link-not-found")
    for wrong in ("rms_" + "x" * 43, "nothing", made["token"][:-1]):
        refused(await client.get(f"{MEDIA}/shared/{wrong}"), 404, "share-link-not-found")


async def test_a_link_to_a_deleted_file_is_gone(client, app, alice):
    file, _ = await ready_image(client, app, alice)
    made = await share(client, alice, f"{MEDIA}/{file['id']}", link=True, expires_in_seconds=3600)

    await client.delete(f"{MEDIA}/{file['id']}", headers=alice.headers)

    refused(await client.get(made["url"]), 404, "share-link-not-found")
    refused(await client.get(f"{made['url']}/content"), 404, "share-link-not-found")


async def test_an_albums_link_opens_the_album_and_its_files_only(client, app, alice):
    album = await make_album(client, alice, title="Trip")
    inside, data = await ready_image(client, app, alice)
    outside, _ = await ready_image(client, app, alice)
    await add_item(client, alice, album["id"], inside["id"])
    made = await share(client, alice, f"{ALBUMS}/{album['id']}", link=True, expires_in_seconds=3600)

    shown = (await client.get(made["url"])).json()

    assert (shown["album"]["title"], shown["file"]) == ("Trip", None)
    [item] = shown["album"]["items"]
    assert item["file"]["urls"]["content"] == f"{made['url']}/files/{inside['id']}/content"
    assert (await client.get(item["file"]["urls"]["content"])).content == data
    assert (await client.get(item["file"]["urls"]["thumbnails"]["medium"])).status_code == 200
    refused(await client.get(f"{made['url']}/files/{outside['id']}/thumbnails/small"), 404, "share-link-not-found")
    refused(await client.get(f"{made['url']}/files/{outside['id']}/content"), 404, "share-link-not-found")
    refused(await client.get(f"{made['url']}/content"), 404, "share-link-not-found")


async def test_a_link_gives_its_file_only(client, app, alice):
    shared, _ = await ready_image(client, app, alice)
    other, _ = await ready_image(client, app, alice)
    made = await share(client, alice, f"{MEDIA}/{shared['id']}", link=True, expires_in_seconds=3600)

    refused(await client.get(f"{made['url']}/files/{other['id']}/content"), 404, "share-link-not-found")
    assert (await client.get(f"{made['url']}/files/{shared['id']}/content")).status_code == 200
    # Nor does the link open the file's own address to someone who is not signed in.
    assert (await client.get(f"{MEDIA}/{shared['id']}/content")).status_code == 401


async def test_a_link_never_serves_a_quarantined_file(client, app, runtime, alice):
    file = await image(client, alice)
    made = await share(client, alice, f"{MEDIA}/{file['id']}", link=True, expires_in_seconds=3600)
    await processed(app)
    await quarantine(runtime, file["id"])

    refused(await client.get(f"{made['url']}/content"), 403, "file-quarantined")


async def test_a_link_serves_nothing_before_the_scan_passes(client, app, runtime, alice):
    """Until its scan has passed only its owner downloads a file: a link's holder is not."""
    file = await image(client, alice)
    made = await share(client, alice, f"{MEDIA}/{file['id']}", link=True, expires_in_seconds=3600)
    await processed(app)
    await unscanned(runtime, file["id"])

    response = await client.get(f"{made['url']}/content")

    refused(response, 409, "file-not-ready")
    assert int(response.headers["retry-after"]) > 0
    assert (await client.get(f"{MEDIA}/{file['id']}/content", headers=alice.headers)).status_code == 200
