"""Input is what it claims to be: text PostgreSQL cannot store is refused at the edge with a
422 naming the field, wherever it hides (a dict key, a list item, a path or query
parameter); request bodies are strict (nothing is coerced); text fields refuse control
and bidirectional characters and invisible names; codes are checked against their
standards (ISO 3166, ISO 4217, ISO 639, the IANA time zones)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ValidationError

from rapport.kernel.schemas import PatchBody, Strict, Text
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

PROFILE = "/v1/profile"
SETTINGS = "/v1/settings"
DEMOGRAPHICS = "/v1/profile/parts/demographics"
FINANCIALS = "/v1/profile/parts/financials"
BACKGROUND = "/v1/profile/parts/background"
CONTACTS = "/v1/contacts"
RLO = "\u202e"


def refused(response: httpx.Response) -> list[list[str]]:
    """The locations a 422 validation problem names."""
    assert (response.status_code, problem_type(response)) == (422, "validation-error"), response.text
    return [err["loc"] for err in response.json()["errors"]]


async def send_json(client: httpx.AsyncClient, method: str, url: str, persona: Persona, body: Any) -> httpx.Response:
    # Escaped as ASCII, so that a lone surrogate travels as JSON allows it: "\ud800".
    content = json.dumps(body, ensure_ascii=True).encode()
    headers = {**persona.headers, "Content-Type": "application/json"}
    return await client.request(method, url, content=content, headers=headers)


# Text PostgreSQL cannot store, wherever it is


@pytest.mark.parametrize(
    ("method", "url", "body", "loc"),
    [
        ("PATCH", SETTINGS, {"notification_defaults": {"mess\x00ages": True}}, "notification_defaults"),
        ("PATCH", SETTINGS, {"notification_defaults": {"\ud800": True}}, "notification_defaults"),
        ("PATCH", PROFILE, {"interests": ["chess", "go\x00"]}, "interests"),
        ("PATCH", PROFILE, {"links": [{"title": "\ud800", "url": "https://example.com/"}]}, "links"),
        ("PATCH", PROFILE, {"display_name": "Al\x00ice"}, "display_name"),
        ("PUT", BACKGROUND, {"languages": ["fr", "e\x00n"]}, "languages"),
        ("POST", CONTACTS, {"first_name": "Lily", "notes": "\ud83d"}, "notes"),
        ("PATCH", PROFILE, {"extra\x00": 1}, "extra\\u0000"),
    ],
    ids=["dict-key-nul", "dict-key-surrogate", "list-item", "nested-model", "string", "part-list", "prose", "unknown"],
)
async def test_unstorable_text_in_a_body_is_refused_naming_the_field(client, alice, method, url, body, loc):
    response = await send_json(client, method, url, alice, body)
    assert [found[:2] for found in refused(response)] == [["body", loc]]


async def test_a_nul_in_a_dict_key_names_the_key(client, alice):
    response = await send_json(client, "PATCH", SETTINGS, alice, {"notification_defaults": {"a\x00": True}})
    assert refused(response) == [["body", "notification_defaults", "a\\u0000", "[key]"]]


async def test_a_nul_in_a_list_item_names_the_item(client, alice):
    response = await send_json(client, "PATCH", PROFILE, alice, {"interests": ["chess", "go\x00"]})
    assert refused(response) == [["body", "interests", "1"]]


async def test_refused_text_changes_nothing(client, alice):
    await send_json(client, "PATCH", PROFILE, alice, {"interests": ["chess", "go\x00"]})
    assert (await client.get(PROFILE, headers=alice.headers)).json()["interests"] == []


@pytest.mark.parametrize(
    ("url", "loc"),
    [
        ("/v1/users/by-username/al%00ice", ["path", "username"]),
        ("/v1/users/search?q=al%00ice", ["query", "q"]),
        ("/v1/contacts?favorites=false&x=%00", ["query", "x"]),
        ("/v1/contacts?x%00=1", ["query", "x\\u0000"]),
        ("/v1/contact-groups/%00/members/%00", ["path", "group_id"]),
    ],
    ids=["path", "query", "unknown-query", "query-name", "path-id"],
)
async def test_unstorable_text_in_a_parameter_is_refused_naming_it(client, alice, url, loc):
    response = await client.request("PUT" if "members" in url else "GET", url, headers=alice.headers)
    assert loc in refused(response)


async def test_a_nul_in_a_parameter_is_refused_before_authentication(client):
    response = await client.post("/v1/auth/oidc/goo%00gle", json={"id_token": "x"})
    assert refused(response) == [["path", "provider"]]


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every route of the app, those of included routers too."""
    return [ctx.original_route for ctx in iter_route_contexts(app.routes) if isinstance(ctx.original_route, APIRoute)]


def test_every_request_body_is_strict(app: FastAPI) -> None:
    """A new route cannot forget: every body model derives from the kernel's Strict."""
    bodies = [route for route in api_routes(app) if route.body_field is not None]
    loose = [
        (route.path, sorted(route.methods))
        for route in bodies
        for model in _models(route.body_field.field_info.annotation)
        if not issubclass(model, Strict)
    ]
    assert (loose, len(bodies) > 20) == ([], True)


# tus 1.0's PATCH carries a chunk of a file's bytes (application/offset+octet-stream), not JSON.
BYTES_PATCHES = {"/v1/media/uploads/{upload_id}"}


def test_every_patch_body_follows_the_patch_rule(app: FastAPI) -> None:
    patches = [route for route in api_routes(app) if "PATCH" in route.methods and route.path not in BYTES_PATCHES]
    loose = [
        route.path
        for route in patches
        if route.body_field is None
        or not all(issubclass(model, PatchBody) for model in _models(route.body_field.field_info.annotation))
    ]
    assert (loose, len(patches) >= 4) == ([], True)


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in getattr(annotation, "__args__", ()) for model in _models(arg)]


# No coercion


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("PATCH", SETTINGS, {"read_receipts_enabled": "yes"}),
        ("PATCH", SETTINGS, {"typing_indicators_enabled": 1}),
        ("PATCH", SETTINGS, {"notification_defaults": {"messages": "false"}}),
        ("PUT", DEMOGRAPHICS, {"number_of_children": "3"}),
        ("PUT", DEMOGRAPHICS, {"number_of_children": 3.0}),
        ("PUT", "/v1/profile/parts/employment", {"works_remotely": "true"}),
        ("PATCH", PROFILE, {"birth_date": 0}),
        ("PATCH", PROFILE, {"display_name": 42}),
        ("PUT", FINANCIALS, {"monthly_housing_cost": True}),
        ("POST", "/v1/contact-requests", {"user_id": 1}),
        ("POST", "/v1/auth/api-keys", {"name": "ci", "expires_at": 4102444800}),
    ],
    ids=[
        "yes-bool",
        "one-bool",
        "string-bool-in-dict",
        "string-int",
        "float-int",
        "string-bool",
        "number-date",
        "number-string",
        "bool-money",
        "number-uuid",
        "number-datetime",
    ],
)
async def test_nothing_is_coerced(client, alice, method, url, body):
    response = await client.request(method, url, headers=alice.headers, json=body)
    assert [loc[1] for loc in refused(response)] == list(body)[-1:]


async def test_json_strings_still_carry_dates_ids_and_amounts(client, alice, bob):
    profile = await client.patch(PROFILE, headers=alice.headers, json={"birth_date": "1990-04-01"})
    asked = await client.post("/v1/contact-requests", headers=alice.headers, json={"user_id": bob.user_id})
    key = await client.post(
        "/v1/auth/api-keys", headers=alice.headers, json={"name": "ci", "expires_at": "2100-01-01T00:00:00Z"}
    )
    money = await client.put(FINANCIALS, headers=alice.headers, json={"monthly_housing_cost": "950.50"})
    number = await client.put(FINANCIALS, headers=alice.headers, json={"monthly_housing_cost": 950.5})
    assert (
        profile.json()["birth_date"],
        asked.status_code,
        key.status_code,
        money.json()["monthly_housing_cost"],
        number.json()["monthly_housing_cost"],
    ) == ("1990-04-01", 201, 201, "950.50", "950.50")


# Text fields


@pytest.mark.parametrize(
    "name",
    ["\u200b", "\u200b\u200c\u200d", "\ufeff\u2060", "\u3164", "\u00a0\u2003", "\u0301\u034f", "\u2800"],
    ids=["zero-width-space", "zero-width-joiners", "bom-word-joiner", "hangul-filler", "spaces", "marks", "braille"],
)
async def test_an_invisible_display_name_is_refused(client, alice, name):
    response = await client.patch(PROFILE, headers=alice.headers, json={"display_name": name})
    assert refused(response) == [["body", "display_name"]]


@pytest.mark.parametrize("char", ["\u202a", "\u202b", "\u202c", "\u202d", RLO, "\u2066", "\u2067", "\u2068", "\u2069"])
async def test_bidirectional_controls_are_refused_in_names(client, alice, char):
    response = await client.patch(PROFILE, headers=alice.headers, json={"display_name": f"Alice{char}eciR"})
    assert refused(response) == [["body", "display_name"]]


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", CONTACTS, {"first_name": f"Lily{RLO}"}),
        ("POST", "/v1/contact-groups", {"name": f"Family{RLO}"}),
        ("POST", "/v1/auth/api-keys", {"name": f"ci{RLO}"}),
        ("PUT", DEMOGRAPHICS, {"preferred_name": f"Al{RLO}"}),
        ("POST", "/v1/devices", {"name": f"phone{RLO}", "device_type": "mobile", "platform": "ios"}),
    ],
    ids=["contact", "group", "api-key", "preferred-name", "device"],
)
async def test_bidirectional_controls_are_refused_in_every_name(client, alice, method, url, body):
    response = await client.request(method, url, headers=alice.headers, json=body)
    assert [loc[1] for loc in refused(response)] == list(body)[:1]


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("PATCH", PROFILE, {"pronouns": "she\nher"}),
        ("PATCH", PROFILE, {"pronouns": "she\x1bher"}),
        ("PUT", DEMOGRAPHICS, {"city": "Par\u2028is"}),
        ("POST", CONTACTS, {"first_name": "Lily", "relationship": "da\x07ughter"}),
        ("PATCH", PROFILE, {"bio": "bell\x07"}),
        ("PUT", "/v1/profile/parts/health", {"medications": "esc\x1b[31m"}),
        ("POST", "/v1/auth/api-keys", {"name": "ci\r\nbuild"}),
    ],
    ids=["newline-in-line", "escape-in-line", "line-separator", "bell-in-line", "bell-in-prose", "ansi", "crlf-name"],
)
async def test_control_characters_are_refused(client, alice, method, url, body):
    response = await client.request(method, url, headers=alice.headers, json=body)
    assert list(body)[-1] in [loc[1] for loc in refused(response)]


async def test_prose_keeps_its_lines_and_tabs(client, alice):
    response = await client.patch(PROFILE, headers=alice.headers, json={"bio": "Line one\r\n\tLine two\rthree"})
    assert response.json()["bio"] == "Line one\n\tLine two\nthree"


async def test_names_are_stored_composed(client, alice):
    response = await client.patch(PROFILE, headers=alice.headers, json={"display_name": "Ame\u0301lie"})
    assert response.json()["display_name"] == "Am\u00e9lie"


async def test_a_name_with_letters_and_joiners_is_kept(client, alice):
    # Zero-width joiners belong inside emoji sequences and some scripts: only names
    # made of nothing else are refused.
    response = await client.patch(
        PROFILE, headers=alice.headers, json={"display_name": "Ali \U0001f469\u200d\U0001f4bb"}
    )
    assert response.json()["display_name"] == "Ali \U0001f469\u200d\U0001f4bb"


# Codes


@pytest.mark.parametrize(
    ("url", "body"),
    [
        (DEMOGRAPHICS, {"country": "XX"}),
        (DEMOGRAPHICS, {"country": "UK"}),
        (FINANCIALS, {"currency": "XYZ"}),
        (FINANCIALS, {"currency": "EURO"}),
        (BACKGROUND, {"languages": ["zz"]}),
        (BACKGROUND, {"languages": ["xyz-FR"]}),
    ],
    ids=["country-unknown", "country-not-iso", "currency-unknown", "currency-long", "language-two", "language-three"],
)
async def test_unknown_codes_are_refused(client, alice, url, body):
    response = await client.put(url, headers=alice.headers, json=body)
    assert [loc[1] for loc in refused(response)] == list(body)


@pytest.mark.parametrize(
    ("body"),
    [{"language_code": "qq"}, {"timezone": "Mars/Olympus_Mons"}],
    ids=["language", "timezone"],
)
async def test_unknown_profile_codes_are_refused(client, alice, body):
    response = await client.patch(PROFILE, headers=alice.headers, json=body)
    assert refused(response) == [["body", *body]]


async def test_known_codes_are_kept_in_their_standard_case(client, alice):
    demographics = await client.put(DEMOGRAPHICS, headers=alice.headers, json={"country": "gb"})
    financials = await client.put(FINANCIALS, headers=alice.headers, json={"currency": "gbp"})
    background = await client.put(BACKGROUND, headers=alice.headers, json={"languages": ["en-GB", "haw", "pt-BR"]})
    profile = await client.patch(
        PROFILE, headers=alice.headers, json={"language_code": "cy", "timezone": "Europe/London"}
    )
    assert (
        demographics.json()["country"],
        financials.json()["currency"],
        background.json()["languages"],
        (profile.json()["language_code"], profile.json()["timezone"]),
    ) == ("GB", "GBP", ["en-GB", "haw", "pt-BR"], ("cy", "Europe/London"))


# The text type itself


def test_text_is_measured_after_normalisation() -> None:
    # U+0958 has no composed form: NFC writes it as two characters, as the database
    # would count them.
    class Sample(Strict):
        value: Annotated[str, Text(3)]

    with pytest.raises(ValidationError) as refused_error:
        Sample.model_validate({"value": "\u0958\u0958"})
    assert refused_error.value.errors()[0]["type"] == "string_too_long"
