"""Path and query parameters are text too: the app runs `refuse_unstorable_parameters`
before every route, so that what PostgreSQL cannot store (NUL, lone surrogates) never
reaches a query, whatever the route does with it. Bodies are checked by `Strict`."""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection

from rapport.kernel.errors import ValidationFailed
from rapport.kernel.schemas import UNSTORABLE_MESSAGE, printable, storable


async def refuse_unstorable_parameters(request: HTTPConnection) -> None:
    """A dependency of every route (set on the app), run once the route is matched, so
    that the error names the parameter as FastAPI's own validation errors do. Typed as
    the connection, not the request, so that WebSocket routes get it too.

    Raises:
        ValidationFailed: a path or query parameter (its name or its value) holds text
            that cannot be stored.
    """
    errors: list[dict[str, Any]] = [
        {"loc": ["path", name], "msg": UNSTORABLE_MESSAGE, "type": "unstorable_text"}
        for name, value in request.path_params.items()
        if isinstance(value, str) and not storable(value)
    ]
    errors.extend(
        {"loc": ["query", printable(name)], "msg": UNSTORABLE_MESSAGE, "type": "unstorable_text"}
        for name, value in request.query_params.multi_items()
        if not (storable(name) and storable(value))
    )
    if errors:
        summary = "; ".join(f"{'.'.join(err['loc'])}: {err['msg']}" for err in errors[:5])
        raise ValidationFailed(summary, errors=errors)
