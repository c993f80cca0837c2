"""The demo's support desk (`rapport demo`, and `rapport serve` outside production): Bob
works T1 and Carol T2; Alice has two open rooms with messages, one escalated and waiting
in the T2 queue, the other waiting in the T1 queue with Bob's bot in it; made once, and
what people changed since is left alone."""

from __future__ import annotations

import io
from typing import Any
from uuid import UUID

import httpx
import pytest
from rich.console import Console

from rapport.access import service as access_service
from rapport.demo import DEMO_PASSWORD, DemoAccount, print_accounts, seed_demo
from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime
from tests.support import login
from tests.support_desk.support import QUEUES, ROOMS, ok

pytestmark = pytest.mark.module_database

ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@example.com"


async def signed_in(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await login(client, email, DEMO_PASSWORD)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def desk_of(client: httpx.AsyncClient) -> dict[str, Any]:
    """What the demo's people see of the desk, through the API."""
    alice, bob, carol = [await signed_in(client, email) for email in (ALICE, BOB, CAROL)]
    rooms = ok(await client.get(ROOMS, headers=alice))["items"]
    seen: dict[str, Any] = {"rooms": {}}
    for room in rooms:
        room_id = room["conversation_id"]
        messages = ok(await client.get(f"/v1/conversations/{room_id}/messages", headers=alice))["items"]
        people = ok(await client.get(f"/v1/conversations/{room_id}/participants", headers=alice))["items"]
        names = [
            ok(await client.get(f"/v1/users/{p['user_id']}/profile", headers=alice))["display_name"] for p in people
        ]
        seen["rooms"][room["issue_id"] or room["issue_description"]] = {
            "status": room["status"],
            "level": room["level"],
            "messages": len(messages),
            "people": sorted(names),
        }
    t1 = ok(await client.get(f"{QUEUES}/T1", headers=bob))["items"]
    t2 = ok(await client.get(f"{QUEUES}/T2", headers=carol))["items"]
    by_id = {room["conversation_id"]: room["issue_id"] or room["issue_description"] for room in rooms}
    seen["T1"] = [(item["kind"], item["state"], by_id[item["room_id"]]) for item in t1]
    seen["T2"] = [(item["kind"], item["state"], by_id[item["room_id"]]) for item in t2]
    return seen


EXPORT = "Where do I export the co-parenting calendar?"
EXPECTED = {
    "rooms": {
        "REF-2031": {
            "status": "open",
            "level": "T2",
            "messages": 3,
            "people": ["Alice Martin", "Bob Okafor"],
        },
        EXPORT: {"status": "open", "level": "T1", "messages": 2, "people": ["Alice Martin", "Desk Helper"]},
    },
    "T1": [("room", "unanswered", EXPORT)],
    "T2": [("escalation", "created", "REF-2031")],
}


def desk_column(accounts: list[DemoAccount]) -> dict[str, str]:
    return {account.email: account.desk for account in accounts}


async def test_the_demo_opens_a_support_desk(client: httpx.AsyncClient, runtime: Runtime) -> None:
    accounts = await seed_demo(runtime)

    assert desk_column(accounts) == {ALICE: "", BOB: "agent, T1", CAROL: "agent, T2"}
    assert await desk_of(client) == EXPECTED
    output = io.StringIO()
    print_accounts(accounts, Console(file=output, width=200))
    [bobs_line] = [line for line in output.getvalue().splitlines() if BOB in line]
    assert "agent, T1" in bobs_line


async def test_running_the_demo_again_opens_nothing_more(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await seed_demo(runtime)
    await seed_demo(runtime)

    assert await desk_of(client) == EXPECTED
    bob = await signed_in(client, BOB)
    assert [b["name"] for b in ok(await client.get("/v1/bots", headers=bob))["items"]] == ["Desk Helper"]


async def test_the_demo_grants_no_role_an_operator_took_back(client: httpx.AsyncClient, runtime: Runtime) -> None:
    accounts = {account.email: account.user_id for account in await seed_demo(runtime)}
    async with system_transaction(runtime.system_engine) as db:
        assert await access_service.revoke_role_system(db, UUID(str(accounts[BOB])), "support-t1")

    again = await seed_demo(runtime)

    assert desk_column(again)[BOB] == ""
    bob = await signed_in(client, BOB)
    assert (await client.get(f"{QUEUES}/T1", headers=bob)).status_code == 403
