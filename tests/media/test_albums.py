"""Albums: POST/GET /v1/media/albums, GET/PATCH/DELETE /v1/media/albums/{id}, POST
…/items, DELETE …/items/{file_id}, PUT …/items/order.

Alice owns the albums and their files; bob has one shared with him; mallory is a
stranger. Positions run 1..n without gaps whatever is added, removed or reordered."""

from __future__ import annotations

import uuid

import pytest

from tests.media.collections_support import (
    ALBUMS,
    add_item,
    album_of,
    document,
    image,
    item_ids,
    make_album,
    quarantine,
    refused,
    share,
    video,
)
from tests.media.upload_support import MEDIA, processed

pytestmark = pytest.mark.module_database


async def filled(client, persona, count: int) -> tuple[dict, list[str]]:
    """An album of `count` images, in the order they were added."""
    album = await make_album(client, persona)
    ids = []
    for _ in range(count):
        file = await image(client, persona)
        assert (await add_item(client, persona, album["id"], file["id"])).status_code == 201
        ids.append(file["id"])
    return album, ids


# Making, reading, listing


async def test_an_album_is_made_empty_and_owned_by_its_maker(client, alice):
    response = await client.post(ALBUMS, headers=alice.headers, json={"title": " Summer ", "description": "By the sea"})

    assert response.status_code == 201, response.text
    album = response.json()
    assert (album["title"], album["description"], album["owner_id"]) == ("Summer", "By the sea", alice.user_id)
    assert (album["item_count"], album["items"], album["cover_file_id"]) == (0, [], None)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 201},
        {"title": "A", "description": "y" * 2001},
        {"title": 3},
        {"title": "A", "owner_id": str(uuid.uuid4())},
    ],
    ids=["no-title", "empty", "blank", "title-too-long", "description-too-long", "not-text", "unknown-field"],
)
async def test_an_album_needs_a_title_and_nothing_else_unknown(client, alice, body):
    refused(await client.post(ALBUMS, headers=alice.headers, json=body), 422, "validation-error")


async def test_ones_own_albums_are_listed_newest_first_and_no_one_elses(client, alice, mallory):
    first = await make_album(client, alice, title="First")
    second = await make_album(client, alice, title="Second")
    await make_album(client, mallory, title="Mallory's")

    listed = (await client.get(ALBUMS, headers=alice.headers)).json()

    assert [a["id"] for a in listed["items"]] == [second["id"], first["id"]]


async def test_albums_are_listed_in_pages(client, alice):
    made = [await make_album(client, alice, title=f"Album {n}") for n in range(3)]
    first = (await client.get(ALBUMS, headers=alice.headers, params={"limit": 2})).json()
    rest = (await client.get(ALBUMS, headers=alice.headers, params={"limit": 2, "cursor": first["next"]})).json()
    assert [a["id"] for a in first["items"] + rest["items"]] == [a["id"] for a in reversed(made)]
    assert rest["next"] is None


async def test_a_stranger_neither_sees_nor_changes_an_album(client, alice, mallory):
    album, _ = await filled(client, alice, 1)
    path = f"{ALBUMS}/{album['id']}"
    own = await image(client, mallory)

    refused(await client.get(path, headers=mallory.headers), 404, "album-not-found")
    refused(await client.patch(path, headers=mallory.headers, json={"title": "Mine"}), 404, "album-not-found")
    refused(await client.delete(path, headers=mallory.headers), 404, "album-not-found")
    refused(await add_item(client, mallory, album["id"], own["id"]), 404, "album-not-found")
    refused(
        await client.put(f"{path}/items/order", headers=mallory.headers, json={"file_ids": []}), 404, "album-not-found"
    )
    assert (await album_of(client, alice, album["id"]))["title"] == "Holidays"


async def test_an_unknown_album_is_not_found(client, alice):
    refused(await client.get(f"{ALBUMS}/{uuid.uuid4()}", headers=alice.headers), 404, "album-not-found")
    refused(await client.get(f"{ALBUMS}/not-an-id", headers=alice.headers), 422, "validation-error")


async def test_someone_an_album_is_shared_with_reads_it_but_changes_nothing(client, alice, bob):
    album, ids = await filled(client, alice, 2)
    await share(client, alice, f"{ALBUMS}/{album['id']}", user_id=bob.user_id)
    path = f"{ALBUMS}/{album['id']}"
    own = await image(client, bob)

    seen = await album_of(client, bob, album["id"])

    assert item_ids(seen) == ids and seen["items"][0]["file"]["id"] == ids[0]
    refused(await client.patch(path, headers=bob.headers, json={"title": "Bob's"}), 403, "not-album-owner")
    refused(await client.delete(path, headers=bob.headers), 403, "not-album-owner")
    refused(await add_item(client, bob, album["id"], own["id"]), 403, "not-album-owner")
    refused(await client.delete(f"{path}/items/{ids[0]}", headers=bob.headers), 403, "not-album-owner")
    refused(
        await client.put(f"{path}/items/order", headers=bob.headers, json={"file_ids": ids[::-1]}),
        403,
        "not-album-owner",
    )
    # Nor is it among bob's own albums.
    assert (await client.get(ALBUMS, headers=bob.headers)).json()["items"] == []


# Changing


async def test_the_fields_sent_change_and_null_clears_the_description(client, alice):
    album = await make_album(client, alice, description="Old")
    path = f"{ALBUMS}/{album['id']}"

    renamed = (await client.patch(path, headers=alice.headers, json={"title": "New"})).json()
    cleared = (await client.patch(path, headers=alice.headers, json={"description": None})).json()

    assert (renamed["title"], renamed["description"]) == ("New", "Old")
    assert (cleared["title"], cleared["description"]) == ("New", None)
    refused(await client.patch(path, headers=alice.headers, json={"title": None}), 422, "validation-error")


async def test_the_cover_is_one_of_the_albums_files(client, alice):
    album, ids = await filled(client, alice, 2)
    outside = await image(client, alice)
    path = f"{ALBUMS}/{album['id']}"

    covered = await client.patch(path, headers=alice.headers, json={"cover_file_id": ids[1]})

    assert covered.json()["cover_file_id"] == ids[1]
    refused(
        await client.patch(path, headers=alice.headers, json={"cover_file_id": outside["id"]}),
        422,
        "cover-not-in-album",
    )
    uncovered = await client.patch(path, headers=alice.headers, json={"cover_file_id": None})
    assert uncovered.json()["cover_file_id"] is None


async def test_a_deleted_album_is_gone_for_everyone_and_its_files_stay(client, alice, bob):
    album, ids = await filled(client, alice, 1)
    await share(client, alice, f"{ALBUMS}/{album['id']}", user_id=bob.user_id)

    deleted = await client.delete(f"{ALBUMS}/{album['id']}", headers=alice.headers)

    assert deleted.status_code == 204
    for who in (alice, bob):
        refused(await client.get(f"{ALBUMS}/{album['id']}", headers=who.headers), 404, "album-not-found")
    assert (await client.get(ALBUMS, headers=alice.headers)).json()["items"] == []
    assert (await client.get(f"{MEDIA}/{ids[0]}", headers=alice.headers)).status_code == 200
    refused(await client.get(f"{MEDIA}/{ids[0]}", headers=bob.headers), 404, "file-not-found")


# Items


async def test_images_and_videos_go_last_by_default_with_their_caption(client, alice):
    album = await make_album(client, alice)
    photo, clip = await image(client, alice), await video(client, alice)

    first = await add_item(client, alice, album["id"], photo["id"], caption="At the beach")
    second = await add_item(client, alice, album["id"], clip["id"])

    assert first.status_code == 201, first.text
    assert (first.json()["position"], first.json()["caption"], first.json()["file"]["kind"]) == (
        1,
        "At the beach",
        "image",
    )
    assert (second.json()["position"], second.json()["file"]["kind"]) == (2, "video")
    shown = await album_of(client, alice, album["id"])
    assert item_ids(shown) == [photo["id"], clip["id"]] and shown["item_count"] == 2


async def test_an_item_added_at_a_position_moves_the_others_down(client, alice):
    album, ids = await filled(client, alice, 3)
    newcomer = await image(client, alice)

    added = await add_item(client, alice, album["id"], newcomer["id"], position=2)

    assert added.json()["position"] == 2
    assert item_ids(await album_of(client, alice, album["id"])) == [ids[0], newcomer["id"], ids[1], ids[2]]


async def test_a_position_past_the_end_plus_one_is_refused(client, alice):
    album, _ = await filled(client, alice, 2)
    newcomer = await image(client, alice)

    refused(await add_item(client, alice, album["id"], newcomer["id"], position=4), 422, "position-out-of-range")
    refused(await add_item(client, alice, album["id"], newcomer["id"], position=0), 422, "validation-error")
    assert (await add_item(client, alice, album["id"], newcomer["id"], position=3)).status_code == 201


async def test_a_file_is_in_an_album_once(client, alice):
    album, ids = await filled(client, alice, 1)
    refused(await add_item(client, alice, album["id"], ids[0]), 409, "already-in-album")


async def test_only_ones_own_live_images_and_videos_go_in_an_album(client, app, runtime, alice, mallory):
    album = await make_album(client, alice)
    notes = await document(client, alice)
    theirs = await image(client, mallory)
    infected = await image(client, alice)
    await processed(app)
    await quarantine(runtime, infected["id"])
    gone = await image(client, alice)
    assert (await client.delete(f"{MEDIA}/{gone['id']}", headers=alice.headers)).status_code == 204

    for file_id in (notes["id"], theirs["id"], infected["id"], gone["id"], str(uuid.uuid4())):
        refused(await add_item(client, alice, album["id"], file_id), 422, "file-not-usable")
    assert (await album_of(client, alice, album["id"]))["items"] == []


@pytest.mark.parametrize(
    "body",
    [{}, {"file_id": "nope"}, {"file_id": 5}, {"caption": "x"}],
    ids=["nothing", "not-an-id", "a-number", "no-file"],
)
async def test_an_item_names_a_file(client, alice, body):
    album = await make_album(client, alice)
    response = await client.post(f"{ALBUMS}/{album['id']}/items", headers=alice.headers, json=body)
    refused(response, 422, "validation-error")


async def test_removing_an_item_closes_the_gap_and_keeps_the_file(client, alice):
    album, ids = await filled(client, alice, 3)

    removed = await client.delete(f"{ALBUMS}/{album['id']}/items/{ids[1]}", headers=alice.headers)

    assert removed.status_code == 204
    assert item_ids(await album_of(client, alice, album["id"])) == [ids[0], ids[2]]
    assert (await client.get(f"{MEDIA}/{ids[1]}", headers=alice.headers)).status_code == 200
    again = await client.delete(f"{ALBUMS}/{album['id']}/items/{ids[1]}", headers=alice.headers)
    refused(again, 404, "album-item-not-found")


async def test_removing_the_cover_leaves_the_album_without_one(client, alice):
    album, ids = await filled(client, alice, 2)
    await client.patch(f"{ALBUMS}/{album['id']}", headers=alice.headers, json={"cover_file_id": ids[0]})

    await client.delete(f"{ALBUMS}/{album['id']}/items/{ids[0]}", headers=alice.headers)

    assert (await album_of(client, alice, album["id"]))["cover_file_id"] is None


async def test_a_deleted_file_leaves_the_album_and_the_next_change_closes_its_gap(client, alice):
    album, ids = await filled(client, alice, 3)
    await client.delete(f"{MEDIA}/{ids[0]}", headers=alice.headers)

    assert item_ids(await album_of(client, alice, album["id"])) == ids[1:]
    newcomer = await image(client, alice)
    added = await add_item(client, alice, album["id"], newcomer["id"])
    assert added.json()["position"] == 3
    assert item_ids(await album_of(client, alice, album["id"])) == [*ids[1:], newcomer["id"]]


# Order


async def test_a_reorder_puts_every_item_where_the_list_says(client, alice):
    album, ids = await filled(client, alice, 4)
    wanted = [ids[2], ids[0], ids[3], ids[1]]

    response = await client.put(f"{ALBUMS}/{album['id']}/items/order", headers=alice.headers, json={"file_ids": wanted})

    assert response.status_code == 200, response.text
    assert item_ids(response.json()) == wanted
    assert item_ids(await album_of(client, alice, album["id"])) == wanted


async def test_a_reorder_names_exactly_the_current_items(client, alice):
    album, ids = await filled(client, alice, 3)
    stranger = await image(client, alice)
    path = f"{ALBUMS}/{album['id']}/items/order"

    for file_ids in (ids[:2], [*ids, stranger["id"]], [ids[0], ids[0], ids[1]], [ids[0], ids[1], stranger["id"]], []):
        refused(await client.put(path, headers=alice.headers, json={"file_ids": file_ids}), 422, "order-mismatch")
    refused(await client.put(path, headers=alice.headers, json={"file_ids": "all"}), 422, "validation-error")
    assert item_ids(await album_of(client, alice, album["id"])) == ids


async def test_an_empty_album_is_reordered_by_an_empty_list(client, alice):
    album = await make_album(client, alice)
    response = await client.put(f"{ALBUMS}/{album['id']}/items/order", headers=alice.headers, json={"file_ids": []})
    assert response.status_code == 200 and response.json()["items"] == []
