"""The client's errors: one hierarchy, each carrying the server's problem+json.

The server answers every refusal with an RFC 9457 problem (`type`, `title`, `status`,
`detail`, sometimes `errors` or `retry_after`). The class says what kind of refusal it is
(by status); `slug` names the exact one (`invalid-credentials`, `cannot-send`, …) and is
what code should compare, never the wording of `detail`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PROBLEM_PREFIX = "urn:rapport:problem:"


class RapportError(Exception):
    """Base of every error the client raises about the server's answer or the stream."""

    def __init__(self, problem: Mapping[str, Any]) -> None:
        self.problem: dict[str, Any] = dict(problem)
        self.type: str = str(self.problem.get("type", "about:blank"))
        self.status: int = int(self.problem.get("status", 0))
        self.title: str = str(self.problem.get("title", ""))
        self.detail: str = str(self.problem.get("detail", self.title))
        super().__init__(f"{self.status} {self.slug}: {self.detail}")

    @property
    def slug(self) -> str:
        """The stable last part of `type`: `not-found`, `invalid-token`, …"""
        return self.type.removeprefix(PROBLEM_PREFIX)


class BadRequest(RapportError):
    """400: the request cannot be done as asked (a bad cursor, a malformed body)."""


class Unauthorized(RapportError):
    """401: no valid credentials (wrong password, an ended session, an unknown key)."""


class Forbidden(RapportError):
    """403: you can see it but may not do this."""


class NotFound(RapportError):
    """404: missing, or not visible to you (the server never says which)."""


class Conflict(RapportError):
    """409: the state does not allow it (already done, taken)."""


class ValidationError(RapportError):
    """422: invalid fields; `errors` lists each field and what is wrong with it."""

    @property
    def errors(self) -> list[dict[str, Any]]:
        found = self.problem.get("errors", [])
        return list(found) if isinstance(found, list) else []


class RateLimited(RapportError):
    """429: too many requests; try again after `retry_after` seconds."""

    def __init__(self, problem: Mapping[str, Any], *, retry_after: float | None = None) -> None:
        super().__init__(problem)
        given = retry_after if retry_after is not None else self.problem.get("retry_after")
        self.retry_after: float | None = float(given) if given is not None else None


class ServerError(RapportError):
    """5xx: the server failed or a service it depends on is down; worth retrying later."""


class TwoFactorRequired(RapportError):
    """The password was right and the account has two-factor on: finish signing in with
    `Client.login_totp(error.mfa_token, code=...)` (or `recovery_code=...`) before
    `expires_in` seconds pass."""

    def __init__(self, *, mfa_token: str, expires_in: int) -> None:
        super().__init__(
            {
                "type": PROBLEM_PREFIX + "two-factor-required",
                "status": 401,
                "title": "A second factor is required",
                "detail": "Send a TOTP or recovery code with Client.login_totp.",
            }
        )
        self.mfa_token = mfa_token
        self.expires_in = expires_in


class NotSignedIn(RapportError):
    """A call that needs credentials was made before `login` or `use_api_key`."""

    def __init__(self) -> None:
        super().__init__(
            {
                "type": PROBLEM_PREFIX + "not-signed-in",
                "status": 401,
                "title": "Not signed in",
                "detail": "Call login() or use_api_key() first.",
            }
        )


class StreamClosed(RapportError):
    """The stream ended for good: the session was revoked (4000), the credentials no
    longer hold (4401), the server has no stream, or the stream was closed by its owner.
    `code` is the WebSocket close code, when there was one."""

    def __init__(self, slug: str, detail: str, *, code: int | None = None, status: int = 0) -> None:
        super().__init__({"type": PROBLEM_PREFIX + slug, "status": status, "title": slug, "detail": detail})
        self.code = code


BY_STATUS: dict[int, type[RapportError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: ValidationError,
}


def error_for(problem: Mapping[str, Any], *, status: int, retry_after: float | None = None) -> RapportError:
    """The exception for a problem the server answered with `status`."""
    body = {"status": status, **problem}
    if status == 429:
        return RateLimited(body, retry_after=retry_after)
    if status >= 500:
        return ServerError(body)
    return BY_STATUS.get(status, RapportError)(body)
