"""Search finds only active accounts: not unverified registrations, not suspended ones."""

from __future__ import annotations

from sqlalchemy import text

from rapport.kernel.db import system_transaction

SEARCH = "/v1/users/search"


async def _found(client, persona, query: str) -> list[str]:
    response = await client.get(SEARCH, params={"q": query}, headers=persona.headers)
    assert response.status_code == 200, response.text
    return [item["username"] for item in response.json()["items"]]


async def test_an_unverified_registration_is_not_found(client, alice):
    registered = await client.post(
        "/v1/auth/register", json={"email": "zora@example.com", "password": "a long enough password"}
    )
    assert registered.status_code == 202
    assert await _found(client, alice, "zora") == []


async def test_a_suspended_account_is_not_found(client, runtime, alice, bob):
    assert await _found(client, alice, "bob") == ["bob"]
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(text("UPDATE auth.users SET status = 'suspended' WHERE id = :id"), {"id": bob.user_id})
    assert await _found(client, alice, "bob") == []
