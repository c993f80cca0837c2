"""The extended profile parts (GET/PUT/DELETE /v1/profile/parts/{part}, GET
/v1/users/{user_id}/parts/{part}) and the record of sensitive access
(GET /v1/profile/sensitive-access)."""

from __future__ import annotations

import json

import pytest

from tests.social.parts_support import (
    block,
    make_contacts,
    sensitive_access_rows,
    set_visibility,
)
from tests.support import problem_type

pytestmark = pytest.mark.module_database

PARTS = ["demographics", "employment", "health", "financials", "background"]
SAMPLES = {
    "demographics": {
        "preferred_name": "Ali",
        "pronouns": "she/her",
        "birthdate": "1990-04-01",
        "relationship_status": "separated",
        "number_of_children": 2,
        "city": "Lyon",
        "country": "fr",
    },
    "employment": {
        "employment_status": "employed",
        "occupation": "Nurse",
        "work_schedule": "shifts",
        "commute_minutes": 35,
        "works_remotely": False,
    },
    "health": {"physical_conditions": "Asthma", "treatment": "Inhaler, as needed"},
    "financials": {
        "income_range": "50k_75k",
        "housing_status": "rent",
        "monthly_housing_cost": "950.00",
        "child_support_status": "receives",
        "child_support_amount": 400,
        "currency": "eur",
    },
    "background": {"culture": "French-Moroccan", "education_level": "bachelor", "languages": ["fr", "ar", "en-GB"]},
}


def own(part: str) -> str:
    return f"/v1/profile/parts/{part}"


def theirs(persona, part: str) -> str:
    return f"/v1/users/{persona.user_id}/parts/{part}"


# The owner


@pytest.mark.parametrize("part", PARTS)
async def test_a_part_never_saved_reads_empty(client, alice, part):
    body = (await client.get(own(part), headers=alice.headers)).json()

    assert body["user_id"] == alice.user_id
    assert body["updated_at"] is None
    assert {key: value for key, value in body.items() if value not in (None, [])} == {"user_id": alice.user_id}


@pytest.mark.parametrize("part", PARTS)
async def test_put_saves_the_part_and_get_reads_it_back(client, alice, part):
    saved = await client.put(own(part), headers=alice.headers, json=SAMPLES[part])
    assert saved.status_code == 200, saved.text

    body = (await client.get(own(part), headers=alice.headers)).json()

    assert body == saved.json()
    assert body["updated_at"] is not None
    for field in SAMPLES[part]:
        assert body[field] is not None


async def test_values_are_normalised(client, alice):
    await client.put(own("demographics"), headers=alice.headers, json={"country": "fr", "city": "  Lyon "})
    await client.put(own("financials"), headers=alice.headers, json={"currency": "eur", "child_support_amount": 400})

    demographics = (await client.get(own("demographics"), headers=alice.headers)).json()
    financials = (await client.get(own("financials"), headers=alice.headers)).json()

    assert (demographics["country"], demographics["city"]) == ("FR", "Lyon")
    assert (financials["currency"], financials["child_support_amount"]) == ("EUR", "400.00")


async def test_put_replaces_the_whole_part(client, alice):
    await client.put(own("employment"), headers=alice.headers, json={"occupation": "Nurse", "commute_minutes": 20})

    body = (await client.put(own("employment"), headers=alice.headers, json={"occupation": "Midwife"})).json()

    assert (body["occupation"], body["commute_minutes"]) == ("Midwife", None)


async def test_background_languages_keep_their_order_without_repeats(client, alice):
    body = (await client.put(own("background"), headers=alice.headers, json={"languages": ["fr", "en", "fr"]})).json()

    assert body["languages"] == ["fr", "en"]


@pytest.mark.parametrize("part", PARTS)
async def test_delete_erases_the_part(client, alice, part):
    await client.put(own(part), headers=alice.headers, json=SAMPLES[part])

    deleted = await client.delete(own(part), headers=alice.headers)

    assert deleted.status_code == 204
    assert (await client.get(own(part), headers=alice.headers)).json()["updated_at"] is None


async def test_parts_need_a_signed_in_caller(client):
    response = await client.get(own("demographics"))

    assert response.status_code == 401
    assert problem_type(response) == "unauthenticated"


# Bad input


@pytest.mark.parametrize(
    ("part", "body"),
    [
        ("demographics", {"preferred_name": "x" * 101}),
        ("demographics", {"preferred_name": ""}),
        ("demographics", {"preferred_name": "two\nlines"}),
        ("demographics", {"birthdate": "2999-01-01"}),
        ("demographics", {"birthdate": "1850-01-01"}),
        ("demographics", {"birthdate": "yesterday"}),
        ("demographics", {"number_of_children": "many"}),
        ("demographics", {"number_of_children": -1}),
        ("demographics", {"number_of_children": 10**30}),
        ("demographics", {"country": "France"}),
        ("demographics", {"relationship_status": "complicated"}),
        ("demographics", {"unknown_field": 1}),
        ("demographics", {"city": "nul\u0000byte"}),
        ("employment", {"commute_minutes": 601}),
        ("employment", {"works_remotely": "sometimes"}),
        ("employment", {"schedule_notes": "x" * 501}),
        ("health", {"physical_conditions": "x" * 2001}),
        ("health", {"accessibility_needs": "x" * 1001}),
        ("health", {"treatment": "\ud800"}),
        ("health", {"treatment": ["a list"]}),
        ("financials", {"monthly_housing_cost": -1}),
        ("financials", {"monthly_housing_cost": "12.345"}),
        ("financials", {"monthly_housing_cost": 1e308}),
        ("financials", {"monthly_housing_cost": "NaN"}),
        ("financials", {"currency": "euro"}),
        ("financials", {"income_range": "lots"}),
        ("background", {"languages": ["not a tag"]}),
        ("background", {"languages": [f"l{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(21)]}),
        ("background", {"languages": "fr"}),
        ("background", {"education_level": "phd"}),
        ("background", {"culture": "x" * 201}),
    ],
)
async def test_bad_fields_are_refused_with_422(client, alice, part, body):
    # Encoded here: an unpaired surrogate travels only as a JSON escape.
    response = await client.put(
        own(part), headers={**alice.headers, "content-type": "application/json"}, content=json.dumps(body)
    )

    assert response.status_code == 422, response.text
    assert problem_type(response) == "validation-error"


async def test_a_body_that_is_not_json_is_refused(client, alice):
    response = await client.put(
        own("demographics"), headers={**alice.headers, "content-type": "application/json"}, content=b"{not json"
    )

    assert response.status_code == 400
    assert problem_type(response) == "malformed-json"


async def test_a_body_that_is_not_an_object_is_refused(client, alice):
    response = await client.put(own("demographics"), headers=alice.headers, json=["preferred_name"])

    assert response.status_code == 422
    assert problem_type(response) == "validation-error"


@pytest.mark.parametrize("path", ["/v1/profile/parts/hobbies", "/v1/profile/parts/", "/v1/profile/parts/HEALTH"])
async def test_an_unknown_part_is_not_found(client, alice, path):
    response = await client.get(path, headers=alice.headers)

    assert response.status_code == 404
    assert problem_type(response) == "not-found"


# Others


async def test_anyone_signed_in_reads_the_parts_of_a_public_profile(client, alice, bob):
    await client.put(own("demographics"), headers=alice.headers, json=SAMPLES["demographics"])

    response = await client.get(theirs(alice, "demographics"), headers=bob.headers)

    assert response.status_code == 200
    assert response.json()["preferred_name"] == "Ali"


async def test_a_part_not_filled_in_reads_empty_to_others(client, alice, bob):
    response = await client.get(theirs(alice, "employment"), headers=bob.headers)

    assert response.status_code == 200
    assert (response.json()["occupation"], response.json()["updated_at"]) == (None, None)


async def test_only_contacts_read_the_parts_of_a_contacts_only_profile(client, runtime, alice, bob, mallory):
    await client.put(own("background"), headers=alice.headers, json=SAMPLES["background"])
    await set_visibility(runtime, alice, "contacts")
    await make_contacts(runtime, alice, bob)

    as_bob = await client.get(theirs(alice, "background"), headers=bob.headers)
    as_mallory = await client.get(theirs(alice, "background"), headers=mallory.headers)

    assert as_bob.json()["culture"] == "French-Moroccan"
    assert as_mallory.status_code == 404
    assert problem_type(as_mallory) == "profile-part-not-found"


async def test_nobody_else_reads_the_parts_of_a_private_profile(client, runtime, alice, bob):
    await client.put(own("demographics"), headers=alice.headers, json=SAMPLES["demographics"])
    await make_contacts(runtime, alice, bob)
    await set_visibility(runtime, alice, "private")

    response = await client.get(theirs(alice, "demographics"), headers=bob.headers)

    assert response.status_code == 404
    assert problem_type(response) == "profile-part-not-found"


async def test_a_blocked_person_finds_no_part_though_the_profile_is_public(client, runtime, alice, mallory):
    """As for a private profile: absent, not an empty row that would tell of the block."""
    await client.put(own("demographics"), headers=alice.headers, json=SAMPLES["demographics"])
    await block(runtime, alice, mallory)

    response = await client.get(theirs(alice, "demographics"), headers=mallory.headers)

    assert (response.status_code, problem_type(response)) == (404, "profile-part-not-found")


async def test_the_blocker_reads_nothing_of_the_person_blocked_either(client, runtime, alice, mallory):
    await client.put(own("employment"), headers=mallory.headers, json=SAMPLES["employment"])
    await block(runtime, alice, mallory)

    response = await client.get(theirs(mallory, "employment"), headers=alice.headers)

    assert response.json()["occupation"] is None


@pytest.mark.parametrize("part", ["health", "financials"])
async def test_sensitive_parts_have_no_route_for_others(client, alice, bob, part):
    await client.put(own(part), headers=alice.headers, json=SAMPLES[part])

    response = await client.get(theirs(alice, part), headers=bob.headers)

    assert response.status_code == 404
    assert "Asthma" not in response.text and "950.00" not in response.text


async def test_an_unknown_user_has_no_parts(client, alice):
    response = await client.get(
        "/v1/users/0190a5e0-0000-7000-8000-000000000000/parts/demographics", headers=alice.headers
    )

    assert response.status_code == 404
    assert problem_type(response) == "profile-part-not-found"


async def test_a_user_id_that_is_not_a_uuid_is_refused(client, alice):
    response = await client.get("/v1/users/alice/parts/demographics", headers=alice.headers)

    assert response.status_code == 422
    assert problem_type(response) == "validation-error"


# The record of sensitive access


async def test_reading_health_is_recorded_with_the_fields_read(client, runtime, alice):
    await client.put(own("health"), headers=alice.headers, json=SAMPLES["health"])

    await client.get(own("health"), headers=alice.headers)

    read = (await sensitive_access_rows(runtime, alice))[-1]
    assert (read.action, read.table_name) == ("read", "social.user_health_context")
    assert str(read.accessed_by) == alice.user_id
    assert read.fields == ["physical_conditions", "treatment"]


async def test_reading_an_empty_financial_part_is_recorded_too(client, runtime, alice):
    await client.get(own("financials"), headers=alice.headers)

    rows = await sensitive_access_rows(runtime, alice)

    assert [(row.action, row.table_name, row.fields) for row in rows] == [("read", "social.user_financials", [])]


async def test_writes_are_recorded_with_the_fields_changed_never_the_values(client, runtime, alice):
    await client.put(own("financials"), headers=alice.headers, json={"income_range": "under_25k"})
    await client.put(own("financials"), headers=alice.headers, json={"income_range": "under_25k", "debt_notes": "car"})
    await client.put(own("financials"), headers=alice.headers, json={"income_range": "under_25k", "debt_notes": "car"})
    await client.delete(own("financials"), headers=alice.headers)

    rows = await sensitive_access_rows(runtime, alice)

    assert [(row.action, row.fields) for row in rows] == [
        ("write", ["income_range"]),
        ("write", ["debt_notes"]),
        ("delete", ["debt_notes", "income_range"]),
    ]
    assert "car" not in str(rows) and "under_25k" not in str(rows)


async def test_non_sensitive_parts_are_not_recorded(client, runtime, alice, bob):
    await client.put(own("demographics"), headers=alice.headers, json=SAMPLES["demographics"])
    await client.get(own("demographics"), headers=alice.headers)
    await client.get(theirs(alice, "demographics"), headers=bob.headers)

    assert await sensitive_access_rows(runtime, alice) == []


async def test_the_owner_lists_who_accessed_their_sensitive_parts_newest_first(client, alice):
    await client.put(own("health"), headers=alice.headers, json=SAMPLES["health"])
    await client.get(own("health"), headers=alice.headers)
    await client.get(own("financials"), headers=alice.headers)

    first = (await client.get("/v1/profile/sensitive-access", headers=alice.headers, params={"limit": 2})).json()
    rest = (
        await client.get(
            "/v1/profile/sensitive-access", headers=alice.headers, params={"limit": 2, "cursor": first["next"]}
        )
    ).json()

    assert [(item["action"], item["table_name"]) for item in first["items"] + rest["items"]] == [
        ("read", "social.user_financials"),
        ("read", "social.user_health_context"),
        ("write", "social.user_health_context"),
    ]
    assert rest["next"] is None
    assert {item["accessed_by"] for item in first["items"]} == {alice.user_id}


async def test_nobody_else_sees_the_record(client, alice, bob):
    await client.get(own("health"), headers=alice.headers)

    response = await client.get("/v1/profile/sensitive-access", headers=bob.headers)

    assert response.json()["items"] == []


async def test_a_bad_cursor_is_refused(client, alice):
    response = await client.get("/v1/profile/sensitive-access", headers=alice.headers, params={"cursor": "!!"})

    assert response.status_code == 400
    assert problem_type(response) == "invalid-cursor"


# API keys


async def _api_key_headers(client, persona) -> dict[str, str]:
    created = await client.post("/v1/auth/api-keys", headers=persona.headers, json={"name": "script"})
    return {"Authorization": f"Bearer {created.json()['key']}"}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize("part", ["health", "financials"])
async def test_an_api_key_cannot_reach_sensitive_parts(client, runtime, alice, part, method):
    headers = await _api_key_headers(client, alice)

    response = await client.request(method, own(part), headers=headers, json={} if method == "PUT" else None)

    assert response.status_code == 403
    assert problem_type(response) == "session-required"
    assert await sensitive_access_rows(runtime, alice) == []


async def test_an_api_key_reaches_the_other_parts(client, alice):
    headers = await _api_key_headers(client, alice)

    response = await client.put(own("employment"), headers=headers, json={"occupation": "Nurse"})

    assert response.status_code == 200
    assert response.json()["occupation"] == "Nurse"
