"""Devices with encryption keys: register (`POST /v1/encryption/devices`), list, revoke, replace the
identity or the signed prekey, upload one-time prekeys, and fetch someone's key bundles;
every bad input a 4xx that says what is wrong."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rapport.kernel.runtime import Runtime
from tests.encryption.support import b64, device_keys, new_device, open_encrypted, prekeys, register, signed_prekey
from tests.messaging.messages_support import events_of
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

DEVICES = "/v1/encryption/devices"


async def test_a_device_is_registered_with_its_public_keys(client: httpx.AsyncClient, alice: Persona) -> None:
    body = new_device("Alice's phone", one_time=3)
    response = await client.post(DEVICES, json=body, headers=alice.headers)
    assert response.status_code == 201, response.text
    device = response.json()
    assert (device["name"], device["identity_key"], device["signing_key"]) == (
        "Alice's phone",
        body["identity_key"],
        body["signing_key"],
    )
    assert device["signed_prekey"] == body["signed_prekey"]
    assert device["one_time_prekeys"] == 3


async def test_the_list_holds_the_keyed_devices_not_those_for_notifications(
    client: httpx.AsyncClient, alice: Persona
) -> None:
    keyed = await register(client, alice, "laptop")
    plain = await client.post(
        "/v1/devices", json={"name": "tablet", "device_type": "tablet", "platform": "android"}, headers=alice.headers
    )
    assert plain.status_code == 201, plain.text
    listed = await client.get(DEVICES, headers=alice.headers)
    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json()["items"]] == [keyed]
    # A body for a notification device is no device with keys.
    wrong = await client.post(DEVICES, json={"name": "tablet", "device_type": "tablet"}, headers=alice.headers)
    assert wrong.status_code == 422, wrong.text


@pytest.mark.parametrize(
    ("change", "slug"),
    [
        ({"identity_key": b64(b"x" * 31)}, "validation-error"),
        ({"identity_key": "not base64!"}, "validation-error"),
        ({"identity_key": b64(b"x" * 32).rstrip("=") + "A"}, "validation-error"),
        ({"signing_key": b64(b"y" * 33)}, "validation-error"),
        ({"name": ""}, "validation-error"),
        ({"name": "n" * 101}, "validation-error"),
        ({"one_time_prekeys": prekeys(201)}, "validation-error"),
        ({"one_time_prekeys": [{"key_id": 1, "public_key": b64(b"k" * 32)}] * 2}, "validation-error"),
        ({"one_time_prekeys": [{"key_id": -1, "public_key": b64(b"k" * 32)}]}, "validation-error"),
        (
            {"signed_prekey": {"key_id": 1, "public_key": b64(b"p" * 32), "signature": b64(b"s" * 63)}},
            "validation-error",
        ),
        (
            {"signed_prekey": {"key_id": 1, "public_key": b64(b"p" * 32), "signature": b64(b"s" * 64)}},
            "invalid-prekey-signature",
        ),
        ({"extra": 1}, "validation-error"),
    ],
)
async def test_bad_keys_are_refused(
    client: httpx.AsyncClient, alice: Persona, change: dict[str, Any], slug: str
) -> None:
    response = await client.post(DEVICES, json={**new_device(), **change}, headers=alice.headers)
    assert response.status_code == 422, response.text
    assert problem_type(response) == slug


async def test_a_signature_by_another_key_does_not_verify(client: httpx.AsyncClient, alice: Persona) -> None:
    body = new_device()
    body["signed_prekey"] = signed_prekey(Ed25519PrivateKey.generate())
    response = await client.post(DEVICES, json=body, headers=alice.headers)
    assert problem_type(response) == "invalid-prekey-signature"


async def test_revoking_a_device_takes_its_keys(client: httpx.AsyncClient, alice: Persona, bob: Persona) -> None:
    device = await register(client, alice)
    assert (await client.delete(f"{DEVICES}/{device}", headers=bob.headers)).status_code == 404
    assert (await client.delete(f"{DEVICES}/{device}", headers=alice.headers)).status_code == 204
    assert (await client.delete(f"{DEVICES}/{device}", headers=alice.headers)).status_code == 404
    bundles = await client.post(f"/v1/users/{alice.user_id}/key-bundles", headers=bob.headers)
    assert bundles.json()["devices"] == []


async def test_one_time_prekeys_are_added_and_counted(client: httpx.AsyncClient, alice: Persona) -> None:
    device = await register(client, alice, one_time=2)
    added = await client.post(
        f"{DEVICES}/{device}/one-time-prekeys", json={"keys": prekeys(3, start=100)}, headers=alice.headers
    )
    assert added.status_code == 200, added.text
    assert added.json() == {"one_time_prekeys": 5}
    again = await client.post(
        f"{DEVICES}/{device}/one-time-prekeys", json={"keys": prekeys(1, start=101)}, headers=alice.headers
    )
    assert (again.status_code, problem_type(again)) == (409, "prekey-exists")
    empty = await client.post(f"{DEVICES}/{device}/one-time-prekeys", json={"keys": []}, headers=alice.headers)
    assert empty.status_code == 422


async def test_the_signed_prekey_rotates_under_the_same_signing_key(client: httpx.AsyncClient, alice: Persona) -> None:
    signing = Ed25519PrivateKey.generate()
    keys = device_keys(signing=signing)
    made = await client.post(DEVICES, json={"name": "phone", **keys}, headers=alice.headers)
    device = made.json()["id"]
    rotated = signed_prekey(signing, 2)
    response = await client.put(f"{DEVICES}/{device}/signed-prekey", json=rotated, headers=alice.headers)
    assert response.status_code == 200, response.text
    assert response.json()["signed_prekey"] == rotated
    forged = signed_prekey(Ed25519PrivateKey.generate(), 3)
    refused = await client.put(f"{DEVICES}/{device}/signed-prekey", json=forged, headers=alice.headers)
    assert problem_type(refused) == "invalid-prekey-signature"


async def test_a_new_identity_is_a_security_event_and_announced(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, bob: Persona
) -> None:
    device = await register(client, alice, one_time=4)
    room = await open_encrypted(client, alice, bob)
    keys = device_keys(one_time=2)
    response = await client.put(f"{DEVICES}/{device}/identity", json=keys, headers=alice.headers)
    assert response.status_code == 200, response.text
    assert (response.json()["identity_key"], response.json()["one_time_prekeys"]) == (keys["identity_key"], 2)
    changed = [e for e in await events_of(runtime, room) if e["type"] == "device.identity_changed"]
    assert [e["payload"] for e in changed] == [{"conversation_id": room, "user_id": alice.user_id, "device_id": device}]
    security = await client.get("/v1/auth/security-events", headers=alice.headers)
    assert security.status_code == 200, security.text
    [event] = [e for e in security.json()["items"] if e["event_type"] == "encryption_identity_changed"]
    assert event["details"] == {"device_id": device}


async def test_someone_elses_device_is_not_found(client: httpx.AsyncClient, alice: Persona, bob: Persona) -> None:
    device = await register(client, alice)
    attempts = [
        client.put(f"{DEVICES}/{device}/identity", json=device_keys(), headers=bob.headers),
        client.put(f"{DEVICES}/{device}/signed-prekey", json=device_keys()["signed_prekey"], headers=bob.headers),
        client.post(f"{DEVICES}/{device}/one-time-prekeys", json={"keys": prekeys(1)}, headers=bob.headers),
        client.get(f"{DEVICES}/{device}/envelopes", headers=bob.headers),
        client.post(f"{DEVICES}/{device}/envelopes/ack", json={"up_to": device}, headers=bob.headers),
    ]
    for attempt in attempts:
        response = await attempt
        assert (response.status_code, problem_type(response)) == (404, "encryption-device-not-found"), response.text


async def test_a_bundle_hands_each_one_time_prekey_out_once(
    client: httpx.AsyncClient, alice: Persona, bob: Persona
) -> None:
    body = new_device(one_time=2)
    made = await client.post(DEVICES, json=body, headers=bob.headers)
    device = made.json()["id"]
    given = []
    for _ in range(3):
        response = await client.post(f"/v1/users/{bob.user_id}/key-bundles", headers=alice.headers)
        assert response.status_code == 200, response.text
        [bundle] = response.json()["devices"]
        assert (bundle["device_id"], bundle["identity_key"]) == (device, body["identity_key"])
        assert bundle["signed_prekey"] == body["signed_prekey"]
        given.append(bundle["one_time_prekey"])
    assert given == [*body["one_time_prekeys"], None]


async def test_looking_at_bundles_hands_out_no_one_time_prekey(
    client: httpx.AsyncClient, alice: Persona, bob: Persona, carol: Persona
) -> None:
    body = new_device(one_time=1)
    device = (await client.post(DEVICES, json=body, headers=bob.headers)).json()["id"]
    for _ in range(3):
        looked = await client.get(f"/v1/users/{bob.user_id}/key-bundles", headers=alice.headers)
        assert looked.status_code == 200, looked.text
        [bundle] = looked.json()["devices"]
        assert (bundle["device_id"], bundle["identity_key"], bundle["one_time_prekey"]) == (
            device,
            body["identity_key"],
            None,
        )
    [claimed] = (await client.post(f"/v1/users/{bob.user_id}/key-bundles", headers=alice.headers)).json()["devices"]
    assert claimed["one_time_prekey"] == body["one_time_prekeys"][0]
    await client.put(f"/v1/blocks/{carol.user_id}", headers=bob.headers)
    hidden = await client.get(f"/v1/users/{bob.user_id}/key-bundles", headers=carol.headers)
    assert (hidden.status_code, problem_type(hidden)) == (404, "user-not-found")


async def test_fetching_ones_own_bundles_is_allowed(client: httpx.AsyncClient, alice: Persona) -> None:
    await register(client, alice)
    response = await client.post(f"/v1/users/{alice.user_id}/key-bundles", headers=alice.headers)
    assert response.status_code == 200
    assert len(response.json()["devices"]) == 1


async def test_a_low_supply_is_announced_to_its_owner(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, bob: Persona
) -> None:
    device = await register(client, bob, one_time=11)
    await client.post(f"/v1/users/{bob.user_id}/key-bundles", headers=alice.headers)
    assert [
        e for e in await events_of(runtime, bob.user_id, kind="user") if e["type"] == "encryption.prekeys_low"
    ] == []
    await client.post(f"/v1/users/{bob.user_id}/key-bundles", headers=alice.headers)
    low = [e for e in await events_of(runtime, bob.user_id, kind="user") if e["type"] == "encryption.prekeys_low"]
    assert [e["payload"] for e in low] == [{"device_id": device, "remaining": 9}]


async def test_bundles_of_a_blocked_or_unknown_person_are_not_found(
    client: httpx.AsyncClient, alice: Persona, bob: Persona, carol: Persona
) -> None:
    await register(client, bob)
    blocked = await client.put(f"/v1/blocks/{carol.user_id}", headers=bob.headers)
    assert blocked.status_code == 200, blocked.text
    by_carol = await client.post(f"/v1/users/{bob.user_id}/key-bundles", headers=carol.headers)
    of_carol = await client.post(f"/v1/users/{carol.user_id}/key-bundles", headers=bob.headers)
    unknown = await client.post("/v1/users/0192f0c0-0000-7000-8000-000000000000/key-bundles", headers=alice.headers)
    for response in (by_carol, of_carol, unknown):
        assert (response.status_code, problem_type(response)) == (404, "user-not-found"), response.text


async def test_key_changes_need_a_signed_in_session(client: httpx.AsyncClient, alice: Persona) -> None:
    device = await register(client, alice)
    key = await client.post("/v1/auth/api-keys", json={"name": "script"}, headers=alice.headers)
    assert key.status_code == 201, key.text
    headers = {"Authorization": f"Bearer {key.json()['key']}"}
    attempts = [
        client.post(DEVICES, json=new_device(), headers=headers),
        client.put(f"{DEVICES}/{device}/identity", json=device_keys(), headers=headers),
        client.put(f"{DEVICES}/{device}/signed-prekey", json=device_keys()["signed_prekey"], headers=headers),
        client.post(f"{DEVICES}/{device}/one-time-prekeys", json={"keys": prekeys(1, 50)}, headers=headers),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 403, response.text
