"""One-time prekeys are handed out once, also when many fetch at the same moment: twenty
fetches of a device with five keys give five distinct keys and fifteen nulls, through the
API and through encryption.claim_key_bundles in transactions that all overlap. A key
handed out twice would let two senders start sessions on the same secret."""

from __future__ import annotations

import asyncio
from uuid import UUID

import httpx
import pytest
from sqlalchemy import text

from rapport.kernel.db import create_engine, user_transaction
from rapport.kernel.provisioning import DatabaseUrls
from tests.encryption.support import register
from tests.support import Persona

pytestmark = pytest.mark.module_database

CLAIMS = 20
KEYS = 5
# Each overlapping claim holds a connection of its own till the end: a few suffice to
# prove the point without crowding the test server's connections.
OVERLAPPING = 8


def _tally(claimed: list[str | None]) -> tuple[int, int]:
    keys = [key for key in claimed if key is not None]
    assert len(set(keys)) == len(keys), "a key was handed out twice"
    return len(keys), claimed.count(None)


async def test_concurrent_fetches_through_the_api(
    client: httpx.AsyncClient, alice: Persona, bob: Persona, carol: Persona
) -> None:
    await register(client, bob, one_time=KEYS)

    async def fetch(persona: Persona) -> str | None:
        response = await client.post(f"/v1/users/{bob.user_id}/key-bundles", headers=persona.headers)
        assert response.status_code == 200, response.text
        [device] = response.json()["devices"]
        key = device["one_time_prekey"]
        return None if key is None else str(key["public_key"])

    claimed = await asyncio.gather(*(fetch(alice if n % 2 else carol) for n in range(CLAIMS)))
    assert _tally(list(claimed)) == (KEYS, CLAIMS - KEYS)


async def test_overlapping_transactions_never_share_a_key(
    client: httpx.AsyncClient, database: DatabaseUrls, alice: Persona, bob: Persona
) -> None:
    """Every claim runs while the others still hold their transactions open: a key one of
    them took is locked (then gone) for the rest, never handed out again."""
    await register(client, bob, one_time=KEYS)
    started = asyncio.Barrier(OVERLAPPING)
    claim = text("SELECT encode(one_time_key, 'base64') FROM encryption.claim_key_bundles(:target)")

    engine = create_engine(database.app, pool_size=OVERLAPPING)

    async def fetch() -> str | None:
        async with user_transaction(engine, UUID(alice.user_id)) as db:
            key = (await db.execute(claim, {"target": bob.user_id})).scalar_one()
            await started.wait()  # commit only once every claim has been made
            return None if key is None else str(key)

    try:
        claimed = await asyncio.gather(*(fetch() for _ in range(OVERLAPPING)))
    finally:
        await engine.dispose()
    assert _tally(list(claimed)) == (KEYS, OVERLAPPING - KEYS)
