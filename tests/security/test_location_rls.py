"""Alice's whereabouts, attacked: through the API by mallory (a stranger), and through SQL
as `rapport_app` in mallory's context, in alice's own, and in nobody's, where PostgreSQL
itself must refuse whatever bug a query might have. A person reads only their own
locations, suspicious sign-ins and geofence events, and nobody writes another's; the IP
database is the worker role's alone.

Tables: location.ip_addresses, location.user_locations, location.suspicious_locations,
location.geofences, location.location_events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.location.support import LONDON, SYDNEY_IP, import_files, sign_in_from
from tests.security.messaging_sql import DENIED, POLICY, attempt, changed
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

TABLES = (
    "location.user_locations",
    "location.suspicious_locations",
    "location.geofences",
    "location.location_events",
)


@dataclass
class World:
    alice: Persona
    mallory: Persona
    location_id: str
    geofence_id: str
    event_id: str


@pytest.fixture
async def world(client, runtime, alice, mallory) -> World:
    """Alice has a geofence around London, entered it, then signed in from Sydney an
    hour later (impossible travel, flagged)."""
    await import_files(runtime)
    fence = await client.post(
        "/v1/geofences",
        headers=alice.headers,
        json={"name": "Home", "shape": "circle", "center": list(LONDON), "radius_m": 3000},
    )
    assert fence.status_code == 201, fence.text
    when = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    added = await client.post(
        "/v1/me/locations",
        headers=alice.headers,
        json={"location_type": "gps", "latitude": LONDON[0], "longitude": LONDON[1], "captured_at": when},
    )
    assert added.status_code == 201, added.text
    [event] = added.json()["events"]
    await sign_in_from(runtime, alice, SYDNEY_IP)
    suspicious = (await client.get("/v1/me/locations/suspicious", headers=alice.headers)).json()["items"]
    assert [flag["reason"] for flag in suspicious] == ["impossible_travel"]
    return World(alice, mallory, added.json()["location"]["id"], fence.json()["id"], event["id"])


async def test_mallory_reads_none_of_alices_whereabouts_through_the_api(client, world):
    for path in ("/v1/me/locations", "/v1/me/locations/suspicious", "/v1/me/location-events", "/v1/geofences"):
        answer = await client.get(path, headers=world.mallory.headers)
        assert answer.status_code == 200 and answer.json()["items"] == [], (path, answer.text)
    # Alice sees hers.
    assert len((await client.get("/v1/me/locations", headers=world.alice.headers)).json()["items"]) == 2


async def test_mallory_cannot_change_alices_geofence_through_the_api(client, world):
    fence = f"/v1/geofences/{world.geofence_id}"
    patched = await client.patch(fence, headers=world.mallory.headers, json={"is_active": False})
    deleted = await client.delete(fence, headers=world.mallory.headers)

    for answer in (patched, deleted):
        assert answer.status_code == 404 and problem_type(answer) == "geofence-not-found"
    [still] = (await client.get("/v1/geofences", headers=world.alice.headers)).json()["items"]
    assert still["is_active"] is True


@pytest.mark.parametrize("table", TABLES)
async def test_mallory_reads_nothing_of_alices_through_sql(app_engine, world, table):
    assert await attempt(app_engine, world.mallory, f"SELECT count(*) FROM {table}") == 0
    assert await attempt(app_engine, None, f"SELECT count(*) FROM {table}") == 0
    assert await attempt(app_engine, world.alice, f"SELECT count(*) FROM {table}") >= 1


async def test_the_ip_database_is_nobodys_to_read_or_write_through_the_server_role(app_engine, world):
    for who in (world.alice, world.mallory, None):
        assert await attempt(app_engine, who, "SELECT count(*) FROM location.ip_addresses") == DENIED
        assert (
            await attempt(
                app_engine,
                who,
                "INSERT INTO location.ip_addresses (id, network, ip_version, source, is_tor, risk_score)"
                " VALUES (gen_random_uuid(), '192.0.2.10/32', 4, 'mmdb', true, 100)",
            )
            == DENIED
        )


async def test_mallory_writes_no_location_of_alices(app_engine, world):
    alice = world.alice.user_id
    insert = (
        "INSERT INTO location.user_locations (id, user_id, location_type, latitude, longitude)"
        " VALUES (gen_random_uuid(), CAST(:user AS uuid), 'gps', 1, 1) RETURNING 1"
    )
    assert await attempt(app_engine, world.mallory, insert, user=alice) == POLICY
    assert await attempt(app_engine, None, insert, user=alice) == POLICY
    # Nobody changes or removes a location, not even its person.
    for who in (world.mallory, world.alice):
        update = "UPDATE location.user_locations SET latitude = 0 WHERE id = CAST(:id AS uuid) RETURNING 1"
        remove = "DELETE FROM location.user_locations WHERE id = CAST(:id AS uuid) RETURNING 1"
        assert await changed(app_engine, who, update, id=world.location_id) == DENIED
        assert await changed(app_engine, who, remove, id=world.location_id) == DENIED


async def test_alice_cannot_forge_a_sign_in_location_of_her_own(app_engine, world):
    forged = (
        "INSERT INTO location.user_locations (id, user_id, location_type, latitude, longitude, ip_address)"
        " VALUES (gen_random_uuid(), CAST(:user AS uuid), 'ip_based', 1, 1, '192.0.2.1') RETURNING 1"
    )
    assert await attempt(app_engine, world.alice, forged, user=world.alice.user_id) == POLICY


async def test_nobody_writes_a_suspicious_location(app_engine, world):
    for who in (world.alice, world.mallory):
        inserted = await attempt(
            app_engine,
            who,
            "INSERT INTO location.suspicious_locations (id, user_id, reason, ip_address, sign_in_method)"
            " VALUES (gen_random_uuid(), CAST(:user AS uuid), 'risky_address', '192.0.2.1', 'password')",
            user=who.user_id,
        )
        assert inserted == DENIED
        removed = await changed(app_engine, who, "DELETE FROM location.suspicious_locations RETURNING 1")
        assert removed == DENIED


async def test_mallory_writes_no_geofence_or_event_of_alices(app_engine, world):
    mallory, alice = world.mallory, world.alice.user_id
    fence = (
        "INSERT INTO location.geofences (id, owner_id, name, shape, center_latitude, center_longitude, radius_m)"
        " VALUES (gen_random_uuid(), CAST(:owner AS uuid), 'x', 'circle', 0, 0, 10)"
    )
    assert await attempt(app_engine, mallory, fence, owner=alice) == POLICY
    # A platform geofence is an administrator's to make.
    platform = fence.replace("CAST(:owner AS uuid)", "NULL")
    assert await attempt(app_engine, mallory, platform) == POLICY
    update = "UPDATE location.geofences SET radius_m = 1 WHERE id = CAST(:id AS uuid) RETURNING 1"
    assert await changed(app_engine, mallory, update, id=world.geofence_id) == 0
    assert await changed(app_engine, mallory, "DELETE FROM location.geofences RETURNING 1") == 0
    event = (
        "INSERT INTO location.location_events"
        " (id, user_id, geofence_id, user_location_id, event_type, latitude, longitude, occurred_at)"
        " VALUES (gen_random_uuid(), CAST(:user AS uuid), CAST(:fence AS uuid), CAST(:location AS uuid),"
        " 'exit', 0, 0, now())"
    )
    ids: dict[str, Any] = {"fence": world.geofence_id, "location": world.location_id}
    # Not for alice, and not for herself with alice's geofence and location either.
    assert await attempt(app_engine, mallory, event, user=alice, **ids) == POLICY
    assert await attempt(app_engine, mallory, event, user=mallory.user_id, **ids) == POLICY
    remove = "DELETE FROM location.location_events WHERE id = CAST(:id AS uuid) RETURNING 1"
    assert await changed(app_engine, mallory, remove, id=world.event_id) == DENIED
