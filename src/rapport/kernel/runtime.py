"""What a running Rapport holds for its lifetime, shared by every request."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.config import Settings
from rapport.kernel.crypto import Keyring
from rapport.kernel.mail import Mailer
from rapport.kernel.passwords import PasswordHashing


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    passwords: PasswordHashing
    keyring: Keyring
    mailer: Mailer
    http: httpx.AsyncClient

    @classmethod
    def build(cls, settings: Settings, engine: AsyncEngine) -> Runtime:
        return cls(
            settings=settings,
            engine=engine,
            passwords=PasswordHashing(settings),
            keyring=Keyring(settings.resolved_secret_key()),
            mailer=Mailer(settings),
            http=httpx.AsyncClient(timeout=httpx.Timeout(5.0)),
        )

    async def close(self) -> None:
        await self.http.aclose()
        await self.engine.dispose()
