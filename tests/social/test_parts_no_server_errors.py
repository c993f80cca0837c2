"""The parts, devices and statuses routes answer random input with a 4xx problem, never a
500: random JSON bodies built from their own field names, random path ids, with and
without credentials."""

from __future__ import annotations

import random
import uuid

import pytest

from rapport.social import schemas_parts as s
from rapport.social.api_parts import router
from tests.kernel.test_no_server_errors import random_json
from tests.module_scope import app, database, module_database, settings  # noqa: F401
from tests.social.parts_support import module_app  # noqa: F401

SEED = 20261122
BODIES_PER_OPERATION = 15
FIELDS = sorted(
    {
        name
        for model in (
            s.DemographicsIn,
            s.EmploymentIn,
            s.HealthIn,
            s.FinancialsIn,
            s.BackgroundIn,
            s.DeviceRegisterRequest,
            s.StatusCreateRequest,
        )
        for name in model.model_fields
    }
)


def random_body(rng: random.Random):
    if rng.random() < 0.3:
        return random_json(rng)
    return {rng.choice(FIELDS): random_json(rng, depth=2) for _ in range(rng.randint(1, 6))}


def operations() -> list[tuple[str, str]]:
    return sorted((method, route.path) for route in router.routes for method in route.methods)


@pytest.mark.parametrize("authenticated", [False, True], ids=["anonymous", "signed-in"])
async def test_random_input_never_causes_a_server_error(client, alice, bob, authenticated):
    rng = random.Random(SEED)
    headers = alice.headers if authenticated else {}
    failures = []
    for method, path in operations():
        for _ in range(BODIES_PER_OPERATION):
            concrete = path
            for name in ("{user_id}", "{device_id}", "{status_id}"):
                concrete = concrete.replace(
                    name, rng.choice([str(uuid.uuid4()), "not-a-uuid", bob.user_id, alice.user_id, "0" * 40])
                )
            body = random_body(rng)
            response = await client.request(
                method,
                concrete,
                json=body,
                headers=headers,
                params={"limit": rng.choice(["1", "0", "x", "500"]), "include_expired": rng.choice(["true", "maybe"])},
            )
            if response.status_code >= 500:
                failures.append((method, concrete, body, response.status_code, response.text[:200]))
            elif response.status_code >= 400:
                assert response.headers["content-type"].startswith("application/problem+json"), (method, concrete)
    assert failures == []
