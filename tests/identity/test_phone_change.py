"""The number of a signed-in account: added, proven by SMS, changed (the old number is
told), removed; a number another account holds answers as a free one does, and SMS
notifications go to the verified number."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import text

from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime
from tests.identity.phone_support import *  # noqa: F403
from tests.identity.phone_support import (
    ALICE_PHONE,
    BOB_PHONE,
    LOGIN,
    PHONE,
    PHONE_REMOVE,
    PHONE_VERIFY,
    VERIFY,
    ZOE_PHONE,
    Phones,
    add_phone,
    register,
    registered,
)
from tests.support import PASSWORD, Persona, problem_type, wrong

pytestmark = pytest.mark.module_database


async def me(client: httpx.AsyncClient, persona: Persona) -> dict[str, object]:
    answer = await client.get("/v1/auth/me", headers=persona.headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


async def event_types(client: httpx.AsyncClient, persona: Persona) -> list[str]:
    events = (await client.get("/v1/auth/security-events", headers=persona.headers)).json()["items"]
    return [event["event_type"] for event in events]


async def test_alice_adds_a_number_and_proves_it(client: httpx.AsyncClient, phones: Phones, alice: Persona) -> None:
    asked = await client.post(PHONE, headers=alice.headers, json={"phone": "+33 6 12 34 56 01"})
    assert asked.status_code == 202
    assert (await me(client, alice))["phone_number"] is None  # nobody's until proven

    verified = await client.post(
        PHONE_VERIFY, headers=alice.headers, json={"phone": ALICE_PHONE, "code": await phones.code(ALICE_PHONE)}
    )

    assert verified.status_code == 200 and verified.json() == {"phone_number": ALICE_PHONE, "phone_verified": True}
    assert (await me(client, alice))["phone_number"] == ALICE_PHONE
    assert "phone_added" in await event_types(client, alice)
    # And alice may now sign in with it.
    assert (await client.post(LOGIN, json={"phone": ALICE_PHONE, "password": PASSWORD})).status_code == 200


async def test_a_wrong_code_does_not_add_the_number(client: httpx.AsyncClient, phones: Phones, alice: Persona) -> None:
    await client.post(PHONE, headers=alice.headers, json={"phone": ALICE_PHONE})
    code = await phones.code(ALICE_PHONE)

    refused = await client.post(PHONE_VERIFY, headers=alice.headers, json={"phone": ALICE_PHONE, "code": wrong(code)})

    assert (refused.status_code, problem_type(refused)) == (400, "invalid-code")
    assert (await me(client, alice))["phone_number"] is None


async def test_a_code_for_one_number_does_not_prove_another(
    client: httpx.AsyncClient, phones: Phones, alice: Persona
) -> None:
    await client.post(PHONE, headers=alice.headers, json={"phone": ALICE_PHONE})
    code = await phones.code(ALICE_PHONE)

    refused = await client.post(PHONE_VERIFY, headers=alice.headers, json={"phone": BOB_PHONE, "code": code})

    assert problem_type(refused) == "invalid-code"


async def test_a_number_already_used_answers_as_a_free_one_and_gets_no_code(
    client: httpx.AsyncClient, phones: Phones, alice: Persona, mallory: Persona
) -> None:
    await add_phone(client, phones, alice, ALICE_PHONE)
    free = await client.post(PHONE, headers=mallory.headers, json={"phone": BOB_PHONE})

    taken = await client.post(PHONE, headers=mallory.headers, json={"phone": ALICE_PHONE})

    assert (taken.status_code, taken.json()) == (free.status_code, free.json())
    note = (await phones.to(ALICE_PHONE))[-1]
    assert "another account" in note
    # Whatever mallory tries, the number stays alice's.
    for code in (await phones.code(ALICE_PHONE), "000000"):
        refused = await client.post(PHONE_VERIFY, headers=mallory.headers, json={"phone": ALICE_PHONE, "code": code})
        assert problem_type(refused) == "invalid-code"
    assert (await me(client, alice))["phone_number"] == ALICE_PHONE


async def test_proving_a_number_takes_it_from_a_registration_that_never_proved_it(
    client: httpx.AsyncClient, phones: Phones, alice: Persona, runtime: Runtime
) -> None:
    await register(client, ALICE_PHONE)  # someone registers alice's number, and cannot verify it
    squatted = await phones.code(ALICE_PHONE)

    await add_phone(client, phones, alice, ALICE_PHONE)

    assert (await me(client, alice))["phone_number"] == ALICE_PHONE
    refused = await client.post(VERIFY, json={"phone": ALICE_PHONE, "code": squatted})
    assert problem_type(refused) == "invalid-code"
    async with system_transaction(runtime.system_engine) as db:
        holders = (
            await db.execute(text("SELECT count(*) FROM auth.users WHERE phone_number = :p"), {"p": ALICE_PHONE})
        ).scalar_one()
    assert holders == 1


async def test_the_first_to_prove_a_number_keeps_it(
    client: httpx.AsyncClient, phones: Phones, alice: Persona, bob: Persona
) -> None:
    await client.post(PHONE, headers=bob.headers, json={"phone": ALICE_PHONE})
    bobs_code = await phones.code(ALICE_PHONE)
    await add_phone(client, phones, alice, ALICE_PHONE)

    late = await client.post(PHONE_VERIFY, headers=bob.headers, json={"phone": ALICE_PHONE, "code": bobs_code})

    assert problem_type(late) == "invalid-code"
    assert (await me(client, bob))["phone_number"] is None


async def test_changing_the_number_tells_the_old_one(client: httpx.AsyncClient, phones: Phones, alice: Persona) -> None:
    await add_phone(client, phones, alice, ALICE_PHONE)

    await add_phone(client, phones, alice, BOB_PHONE)

    assert (await me(client, alice))["phone_number"] == BOB_PHONE
    assert "replaced this one" in (await phones.to(ALICE_PHONE))[-1]
    assert "phone_changed" in await event_types(client, alice)
    refused = await client.post(LOGIN, json={"phone": ALICE_PHONE, "password": PASSWORD})
    assert problem_type(refused) == "invalid-credentials"


async def test_the_same_number_again_is_refused(client: httpx.AsyncClient, phones: Phones, alice: Persona) -> None:
    await add_phone(client, phones, alice, ALICE_PHONE)

    again = await client.post(PHONE, headers=alice.headers, json={"phone": ALICE_PHONE})

    assert (again.status_code, problem_type(again)) == (409, "phone-unchanged")


async def test_removing_needs_the_password_and_tells_the_number(
    client: httpx.AsyncClient, phones: Phones, alice: Persona
) -> None:
    await add_phone(client, phones, alice, ALICE_PHONE)

    refused = await client.post(PHONE_REMOVE, headers=alice.headers, json={"password": "not alice's password"})
    removed = await client.post(PHONE_REMOVE, headers=alice.headers, json={"password": PASSWORD})

    assert (refused.status_code, problem_type(refused)) == (401, "invalid-credentials")
    assert removed.status_code == 204
    assert (await me(client, alice))["phone_number"] is None
    assert "removed from your account" in (await phones.to(ALICE_PHONE))[-1]
    assert "phone_removed" in await event_types(client, alice)


async def test_a_phone_only_account_cannot_remove_its_number(client: httpx.AsyncClient, phones: Phones) -> None:
    zoe = await registered(client, phones, ZOE_PHONE)

    refused = await client.post(PHONE_REMOVE, headers=zoe.headers, json={"password": PASSWORD})

    assert (refused.status_code, problem_type(refused)) == (409, "phone-required")


async def test_removing_without_a_number_is_refused(client: httpx.AsyncClient, alice: Persona) -> None:
    refused = await client.post(PHONE_REMOVE, headers=alice.headers, json={"password": PASSWORD})

    assert (refused.status_code, problem_type(refused)) == (409, "no-phone")


async def test_api_keys_cannot_change_the_number(client: httpx.AsyncClient, phones: Phones, alice: Persona) -> None:
    key = (await client.post("/v1/auth/api-keys", headers=alice.headers, json={"name": "bot"})).json()["key"]

    refused = await client.post(PHONE, headers={"Authorization": f"Bearer {key}"}, json={"phone": ALICE_PHONE})

    assert (refused.status_code, problem_type(refused)) == (403, "session-required")
    assert await phones.count() == 0


async def test_a_signed_out_session_cannot_change_the_number(client: httpx.AsyncClient, alice: Persona) -> None:
    await client.post("/v1/auth/logout", headers=alice.headers)

    refused = await client.post(PHONE, headers=alice.headers, json={"phone": ALICE_PHONE})

    assert refused.status_code == 401


async def test_the_own_number_is_read_at_get_phone(client: httpx.AsyncClient, phones: Phones, alice: Persona) -> None:
    await add_phone(client, phones, alice, ALICE_PHONE)

    answer = await client.get(PHONE, headers=alice.headers)

    assert answer.json() == {"phone_number": ALICE_PHONE, "phone_verified": True}


async def test_sms_notifications_go_to_the_verified_number(
    client: httpx.AsyncClient, phones: Phones, alice: Persona, bob: Persona, runtime: Runtime
) -> None:
    """Notifications by SMS (off by default) now reach the number alice verified."""
    await add_phone(client, phones, alice, ALICE_PHONE)
    turned_on = await client.put(
        "/v1/notification-preferences",
        headers=alice.headers,
        json={"channels": [{"channel": "sms", "enabled": True}]},
    )
    assert turned_on.status_code == 200, turned_on.text
    sent = len(await phones.to(ALICE_PHONE))

    # Bob asks alice to be a contact: a notification she gets by SMS too.
    asked = await client.post("/v1/contact-requests", headers=bob.headers, json={"user_id": alice.user_id})
    assert asked.status_code == 201, asked.text
    for _ in range(100):
        if len(await phones.to(ALICE_PHONE)) > sent:
            break
        await asyncio.sleep(0.05)

    assert len(await phones.to(ALICE_PHONE)) == sent + 1
    async with system_transaction(runtime.system_engine) as db:
        row = (await db.execute(text("SELECT phone, status FROM notifications.sms_notifications"))).one()
    assert (row.phone, row.status) == (ALICE_PHONE, "sent")
