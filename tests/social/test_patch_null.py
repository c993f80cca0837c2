"""One PATCH rule on every PATCH route (profile, settings, contacts, contact groups): a
field left out is left alone; `null` clears an optional field; a field that cannot be
empty refuses `null` with a 422 naming it, and keeps its value."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

PROFILE = "/v1/profile"
SETTINGS = "/v1/settings"

# A value to set, for each field of the profile; the optional ones can be cleared.
PROFILE_REQUIRED = {
    "username": "alice_in_chains",
    "display_name": "Alice L.",
    "bio": "Down the rabbit hole.",
    "links": [{"title": "Blog", "url": "https://example.com/"}],
    "interests": ["chess"],
    "profile_visibility": "contacts",
}
PROFILE_OPTIONAL = {
    "avatar_url": "https://example.com/a.png",
    "pronouns": "she/her",
    "birth_date": "1990-04-01",
    "language_code": "fr",
    "timezone": "Europe/Paris",
}
SETTINGS_REQUIRED = {
    "last_seen_visibility": "nobody",
    "online_status_visibility": "everyone",
    "read_receipts_enabled": False,
    "typing_indicators_enabled": False,
    "notification_defaults": {"messages": False},
    "theme": "dark",
}
CONTACT_REQUIRED = {"is_favorite": True, "is_muted": True}
CONTACT_OPTIONAL = {
    "last_name": "Liddell",
    "email": "lily@example.com",
    "phone": "+33 1 23 45 67 89",
    "relationship": "daughter",
    "nickname": "Lil",
    "notes": "Allergic to cats.",
}


async def contact_of(client: httpx.AsyncClient, persona: Persona) -> str:
    response = await client.post("/v1/contacts", headers=persona.headers, json={"first_name": "Lily"})
    assert response.status_code == 201, response.text
    return f"/v1/contacts/{response.json()['id']}"


async def group_of(client: httpx.AsyncClient, persona: Persona) -> str:
    response = await client.post("/v1/contact-groups", headers=persona.headers, json={"name": "Family"})
    assert response.status_code == 201, response.text
    return f"/v1/contact-groups/{response.json()['id']}"


async def current(client: httpx.AsyncClient, persona: Persona, url: str) -> dict[str, Any]:
    if url.startswith("/v1/contact-groups/"):
        groups = (await client.get("/v1/contact-groups", headers=persona.headers)).json()
        groups = groups["items"] if isinstance(groups, dict) else groups
        return next(group for group in groups if url.endswith(group["id"]))
    response = await client.get(url, headers=persona.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def shown(field: str, value: Any, body: dict[str, Any]) -> Any:
    """What the answer shows for a value sent (settings merge their notification kinds)."""
    if field == "notification_defaults":
        return {kind: body[field][kind] for kind in value}
    return body[field]


async def patch(client: httpx.AsyncClient, persona: Persona, url: str, body: dict[str, Any]) -> httpx.Response:
    return await client.patch(url, headers=persona.headers, json=body)


# A field left out is left alone


@pytest.mark.parametrize(("field", "value"), [*PROFILE_REQUIRED.items(), *PROFILE_OPTIONAL.items()])
async def test_a_profile_field_left_out_is_left_alone(client, alice, field, value):
    await patch(client, alice, PROFILE, {field: value})
    other = {"display_name": "Someone"} if field != "display_name" else {"pronouns": "they"}
    await patch(client, alice, PROFILE, other)
    assert (await current(client, alice, PROFILE))[field] == value


@pytest.mark.parametrize(("field", "value"), SETTINGS_REQUIRED.items())
async def test_a_setting_left_out_is_left_alone(client, alice, field, value):
    await patch(client, alice, SETTINGS, {field: value})
    other = {"theme": "light"} if field != "theme" else {"read_receipts_enabled": False}
    await patch(client, alice, SETTINGS, other)
    assert shown(field, value, await current(client, alice, SETTINGS)) == value


@pytest.mark.parametrize(("field", "value"), [*CONTACT_REQUIRED.items(), *CONTACT_OPTIONAL.items()])
async def test_a_contact_field_left_out_is_left_alone(client, alice, field, value):
    url = await contact_of(client, alice)
    await patch(client, alice, url, {field: value})
    await patch(client, alice, url, {"first_name": "Lilian"})
    assert (await current(client, alice, url))[field] == value


async def test_a_group_patch_without_a_name_leaves_it(client, alice):
    url = await group_of(client, alice)
    response = await patch(client, alice, url, {})
    assert (response.status_code, response.json()["name"]) == (200, "Family")


async def test_a_group_patch_renames_it(client, alice):
    url = await group_of(client, alice)
    await patch(client, alice, url, {"name": "Kin"})
    assert (await current(client, alice, url))["name"] == "Kin"


# null clears an optional field


@pytest.mark.parametrize(("field", "value"), PROFILE_OPTIONAL.items())
async def test_null_clears_an_optional_profile_field(client, alice, field, value):
    await patch(client, alice, PROFILE, {field: value})
    response = await patch(client, alice, PROFILE, {field: None})
    assert (response.status_code, (await current(client, alice, PROFILE))[field]) == (200, None)


@pytest.mark.parametrize(("field", "value"), [("first_name", "Lilian"), *CONTACT_OPTIONAL.items()])
async def test_null_clears_an_optional_contact_field(client, alice, field, value):
    url = await contact_of(client, alice)
    # The contact keeps an e-mail address while its name is cleared (ck_contacts_someone).
    await patch(client, alice, url, {field: value, **({"email": "lily@example.com"} if field == "first_name" else {})})
    response = await patch(client, alice, url, {field: None})
    assert (response.status_code, (await current(client, alice, url))[field]) == (200, None)


# A field that cannot be empty refuses null, and keeps its value


def refused_field(response: httpx.Response) -> list[list[str]]:
    assert (response.status_code, problem_type(response)) == (422, "validation-error"), response.text
    return [err["loc"] for err in response.json()["errors"]]


@pytest.mark.parametrize(("field", "value"), PROFILE_REQUIRED.items())
async def test_null_for_a_required_profile_field_is_refused(client, alice, field, value):
    await patch(client, alice, PROFILE, {field: value})
    response = await patch(client, alice, PROFILE, {field: None})
    assert (refused_field(response), (await current(client, alice, PROFILE))[field]) == ([["body", field]], value)


@pytest.mark.parametrize(("field", "value"), SETTINGS_REQUIRED.items())
async def test_null_for_a_setting_is_refused(client, alice, field, value):
    await patch(client, alice, SETTINGS, {field: value})
    response = await patch(client, alice, SETTINGS, {field: None})
    after = shown(field, value, await current(client, alice, SETTINGS))
    assert (refused_field(response), after) == ([["body", field]], value)


@pytest.mark.parametrize(("field", "value"), CONTACT_REQUIRED.items())
async def test_null_for_a_contact_flag_is_refused(client, alice, field, value):
    url = await contact_of(client, alice)
    await patch(client, alice, url, {field: value})
    response = await patch(client, alice, url, {field: None})
    assert (refused_field(response), (await current(client, alice, url))[field]) == ([["body", field]], value)


async def test_null_for_a_group_name_is_refused(client, alice):
    url = await group_of(client, alice)
    response = await patch(client, alice, url, {"name": None})
    assert (refused_field(response), (await current(client, alice, url))["name"]) == ([["body", "name"]], "Family")


async def test_a_refused_null_changes_nothing_else_sent(client, alice):
    response = await patch(client, alice, PROFILE, {"pronouns": "she/her", "display_name": None})
    assert (response.status_code, (await current(client, alice, PROFILE))["pronouns"]) == (422, None)


def test_the_rule_is_in_the_api_description(app):
    description = app.openapi()["info"]["description"]
    assert ("PATCH" in description, "`null` clears an optional field" in description) == (True, True)
