"""One hierarchy of errors, each with a stable problem `type` (RFC 9457).

Services raise these; the app turns them into `application/problem+json`. Nothing below
a router raises HTTPException. Tests assert `type`, never the wording.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy.exc import DBAPIError

# A URN: stable, and claims no web address Rapport does not serve.
PROBLEM_BASE = "urn:rapport:problem:"


def problem_type(slug: str) -> str:
    return PROBLEM_BASE + slug


class RapportError(Exception):
    """Base of every error a client can be told about."""

    slug: ClassVar[str] = "bad-request"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"
    # True for refusals whose bookkeeping must survive them (a failed sign-in counts
    # toward a lock): the transaction commits before the error reaches the client.
    keeps_changes: ClassVar[bool] = False

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra
        self.headers: dict[str, str] = {}

    @property
    def type(self) -> str:
        return problem_type(self.slug)

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class BadRequest(RapportError):
    pass


class MalformedJson(RapportError):
    slug = "malformed-json"
    title = "The request body is not valid JSON"


class ValidationFailed(RapportError):
    slug = "validation-error"
    status = 422
    title = "The request has invalid fields"


class PayloadTooLarge(RapportError):
    slug = "payload-too-large"
    status = 413
    title = "The request body is too large"


class Unauthenticated(RapportError):
    slug = "unauthenticated"
    status = 401
    title = "Authentication is required"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers["WWW-Authenticate"] = "Bearer"


class InvalidToken(Unauthenticated):
    slug = "invalid-token"
    title = "The token is invalid or has expired"


class Forbidden(RapportError):
    """The actor can see the thing but may not do this to it."""

    slug = "forbidden"
    status = 403
    title = "Not allowed"


class PlatformAdminRequired(Forbidden):
    """Only the platform's administrators may do this (moderation across conversations,
    accounts, the audit): one problem type whichever domain refuses."""

    slug = "platform-admin-required"
    title = "Only the platform's administrators may do this"


class PermissionRequired(Forbidden):
    """The actor lacks a permission (rapport.access: access.has_permission said no), named
    in the problem: one problem type whichever domain refuses."""

    slug = "permission-required"
    title = "You do not hold the permission this needs"

    def __init__(self, permission: str, *, conversation_id: str | None = None) -> None:
        where = f" in conversation {conversation_id}" if conversation_id else ""
        super().__init__(f"This needs the permission {permission}{where}.", permission=permission)
        self.permission = permission


class NotFound(RapportError):
    """Missing, or invisible to the actor: the two are never told apart."""

    slug = "not-found"
    status = 404
    title = "Not found"


class MethodNotAllowed(RapportError):
    slug = "method-not-allowed"
    status = 405
    title = "Method not allowed"


class Conflict(RapportError):
    slug = "conflict"
    status = 409
    title = "Conflict"


class TooManyRequests(RapportError):
    slug = "too-many-requests"
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **extra)
        self.headers["Retry-After"] = str(retry_after)


class InvalidCursor(RapportError):
    slug = "invalid-cursor"
    title = "The pagination cursor is not valid"


class ServiceUnavailable(RapportError):
    slug = "service-unavailable"
    status = 503
    title = "A service Rapport depends on is unavailable"


def constraint_of(error: DBAPIError) -> str | None:
    """The name of the constraint (or unique index) a database error violated, or None.

    Services map an IntegrityError to what it means by this name, which the migrations
    choose, never by searching the message text, which PostgreSQL words as it likes.
    """
    # The asyncpg dialect wraps the driver's exception; asyncpg's carries the name.
    wrapped = error.orig
    for candidate in (wrapped, getattr(wrapped, "orig", None), getattr(wrapped, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if isinstance(name, str):
            return name
    return None
