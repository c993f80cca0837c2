"""Finding people by phone number: only those whose owners allow it, never telling anyone
which numbers have accounts; and what rapport_app can reach of phone numbers in SQL."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.db import user_transaction
from tests.identity.phone_support import *  # noqa: F403
from tests.identity.phone_support import (
    ALICE_PHONE,
    BOB_PHONE,
    CAROL_PHONE,
    MALLORY_PHONE,
    NOBODY_PHONE,
    ZOE_PHONE,
    Phones,
    add_phone,
    register,
)
from tests.support import Persona, befriend, problem_type

pytestmark = pytest.mark.module_database

LOOKUP = "/v1/users/lookup-phones"


async def lookup(client: httpx.AsyncClient, persona: Persona, *numbers: str, **extra: object) -> httpx.Response:
    return await client.post(LOOKUP, headers=persona.headers, json={"numbers": list(numbers), **extra})


async def found(client: httpx.AsyncClient, persona: Persona, *numbers: str) -> dict[str, str]:
    answer = await lookup(client, persona, *numbers)
    assert answer.status_code == 200, answer.text
    return {match["phone_number"]: match["user_id"] for match in answer.json()["matches"]}


async def discoverable(client: httpx.AsyncClient, persona: Persona, audience: str) -> None:
    changed = await client.patch("/v1/settings", headers=persona.headers, json={"phone_discoverability": audience})
    assert changed.status_code == 200 and changed.json()["phone_discoverability"] == audience, changed.text


async def test_nobody_finds_a_number_by_default_and_it_looks_like_one_without_account(
    client: httpx.AsyncClient, phones: Phones, alice: Persona, bob: Persona
) -> None:
    await add_phone(client, phones, bob, BOB_PHONE)

    with_account = await lookup(client, alice, BOB_PHONE)
    without = await lookup(client, alice, NOBODY_PHONE)

    assert with_account.status_code == without.status_code == 200
    assert with_account.json() == without.json() == {"matches": []}


async def test_an_owner_who_allows_everyone_is_found(
    client: httpx.AsyncClient, phones: Phones, alice: Persona, bob: Persona
) -> None:
    await add_phone(client, phones, bob, BOB_PHONE)
    await discoverable(client, bob, "everyone")

    assert await found(client, alice, "+33 6 12 34 56 02", NOBODY_PHONE) == {BOB_PHONE: bob.user_id}


async def test_contacts_only_is_found_by_contacts_alone(
    client: httpx.AsyncClient, phones: Phones, alice: Persona, bob: Persona, carol: Persona
) -> None:
    await add_phone(client, phones, bob, BOB_PHONE)
    await discoverable(client, bob, "contacts")
    await befriend(client, alice, bob)

    assert await found(client, alice, BOB_PHONE) == {BOB_PHONE: bob.user_id}
    assert await found(client, carol, BOB_PHONE) == {}


async def test_blocks_hide_either_way(
    client: httpx.AsyncClient, phones: Phones, bob: Persona, mallory: Persona
) -> None:
    await add_phone(client, phones, bob, BOB_PHONE)
    await add_phone(client, phones, mallory, MALLORY_PHONE)
    await discoverable(client, bob, "everyone")
    await discoverable(client, mallory, "everyone")

    blocked = await client.put(f"/v1/blocks/{mallory.user_id}", headers=bob.headers)
    assert blocked.status_code == 200, blocked.text

    assert await found(client, mallory, BOB_PHONE) == {}
    assert await found(client, bob, MALLORY_PHONE) == {}


async def test_an_unproven_number_is_never_found(
    client: httpx.AsyncClient, phones: Phones, alice: Persona, bob: Persona
) -> None:
    await register(client, ZOE_PHONE)  # a registration not yet verified
    await client.post("/v1/auth/phone", headers=bob.headers, json={"phone": BOB_PHONE})  # a number being added
    await discoverable(client, bob, "everyone")

    assert await found(client, alice, ZOE_PHONE, BOB_PHONE) == {}


async def test_nobody_finds_themselves(client: httpx.AsyncClient, phones: Phones, alice: Persona) -> None:
    await add_phone(client, phones, alice, ALICE_PHONE)
    await discoverable(client, alice, "everyone")

    assert await found(client, alice, ALICE_PHONE) == {}


async def test_address_book_numbers_are_read_in_the_callers_country(
    client: httpx.AsyncClient, phones: Phones, alice: Persona, carol: Persona
) -> None:
    await add_phone(client, phones, carol, CAROL_PHONE)
    await discoverable(client, carol, "everyone")

    answer = await lookup(client, alice, "0151 12345603", region="DE")

    assert answer.json()["matches"] == [{"phone_number": CAROL_PHONE, "user_id": carol.user_id}]


async def test_a_number_that_is_not_one_is_refused_with_its_position(client: httpx.AsyncClient, alice: Persona) -> None:
    answer = await lookup(client, alice, BOB_PHONE, "not a number")

    assert (answer.status_code, problem_type(answer)) == (422, "validation-error")
    assert "numbers[1]" in answer.text


async def test_lookups_are_bounded_per_day(client: httpx.AsyncClient, alice: Persona, settings: object) -> None:
    """No walking the numbering plan: each number costs one of the day's lookups."""
    numbers = [f"+3361234{n:04d}" for n in range(300)]
    spent = 0
    while True:
        answer = await lookup(client, alice, *numbers[spent : spent + 100])
        if answer.status_code != 200:
            break
        spent += 100
        assert spent <= 200

    assert spent == 200  # RAPPORT_PHONE_LOOKUPS_PER_USER_PER_DAY's default
    assert (answer.status_code, problem_type(answer)) == (429, "too-many-attempts")
    assert int(answer.headers["retry-after"]) > 0


async def test_api_calls_without_a_token_are_refused(client: httpx.AsyncClient) -> None:
    answer = await client.post(LOOKUP, json={"numbers": [BOB_PHONE]})

    assert answer.status_code == 401


# As rapport_app, in SQL


async def test_mallory_reads_no_one_elses_number(
    client: httpx.AsyncClient, phones: Phones, app_engine: AsyncEngine, bob: Persona, mallory: Persona
) -> None:
    await add_phone(client, phones, bob, BOB_PHONE)

    async with user_transaction(app_engine, mallory.user_id) as db:
        numbers = (await db.execute(text("SELECT phone_number FROM auth.users WHERE phone_number IS NOT NULL"))).all()
        codes = (await db.execute(text("SELECT identifier FROM auth.otp_verifications"))).all()
    assert numbers == [] and codes == []


async def test_find_by_phone_finds_only_whom_the_caller_may_find(
    client: httpx.AsyncClient, phones: Phones, app_engine: AsyncEngine, alice: Persona, bob: Persona, mallory: Persona
) -> None:
    """The definer function called straight, as rapport_app: bob lets his contacts find him."""
    await add_phone(client, phones, bob, BOB_PHONE)
    await discoverable(client, bob, "contacts")
    await befriend(client, alice, bob)
    asked = text("SELECT user_id FROM social.find_by_phone(ARRAY[:p])")

    async with app_engine.connect() as conn:
        by_nobody = (await conn.execute(asked, {"p": BOB_PHONE})).scalars().all()
    async with user_transaction(app_engine, mallory.user_id) as db:
        by_mallory = (await db.execute(asked, {"p": BOB_PHONE})).scalars().all()
    async with user_transaction(app_engine, alice.user_id) as db:
        by_alice = (await db.execute(asked, {"p": BOB_PHONE})).scalars().all()

    assert (by_nobody, by_mallory, [str(u) for u in by_alice]) == ([], [], [bob.user_id])


async def test_mallory_cannot_make_bob_findable(
    client: httpx.AsyncClient, app_engine: AsyncEngine, bob: Persona, mallory: Persona
) -> None:
    async with user_transaction(app_engine, mallory.user_id) as db:
        changed = await db.execute(
            text("UPDATE social.settings SET phone_discoverability = 'everyone' WHERE user_id = :id"),
            {"id": bob.user_id},
        )
    assert changed.rowcount == 0


async def test_mallory_cannot_set_her_own_number_or_its_proof(app_engine: AsyncEngine, mallory: Persona) -> None:
    with pytest.raises(DBAPIError, match="only system work"):
        async with user_transaction(app_engine, mallory.user_id) as db:
            await db.execute(
                text("UPDATE auth.users SET phone_number = :p, phone_verified_at = now() WHERE id = :id"),
                {"p": BOB_PHONE, "id": mallory.user_id},
            )


async def test_mallory_cannot_refill_her_lookups_or_read_the_sms_count(
    client: httpx.AsyncClient, app_engine: AsyncEngine, alice: Persona, mallory: Persona
) -> None:
    await lookup(client, alice, BOB_PHONE)

    async with user_transaction(app_engine, mallory.user_id) as db:
        others = (await db.execute(text("SELECT key FROM auth.rate_limits"))).all()
        usage = (await db.execute(text("SELECT * FROM auth.sms_daily_usage"))).all()
        wiped = await db.execute(text("DELETE FROM auth.sms_daily_usage"))
    assert others == [] and usage == [] and wiped.rowcount == 0
