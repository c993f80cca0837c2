"""Devices: register (POST /v1/devices), list, read and remove (GET, DELETE
/v1/devices/{device_id})."""

from __future__ import annotations

from uuid import UUID

import pytest
from sqlalchemy import insert

from rapport.kernel.db import system_transaction
from rapport.kernel.ids import uuid7
from rapport.social._devices import MAX_DEVICES
from rapport.social.models_parts import devices
from tests.support import problem_type

pytestmark = pytest.mark.module_database

DEVICES = "/v1/devices"
PHONE = {
    "name": "Alice's phone",
    "device_type": "mobile",
    "platform": "ios",
    "app_version": "1.4.0",
    "os_version": "18.1",
}


async def register(client, persona, **overrides):
    return await client.post(DEVICES, headers=persona.headers, json={**PHONE, **overrides})


async def test_registering_a_device_answers_201_with_it(client, alice):
    response = await register(client, alice)

    assert response.status_code == 201, response.text
    body = response.json()
    assert {key: body[key] for key in PHONE} == PHONE
    assert UUID(body["id"]).version == 7
    assert body["last_seen_at"] and body["created_at"]


async def test_registering_the_same_name_again_updates_that_device(client, alice):
    first = (await register(client, alice)).json()

    again = await register(client, alice, name="ALICE'S PHONE", app_version="1.5.0")

    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert (again.json()["name"], again.json()["app_version"]) == ("ALICE'S PHONE", "1.5.0")
    assert again.json()["last_seen_at"] >= first["last_seen_at"]
    assert len((await client.get(DEVICES, headers=alice.headers)).json()["items"]) == 1


async def test_two_people_may_name_their_devices_alike(client, alice, bob):
    await register(client, alice)

    response = await register(client, bob)

    assert response.status_code == 201


async def test_devices_are_listed_newest_first_page_by_page(client, alice):
    ids = [(await register(client, alice, name=f"device {n}")).json()["id"] for n in range(3)]

    first = (await client.get(DEVICES, headers=alice.headers, params={"limit": 2})).json()
    second = (await client.get(DEVICES, headers=alice.headers, params={"limit": 2, "cursor": first["next"]})).json()

    assert [d["id"] for d in first["items"] + second["items"]] == ids[::-1]
    assert second["next"] is None


async def test_a_device_is_read_by_id(client, alice):
    device = (await register(client, alice)).json()

    response = await client.get(f"{DEVICES}/{device['id']}", headers=alice.headers)

    assert response.status_code == 200
    assert response.json() == device


async def test_removing_a_device_forgets_it(client, alice):
    device = (await register(client, alice)).json()

    removed = await client.delete(f"{DEVICES}/{device['id']}", headers=alice.headers)

    assert removed.status_code == 204
    again = await client.get(f"{DEVICES}/{device['id']}", headers=alice.headers)
    assert again.status_code == 404
    assert problem_type(again) == "device-not-found"


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_an_unknown_device_is_not_found(client, alice, method):
    response = await client.request(method, f"{DEVICES}/{uuid7()}", headers=alice.headers)

    assert response.status_code == 404
    assert problem_type(response) == "device-not-found"


async def test_a_device_id_that_is_not_a_uuid_is_refused(client, alice):
    response = await client.delete(f"{DEVICES}/phone", headers=alice.headers)

    assert response.status_code == 422
    assert problem_type(response) == "validation-error"


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_someone_elses_device_is_not_found(client, alice, mallory, method):
    device = (await register(client, alice)).json()

    response = await client.request(method, f"{DEVICES}/{device['id']}", headers=mallory.headers)

    assert response.status_code == 404
    assert problem_type(response) == "device-not-found"
    assert (await client.get(f"{DEVICES}/{device['id']}", headers=alice.headers)).status_code == 200


async def test_nobody_lists_someone_elses_devices(client, alice, mallory):
    await register(client, alice)

    response = await client.get(DEVICES, headers=mallory.headers)

    assert response.json() == {"items": [], "next": None}


@pytest.mark.parametrize(
    "body",
    [
        {**PHONE, "device_type": "phone"},
        {**PHONE, "platform": "symbian"},
        {**PHONE, "name": ""},
        {**PHONE, "name": "   "},
        {**PHONE, "name": "x" * 101},
        {**PHONE, "name": "two\nlines"},
        {**PHONE, "name": 42},
        {**PHONE, "app_version": "1" * 41},
        {**PHONE, "os_version": "nul\u0000"},
        {**PHONE, "push_token": "abc"},
        {key: value for key, value in PHONE.items() if key != "platform"},
        {},
    ],
)
async def test_bad_registrations_are_refused_with_422(client, alice, body):
    response = await client.post(DEVICES, headers=alice.headers, json=body)

    assert response.status_code == 422, response.text
    assert problem_type(response) == "validation-error"


async def test_bad_list_parameters_are_refused(client, alice):
    too_many = await client.get(DEVICES, headers=alice.headers, params={"limit": 0})
    bad_cursor = await client.get(DEVICES, headers=alice.headers, params={"cursor": "not a cursor"})

    assert problem_type(too_many) == "validation-error"
    assert problem_type(bad_cursor) == "invalid-cursor"


async def test_an_account_has_a_bounded_number_of_devices(client, runtime, alice):
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            insert(devices),
            [
                {
                    "id": uuid7(),
                    "user_id": UUID(alice.user_id),
                    "name": f"old {n}",
                    "device_type": "web",
                    "platform": "web",
                }
                for n in range(MAX_DEVICES)
            ],
        )

    refused = await register(client, alice)
    updated = await register(client, alice, name="old 7")

    assert refused.status_code == 409
    assert problem_type(refused) == "too-many-devices"
    assert updated.status_code == 200


async def test_devices_need_a_signed_in_caller(client):
    response = await client.get(DEVICES)

    assert response.status_code == 401
