"""Sign-in with an external OpenID Connect provider's ID token (Google, Auth0)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity.errors import UnknownProvider
from rapport.identity.schemas import Device, MfaChallenge, TokenPair
from rapport.kernel.actor import Client
from rapport.kernel.runtime import Runtime


async def do_oidc_login(
    db: AsyncConnection, *, rt: Runtime, provider: str, id_token: str, client: Client, device: Device
) -> TokenPair | MfaChallenge:
    raise UnknownProvider(f"No identity provider named {provider!r} is configured.")
