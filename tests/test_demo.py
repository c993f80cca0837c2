"""The demo (`rapport demo`, and `rapport serve` outside production): three accounts that
know each other, made once, and credentials printed only when they sign in."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from rich.console import Console

from rapport.demo import DEMO_PASSWORD, DemoAccount, print_accounts, seed_demo
from rapport.kernel.runtime import Runtime
from tests.support import login

pytestmark = pytest.mark.module_database

ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@example.com"


async def signed_in(client: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    response = await login(client, email, password)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def world_of(client: httpx.AsyncClient, accounts: list[DemoAccount]) -> dict[str, Any]:
    """What each demo account sees of the others, through the API."""
    names = {str(account.user_id): account.email.split("@")[0] for account in accounts}
    seen: dict[str, Any] = {}
    for account in accounts:
        assert account.password is not None
        headers = await signed_in(client, account.email, account.password)
        name = account.email.split("@")[0]
        profile = (await client.get("/v1/profile", headers=headers)).json()
        contacts = (await client.get("/v1/contacts", headers=headers)).json()["items"]
        outgoing = (await client.get("/v1/contact-requests", headers=headers, params={"direction": "outgoing"})).json()[
            "items"
        ]
        groups = (await client.get("/v1/contact-groups", headers=headers)).json()["items"]
        members = {
            group["name"]: sorted(
                names[c["contact_user_id"]]
                for c in (await client.get("/v1/contacts", headers=headers, params={"group_id": group["id"]})).json()[
                    "items"
                ]
            )
            for group in groups
        }
        pairing = await client.get("/v1/coparenting/pairing", headers=headers)
        seen[name] = {
            "display_name": profile["display_name"],
            "paired_with": names[pairing.json()["partner_id"]] if pairing.status_code == 200 else None,
            "has_bio": bool(profile["bio"]),
            "contacts": sorted(names[c["contact_user_id"]] for c in contacts),
            "asked": sorted(names[r["addressee_id"]] for r in outgoing),
            "groups": members,
        }
    return seen


EXPECTED = {
    "alice": {
        "display_name": "Alice Martin",
        "paired_with": "bob",
        "has_bio": True,
        "contacts": ["bob"],
        "asked": [],
        "groups": {"Friends": ["bob"]},
    },
    "bob": {
        "display_name": "Bob Okafor",
        "paired_with": "alice",
        "has_bio": True,
        "contacts": ["alice", "carol"],
        "asked": [],
        "groups": {},
    },
    "carol": {
        "display_name": "Carol Nguyen",
        "paired_with": None,
        "has_bio": True,
        "contacts": ["bob"],
        "asked": ["alice"],
        "groups": {},
    },
}


async def test_the_demo_is_a_small_living_world(client: httpx.AsyncClient, runtime: Runtime) -> None:
    accounts = await seed_demo(runtime)

    assert [(a.email, a.password, a.state) for a in accounts] == [
        (email, DEMO_PASSWORD, "created") for email in (ALICE, BOB, CAROL)
    ]
    assert await world_of(client, accounts) == EXPECTED


async def test_running_the_demo_again_adds_nothing(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await seed_demo(runtime)
    again = await seed_demo(runtime)

    assert [(a.email, a.password, a.state) for a in again] == [
        (email, DEMO_PASSWORD, "exists") for email in (ALICE, BOB, CAROL)
    ]
    assert await world_of(client, again) == EXPECTED


async def test_a_changed_password_is_not_printed(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await seed_demo(runtime)
    headers = await signed_in(client, ALICE, DEMO_PASSWORD)
    changed = await client.post(
        "/v1/auth/password/change",
        headers=headers,
        json={"current_password": DEMO_PASSWORD, "new_password": "a brand new passphrase for alice, 2026"},
    )
    assert changed.status_code == 204, changed.text

    accounts = await seed_demo(runtime)
    output = io.StringIO()
    print_accounts(accounts, Console(file=output, width=200))

    assert [(a.email, a.password) for a in accounts] == [(ALICE, None), (BOB, DEMO_PASSWORD), (CAROL, DEMO_PASSWORD)]
    [alices_line] = [line for line in output.getvalue().splitlines() if ALICE in line]
    assert DEMO_PASSWORD not in alices_line
    # Every password printed signs in.
    for account in accounts:
        if account.password is not None:
            assert (await login(client, account.email, account.password)).status_code == 200


async def test_the_demo_leaves_what_people_changed(client: httpx.AsyncClient, runtime: Runtime) -> None:
    ids = {account.email: str(account.user_id) for account in await seed_demo(runtime)}
    bob = await signed_in(client, BOB, DEMO_PASSWORD)
    await client.patch("/v1/profile", headers=bob, json={"bio": "Mine now."})
    contacts = (await client.get("/v1/contacts", headers=bob)).json()["items"]
    [carol] = [c for c in contacts if c["contact_user_id"] == ids[CAROL]]
    assert (await client.delete(f"/v1/contacts/{carol['id']}", headers=bob)).status_code == 204

    await seed_demo(runtime)

    profile = (await client.get("/v1/profile", headers=bob)).json()
    contacts = (await client.get("/v1/contacts", headers=bob)).json()["items"]
    assert (profile["bio"], len(contacts)) == ("Mine now.", 1)
