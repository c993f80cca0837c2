"""What the OpenAPI document says about errors: every refusal is an RFC 9457
`application/problem+json` answer, whichever route gives it.

FastAPI documents a 422 of its own shape (`HTTPValidationError`, `application/json`),
which Rapport never sends, and no other error at all. The document is corrected once,
here, for every route, so that a client generated from it (and schemathesis checking
answers against it) knows the shape of every error.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

PROBLEM_JSON = "application/problem+json"
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An error answer (RFC 9457). `type` is stable: branch on it, not on the wording.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "The error's stable identifier, a URN."},
        "title": {"type": "string", "description": "A short summary of the kind of error."},
        "status": {"type": "integer", "description": "The HTTP status, repeated."},
        "detail": {"type": "string", "description": "What went wrong here, for a person to act on."},
        "instance": {"type": "string", "description": "The path that was asked for."},
        "request_id": {"type": "string", "description": "Names the request in the server's logs."},
        "errors": {
            "type": "array",
            "description": "For invalid fields: each field and what is wrong with it.",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}}}


def _document_errors(document: dict[str, Any]) -> None:
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                if status.startswith("4"):
                    response["content"] = {PROBLEM_JSON: {"schema": _PROBLEM_REF}}
            if "422" in responses:
                responses["422"]["description"] = "Invalid fields: the problem's `errors` names each."
            responses.setdefault("4XX", _problem("Refused: the problem's `type` says why."))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)


def document_problems(app: FastAPI) -> None:
    """Make the app's OpenAPI document declare problem+json for every error answer."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()  # FastAPI keeps it as app.openapi_schema: corrected once
        _document_errors(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
