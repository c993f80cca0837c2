"""A person's locations through the API (distance from the previous one, keyset pages,
bad input refused), sign-ins located by address, impossible travel and risky addresses
(flag, security event, outbox event and notification intent, second factor), and
geofences entered and left."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pyotp
import pytest
from sqlalchemy import text

from rapport.identity.schemas import MfaChallenge, TokenPair
from rapport.kernel.db import system_transaction
from rapport.kernel.outbox import Event
from rapport.notifications._rules import intents_for
from tests.location.support import (
    LONDON,
    LONDON_IP,
    NEW_YORK,
    PARIS,
    PARIS_IP,
    SYDNEY,
    SYDNEY_IP,
    TOR_IP,
    VPN_IP,
    as_system,
    import_files,
    sign_in_from,
    user_id,
)
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database


def _at(point: tuple[float, float], *, ago: timedelta | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"location_type": "gps", "latitude": point[0], "longitude": point[1], **extra}
    if ago is not None:
        body["captured_at"] = (datetime.now(UTC) - ago).isoformat()
    return body


async def _add(client, persona: Persona, body: dict[str, Any]) -> dict[str, Any]:
    answer = await client.post("/v1/me/locations", headers=persona.headers, json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


# -- locations from devices ------------------------------------------------------------


async def test_a_location_is_measured_from_the_previous_one(client, alice):
    first = await _add(client, alice, _at(LONDON, ago=timedelta(hours=2), accuracy_m=20))
    second = await _add(client, alice, _at(PARIS, ago=timedelta(hours=1), accuracy_m=10))

    location = second["location"]
    assert first["location"]["previous_location_id"] is None and first["location"]["distance_km"] is None
    assert location["previous_location_id"] == first["location"]["id"]
    assert location["distance_km"] == pytest.approx(343.557, abs=0.01)
    assert location["seconds_since_previous"] == pytest.approx(3600, abs=5)
    assert location["speed_kmh"] == pytest.approx(343.6, abs=1)
    assert location["is_moving"] is True
    assert location["location_type"] == "gps" and location["accuracy_m"] == 10


@pytest.mark.parametrize(("location_type", "accuracy_m"), [("wifi", 40.0), ("cell_tower", 1500.0)])
async def test_a_wifi_or_cell_tower_location_is_accepted(client, alice, location_type, accuracy_m):
    gps = await _add(client, alice, _at(LONDON, ago=timedelta(hours=1), accuracy_m=10))

    added = await _add(client, alice, _at(PARIS, location_type=location_type, accuracy_m=accuracy_m))

    location = added["location"]
    assert (location["location_type"], location["accuracy_m"]) == (location_type, accuracy_m)
    assert location["previous_location_id"] == gps["location"]["id"]
    assert location["distance_km"] == pytest.approx(343.557, abs=0.01)
    [newest, _] = (await client.get("/v1/me/locations", headers=alice.headers)).json()["items"]
    assert (newest["id"], newest["location_type"]) == (location["id"], location_type)


async def test_locations_are_listed_newest_first_a_page_at_a_time(client, alice):
    made = [(await _add(client, alice, _at((51.0 + i / 100, 0.0))))["location"]["id"] for i in range(3)]

    first = (await client.get("/v1/me/locations?limit=2", headers=alice.headers)).json()
    rest = (await client.get(f"/v1/me/locations?limit=2&cursor={first['next']}", headers=alice.headers)).json()

    assert [item["id"] for item in first["items"] + rest["items"]] == made[::-1]
    assert rest["next"] is None


@pytest.mark.parametrize(
    ("body", "slug"),
    [
        ({"location_type": "gps", "latitude": 91, "longitude": 0}, "validation-error"),
        ({"location_type": "gps", "latitude": 0, "longitude": -180.5}, "validation-error"),
        ({"location_type": "gps", "latitude": "51.5", "longitude": 0}, "validation-error"),
        ({"location_type": "ip_based", "latitude": 1, "longitude": 1}, "validation-error"),
        ({"location_type": "satellite", "latitude": 1, "longitude": 1}, "validation-error"),
        ({"location_type": "gps", "latitude": 1, "longitude": 1, "accuracy_m": -1}, "validation-error"),
        ({"location_type": "gps", "latitude": 1}, "validation-error"),
        ({"location_type": "gps", "latitude": 1, "longitude": 1, "altitude": 3}, "validation-error"),
        ({"location_type": "gps", "latitude": 1, "longitude": 1, "captured_at": "yesterday"}, "validation-error"),
        (
            {"location_type": "gps", "latitude": 1, "longitude": 1, "captured_at": "2099-01-01T00:00:00Z"},
            "captured-at-out-of-range",
        ),
        (
            {"location_type": "gps", "latitude": 1, "longitude": 1, "captured_at": "2020-01-01T00:00:00Z"},
            "captured-at-out-of-range",
        ),
    ],
)
async def test_bad_locations_are_refused(client, alice, body, slug):
    answer = await client.post("/v1/me/locations", headers=alice.headers, json=body)

    assert answer.status_code == 422, answer.text
    assert problem_type(answer) == slug


async def test_locations_need_a_signed_in_person(client):
    answer = await client.get("/v1/me/locations")
    assert answer.status_code == 401
    assert (await client.get("/v1/me/locations?cursor=nonsense!", headers={})).status_code == 401


async def test_a_cursor_not_issued_here_is_refused(client, alice):
    answer = await client.get("/v1/me/locations?cursor=%%%", headers=alice.headers)
    assert answer.status_code == 400
    assert problem_type(answer) == "invalid-cursor"


# -- sign-ins ---------------------------------------------------------------------------


async def test_a_sign_in_from_a_known_address_becomes_a_location(client, runtime, alice):
    await import_files(runtime)

    pair = await sign_in_from(runtime, alice, LONDON_IP)

    assert isinstance(pair, TokenPair)
    [location] = (await client.get("/v1/me/locations", headers=alice.headers)).json()["items"]
    assert (location["location_type"], location["city"], location["country_code"]) == ("ip_based", "London", "GB")
    assert (location["ip_address"], location["accuracy_m"]) == (LONDON_IP, 5000)
    [[count]] = await as_system(
        runtime, "SELECT lookup_count FROM location.ip_addresses WHERE network = '192.0.2.0/25'"
    )
    assert count == 1
    assert (await client.get("/v1/me/locations/suspicious", headers=alice.headers)).json()["items"] == []


async def test_a_sign_in_from_an_unknown_address_records_nothing(client, runtime, alice):
    await import_files(runtime)

    await sign_in_from(runtime, alice, "10.9.8.7")

    assert (await client.get("/v1/me/locations", headers=alice.headers)).json()["items"] == []


async def test_a_plausible_journey_is_not_flagged(client, runtime, alice):
    await import_files(runtime)
    await _add(client, alice, _at(LONDON, ago=timedelta(hours=2)))

    await sign_in_from(runtime, alice, PARIS_IP)

    assert (await client.get("/v1/me/locations/suspicious", headers=alice.headers)).json()["items"] == []


async def _suspicious_events(runtime, persona: Persona) -> list[Event]:
    rows = await as_system(
        runtime,
        "SELECT position, scope_kind, scope_id, type, payload, actor_id, created_at FROM kernel.events"
        " WHERE scope_id = :id AND type = 'account.suspicious_sign_in' ORDER BY position",
        id=user_id(persona),
    )
    return [Event.model_validate(dict(row._mapping)) for row in rows]


async def test_impossible_travel_is_flagged_and_told(client, runtime, alice):
    await import_files(runtime)
    await _add(client, alice, _at(LONDON, ago=timedelta(hours=1), accuracy_m=50))
    runtime.settings.location_suspicious_second_factor = False
    try:
        answer = await sign_in_from(runtime, alice, SYDNEY_IP)
    finally:
        runtime.settings.location_suspicious_second_factor = True

    # With the hold turned off the sign-in goes through: it is only told of.
    assert isinstance(answer, TokenPair)
    [flag] = (await client.get("/v1/me/locations/suspicious", headers=alice.headers)).json()["items"]
    assert (flag["reason"], flag["ip_address"], flag["city"], flag["sign_in_method"]) == (
        "impossible_travel",
        SYDNEY_IP,
        "Sydney",
        "password",
    )
    assert flag["distance_km"] == pytest.approx(16994, abs=1)
    assert flag["speed_kmh"] > 16000 and flag["second_factor_required"] is False
    [event] = await as_system(
        runtime,
        "SELECT event_type, severity, details->>'reason' FROM auth.security_events WHERE user_id = :id"
        " AND event_type = 'suspicious_sign_in'",
        id=user_id(alice),
    )
    assert tuple(event) == ("suspicious_sign_in", "warning", "impossible_travel")
    [published] = await _suspicious_events(runtime, alice)
    assert published.payload["reasons"] == ["impossible_travel"] and published.payload["ip"] == SYDNEY_IP
    async with system_transaction(runtime.system_engine) as db:
        [intent] = await intents_for(db, published, connected=lambda users: set())
    assert (intent.user_id, intent.type, intent.category) == (user_id(alice), "security", "security")
    assert "Sydney" in intent.context["detail"]


async def test_the_speed_allows_for_the_accuracy_of_both_places(client, runtime, alice):
    """London to Paris in ten minutes is 2000 km/h as the crow flies; with the Paris
    network placed within 10 km and a fix within 340 km, it is within reach."""
    await import_files(runtime)
    await _add(client, alice, _at(LONDON, ago=timedelta(minutes=10), accuracy_m=340_000))

    await sign_in_from(runtime, alice, PARIS_IP)

    assert (await client.get("/v1/me/locations/suspicious", headers=alice.headers)).json()["items"] == []


async def test_the_speed_limit_is_a_setting(client, runtime, alice):
    await import_files(runtime)
    await _add(client, alice, _at(LONDON, ago=timedelta(hours=2)))
    runtime.settings.location_travel_max_kmh = 100.0
    try:
        await sign_in_from(runtime, alice, PARIS_IP)
    finally:
        runtime.settings.location_travel_max_kmh = 900.0

    [flag] = (await client.get("/v1/me/locations/suspicious", headers=alice.headers)).json()["items"]
    assert flag["reason"] == "impossible_travel"


async def test_a_sign_in_through_tor_is_a_risky_address(client, runtime, alice):
    await import_files(runtime)

    await sign_in_from(runtime, alice, TOR_IP)

    [flag] = (await client.get("/v1/me/locations/suspicious", headers=alice.headers)).json()["items"]
    assert (flag["reason"], flag["risk_score"], flag["city"]) == ("risky_address", 90, "New York")
    assert flag["details"]["is_tor"] is True
    [[severity]] = await as_system(
        runtime,
        "SELECT severity FROM auth.security_events WHERE user_id = :id AND event_type = 'suspicious_sign_in'",
        id=user_id(alice),
    )
    assert severity == "critical"
    assert len(await _suspicious_events(runtime, alice)) == 1


async def test_a_vpn_below_the_risk_threshold_is_not_flagged(client, runtime, alice):
    await import_files(runtime)

    await sign_in_from(runtime, alice, VPN_IP)

    assert (await client.get("/v1/me/locations/suspicious", headers=alice.headers)).json()["items"] == []


async def test_a_flagged_sign_in_of_a_two_factor_account_is_held_for_it(client, runtime, alice):
    await import_files(runtime)
    enrolment = (await client.post("/v1/auth/totp", headers=alice.headers)).json()
    totp = pyotp.TOTP(enrolment["secret"])
    confirmed = await client.post("/v1/auth/totp/confirm", headers=alice.headers, json={"code": totp.now()})
    assert confirmed.status_code == 200, confirmed.text

    answer = await sign_in_from(runtime, alice, TOR_IP)

    # Held for the authenticator app, not sent a code: the account has a second factor.
    assert isinstance(answer, MfaChallenge) and answer.factor == "totp"
    [flag] = (await client.get("/v1/me/locations/suspicious", headers=alice.headers)).json()["items"]
    assert flag["second_factor_required"] is True
    [published] = await _suspicious_events(runtime, alice)
    assert "held for your second factor" in published.payload["detail"]
    [[codes]] = await as_system(
        runtime, "SELECT count(*) FROM auth.otp_verifications WHERE user_id = :id", id=user_id(alice)
    )
    assert codes == 0


@contextlib.asynccontextmanager
async def _from(app, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    """An API client whose requests come from `ip`."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(ip, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://rapport.test") as http:
        yield http


async def _log_in(http: httpx.AsyncClient, persona: Persona) -> dict[str, Any]:
    answer = await http.post("/v1/auth/login", json={"email": persona.email, "password": persona.password})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def test_a_flagged_sign_in_without_two_factor_needs_the_mailed_code(app, client, runtime, mailbox, alice):
    await import_files(runtime)
    await _add(client, alice, _at(LONDON, ago=timedelta(hours=1), accuracy_m=50))
    async with _from(app, PARIS_IP) as paris:
        direct = await _log_in(paris, alice)
    assert "access_token" in direct  # London to Paris in an hour: plausible, no code
    mailed = len(mailbox.codes_to(alice.email))

    async with _from(app, SYDNEY_IP) as sydney:
        held = await _log_in(sydney, alice)  # Paris to Sydney at once: impossible
        assert (held["mfa_required"], held["factor"]) == (True, "email") and "access_token" not in held
        code = await mailbox.code_for(alice.email, count=mailed + 1)
        wrong = await sydney.post(
            "/v1/auth/login/step-up", json={"mfa_token": held["mfa_token"], "code": f"{(int(code) + 1) % 10**6:06d}"}
        )
        right = await sydney.post("/v1/auth/login/step-up", json={"mfa_token": held["mfa_token"], "code": code})
        again = await sydney.post("/v1/auth/login/step-up", json={"mfa_token": held["mfa_token"], "code": code})

    assert (wrong.status_code, problem_type(wrong)) == (400, "invalid-code")
    assert right.status_code == 200, right.text
    me = await client.get("/v1/auth/me", headers={"Authorization": f"Bearer {right.json()['access_token']}"})
    assert me.json()["id"] == alice.user_id
    assert (again.status_code, problem_type(again)) == (401, "invalid-token")
    [[attempts]] = await as_system(
        runtime,
        "SELECT attempts FROM auth.otp_verifications WHERE user_id = :id AND purpose = 'second_factor'",
        id=user_id(alice),
    )
    assert attempts == 2  # the wrong guess and the right one
    history = await as_system(
        runtime,
        "SELECT method, succeeded, failure_reason FROM auth.login_history WHERE user_id = :id AND ip_address = :ip"
        " ORDER BY created_at, id",
        id=user_id(alice),
        ip=SYDNEY_IP,
    )
    assert [tuple(row) for row in history] == [
        ("password+email_code", False, "invalid_step_up_code"),
        ("password+email_code", True, None),
    ]
    [flag] = (await client.get("/v1/me/locations/suspicious", headers=alice.headers)).json()["items"]
    assert flag["second_factor_required"] is True
    [published] = await _suspicious_events(runtime, alice)
    assert "held until the code we sent you is entered" in published.payload["detail"]


async def test_a_held_sign_in_tells_nothing_before_the_password_is_right(app, runtime, alice):
    await import_files(runtime)

    async with _from(app, TOR_IP) as tor:
        wrong = await tor.post("/v1/auth/login", json={"email": alice.email, "password": alice.password + "x"})
        nobody = await tor.post("/v1/auth/login", json={"email": "nobody@example.com", "password": alice.password})

    assert wrong.status_code == nobody.status_code == 401
    assert problem_type(wrong) == problem_type(nobody) == "invalid-credentials"
    [[codes]] = await as_system(runtime, "SELECT count(*) FROM auth.otp_verifications")
    assert codes == 0


async def test_a_step_up_challenge_is_not_completed_with_the_authenticator(app, runtime, alice):
    await import_files(runtime)

    async with _from(app, TOR_IP) as tor:
        held = await _log_in(tor, alice)
        totp = await tor.post("/v1/auth/login/totp", json={"mfa_token": held["mfa_token"], "code": "123456"})

    assert held["factor"] == "email"
    assert (totp.status_code, problem_type(totp)) == (401, "invalid-token")


# -- geofences --------------------------------------------------------------------------


async def _fence(client, persona: Persona, body: dict[str, Any]) -> dict[str, Any]:
    answer = await client.post("/v1/geofences", headers=persona.headers, json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def test_entering_and_leaving_a_circle(client, alice):
    fence = await _fence(client, alice, {"name": "Home", "shape": "circle", "center": list(LONDON), "radius_m": 2000})

    outside = await _add(client, alice, _at(PARIS, ago=timedelta(minutes=30)))
    inside = await _add(client, alice, _at((51.51, -0.13), ago=timedelta(minutes=20)))
    still_inside = await _add(client, alice, _at((51.508, -0.128), ago=timedelta(minutes=10)))
    left = await _add(client, alice, _at(PARIS))

    assert outside["events"] == [] and still_inside["events"] == []
    assert [(e["geofence_id"], e["event_type"]) for e in inside["events"]] == [(fence["id"], "enter")]
    assert [(e["geofence_id"], e["event_type"]) for e in left["events"]] == [(fence["id"], "exit")]
    events = (await client.get("/v1/me/location-events", headers=alice.headers)).json()["items"]
    assert [e["event_type"] for e in events] == ["exit", "enter"]
    assert events[1]["user_location_id"] == inside["location"]["id"]


async def test_entering_a_polygon(client, alice):
    # A square around Sydney's centre, and a point west of it.
    square = [[-33.80, 151.15], [-33.80, 151.25], [-33.95, 151.25], [-33.95, 151.15]]
    fence = await _fence(client, alice, {"name": "Sydney", "shape": "polygon", "polygon": square})

    west = await _add(client, alice, _at((-33.87, 151.0), ago=timedelta(minutes=5)))
    centre = await _add(client, alice, _at(SYDNEY))

    assert west["events"] == []
    assert [(e["geofence_id"], e["event_type"]) for e in centre["events"]] == [(fence["id"], "enter")]


async def test_a_sign_in_can_enter_a_geofence(client, runtime, alice):
    await import_files(runtime)
    fence = await _fence(client, alice, {"name": "NYC", "shape": "circle", "center": list(NEW_YORK), "radius_m": 5000})
    await _add(client, alice, _at(PARIS, ago=timedelta(days=2)))

    await sign_in_from(runtime, alice, "203.0.113.9")

    [event] = (await client.get("/v1/me/location-events", headers=alice.headers)).json()["items"]
    assert (event["geofence_id"], event["event_type"]) == (fence["id"], "enter")


async def test_a_platform_geofence_is_everyones_and_only_an_administrators_to_make(client, runtime, alice, mallory):
    body = {"name": "Venue", "shape": "circle", "center": list(PARIS), "radius_m": 1000, "platform": True}
    refused = await client.post("/v1/geofences", headers=mallory.headers, json=body)
    await as_system(runtime, "UPDATE auth.users SET is_admin = true WHERE id = :id", id=user_id(mallory))
    fence = await _fence(client, mallory, body)

    entered = await _add(client, alice, _at(PARIS))

    assert refused.status_code == 403 and problem_type(refused) == "platform-admin-required"
    assert fence["owner_id"] is None
    assert [(e["geofence_id"], e["event_type"]) for e in entered["events"]] == [(fence["id"], "enter")]
    listed = (await client.get("/v1/geofences", headers=alice.headers)).json()["items"]
    assert [item["id"] for item in listed] == [fence["id"]]
    # Alice sees it but may not change it.
    answer = await client.patch(f"/v1/geofences/{fence['id']}", headers=alice.headers, json={"is_active": False})
    assert answer.status_code == 404 and problem_type(answer) == "geofence-not-found"
    switched = await client.patch(f"/v1/geofences/{fence['id']}", headers=mallory.headers, json={"is_active": False})
    assert switched.status_code == 200 and switched.json()["is_active"] is False
    assert (await client.get("/v1/geofences", headers=alice.headers)).json()["items"] == []


async def test_a_geofence_is_renamed_and_deleted_by_its_owner(client, alice):
    fence = await _fence(client, alice, {"name": "Gym", "shape": "circle", "center": [0, 0], "radius_m": 50})

    renamed = await client.patch(f"/v1/geofences/{fence['id']}", headers=alice.headers, json={"name": "Pool"})
    deleted = await client.delete(f"/v1/geofences/{fence['id']}", headers=alice.headers)
    again = await client.delete(f"/v1/geofences/{fence['id']}", headers=alice.headers)

    assert renamed.json()["name"] == "Pool"
    assert deleted.status_code == 204
    assert again.status_code == 404 and problem_type(again) == "geofence-not-found"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "shape": "circle", "center": [0, 0]},
        {"name": "x", "shape": "circle", "center": [0, 0], "radius_m": 0},
        {"name": "x", "shape": "circle", "center": [95, 0], "radius_m": 10},
        {"name": "x", "shape": "circle", "center": [0], "radius_m": 10},
        {"name": "x", "shape": "circle", "center": [0, 0], "radius_m": 10, "polygon": [[0, 0], [1, 1], [0, 1]]},
        {"name": "x", "shape": "polygon", "polygon": [[0, 0], [1, 1]]},
        {"name": "x", "shape": "polygon", "polygon": [[0, 0], [1, 1], [0, 200]]},
        {"name": "x", "shape": "square", "center": [0, 0], "radius_m": 10},
        {"name": "", "shape": "circle", "center": [0, 0], "radius_m": 10},
        {"shape": "circle", "center": [0, 0], "radius_m": 10},
    ],
)
async def test_bad_geofences_are_refused(client, alice, body):
    answer = await client.post("/v1/geofences", headers=alice.headers, json=body)

    assert answer.status_code == 422, answer.text
    assert problem_type(answer) == "validation-error"


async def test_a_geofence_that_is_not_there(client, alice):
    missing = UUID(int=7)
    patched = await client.patch(f"/v1/geofences/{missing}", headers=alice.headers, json={"name": "x"})
    bad_id = await client.delete("/v1/geofences/not-a-uuid", headers=alice.headers)

    assert patched.status_code == 404 and problem_type(patched) == "geofence-not-found"
    assert bad_id.status_code == 422


async def test_the_database_tests_shapes_itself(app_engine):
    async with app_engine.connect() as db:
        inside = (
            await db.execute(
                text(
                    "SELECT location.in_polygon(CAST(:square AS jsonb), 0.5, 0.5),"
                    " location.in_polygon(CAST(:square AS jsonb), 1.5, 0.5),"
                    " location.in_geofence('circle', 0, 0, 1000, NULL, 0.005, 0),"
                    " location.in_geofence('circle', 0, 0, 1000, NULL, 0.01, 0)"
                ),
                {"square": "[[0, 0], [0, 1], [1, 1], [1, 0]]"},
            )
        ).one()
    assert tuple(inside) == (True, False, True, False)
