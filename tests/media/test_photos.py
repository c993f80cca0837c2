"""Profile photos: GET /v1/media/profile-photos/{user_id}, PUT and DELETE
/v1/media/profile-photos/{position}, PUT /v1/media/profile-photos/order.

Alice sets hers; bob looks at them as he may look at her profile. At most six, positions
1..n without gaps, and only one's own images."""

from __future__ import annotations

import uuid

import pytest

from tests.media.collections_support import PHOTOS, block, document, image, quarantine, refused, video
from tests.media.upload_support import MEDIA, processed

pytestmark = pytest.mark.module_database


async def put(client, persona, position: int, file_id: str):
    return await client.put(f"{PHOTOS}/{position}", headers=persona.headers, json={"file_id": file_id})


async def photos_of(client, viewer, owner) -> list[str]:
    """The owner's photo file ids in order, as the viewer sees them (positions checked 1..n)."""
    response = await client.get(f"{PHOTOS}/{owner.user_id}", headers=viewer.headers)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [item["position"] for item in items] == list(range(1, len(items) + 1))
    return [item["file_id"] for item in items]


async def with_photos(client, persona, count: int) -> list[str]:
    ids = []
    for position in range(1, count + 1):
        file = await image(client, persona)
        response = await put(client, persona, position, file["id"])
        assert response.status_code == 200, response.text
        ids.append(file["id"])
    return ids


# Setting


async def test_photos_are_set_in_order(client, alice):
    first, second = await image(client, alice), await image(client, alice)

    one = await put(client, alice, 1, first["id"])
    two = await put(client, alice, 2, second["id"])

    assert one.status_code == 200, one.text
    assert [(p["position"], p["file_id"]) for p in one.json()["items"]] == [(1, first["id"])]
    assert [p["file"]["id"] for p in two.json()["items"]] == [first["id"], second["id"]]
    assert await photos_of(client, alice, alice) == [first["id"], second["id"]]


async def test_a_seventh_photo_is_refused(client, alice):
    ids = await with_photos(client, alice, 6)
    seventh = await image(client, alice)

    refused(await put(client, alice, 7, seventh["id"]), 409, "profile-photos-full")
    refused(await put(client, alice, 8, seventh["id"]), 409, "profile-photos-full")
    assert await photos_of(client, alice, alice) == ids
    # Replacing one of the six is fine.
    assert (await put(client, alice, 6, seventh["id"])).status_code == 200
    assert await photos_of(client, alice, alice) == [*ids[:5], seventh["id"]]


async def test_a_photo_replaces_the_one_in_its_position(client, alice):
    ids = await with_photos(client, alice, 3)
    newcomer = await image(client, alice)

    await put(client, alice, 2, newcomer["id"])

    assert await photos_of(client, alice, alice) == [ids[0], newcomer["id"], ids[2]]
    assert (await client.get(f"{MEDIA}/{ids[1]}", headers=alice.headers)).status_code == 200


async def test_positions_leave_no_gap(client, alice):
    await with_photos(client, alice, 2)
    newcomer = await image(client, alice)

    refused(await put(client, alice, 4, newcomer["id"]), 422, "position-out-of-range")
    refused(await put(client, alice, 0, newcomer["id"]), 422, "validation-error")
    refused(await put(client, alice, -1, newcomer["id"]), 422, "validation-error")
    assert len(await photos_of(client, alice, alice)) == 2


async def test_a_file_is_in_one_position_and_setting_it_there_again_changes_nothing(client, alice):
    ids = await with_photos(client, alice, 2)

    refused(await put(client, alice, 1, ids[1]), 409, "already-a-profile-photo")
    again = await put(client, alice, 2, ids[1])

    assert again.status_code == 200
    assert await photos_of(client, alice, alice) == ids


async def test_only_ones_own_live_images_are_profile_photos(client, app, runtime, alice, mallory):
    notes, clip, theirs = await document(client, alice), await video(client, alice), await image(client, mallory)
    infected, gone = await image(client, alice), await image(client, alice)
    await processed(app)
    await quarantine(runtime, infected["id"])
    await client.delete(f"{MEDIA}/{gone['id']}", headers=alice.headers)

    for file_id in (notes["id"], clip["id"], theirs["id"], infected["id"], gone["id"], str(uuid.uuid4())):
        refused(await put(client, alice, 1, file_id), 422, "file-not-usable")
    assert await photos_of(client, alice, alice) == []


@pytest.mark.parametrize(
    "body", [{}, {"file_id": "nope"}, {"file_id": None}, {"file_id": str(uuid.uuid4()), "position": 2}]
)
async def test_a_photo_names_a_file(client, alice, body):
    refused(await client.put(f"{PHOTOS}/1", headers=alice.headers, json=body), 422, "validation-error")


# Removing and reordering


async def test_removing_a_photo_moves_the_next_ones_up(client, alice):
    ids = await with_photos(client, alice, 4)

    removed = await client.delete(f"{PHOTOS}/2", headers=alice.headers)

    assert removed.status_code == 204
    assert await photos_of(client, alice, alice) == [ids[0], ids[2], ids[3]]
    refused(await client.delete(f"{PHOTOS}/4", headers=alice.headers), 404, "profile-photo-not-found")
    assert (await client.get(f"{MEDIA}/{ids[1]}", headers=alice.headers)).status_code == 200


async def test_a_deleted_file_leaves_its_slot_and_the_next_change_closes_the_gap(client, alice):
    ids = await with_photos(client, alice, 3)
    await client.delete(f"{MEDIA}/{ids[0]}", headers=alice.headers)

    assert await photos_of(client, alice, alice) == ids[1:]
    newcomer = await image(client, alice)
    assert (await put(client, alice, 3, newcomer["id"])).status_code == 200
    assert await photos_of(client, alice, alice) == [*ids[1:], newcomer["id"]]


async def test_a_reorder_puts_the_photos_where_the_list_says(client, alice):
    ids = await with_photos(client, alice, 4)
    wanted = [ids[3], ids[1], ids[0], ids[2]]

    response = await client.put(f"{PHOTOS}/order", headers=alice.headers, json={"file_ids": wanted})

    assert response.status_code == 200, response.text
    assert [p["file_id"] for p in response.json()["items"]] == wanted
    assert await photos_of(client, alice, alice) == wanted


async def test_a_reorder_names_exactly_the_current_photos(client, alice):
    ids = await with_photos(client, alice, 3)
    other = await image(client, alice)

    for file_ids in (ids[:2], [*ids, other["id"]], [ids[0], ids[0], ids[1]], [ids[0], ids[1], other["id"]]):
        response = await client.put(f"{PHOTOS}/order", headers=alice.headers, json={"file_ids": file_ids})
        refused(response, 422, "order-mismatch")
    assert await photos_of(client, alice, alice) == ids


# Who sees them


async def test_photos_are_seen_as_the_profile_is(client, app, alice, bob):
    ids = await with_photos(client, alice, 2)
    await processed(app)

    assert await photos_of(client, bob, alice) == ids
    assert (await client.get(f"{MEDIA}/{ids[0]}/content", headers=bob.headers)).status_code == 200

    hidden = await client.patch("/v1/profile", headers=alice.headers, json={"profile_visibility": "private"})
    assert hidden.status_code == 200, hidden.text

    refused(await client.get(f"{PHOTOS}/{alice.user_id}", headers=bob.headers), 404, "user-not-found")
    refused(await client.get(f"{MEDIA}/{ids[0]}", headers=bob.headers), 404, "file-not-found")
    assert await photos_of(client, alice, alice) == ids


@pytest.mark.parametrize("blocker", ["alice", "bob"])
async def test_photos_are_hidden_between_people_either_blocks(client, app, alice, bob, blocker):
    ids = await with_photos(client, alice, 1)
    await processed(app)
    await block(client, *((alice, bob) if blocker == "alice" else (bob, alice)))

    refused(await client.get(f"{PHOTOS}/{alice.user_id}", headers=bob.headers), 404, "user-not-found")
    refused(await client.get(f"{MEDIA}/{ids[0]}/content", headers=bob.headers), 404, "file-not-found")


async def test_an_unknown_persons_photos_are_not_found(client, alice):
    refused(await client.get(f"{PHOTOS}/{uuid.uuid4()}", headers=alice.headers), 404, "user-not-found")


async def test_a_file_that_is_no_photo_is_not_seen_through_the_profile(client, alice, bob):
    file = await image(client, alice)
    refused(await client.get(f"{MEDIA}/{file['id']}", headers=bob.headers), 404, "file-not-found")
    ids = await with_photos(client, alice, 1)
    await client.delete(f"{PHOTOS}/1", headers=alice.headers)
    refused(await client.get(f"{MEDIA}/{ids[0]}", headers=bob.headers), 404, "file-not-found")
