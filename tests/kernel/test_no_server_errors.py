"""Every route answers bad input with a 4xx problem, never a 500: random JSON bodies,
random path ids, with and without credentials, against every operation in the OpenAPI
document (so a new route is covered the day it is added)."""

from __future__ import annotations

import random
import uuid

import pytest

SEED = 20261121
BODIES_PER_OPERATION = 12


def random_json(rng: random.Random, depth: int = 0):
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
        return rng.choice(
            [
                "",
                "x" * rng.randint(1, 5000),
                "ünïcødé ✓",
                "\u202e",
                "a@b.c",
                "123456",
                "rk_x",
                "rt_x",
                "${jndi}",
                "'; DROP TABLE auth.users; --",
                str(uuid.uuid4()),
            ]
        )
    if kind == "list":
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    fields = [
        "email",
        "password",
        "code",
        "new_password",
        "current_password",
        "refresh_token",
        "mfa_token",
        "recovery_code",
        "name",
        "expires_at",
        "id_token",
        "device_type",
        "device_name",
        "extra",
    ]
    return {rng.choice(fields): random_json(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def operations(app) -> list[tuple[str, str]]:
    spec = app.openapi()
    return sorted((method.upper(), path) for path, item in spec["paths"].items() for method in item)


@pytest.mark.parametrize("authenticated", [False, True], ids=["anonymous", "signed-in"])
async def test_random_input_never_causes_a_server_error(app, client, alice, authenticated):
    rng = random.Random(SEED)
    headers = alice.headers if authenticated else {}
    failures = []
    for method, path in operations(app):
        for _ in range(BODIES_PER_OPERATION):
            concrete = path.replace("{session_id}", rng.choice([str(uuid.uuid4()), "not-a-uuid", alice.session_id]))
            concrete = concrete.replace("{api_key_id}", rng.choice([str(uuid.uuid4()), "0"]))
            concrete = concrete.replace("{provider}", rng.choice(["google", "UPPER", "x" * 80]))
            body = random_json(rng)
            response = await client.request(
                method, concrete, json=body, headers=headers, params={"limit": rng.choice(["1", "0", "x", "500"])}
            )
            if response.status_code >= 500:
                failures.append((method, concrete, body, response.status_code, response.text[:200]))
            elif response.status_code >= 400:
                assert response.headers["content-type"].startswith("application/problem+json"), (method, concrete)
    assert failures == []
