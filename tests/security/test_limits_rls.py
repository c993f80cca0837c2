"""The rate limits (auth.rate_limits) and the spent two-factor challenges
(auth.spent_tokens), through SQL as `rapport_app`: mallory can neither read, refill nor
spend anyone's budget, nor bring a spent challenge back to life (docs/decisions/0008)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import httpx
import pyotp
import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.identity.models import rate_limits, spent_tokens
from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.runtime import Runtime
from tests.support import Persona

pytestmark = pytest.mark.module_database


@pytest.fixture
async def traces(client: httpx.AsyncClient, runtime: Runtime, alice: Persona) -> dict[str, int]:
    """Alice with two-factor on, a wrong code against it, a sign-in through it, and a
    wrong e-mailed code against her address: a row in each table."""
    secret = (await client.post("/v1/auth/totp", headers=alice.headers)).json()["secret"]
    totp = pyotp.TOTP(secret)
    confirmed = await client.post("/v1/auth/totp/confirm", headers=alice.headers, json={"code": totp.now()})
    assert confirmed.status_code == 200, confirmed.text
    wrong = await client.post("/v1/auth/totp/recovery-codes", headers=alice.headers, json={"code": "000000"})
    assert wrong.status_code in (401, 200), wrong.text
    challenge = await client.post("/v1/auth/login", json={"email": alice.email, "password": alice.password})
    code = totp.at(datetime.now(UTC) + timedelta(seconds=30))
    signed_in = await client.post(
        "/v1/auth/login/totp", json={"mfa_token": challenge.json()["mfa_token"], "code": code}
    )
    assert signed_in.status_code == 200, signed_in.text
    guessed = await client.post("/v1/auth/verify-email", json={"email": alice.email, "code": "123456"})
    assert guessed.status_code == 400, guessed.text
    async with system_transaction(runtime.system_engine) as db:
        counts = {
            table.fullname: (await db.execute(select(func.count()).select_from(table))).scalar_one()
            for table in (rate_limits, spent_tokens)
        }
    assert all(counts.values()), f"a table has no row, the test would prove nothing: {counts}"
    return counts


def _is_rls_violation(error: DBAPIError) -> bool:
    cause = error.orig.__cause__ if error.orig is not None else None
    return isinstance(cause, asyncpg.exceptions.InsufficientPrivilegeError) and "row-level security" in str(cause)


async def test_mallory_sees_no_budget_and_no_spent_challenge(
    app_engine: AsyncEngine, traces: dict[str, int], mallory: Persona
) -> None:
    async with user_transaction(app_engine, UUID(mallory.user_id)) as db:
        seen = {
            table.fullname: (await db.execute(select(func.count()).select_from(table))).scalar_one()
            for table in (rate_limits, spent_tokens)
        }
    assert seen == dict.fromkeys(seen, 0)


async def test_mallory_can_neither_refill_nor_spend_alices_budgets(
    app_engine: AsyncEngine, traces: dict[str, int], alice: Persona, mallory: Persona
) -> None:
    async with user_transaction(app_engine, UUID(mallory.user_id)) as db:
        refilled = await db.execute(delete(rate_limits))
        moved = await db.execute(update(rate_limits).values(tat=func.now()))
        unspent = await db.execute(delete(spent_tokens))
    assert (refilled.rowcount, moved.rowcount, unspent.rowcount) == (0, 0, 0)

    for values in (
        {"key": f"second-factor:{alice.user_id}", "tat": datetime.now(UTC) + timedelta(days=30)},
        {"key": "code-guesses:forged", "tat": datetime.now(UTC)},
    ):
        with pytest.raises(DBAPIError) as caught:
            async with user_transaction(app_engine, UUID(mallory.user_id)) as db:
                await db.execute(insert(rate_limits).values(**values))
        assert _is_rls_violation(caught.value)

    with pytest.raises(DBAPIError) as caught:
        async with user_transaction(app_engine, UUID(mallory.user_id)) as db:
            await db.execute(insert(spent_tokens).values(id=uuid7(), expires_at=datetime.now(UTC)))
    assert _is_rls_violation(caught.value)


async def test_a_transaction_naming_no_user_sees_no_budget(app_engine: AsyncEngine, traces: dict[str, int]) -> None:
    async with app_engine.begin() as db:
        seen = [
            (await db.execute(select(func.count()).select_from(t))).scalar_one() for t in (rate_limits, spent_tokens)
        ]
    assert seen == [0, 0]
