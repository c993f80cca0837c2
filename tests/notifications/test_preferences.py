"""Notification preferences: GET|PUT /v1/notification-preferences (time zone, quiet hours,
digest, channel choices per type and category, and the effective matrix), and the rules
the pipeline applies with them (`effective_channels`, `in_quiet_hours`)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from uuid import UUID

import pytest
from sqlalchemy import text

from rapport.kernel.db import system_transaction
from rapport.notifications.service import (
    DEFAULT_SETTINGS,
    NotificationSettings,
    Preference,
    channels_for,
    effective_channels,
    in_quiet_hours,
)
from tests.support import problem_type

pytestmark = pytest.mark.module_database

PREFERENCES = "/v1/notification-preferences"
OFF_BY_DEFAULT = {"in_app": True, "push": False, "email": False, "sms": False}


async def preferences(client, persona):
    response = await client.get(PREFERENCES, headers=persona.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def put(client, persona, body):
    return await client.put(PREFERENCES, headers=persona.headers, json=body)


async def test_someone_who_chose_nothing_has_the_defaults(client, alice):
    body = await preferences(client, alice)

    assert {key: body[key] for key in ("time_zone", "quiet_hours", "digest_delay_minutes", "email_digest")} == {
        "time_zone": "UTC",
        "quiet_hours": None,
        "digest_delay_minutes": 60,
        "email_digest": True,
    }
    assert body["channels"] == []
    effective = body["effective"]
    assert effective["message"] == {"in_app": True, "push": True, "email": False, "sms": False}
    assert effective["security"] == {"in_app": True, "push": True, "email": True, "sms": False}
    assert effective["reaction"] == OFF_BY_DEFAULT
    assert effective["system"] == OFF_BY_DEFAULT
    assert effective["match"] == {"in_app": True, "push": True, "email": False, "sms": False}
    kinds = {"message", "mention", "reaction", "call", "contact_request", "security", "system", "match"}
    assert set(effective) == kinds


async def test_putting_preferences_saves_them_all(client, alice):
    wanted = {
        "time_zone": "Europe/Paris",
        "quiet_hours": {"start": "22:00", "end": "07:30"},
        "digest_delay_minutes": 30,
        "email_digest": False,
        "channels": [
            {"type": "message", "category": None, "channel": "push", "enabled": False},
            {"type": None, "category": "social", "channel": "email", "enabled": True},
        ],
    }

    response = await put(client, alice, wanted)

    assert response.status_code == 200, response.text
    saved = response.json()
    assert {key: saved[key] for key in wanted} == wanted
    assert saved["effective"]["message"] == {"in_app": True, "push": False, "email": True, "sms": False}
    assert saved["effective"]["mention"] == {"in_app": True, "push": True, "email": True, "sms": False}
    assert await preferences(client, alice) == saved


async def test_a_put_replaces_what_was_there(client, alice):
    first = {
        "time_zone": "Asia/Tokyo",
        "quiet_hours": {"start": "23:00", "end": "06:00"},
        "channels": [{"type": "call", "channel": "sms", "enabled": True}],
    }
    assert (await put(client, alice, first)).status_code == 200

    response = await put(client, alice, {"channels": [{"category": "security", "channel": "push", "enabled": False}]})

    body = response.json()
    assert (body["time_zone"], body["quiet_hours"]) == ("UTC", None)
    assert body["channels"] == [{"type": None, "category": "security", "channel": "push", "enabled": False}]
    assert body["effective"]["call"]["sms"] is False
    assert body["effective"]["security"]["push"] is False


async def test_the_most_specific_choice_wins(client, alice):
    body = {
        "channels": [
            {"channel": "push", "enabled": False},
            {"category": "social", "channel": "push", "enabled": True},
            {"type": "reaction", "channel": "push", "enabled": False},
        ]
    }

    effective = (await put(client, alice, body)).json()["effective"]

    # Type over category over the channel-wide choice over the defaults.
    assert effective["reaction"]["push"] is False
    assert effective["message"]["push"] is True
    assert effective["security"]["push"] is False


async def test_preferences_are_one_person_s(client, alice, bob):
    await put(client, alice, {"time_zone": "America/New_York", "channels": [{"channel": "push", "enabled": False}]})

    body = await preferences(client, bob)

    assert (body["time_zone"], body["channels"]) == ("UTC", [])


async def test_putting_preferences_tells_the_person_s_devices(client, runtime, alice):
    await put(client, alice, {"email_digest": False})

    async with system_transaction(runtime.system_engine) as db:
        scopes = (
            await db.execute(
                text("SELECT scope_id::text FROM kernel.events WHERE type = 'notification_preferences.updated'")
            )
        ).scalars()
        assert list(scopes) == [alice.user_id]


async def test_the_pipeline_reads_anyone_s_channels_as_system_work(client, runtime, alice):
    await put(client, alice, {"channels": [{"type": "mention", "channel": "email", "enabled": True}]})

    async with system_transaction(runtime.system_engine) as db:
        channels = await channels_for(db, user_id=UUID(alice.user_id), type="mention", category="social")

    assert channels == {"in_app", "push", "email"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"time_zone": "utc "}, "time_zone"),
        ({"quiet_hours": {"start": "22:00", "end": "22:00"}}, "quiet_hours"),
        ({"quiet_hours": {"start": "24:00", "end": "07:00"}}, "start"),
        ({"quiet_hours": {"start": "7:00", "end": "08:00"}}, "start"),
        ({"quiet_hours": {"start": "22:00"}}, "end"),
        ({"digest_delay_minutes": 4}, "digest_delay_minutes"),
        ({"digest_delay_minutes": 1441}, "digest_delay_minutes"),
        ({"digest_delay_minutes": "60"}, "digest_delay_minutes"),
        ({"channels": [{"type": "message", "category": "social", "channel": "push", "enabled": True}]}, "channels"),
        ({"channels": [{"channel": "pigeon", "enabled": True}]}, "channel"),
        ({"channels": [{"type": "gossip", "channel": "push", "enabled": True}]}, "type"),
        ({"channels": [{"channel": "push", "enabled": True}, {"channel": "push", "enabled": False}]}, "channels"),
        ({"sound": "ding"}, "sound"),
    ],
)
async def test_bad_preferences_are_refused_naming_the_field(client, alice, body, field):
    response = await put(client, alice, body)

    assert response.status_code == 422, response.text
    assert problem_type(response) == "validation-error"
    assert field in response.text


# The rules themselves, as the pipeline calls them.


def test_the_defaults_push_what_people_wait_for_and_text_nothing():
    assert effective_channels([], "message", "social") == {"in_app", "push"}
    assert effective_channels([], "contact_request", "social") == {"in_app", "push"}
    assert effective_channels([], "reaction", "social") == {"in_app"}
    assert effective_channels([], "security", "security") == {"in_app", "push", "email"}


def test_marketing_stays_in_the_app_until_the_person_opts_in():
    assert effective_channels([], "system", "marketing") == {"in_app"}
    opted_in = [Preference(type=None, category="marketing", channel="email", enabled=True)]
    assert effective_channels(opted_in, "system", "marketing") == {"in_app", "email"}


def test_a_type_choice_beats_a_category_choice_beats_a_channel_wide_one():
    prefs = [
        Preference(type=None, category=None, channel="in_app", enabled=False),
        Preference(type=None, category="social", channel="in_app", enabled=True),
        Preference(type="reaction", category=None, channel="in_app", enabled=False),
    ]
    assert "in_app" in effective_channels(prefs, "message", "social")
    assert "in_app" not in effective_channels(prefs, "reaction", "social")
    assert "in_app" not in effective_channels(prefs, "system", "system")


PARIS_NIGHTS = NotificationSettings(time_zone="Europe/Paris", quiet_start=time(22, 0), quiet_end=time(7, 0))


@pytest.mark.parametrize(
    ("at", "quiet"),
    [
        (datetime(2026, 1, 15, 20, 59, tzinfo=UTC), False),  # 21:59 in Paris (UTC+1)
        (datetime(2026, 1, 15, 21, 0, tzinfo=UTC), True),  # 22:00: quiet hours begin
        (datetime(2026, 1, 15, 23, 30, tzinfo=UTC), True),  # 00:30, past midnight
        (datetime(2026, 1, 16, 5, 59, tzinfo=UTC), True),  # 06:59
        (datetime(2026, 1, 16, 6, 0, tzinfo=UTC), False),  # 07:00: they are over
        (datetime(2026, 7, 15, 20, 30, tzinfo=UTC), True),  # 22:30 in summer time (UTC+2)
    ],
)
def test_quiet_hours_are_in_the_person_s_time_zone_and_wrap_midnight(at, quiet):
    assert in_quiet_hours(PARIS_NIGHTS, at) is quiet


def test_quiet_hours_within_one_day_and_none_at_all():
    afternoon = NotificationSettings(quiet_start=time(13, 0), quiet_end=time(15, 0))
    assert in_quiet_hours(afternoon, datetime(2026, 3, 1, 14, 0, tzinfo=UTC)) is True
    assert in_quiet_hours(afternoon, datetime(2026, 3, 1, 15, 0, tzinfo=UTC)) is False
    assert in_quiet_hours(DEFAULT_SETTINGS, datetime(2026, 3, 1, 3, 0, tzinfo=UTC)) is False
