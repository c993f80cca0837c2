"""Sign-in with an external OpenID Connect provider's ID token (Google, Auth0).

The client runs the provider's sign-in itself (Google Sign-In, Auth0's SDK) and sends
the ID token it received. Rapport checks the token against the keys the provider
publishes (its JWKS), then finds the account: by the provider's subject first, else by
an e-mail address the provider vouches for, else it creates one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import jwt
import structlog
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.config import OidcProvider
from rapport.identity._accounts import (
    get_user_by_email,
    insert_user,
    sign_in_refused,
)
from rapport.identity._records import record_login, record_security_event
from rapport.identity._signin import complete_sign_in
from rapport.identity.errors import (
    AccountDisabled,
    EmailNotVerified,
    EmailRequired,
    ProviderUnavailable,
    UnknownProvider,
)
from rapport.identity.models import identities, users
from rapport.identity.schemas import Device, MfaChallenge, TokenPair, normalise_email
from rapport.kernel.actor import Client
from rapport.kernel.db import AnyRow
from rapport.kernel.errors import InvalidToken
from rapport.kernel.ids import uuid7
from rapport.kernel.runtime import Runtime

log = structlog.get_logger(__name__)

# Providers rotate keys rarely and publish new ones ahead of use; ten minutes keeps a
# busy server from asking on every sign-in while a retired key soon stops working.
JWKS_TTL_SECONDS = 600
# A token naming a key we do not have triggers one refetch (the provider may have just
# rotated), but anyone can mint such tokens: at most one refetch per provider this often,
# so a stream of made-up key ids cannot turn Rapport against the provider.
JWKS_MISS_REFETCH_SECONDS = 30
# Clock skew between the provider and this server.
LEEWAY_SECONDS = 60
REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud"]
# Google issues both forms and documents both as valid.
_ISSUER_ALIASES = {"https://accounts.google.com": ("https://accounts.google.com", "accounts.google.com")}


@dataclass(frozen=True)
class OidcIdentity:
    """What a verified ID token says about who signs in."""

    provider: str
    subject: str
    email: str | None
    email_verified: bool


async def verify_oidc_token(rt: Runtime, *, provider: str, id_token: str) -> OidcIdentity:
    """Check an ID token against the provider's published keys.

    Runs before any transaction opens: fetching the keys may take seconds, and no
    database connection should wait on a provider.

    Raises:
        UnknownProvider: no provider of that name is configured.
        ProviderUnavailable: the provider's keys could not be fetched.
        InvalidToken: the ID token is malformed, expired, wrongly signed, or issued by or
            for someone else.
    """
    config = rt.settings.oidc_providers.get(provider)
    if config is None:
        raise UnknownProvider(f"No identity provider named {provider!r} is configured.")
    claims = await _verify_id_token(rt, name=provider, config=config, id_token=id_token)
    email = _claimed_email(claims)
    return OidcIdentity(
        provider=provider,
        subject=claims["sub"],
        email=email,
        email_verified=email is not None and _is_true(claims.get("email_verified")),
    )


async def do_oidc_login(
    db: AsyncConnection, *, rt: Runtime, identity: OidcIdentity, client: Client, device: Device
) -> TokenPair | MfaChallenge:
    """Sign in as the holder of a verified ID token (system transaction).

    The first sign-in of a provider account creates a Rapport account, or links it to
    the account with the same address when the provider says the address is verified.

    Raises:
        EmailRequired: a new account is needed and the token carries no usable e-mail.
        EmailNotVerified: a new link or account is needed and the provider does not
            vouch for the address.
        AccountDisabled: the account is suspended, banned or deleted.
    """
    provider, subject, email = identity.provider, identity.subject, identity.email
    # A double tap sends two first sign-ins at once; without this both would create
    # an account and one would fail on the unique constraints.
    await db.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"oidc:{provider}:{subject}"}
    )
    method = f"oidc:{provider}"
    user_id = await _known_identity(db, provider=provider, subject=subject, email=email, client=client)
    if user_id is None:
        user_id = await _link_or_create(
            db,
            rt=rt,
            provider=provider,
            subject=subject,
            email=email,
            verified=identity.email_verified,
            client=client,
        )
    return await complete_sign_in(db, rt=rt, user_id=user_id, method=method, client=client, device=device)


async def _known_identity(
    db: AsyncConnection, *, provider: str, subject: str, email: str | None, client: Client
) -> UUID | None:
    """The account already linked to this provider subject, if any."""
    row = (
        await db.execute(
            select(identities.c.id, identities.c.user_id, users.c.status, users.c.deleted_at)
            .join(users, users.c.id == identities.c.user_id)
            .where(identities.c.provider == provider, identities.c.subject == subject)
        )
    ).one_or_none()
    if row is None:
        return None
    await _check_enabled(db, user=row, user_id=row.user_id, provider=provider, client=client)
    # The subject is the identity; the address it reports may change and is kept for display.
    await db.execute(
        update(identities)
        .where(identities.c.id == row.id)
        .values(last_login_at=func.now(), email=email if email is not None else identities.c.email)
    )
    user_id: UUID = row.user_id
    return user_id


async def _link_or_create(
    db: AsyncConnection,
    *,
    rt: Runtime,
    provider: str,
    subject: str,
    email: str | None,
    verified: bool,
    client: Client,
) -> UUID:
    if email is None:
        raise EmailRequired(
            f"The {provider} account did not share a usable e-mail address. Allow access to it and sign in again."
        )
    if not verified:
        # An address the provider does not vouch for proves nothing: an account made
        # from it could later be taken over by whoever really owns the address (or used
        # to squat it), and refusing here tells nothing about which addresses exist.
        raise EmailNotVerified(f"{provider} has not verified {email}. Verify it there and sign in again.")
    existing = await get_user_by_email(db, email=email)
    if existing is None:
        user_id = await insert_user(db, rt=rt, email=email, password=None, verified=True)
        await _insert_identity(db, user_id=user_id, provider=provider, subject=subject, email=email)
        return user_id

    await _check_enabled(db, user=existing, user_id=existing.id, provider=provider, client=client)
    unproven = existing.email_verified_at is None
    if existing.status == "pending":
        changes: dict[str, Any] = {
            "status": "active",
            "email_verified_at": func.coalesce(users.c.email_verified_at, func.now()),
        }
        if unproven:
            # Registered with a password by someone who never proved the address: it may
            # be a squatter waiting for the owner to arrive (account pre-hijacking), so
            # that password goes. The owner can set one with "forgot password".
            changes["password_hash"] = None
        await db.execute(update(users).where(users.c.id == existing.id).values(**changes))
    await _insert_identity(db, user_id=existing.id, provider=provider, subject=subject, email=email)
    await record_security_event(
        db,
        user_id=existing.id,
        event_type="identity_linked",
        severity="warning",
        client=client,
        details={"provider": provider, "email": email, "password_removed": unproven},
    )
    existing_id: UUID = existing.id
    return existing_id


async def _check_enabled(db: AsyncConnection, *, user: AnyRow, user_id: UUID, provider: str, client: Client) -> None:
    """Raises:
    AccountDisabled: the account is suspended, banned or deleted.
    """
    if user.deleted_at is not None or await sign_in_refused(db, user_id=user_id, status=user.status):
        await record_login(
            db, user_id=user_id, method=f"oidc:{provider}", client=client, failure_reason="account_disabled"
        )
        raise AccountDisabled()


async def _insert_identity(db: AsyncConnection, *, user_id: UUID, provider: str, subject: str, email: str) -> None:
    await db.execute(
        insert(identities).values(
            id=uuid7(), user_id=user_id, provider=provider, subject=subject, email=email, last_login_at=func.now()
        )
    )


def _claimed_email(claims: Mapping[str, Any]) -> str | None:
    """The token's address, normalised like every other; None when absent or unusable."""
    value = claims.get("email")
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return normalise_email(value)
    except ValueError:
        return None


def _is_true(value: object) -> bool:
    # Google sends a JSON boolean; some providers (older Auth0 rules, Cognito) a string.
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


# ---------------------------------------------------------------------------------------
# Verifying the token


async def _verify_id_token(rt: Runtime, *, name: str, config: OidcProvider, id_token: str) -> dict[str, Any]:
    """The token's claims once its signature, issuer, audience and lifetime check out.

    Raises:
        InvalidToken: the token does not check out.
        ProviderUnavailable: the provider's keys could not be fetched.
    """
    key = await _signing_key_for(rt, name=name, config=config, id_token=id_token)
    claims = _decode(id_token, key, name=name, config=config)
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 1 <= len(subject) <= 255:
        raise InvalidToken("The ID token's subject is malformed.")
    # OpenID Connect Core 3.1.3.7: with several audiences, the authorised party must be us.
    aud = claims["aud"]
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != config.audience:
        raise InvalidToken(f"The ID token was issued for another application, not this {name} client.")
    return claims


async def _signing_key_for(rt: Runtime, *, name: str, config: OidcProvider, id_token: str) -> Any:
    """The provider's published key that signed the token, from its unverified header."""
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError:
        raise InvalidToken("The ID token is not a well-formed JWT.") from None
    alg = header.get("alg")
    # Checked before any key lookup so that "none" or HS256 tokens cost no fetch.
    if not isinstance(alg, str) or alg not in config.algorithms:
        raise InvalidToken(f"ID tokens signed with {str(alg)[:20]!r} are not accepted from {name}.")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise InvalidToken("The ID token's key id is malformed.")
    key = await _jwks.signing_key(rt.http, name=name, url=config.jwks_url, kid=kid)
    if key is None:
        raise InvalidToken(f"The ID token was signed with a key {name} does not publish.")
    return key


def _decode(id_token: str, key: Any, *, name: str, config: OidcProvider) -> dict[str, Any]:
    """The verified claims; each way a token can fail gets a message a person can act on."""
    try:
        claims: dict[str, Any] = jwt.decode(
            id_token,
            key,
            algorithms=config.algorithms,
            audience=config.audience,
            issuer=_ISSUER_ALIASES.get(config.issuer, config.issuer),
            leeway=LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("The ID token has expired. Sign in with the provider again.") from None
    except jwt.InvalidAudienceError:
        raise InvalidToken(f"The ID token was issued for another application, not this {name} client.") from None
    except jwt.InvalidIssuerError:
        raise InvalidToken(f"The ID token was not issued by {name}.") from None
    except jwt.InvalidSignatureError:
        raise InvalidToken("The ID token's signature does not verify.") from None
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidToken(f"The ID token has no {exc.claim!r} claim.") from None
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"The ID token is invalid: {exc}") from None
    return claims


class _JwksCache:
    """Each provider's published signing keys, held in memory for a while, by JWKS URL.

    No lock: on a cold cache, concurrent sign-ins may each fetch once, which is harmless.
    """

    def __init__(self) -> None:
        self._keys: dict[str, tuple[float, list[jwt.PyJWK]]] = {}
        self._miss_refetched_at: dict[str, float] = {}

    async def signing_key(self, http: httpx.AsyncClient, *, name: str, url: str, kid: str | None) -> jwt.PyJWK | None:
        """The published key the token names, or None when the provider has no such key.

        Raises:
            ProviderUnavailable: the keys could not be fetched.
        """
        now = time.monotonic()
        cached = self._keys.get(url)
        fresh = cached is None or now - cached[0] > JWKS_TTL_SECONDS
        keys = cached[1] if cached is not None and not fresh else await self._fetch(http, name=name, url=url)
        key = _pick(keys, kid)
        if key is None and not fresh and now - self._miss_refetched_at.get(url, -math.inf) > JWKS_MISS_REFETCH_SECONDS:
            self._miss_refetched_at[url] = now
            key = _pick(await self._fetch(http, name=name, url=url), kid)
        return key

    async def _fetch(self, http: httpx.AsyncClient, *, name: str, url: str) -> list[jwt.PyJWK]:
        unavailable = ProviderUnavailable(f"{name}'s signing keys could not be fetched. Try again shortly.")
        try:
            response = await http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            log.warning("oidc.jwks_unreachable", provider=name, url=url, error=repr(exc))
            raise unavailable from None
        if response.status_code != 200:
            log.warning("oidc.jwks_refused", provider=name, url=url, status=response.status_code)
            raise unavailable
        try:
            document = response.json()
            if not isinstance(document, dict):
                raise ValueError("not a JSON object")
            key_set = jwt.PyJWKSet.from_dict(document)
        except (ValueError, jwt.PyJWTError) as exc:
            log.warning("oidc.jwks_invalid", provider=name, url=url, error=str(exc))
            raise unavailable from None
        # A published symmetric key is a secret everyone knows, and "enc" keys do not sign.
        keys = [k for k in key_set.keys if k.key_type != "oct" and k.public_key_use in (None, "sig")]
        if not keys:
            log.warning("oidc.jwks_no_signing_keys", provider=name, url=url)
            raise unavailable
        self._keys[url] = (time.monotonic(), keys)
        return keys


def _pick(keys: list[jwt.PyJWK], kid: str | None) -> jwt.PyJWK | None:
    if kid is None:
        # Providers with a single key may leave the key id out.
        return keys[0] if len(keys) == 1 else None
    return next((k for k in keys if k.key_id == kid), None)


_jwks = _JwksCache()
