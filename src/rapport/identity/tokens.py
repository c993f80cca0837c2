"""Access tokens (short-lived JWTs naming a session) and two-factor challenge tokens."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID, uuid4

import jwt

from rapport.kernel.crypto import Keyring
from rapport.kernel.errors import InvalidToken

ISSUER = "rapport"
# How a sign-in held without a second factor is proven: a code by e-mail or by SMS.
StepUp = Literal["email", "sms"]
_STEP_UPS: tuple[StepUp, ...] = ("email", "sms")
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


def issue_mfa_token(keyring: Keyring, *, user_id: UUID, method: str, step_up: StepUp | None = None) -> str:
    """A challenge for the second step of a sign-in: the account's TOTP, or with `step_up`
    the one-time code sent by that channel (identity._step_up)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "typ": "mfa",
        "sub": str(user_id),
        "amr": method,
        # Single use: the sign-in that completes with it records this id as spent.
        "jti": str(uuid4()),
        "iat": now,
        "exp": now + MFA_TOKEN_TTL_SECONDS,
    }
    if step_up is not None:
        claims["stp"] = step_up
    return jwt.encode(claims, _key(keyring), algorithm=ALGORITHM)


def _decode(keyring: Keyring, token: str, expected_type: str) -> dict[str, Any]:
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


# Access tokens this process has verified, until they expire: a client sends the same
# token with every request for its whole life, and checking its signature and claims
# again each time cost a tenth of a message send's server time. Only tokens that passed
# every check are kept, under the key they were checked with; revocation is not decided
# here (the session is checked in the request's own statement), so keeping them changes
# no answer.
_VERIFIED_MAX = 50_000
_verified: dict[tuple[bytes, str], tuple[AccessClaims, int]] = {}


def verify_access_token(keyring: Keyring, token: str) -> AccessClaims:
    """The user and session an access token names.

    Raises:
        InvalidToken: malformed, forged, expired, or not an access token.
    """
    key = (_key(keyring), token)
    known = _verified.get(key)
    if known is not None:
        claims, expires_at = known
        if time.time() < expires_at:
            return claims
        del _verified[key]
    decoded = _decode(keyring, token, "access")
    try:
        claims = AccessClaims(user_id=UUID(decoded["sub"]), session_id=UUID(decoded["sid"]))
    except (KeyError, ValueError) as exc:
        raise InvalidToken("The token is not valid.") from exc
    if len(_verified) >= _VERIFIED_MAX:
        del _verified[next(iter(_verified))]  # the oldest first: dicts keep insertion order
    _verified[key] = (claims, int(decoded["exp"]))
    return claims


@dataclass(frozen=True)
class MfaClaims:
    """What a two-factor challenge was issued for, and its id for spending it once."""

    user_id: UUID
    method: str
    token_id: UUID
    expires_at: int
    # None: completed with TOTP (or its fallbacks); otherwise the channel of the step-up code.
    step_up: StepUp | None = None


def verify_mfa_token(keyring: Keyring, token: str) -> MfaClaims:
    """The user and sign-in method a two-factor challenge was issued for.

    Raises:
        InvalidToken: malformed, forged, expired, or not a two-factor challenge.
    """
    claims = _decode(keyring, token, "mfa")
    step_up = next((channel for channel in _STEP_UPS if channel == claims.get("stp")), None)
    if step_up is None and "stp" in claims:
        raise InvalidToken("The token is not valid.")
    try:
        return MfaClaims(
            user_id=UUID(claims["sub"]),
            method=str(claims.get("amr", "password")),
            token_id=UUID(claims["jti"]),
            expires_at=int(claims["exp"]),
            step_up=step_up,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidToken("The token is not valid.") from exc
