"""Password hashing: argon2id for new hashes; bcrypt hashes (imported accounts) verify
and are replaced by argon2id at the next successful sign-in."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from rapport.config import Settings

_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


@dataclass(frozen=True)
class PasswordCheck:
    ok: bool
    needs_rehash: bool = False


class PasswordHashing:
    """Hashes and verifies off the event loop: one argon2id hash costs tens of ms of CPU."""

    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.password_time_cost,
            memory_cost=settings.password_memory_cost_kib,
            parallelism=settings.password_parallelism,
        )
        # Verified against when the account does not exist, so that an unknown e-mail
        # costs as long to refuse as a wrong password.
        self._decoy = self._hasher.hash("rapport-decoy-password")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> PasswordCheck:
        return await asyncio.to_thread(self._verify, stored_hash, password)

    def _verify(self, stored_hash: str | None, password: str) -> PasswordCheck:
        if stored_hash is None:
            self._burn(password)
            return PasswordCheck(ok=False)
        if stored_hash.startswith(_BCRYPT_PREFIXES):
            try:
                ok = bcrypt.checkpw(password.encode()[:72], stored_hash.encode())
            except ValueError:
                ok = False
            return PasswordCheck(ok=ok, needs_rehash=ok)
        try:
            self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return PasswordCheck(ok=False)
        return PasswordCheck(ok=True, needs_rehash=self._hasher.check_needs_rehash(stored_hash))

    def _burn(self, password: str) -> None:
        with contextlib.suppress(VerificationError):
            self._hasher.verify(self._decoy, password + "\x00")
