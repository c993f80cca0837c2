"""Dating profiles: PUT/GET/DELETE /v1/matching/profile (adults only, location both or
neither, preferences), its photos (the person's profile photos, media's), and
GET /v1/matching/profiles/{user_id}: what others see, an age and a distance, never the birth
date or where one is."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from rapport.kernel.db import user_transaction
from tests.matching.geometry import distance_km
from tests.media.collections_support import block, image
from tests.support import problem_type

pytestmark = pytest.mark.module_database

PROFILE = "/v1/matching/profile"
PARIS = (48.8566, 2.3522)
LONDON = (51.5074, -0.1278)


def years_ago(years: int, *, days: int = 0) -> date:
    today = date.today()
    try:
        born = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        born = today.replace(year=today.year - years, day=28)
    return date.fromordinal(born.toordinal() + days)


def profile(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "birth_date": years_ago(30).isoformat(),
        "gender": "woman",
        "bio": "Hiking and **jazz**.",
        "interests": ["Hiking", "jazz", "hiking"],
        "latitude": PARIS[0],
        "longitude": PARIS[1],
        "city": "Paris",
        "country": "France",
        "pref_genders": ["man", "nonbinary"],
        "pref_age_min": 25,
        "pref_age_max": 40,
        "pref_distance_km": 500,
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


async def put_profile(client, persona, **changes: Any) -> dict[str, Any]:
    response = await client.put(PROFILE, headers=persona.headers, json=profile(**changes))
    assert response.status_code == 200, response.text
    made: dict[str, Any] = response.json()
    return made


async def test_a_profile_is_made_and_read_back(client, alice) -> None:
    made = await put_profile(client, alice)
    assert made["user_id"] == alice.user_id
    assert made["age"] == 30
    assert made["interests"] == ["hiking", "jazz"]
    assert made["pref_genders"] == ["man", "nonbinary"]
    assert (made["latitude"], made["longitude"], made["city"]) == (*PARIS, "Paris")
    assert made["is_active"] is True and made["photos"] == []
    read = await client.get(PROFILE, headers=alice.headers)
    assert read.status_code == 200 and read.json() == made


async def test_put_replaces_and_defaults_what_is_left_out(client, alice) -> None:
    await put_profile(client, alice)
    replaced = await put_profile(
        client,
        alice,
        bio=...,
        interests=...,
        latitude=...,
        longitude=...,
        city=...,
        country=...,
        pref_genders=...,
        pref_age_min=...,
        pref_age_max=...,
        pref_distance_km=...,
    )
    assert replaced["bio"] is None and replaced["interests"] == [] and replaced["latitude"] is None
    assert (replaced["pref_age_min"], replaced["pref_age_max"], replaced["pref_distance_km"]) == (18, 99, 50)
    assert replaced["pref_genders"] == []


async def test_no_profile_yet_is_not_found(client, alice) -> None:
    missing = await client.get(PROFILE, headers=alice.headers)
    assert (missing.status_code, problem_type(missing)) == (404, "matching-profile-not-found")


async def test_a_profile_is_deleted(client, alice) -> None:
    await put_profile(client, alice)
    assert (await client.delete(PROFILE, headers=alice.headers)).status_code == 204
    assert (await client.get(PROFILE, headers=alice.headers)).status_code == 404
    again = await client.delete(PROFILE, headers=alice.headers)
    assert (again.status_code, problem_type(again)) == (404, "matching-profile-not-found")


async def test_eighteen_today_is_an_adult(client, alice) -> None:
    made = await put_profile(client, alice, birth_date=years_ago(18).isoformat())
    assert made["age"] == 18


async def test_under_eighteen_is_refused(client, alice) -> None:
    refused = await client.put(
        PROFILE, headers=alice.headers, json=profile(birth_date=years_ago(18, days=1).isoformat())
    )
    assert (refused.status_code, problem_type(refused)) == (422, "matching-too-young")
    assert (await client.get(PROFILE, headers=alice.headers)).status_code == 404


async def test_the_database_refuses_a_minor_whatever_the_path(client, alice, runtime) -> None:
    await put_profile(client, alice)
    with pytest.raises(IntegrityError, match=r"ck_profiles_adult|adults"):
        async with user_transaction(runtime.engine, alice.user_id) as db:
            await db.execute(
                text("UPDATE matching.profiles SET birth_date = current_date - 365 WHERE user_id = :u"),
                {"u": alice.user_id},
            )


@pytest.mark.parametrize(
    "changes",
    [
        {"gender": "robot"},
        {"gender": None},
        {"birth_date": "yesterday"},
        {"birth_date": "1899-12-31"},
        {"bio": "x" * 501},
        {"interests": ["x" * 51]},
        {"interests": [""]},
        {"interests": [f"i{n}" for n in range(31)]},
        {"latitude": 91},
        {"longitude": -180.5},
        {"latitude": 10, "longitude": ...},
        {"latitude": ..., "longitude": 10},
        {"latitude": "48.8"},
        {"city": "x" * 101},
        {"city": ""},
        {"pref_genders": ["cat"]},
        {"pref_age_min": 17},
        {"pref_age_max": 121},
        {"pref_age_min": 40, "pref_age_max": 30},
        {"pref_distance_km": 0},
        {"pref_distance_km": 20001},
        {"is_active": "yes"},
        {"name": "Alice"},
    ],
)
async def test_bad_profiles_are_refused(client, alice, changes) -> None:
    refused = await client.put(PROFILE, headers=alice.headers, json=profile(**changes))
    assert refused.status_code == 422, refused.text
    assert problem_type(refused) == "validation-error"


async def test_the_profile_shows_the_persons_profile_photos_in_order(client, alice) -> None:
    await put_profile(client, alice)
    ids = [(await image(client, alice, name=f"p{n}.png"))["id"] for n in range(3)]
    for position, file_id in enumerate((ids[2], ids[0], ids[1]), start=1):
        placed = await client.put(
            f"/v1/media/profile-photos/{position}", headers=alice.headers, json={"file_id": file_id}
        )
        assert placed.status_code == 200, placed.text

    assert (await client.get(PROFILE, headers=alice.headers)).json()["photos"] == [ids[2], ids[0], ids[1]]
    assert (await client.delete(f"/v1/media/{ids[0]}", headers=alice.headers)).status_code == 204
    assert (await client.get(PROFILE, headers=alice.headers)).json()["photos"] == [ids[2], ids[1]]


async def test_others_see_an_age_and_a_distance_only(client, alice, bob) -> None:
    await put_profile(client, alice)
    await put_profile(client, bob, gender="man", latitude=LONDON[0], longitude=LONDON[1], city="London")
    photo = (await image(client, alice))["id"]
    await client.put("/v1/media/profile-photos/1", headers=alice.headers, json={"file_id": photo})
    card = await client.get(f"/v1/matching/profiles/{alice.user_id}", headers=bob.headers)
    assert card.status_code == 200, card.text
    assert card.json() == {
        "user_id": alice.user_id,
        "age": 30,
        "gender": "woman",
        "bio": "Hiking and **jazz**.",
        "interests": ["hiking", "jazz"],
        "distance_km": round(distance_km(*PARIS, *LONDON)),
        "photos": [photo],
    }
    assert 340 <= card.json()["distance_km"] <= 345


async def test_no_distance_without_both_locations(client, alice, bob) -> None:
    await put_profile(client, alice)
    await put_profile(client, bob, gender="man", latitude=..., longitude=...)
    card = await client.get(f"/v1/matching/profiles/{alice.user_id}", headers=bob.headers)
    assert card.json()["distance_km"] is None


async def test_ones_own_card_has_no_distance(client, alice) -> None:
    await put_profile(client, alice)
    card = await client.get(f"/v1/matching/profiles/{alice.user_id}", headers=alice.headers)
    assert card.status_code == 200 and card.json()["distance_km"] is None


async def test_an_inactive_profile_is_not_shown(client, alice, bob) -> None:
    await put_profile(client, alice, is_active=False)
    await put_profile(client, bob, gender="man")
    hidden = await client.get(f"/v1/matching/profiles/{alice.user_id}", headers=bob.headers)
    assert (hidden.status_code, problem_type(hidden)) == (404, "matching-profile-not-found")


async def test_a_card_needs_a_profile_of_ones_own(client, alice, bob) -> None:
    await put_profile(client, alice)
    hidden = await client.get(f"/v1/matching/profiles/{alice.user_id}", headers=bob.headers)
    assert (hidden.status_code, problem_type(hidden)) == (404, "matching-profile-not-found")


async def test_a_block_hides_the_card_both_ways(client, alice, bob) -> None:
    await put_profile(client, alice)
    await put_profile(client, bob, gender="man")
    await block(client, alice, bob)
    for viewer, owner in ((bob, alice), (alice, bob)):
        hidden = await client.get(f"/v1/matching/profiles/{owner.user_id}", headers=viewer.headers)
        assert (hidden.status_code, problem_type(hidden)) == (404, "matching-profile-not-found")


async def test_an_unknown_or_malformed_id_is_not_found_or_refused(client, alice) -> None:
    await put_profile(client, alice)
    missing = await client.get("/v1/matching/profiles/0190f000-0000-7000-8000-000000000000", headers=alice.headers)
    assert missing.status_code == 404
    assert (await client.get("/v1/matching/profiles/nope", headers=alice.headers)).status_code == 422


async def test_signing_in_is_needed(client) -> None:
    for method, path in (("GET", PROFILE), ("PUT", PROFILE), ("DELETE", PROFILE)):
        assert (await client.request(method, path, json={})).status_code == 401
