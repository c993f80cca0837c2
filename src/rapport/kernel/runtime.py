"""What a running Rapport holds for its lifetime, shared by every request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.config import Settings
from rapport.kernel.actor import Credential
from rapport.kernel.crypto import Keyring
from rapport.kernel.db import SystemEngine, create_engine, create_system_engine
from rapport.kernel.direct import DirectPool
from rapport.kernel.mail import Mailer
from rapport.kernel.passwords import PasswordHashing
from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.replica import LagTolerantReads

# Checks a bearer token as far as it can without the database; raises InvalidToken. The
# kernel's request dependencies call it, and identity provides it when the app is built,
# so that the kernel never imports a domain (docs/decisions/0011).
Authenticator = Callable[["Runtime", str], Credential]


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    # rapport_worker's small pool, for system_transaction only (rapport.kernel.db).
    system_engine: SystemEngine
    passwords: PasswordHashing
    keyring: Keyring
    mailer: Mailer
    http: httpx.AsyncClient
    authenticate: Authenticator
    # rapport_app's connections for the one-statement hot paths (rapport.kernel.direct).
    direct: DirectPool
    # Where the reads that tolerate lag run: the replica when configured and caught up,
    # else the primary (rapport.kernel.replica).
    reads: LagTolerantReads

    @classmethod
    def build(
        cls, settings: Settings, engine: AsyncEngine, *, system_engine: SystemEngine, authenticate: Authenticator
    ) -> Runtime:
        direct = DirectPool(
            engine.url,
            size=settings.database_pool_size,
            readers=settings.database_hot_readers,
            pgbouncer=settings.database_pgbouncer,
        )
        return cls(
            settings=settings,
            engine=engine,
            system_engine=system_engine,
            authenticate=authenticate,
            passwords=PasswordHashing(settings),
            keyring=Keyring(settings.resolved_secret_key()),
            mailer=Mailer(settings),
            http=httpx.AsyncClient(timeout=httpx.Timeout(5.0)),
            direct=direct,
            reads=LagTolerantReads.build(settings, direct, engine),
        )

    async def close(self) -> None:
        await self.http.aclose()
        await self.direct.close()
        await self.reads.close()
        await self.engine.dispose()
        await self.system_engine.dispose()


@asynccontextmanager
async def one_off_runtime(
    settings: Settings, urls: DatabaseUrls, *, authenticate: Authenticator
) -> AsyncIterator[Runtime]:
    """A runtime with one connection of each kind, for a command that does its work and
    ends (`rapport demo`, the admin commands); closed on the way out."""
    runtime = Runtime.build(
        settings,
        create_engine(urls.app, pool_size=1, pgbouncer=settings.database_pgbouncer),
        system_engine=create_system_engine(urls.worker, pool_size=1, pgbouncer=settings.database_pgbouncer),
        authenticate=authenticate,
    )
    try:
        yield runtime
    finally:
        await runtime.close()
