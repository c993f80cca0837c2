"""The HTTP edge every domain shares: problem+json errors, request ids, body limits,
health (metrics: tests/kernel/test_edge.py)."""

from __future__ import annotations

import uuid

import pytest

from tests.support import PASSWORD, problem_type

pytestmark = pytest.mark.module_database

LOGIN = "/v1/auth/login"
SECRET = "a-password-that-must-never-be-echoed"
JSON = {"content-type": "application/json"}


# Malformed and invalid bodies


async def test_malformed_json_is_400_malformed_json(client):
    response = await client.post(LOGIN, content=b"{nope", headers=JSON)
    assert (response.status_code, problem_type(response)) == (400, "malformed-json")


async def test_truncated_json_is_malformed_json(client):
    response = await client.post(LOGIN, content=b'{"email": "a@example.com", ', headers=JSON)
    assert (response.status_code, problem_type(response)) == (400, "malformed-json")


async def test_body_that_is_not_utf8_is_malformed_json(client):
    response = await client.post(LOGIN, content=b'{"email": "\xff\xfe"}', headers=JSON)
    assert (response.status_code, problem_type(response)) == (400, "malformed-json")


async def test_wrong_type_is_422_validation_error(client):
    response = await client.post(LOGIN, json={"email": "alice@example.com", "password": 12345})
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_missing_field_is_422_validation_error(client):
    response = await client.post(LOGIN, json={"email": "alice@example.com"})
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_extra_field_is_422_validation_error(client):
    response = await client.post(LOGIN, json={"email": "alice@example.com", "password": PASSWORD, "admin": True})
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_body_that_is_not_an_object_is_422_validation_error(client):
    response = await client.post(LOGIN, json=["alice@example.com", PASSWORD])
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_validation_error_lists_each_error_by_location(client):
    response = await client.post(LOGIN, json={"email": "alice@example.com", "password": 12345})
    assert [e["loc"] for e in response.json()["errors"]] == [["body", "password"]]


async def test_validation_error_never_echoes_a_password(client):
    # The password is fine; the extra field makes the request fail with it in the body.
    response = await client.post(LOGIN, json={"email": "not-an-address", "password": SECRET, "x": 1})
    assert response.status_code == 422
    assert SECRET not in response.text


async def test_validation_error_never_echoes_an_overlong_password(client):
    password = "p" * 1025
    response = await client.post(LOGIN, json={"email": "alice@example.com", "password": password})
    assert response.status_code == 422
    assert "p" * 100 not in response.text


async def test_validation_error_never_echoes_a_password_of_wrong_type(client):
    response = await client.post(
        "/v1/auth/password/change", json={"current_password": [SECRET], "new_password": SECRET}
    )
    assert SECRET not in response.text


async def test_errors_are_problem_json_with_status_and_title(client):
    response = await client.post(LOGIN, json={})
    body = response.json()
    assert (body["status"], bool(body["title"])) == (422, True)


# Body size


async def test_body_over_the_limit_is_413(client, settings):
    response = await client.post(LOGIN, content=b"x" * (settings.max_body_bytes + 1), headers=JSON)
    assert (response.status_code, problem_type(response)) == (413, "payload-too-large")


async def test_chunked_body_over_the_limit_is_413(client, settings):
    """Without a Content-Length the limit is counted as the body arrives."""
    chunk = b"x" * 65536
    chunks = settings.max_body_bytes // len(chunk) + 2

    async def stream():
        for _ in range(chunks):
            yield chunk

    response = await client.post(LOGIN, content=stream(), headers=JSON)
    assert (response.status_code, problem_type(response)) == (413, "payload-too-large")


async def test_body_at_the_limit_is_read(client, settings):
    body = b'{"email": "a@example.com", "password": "' + b"x" * 10 + b'"}'
    body = body + b" " * (settings.max_body_bytes - len(body))
    response = await client.post(LOGIN, content=body, headers=JSON)
    assert response.status_code == 401


# Routing


async def test_unknown_route_is_404_not_found(client):
    response = await client.get("/v1/nothing-here")
    assert (response.status_code, problem_type(response)) == (404, "not-found")


async def test_wrong_method_is_405_method_not_allowed(client):
    response = await client.get(LOGIN)
    assert (response.status_code, problem_type(response)) == (405, "method-not-allowed")


async def test_405_names_the_allowed_methods(client):
    response = await client.get(LOGIN)
    assert response.headers["allow"] == "POST"


async def test_malformed_path_parameter_is_422(client, alice):
    response = await client.delete("/v1/auth/sessions/not-a-uuid", headers=alice.headers)
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


# Request ids


async def test_request_id_is_echoed_back(client):
    response = await client.get("/healthz", headers={"X-Request-ID": "req-123.abc"})
    assert response.headers["x-request-id"] == "req-123.abc"


async def test_request_id_is_generated_when_absent(client):
    response = await client.get("/healthz")
    assert uuid.UUID(response.headers["x-request-id"]).version == 7


@pytest.mark.parametrize("bad", ["x" * 65, "has space", "new\u00e9line"])
async def test_malformed_request_id_is_replaced(client, bad):
    response = await client.get("/healthz", headers={"X-Request-ID": bad.encode("latin-1")})
    assert uuid.UUID(response.headers["x-request-id"]).version == 7


async def test_problem_body_carries_the_request_id(client):
    response = await client.get("/v1/nothing-here", headers={"X-Request-ID": "trace-me"})
    assert response.json()["request_id"] == "trace-me"


async def test_413_carries_the_request_id_header(client, settings):
    response = await client.post(
        LOGIN, content=b"x" * (settings.max_body_bytes + 1), headers={"X-Request-ID": "big-one"}
    )
    assert response.headers["x-request-id"] == "big-one"


# Operations


async def test_healthz_is_200(client):
    response = await client.get("/healthz")
    assert (response.status_code, response.json()["database"]) == (200, "ok")
