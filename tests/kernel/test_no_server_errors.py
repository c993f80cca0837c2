"""Every route answers bad input with a 4xx problem, never a 500: random JSON bodies and
bodies built from the operation's own fields, every path parameter filled (ids of rows
that exist, random ids, the odd malformed one), with and without credentials, against
every operation in the OpenAPI document (so a new route is covered the day it is added).

The database is lived in first (tests.support.populate), and the ids in path parameters
are harvested from what the API lists, so handlers run past their lookups."""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from rapport.kernel.runtime import Runtime
from rapport.modules.matching import service as matching_service
from tests.compliance.admin_support import make_admin
from tests.support import Persona, populate, sign_in

SEED = 20261121
BODIES_PER_OPERATION = 12
# Text PostgreSQL or a careless handler may choke on; each is a valid JSON string.
STRINGS = [
    "",
    "x" * 5000,
    "ünïcødé ✓",
    "\u202e",
    "a@b.c",
    "123456",
    "rk_x",
    "rt_x",
    "${jndi}",
    "'; DROP TABLE auth.users; --",
    "\x00",
    "alice",
    "google",
]
JsonValue = Any


def random_json(rng: random.Random, depth: int = 0) -> JsonValue:
    kinds = ["null", "bool", "int", "float", "str", "list", "dict"] if depth < 3 else ["null", "bool", "int", "str"]
    kind = rng.choice(kinds)
    if kind == "null":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.choice([0, -1, 1, 2**31, -(2**63), 10**30, rng.randint(-1000, 1000)])
    if kind == "float":
        return rng.choice([0.5, -1e308, 1e-308, 3.14])
    if kind == "str":
        return rng.choice([*STRINGS, str(uuid.uuid4())])
    if kind == "list":
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(["email", "password", "code", "name", "id", "extra"]): random_json(rng, depth + 1)}


class Inputs:
    """Values for one operation's parameters and body, from its OpenAPI schemas: mostly
    valid (so the handler runs), sometimes not."""

    def __init__(self, spec: dict[str, Any], rng: random.Random, ids: Ids, emails: list[str]) -> None:
        self.spec = spec
        self.rng = rng
        self.ids = ids
        self.emails = emails

    def resolve(self, schema: dict[str, Any] | bool) -> dict[str, Any]:
        # `true` is JSON Schema's "anything" (a free-form object's values).
        if isinstance(schema, bool):
            return {}
        while "$ref" in schema:
            schema = self.spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def uuid(self, likely: list[str] | None = None) -> str:
        """An id: mostly one the API showed (one that fits, when known), else a random or
        a malformed one."""
        roll = self.rng.random()
        if likely and roll < 0.6:
            return self.rng.choice(likely)
        if roll < 0.8:
            return self.rng.choice(self.ids.everything)
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4)) if roll < 0.95 else "not-a-uuid"

    def value(self, schema: dict[str, Any], depth: int = 0) -> JsonValue:
        schema = self.resolve(schema)
        if self.rng.random() < 0.05 or depth > 3:
            return random_json(self.rng, depth=2)
        for key in ("anyOf", "oneOf", "allOf"):
            if key in schema:
                return self.value(self.rng.choice(schema[key]), depth + 1)
        if "enum" in schema:
            return self.rng.choice(schema["enum"])
        kind = schema.get("type")
        if kind == "array":
            return [self.value(schema.get("items", {}), depth + 1) for _ in range(self.rng.randint(0, 3))]
        if kind == "object" or "properties" in schema:
            return self.object(schema, depth)
        return self.scalar(schema)

    def scalar(self, schema: dict[str, Any]) -> JsonValue:
        by_format = {
            "uuid": self.uuid,
            "email": lambda: self.rng.choice(self.emails),
            "date-time": lambda: self.rng.choice(["2030-01-01T00:00:00Z", "1900-01-01T00:00:00+14:00", "2024-02-30"]),
            "date": lambda: self.rng.choice(["1990-05-17", "2300-01-01", "0001-01-01"]),
        }
        by_type = {
            "string": lambda: self.string(schema),
            "integer": lambda: self.rng.choice([0, 1, 5, 18, 120, -1, schema.get("maximum", 2**31)]),
            "number": lambda: self.rng.choice([0, 1.5, -1e9, 1e9]),
            "boolean": lambda: self.rng.random() < 0.5,
            "null": lambda: None,
        }
        make = by_format.get(schema.get("format", "")) or by_type.get(schema.get("type", ""))
        return make() if make else random_json(self.rng, depth=2)

    def string(self, schema: dict[str, Any]) -> str:
        if self.rng.random() < 0.1:
            return str(self.rng.choice(self.emails))
        text = self.rng.choice([*STRINGS, "Lily", "https://example.com/a.png", "#1a2b3c", "GB", "EUR", "en"])
        # Mostly within the declared length, so that the rest of the body is what is tried.
        return text[: schema["maxLength"]] if "maxLength" in schema and self.rng.random() < 0.8 else text

    def object(self, schema: dict[str, Any], depth: int = 0) -> dict[str, JsonValue]:
        properties: dict[str, Any] = schema.get("properties", {})
        names = [name for name in properties if self.rng.random() < 0.6 or name in schema.get("required", [])]
        body = {name: self.value(properties[name], depth + 1) for name in names}
        if schema.get("additionalProperties") not in (None, False) and self.rng.random() < 0.5:
            body[self.rng.choice(STRINGS)] = self.value(schema["additionalProperties"] or {}, depth + 1)
        return body

    def path(self, template: str, operation: dict[str, Any]) -> str:
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                name = parameter["name"]
                value = self.path_value(parameter["schema"], self.ids.likely(template, name))
                template = template.replace("{" + name + "}", value)
        return template

    def path_value(self, schema: dict[str, Any], likely: list[str]) -> str:
        schema = self.resolve(schema)
        if schema.get("format") == "uuid":
            return self.uuid(likely)
        if "enum" in schema:
            return str(self.rng.choice(schema["enum"]))
        return self.rng.choice(["alice", "bob", "google", "auth0", "Ünï", "x" * 80, "0", "%00"])

    def query(self, operation: dict[str, Any]) -> dict[str, str]:
        params = {}
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query" and self.rng.random() < 0.7:
                value = self.value(parameter["schema"])
                params[parameter["name"]] = str(value).lower() if isinstance(value, bool) else str(value)
        return params

    def body(self, operation: dict[str, Any]) -> JsonValue:
        content = operation.get("requestBody", {}).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        if schema is None or self.rng.random() < 0.25:
            return random_json(self.rng)
        return self.value(schema)


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every operation, those that end a session (logout, deleting one) last."""

    def ends_sessions(item: tuple[str, str, dict[str, Any]]) -> bool:
        method, path, _ = item
        return method == "DELETE" or path.endswith("/logout")

    found = [(method.upper(), path, op) for path, item in spec["paths"].items() for method, op in item.items()]
    return iter(sorted(found, key=lambda item: (ends_sessions(item), item[1], item[0])))


def streams_events(operation: dict[str, Any]) -> bool:
    """An answer that lasts as long as the client listens (Server-Sent Events)."""
    return "text/event-stream" in operation.get("responses", {}).get("200", {}).get("content", {})


@dataclass
class Ids:
    """The ids the API showed, by the field that held them (`user_id`, `contact_id`) and,
    for a row's own `id`, by the collection that listed it (`/v1/contacts`). Kept in the
    order the API showed them (not sorted: UUIDv7s made in one millisecond sort at
    random), so that one seed makes one run."""

    by_key: dict[str, dict[str, None]] = field(default_factory=dict)

    def add(self, key: str, value: str) -> None:
        self.by_key.setdefault(key, {})[value] = None

    @property
    def everything(self) -> list[str]:
        return list({value: None for values in self.by_key.values() for value in values})

    def likely(self, template: str, name: str) -> list[str]:
        """Ids that fit the path parameter `name` of `template`: held by a field of that
        name, or listed by the collection the parameter indexes; failing those, listed
        under the collection (`/v1/stories/feed`) or in a field named after it (the
        `matches` of /v1/matching/daily)."""
        collection = template.split("/{" + name + "}", 1)[0]
        found = {**self.by_key.get(name, {}), **self.by_key.get(collection, {})}
        if not found:
            resource = collection.rsplit("/", 1)[-1]
            for key, values in self.by_key.items():
                if key.startswith(collection + "/") or key == f"*/{resource}":
                    found.update(values)
        return list(found)

    def collect(self, collection: str, key: str, value: JsonValue) -> None:
        if isinstance(value, dict):
            for inner_key, item in value.items():
                self.collect(collection, inner_key, item)
            if key and isinstance(value.get("id"), str):
                self.collect(f"*/{key}", "id", value["id"])
        elif isinstance(value, list):
            for item in value:
                self.collect(collection, key, item)
        elif isinstance(value, str):
            try:
                self.add(collection if key == "id" else key, str(uuid.UUID(value)))
            except ValueError:
                return


async def harvest_ids(client: httpx.AsyncClient, spec: dict[str, Any], personas: list[Persona]) -> Ids:
    """Every id the API shows the personas on its parameterless GET routes."""
    ids = Ids()
    for persona in personas:
        ids.add("user_id", persona.user_id)
        ids.add("session_id", persona.session_id)
    for method, path, operation in operations(spec):
        if method == "GET" and "{" not in path and not streams_events(operation):
            for persona in personas:
                response = await client.get(path, headers=persona.headers)
                if response.headers.get("content-type", "").startswith("application/json"):
                    ids.collect(path, "", response.json())
    return ids


async def _coparent(client: httpx.AsyncClient, alice: Persona, bob: Persona) -> None:
    """Co-parenting rows with ids for the sweep: alice and bob paired, a task in their
    room, a trigger of alice's and a rewrite suggested to her."""
    invited = await client.post("/v1/coparenting/pairings", headers=alice.headers, json={"invite_type": "code"})
    assert invited.status_code == 201, invited.text
    accepted = await client.post(
        "/v1/coparenting/pairings/accept", headers=bob.headers, json={"code": invited.json()["pairing_code"]}
    )
    assert accepted.status_code == 200, accepted.text
    room = accepted.json()["shared_room_id"]
    steps: list[tuple[str, dict[str, Any]]] = [
        ("/v1/coparenting/tasks", {"title": "School shoes", "conversation_id": room}),
        ("/v1/coparenting/triggers", {"trigger_type": "phrase", "trigger_value": "you always"}),
        ("/v1/coparenting/analysis", {"text": "You always forget, you idiot!", "conversation_id": room}),
    ]
    for path, body in steps:
        response = await client.post(path, headers=alice.headers, json=body)
        assert response.status_code < 300, (path, response.text)


async def _community_and_matching(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, suitors: list[Persona]
) -> None:
    """Community and matching rows with ids for the sweep: alice's story, tags, habit with
    a check-in and garden; dating profiles for alice and her suitors, her assessment, the
    people most like her, and her daily matches with them (proposed by the daily job's
    service). Several suitors, so that some stay unblocked when the sweep blocks people."""
    steps: list[tuple[Persona, str, str, dict[str, Any]]] = [
        (alice, "PUT", "/v1/me/tags", {"tags": ["growth"]}),
        (alice, "POST", "/v1/stories", {"title": "First steps", "content": "It began", "tags": ["growth"]}),
        (alice, "POST", "/v1/habits", {"name": "Stretch", "meta": {"minutes": 10}}),
        (alice, "PUT", "/v1/garden", {"name": "Balcony", "theme": "zen"}),
        (alice, "PUT", "/v1/me/profile-extras", {"journaling_frequency": 3}),
    ]
    for persona, gender, wanted in [(alice, "woman", "man"), *((suitor, "man", "woman") for suitor in suitors)]:
        profile = {
            "birth_date": "1990-01-01",
            "gender": gender,
            "pref_genders": [wanted],
            "interests": ["jazz"],
            "latitude": 48.8566,
            "longitude": 2.3522,
        }
        steps.append((persona, "PUT", "/v1/matching/profile", profile))
    steps += [
        (alice, "POST", "/v1/matching/assessments", {"responses": [4] * 36}),
        (alice, "POST", "/v1/matching/similar/refresh", {}),
    ]
    for persona, method, path, body in steps:
        response = await client.request(method, path, headers=persona.headers, json=body)
        assert response.status_code < 300, (path, response.text)
    [habit] = (await client.get("/v1/habits", headers=alice.headers)).json()["items"]
    # On a past day: the sweep's check-in of today is then a new one.
    checked = await client.post(
        f"/v1/habits/{habit['id']}/checkins", headers=alice.headers, json={"day": "2024-06-01", "note": "Done"}
    )
    assert checked.status_code == 201, checked.text
    report = await matching_service.propose_daily(runtime.system_engine)
    assert report.pairs == len(suitors), report


async def _desk(client: httpx.AsyncClient, alice: Persona, bob: Persona) -> None:
    """Support desk, permissions and bots with ids for the sweep (alice is an
    administrator by then): a role and her grant of it, her bot, a room she opened with a
    guest link, and bob's room that she joins and escalates."""

    async def ok(persona: Persona, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await client.request(method, path, headers=persona.headers, json=body)
        assert response.status_code < 300, (path, response.text)
        answer: dict[str, Any] = response.json()
        return answer

    await ok(alice, "POST", "/v1/admin/roles", {"name": "night-shift", "description": "Evenings"})
    await ok(alice, "POST", "/v1/admin/grants", {"user_id": alice.user_id, "role": "support-t2"})
    await ok(alice, "POST", "/v1/bots", {"name": "Helper", "webhook_url": "https://bots.example.com/hook"})
    mine = await ok(alice, "POST", "/v1/support/rooms", {"issue_description": "My invoice"})
    await ok(alice, "POST", f"/v1/support/rooms/{mine['room']['conversation_id']}/guest-links", {})
    his = await ok(bob, "POST", "/v1/support/rooms", {"issue_description": "His invoice"})
    room = his["room"]["conversation_id"]
    await ok(alice, "POST", f"/v1/support/rooms/{room}/join", {})
    await ok(alice, "POST", f"/v1/support/rooms/{room}/escalations", {"reason": "Billing", "to_level": "T2"})


@pytest.fixture
async def lived_in(
    client: httpx.AsyncClient,
    runtime: Runtime,
    make_persona: Callable[[str], Awaitable[Persona]],
    alice: Persona,
    bob: Persona,
    carol: Persona,
    mallory: Persona,
) -> None:
    await populate(client, alice, bob, carol, mallory)
    await _coparent(client, alice, bob)
    await _community_and_matching(client, runtime, alice, [bob, await make_persona("dan"), await make_persona("eli")])
    # Signed in, the sweep is alice's: as a platform administrator, so that the
    # administrators' routes run their handlers on its random input too.
    await make_admin(runtime, alice)
    await _desk(client, alice, bob)


@pytest.mark.parametrize("authenticated", [False, True], ids=["anonymous", "signed-in"])
async def test_random_input_never_causes_a_server_error(
    app: FastAPI, client: httpx.AsyncClient, lived_in: None, alice: Persona, bob: Persona, authenticated: bool
) -> None:
    spec = app.openapi()
    ids = await harvest_ids(client, spec, [alice, bob])
    inputs = Inputs(spec, random.Random(SEED), ids, emails=[bob.email, "carol@example.com", "nobody@example.com"])
    failures, answered = [], set()
    for method, template, operation in operations(spec):
        if authenticated and streams_events(operation):
            # In process the answer is read whole, and an event stream for someone signed in
            # never ends: the schema-driven test sends these over a real socket.
            continue
        for _ in range(BODIES_PER_OPERATION):
            path, body, params = inputs.path(template, operation), inputs.body(operation), inputs.query(operation)
            headers = alice.headers if authenticated else {}
            response = await client.request(method, path, json=body, headers=headers, params=params)
            if response.status_code >= 500:
                failures.append((method, path, body, response.status_code, response.text[:200]))
            elif response.status_code >= 400:
                assert response.headers["content-type"].startswith("application/problem+json"), (method, path)
            else:
                answered.add((method, template))
            if authenticated and response.status_code == 401:
                # The sweep may have ended alice's session (logout, deleting it): sign in again.
                await sign_in(client, alice)

    assert failures == []
    # A guard on the sweep itself: the routes with ids in their path must run their
    # handlers (a 2xx) for most of them, not stop at validation.
    with_ids = {(method, template) for method, template, _ in operations(spec) if "{" in template}
    assert len(answered & with_ids) > len(with_ids) / 2 if authenticated else answered
