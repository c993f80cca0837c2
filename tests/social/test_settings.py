"""Privacy and app settings (GET/PATCH /v1/settings): one row per account, made with it."""

from __future__ import annotations

import pytest

from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

SETTINGS = "/v1/settings"
DEFAULTS = {
    "last_seen_visibility": "contacts",
    "online_status_visibility": "contacts",
    "read_receipts_enabled": True,
    "typing_indicators_enabled": True,
    "notification_defaults": {"messages": True, "mentions": True, "contact_requests": True},
    "theme": "system",
}


async def patch(client, persona: Persona, **fields):
    return await client.patch(SETTINGS, headers=persona.headers, json=fields)


async def current(client, persona: Persona) -> dict:
    return (await client.get(SETTINGS, headers=persona.headers)).json()


async def test_a_new_account_has_the_default_settings(client, alice):
    body = await current(client, alice)
    assert {key: body[key] for key in DEFAULTS} == DEFAULTS


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("last_seen_visibility", "everyone"),
        ("last_seen_visibility", "nobody"),
        ("online_status_visibility", "everyone"),
        ("online_status_visibility", "nobody"),
        ("read_receipts_enabled", False),
        ("typing_indicators_enabled", False),
        ("theme", "dark"),
        ("theme", "light"),
    ],
)
async def test_patch_changes_one_setting(client, alice, field, value):
    await patch(client, alice, **{field: value})
    assert (await current(client, alice))[field] == value


async def test_patch_answers_with_the_settings(client, alice):
    response = await patch(client, alice, theme="dark")
    assert (response.status_code, response.json()["theme"]) == (200, "dark")


async def test_patch_leaves_the_settings_not_sent(client, alice):
    await patch(client, alice, theme="dark")
    await patch(client, alice, read_receipts_enabled=False)
    assert (await current(client, alice))["theme"] == "dark"


async def test_null_for_a_setting_is_refused(client, alice):
    await patch(client, alice, theme="dark")
    response = await patch(client, alice, theme=None)
    assert (response.status_code, (await current(client, alice))["theme"]) == (422, "dark")


async def test_an_empty_patch_changes_nothing(client, alice):
    response = await patch(client, alice)
    assert {key: response.json()[key] for key in DEFAULTS} == DEFAULTS


async def test_notification_defaults_merge_into_the_current_ones(client, alice):
    await patch(client, alice, notification_defaults={"messages": False})
    assert (await current(client, alice))["notification_defaults"] == {
        "messages": False,
        "mentions": True,
        "contact_requests": True,
    }


async def test_notification_defaults_take_a_new_kind(client, alice):
    await patch(client, alice, notification_defaults={"status_updates": False})
    assert (await current(client, alice))["notification_defaults"] == {
        "messages": True,
        "mentions": True,
        "contact_requests": True,
        "status_updates": False,
    }


async def test_successive_notification_changes_add_up(client, alice):
    await patch(client, alice, notification_defaults={"messages": False})
    await patch(client, alice, notification_defaults={"mentions": False})
    assert (await current(client, alice))["notification_defaults"] == {
        "messages": False,
        "mentions": False,
        "contact_requests": True,
    }


async def test_an_empty_notification_change_keeps_them(client, alice):
    await patch(client, alice, notification_defaults={})
    assert (await current(client, alice))["notification_defaults"] == DEFAULTS["notification_defaults"]


async def test_a_change_moves_updated_at(client, alice):
    before = (await current(client, alice))["updated_at"]
    response = await patch(client, alice, theme="dark")
    assert response.json()["updated_at"] > before


async def test_ones_settings_are_ones_own(client, alice, bob):
    await patch(client, alice, theme="dark")
    assert (await current(client, bob))["theme"] == "system"


@pytest.mark.parametrize(
    "fields",
    [
        {"theme": "blue"},
        {"theme": "DARK"},
        {"last_seen_visibility": "friends"},
        {"online_status_visibility": "contacts only"},
        {"read_receipts_enabled": "maybe"},
        {"typing_indicators_enabled": [True]},
        {"notification_defaults": {"messages": "loud"}},
        {"notification_defaults": ["messages"]},
        {"notification_defaults": {"m" * 41: True}},
        {"notification_defaults": {f"kind{i}": True for i in range(21)}},
        {"notification_defaults": {"messages": None}},
        {"language": "fr"},
    ],
    ids=[
        "theme-unknown",
        "theme-case",
        "last-seen-unknown",
        "online-status-unknown",
        "read-receipts-word",
        "typing-list",
        "notification-not-bool",
        "notification-list",
        "notification-key-41",
        "notifications-21",
        "notification-null",
        "unknown-field",
    ],
)
async def test_bad_settings_are_refused(client, alice, fields):
    response = await patch(client, alice, **fields)
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_refused_settings_change_nothing(client, alice):
    await patch(client, alice, theme="dark", last_seen_visibility="friends")
    assert (await current(client, alice))["theme"] == "system"


async def test_settings_need_a_signed_in_user(client):
    response = await client.get(SETTINGS)
    assert response.status_code == 401
