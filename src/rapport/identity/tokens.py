"""Access tokens (short-lived JWTs naming a session) and two-factor challenge tokens."""

from __future__ import annotations

import time
from dataclasses import dataclass
from uuid import UUID

import jwt

from rapport.kernel.crypto import Keyring
from rapport.kernel.errors import InvalidToken

ISSUER = "rapport"
ALGORITHM = "HS256"
MFA_TOKEN_TTL_SECONDS = 300


@dataclass(frozen=True)
class AccessClaims:
    user_id: UUID
    session_id: UUID


def _key(keyring: Keyring) -> bytes:
    return keyring.derive("jwt")


def issue_access_token(keyring: Keyring, *, user_id: UUID, session_id: UUID, ttl_seconds: int) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "typ": "access",
        "sub": str(user_id),
        "sid": str(session_id),
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, _key(keyring), algorithm=ALGORITHM)


def issue_mfa_token(keyring: Keyring, *, user_id: UUID, method: str) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "typ": "mfa",
        "sub": str(user_id),
        "amr": method,
        "iat": now,
        "exp": now + MFA_TOKEN_TTL_SECONDS,
    }
    return jwt.encode(claims, _key(keyring), algorithm=ALGORITHM)


def _decode(keyring: Keyring, token: str, expected_type: str) -> dict:
    try:
        claims = jwt.decode(
            token,
            _key(keyring),
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "typ"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("The token has expired.") from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidToken("The token is not valid.") from exc
    if claims.get("typ") != expected_type:
        raise InvalidToken(f"This is not an {expected_type} token.")
    return claims


def verify_access_token(keyring: Keyring, token: str) -> AccessClaims:
    claims = _decode(keyring, token, "access")
    try:
        return AccessClaims(user_id=UUID(claims["sub"]), session_id=UUID(claims["sid"]))
    except (KeyError, ValueError) as exc:
        raise InvalidToken("The token is not valid.") from exc


def verify_mfa_token(keyring: Keyring, token: str) -> tuple[UUID, str]:
    """The user and sign-in method a two-factor challenge was issued for."""
    claims = _decode(keyring, token, "mfa")
    try:
        return UUID(claims["sub"]), str(claims.get("amr", "password"))
    except ValueError as exc:
        raise InvalidToken("The token is not valid.") from exc
