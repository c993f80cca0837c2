"""Bots (/v1/bots): made by people holding chat:robot:manage (administrators hold it
implicitly), shown with their API key and webhook secret once, read, changed, given a new
key and deleted by whoever manages them. A bot is an account of kind bot, signing in with
its key alone."""

from __future__ import annotations

from uuid import UUID

import pytest
from sqlalchemy import text

from rapport.bots import _webhooks
from rapport.kernel.db import system_transaction
from tests.bots.support import make_bot, make_developer
from tests.support import Persona, bearer, problem_type

pytestmark = pytest.mark.module_database


async def test_making_a_bot_needs_the_permission(client, receiver, alice):
    refused = await client.post(
        "/v1/bots", headers=alice.headers, json={"name": "Helper", "webhook_url": receiver.hook("helper")}
    )

    assert refused.status_code == 403
    assert problem_type(refused) == "permission-required"
    assert refused.json()["permission"] == "chat:robot:manage"


async def test_a_developer_makes_a_bot_whose_key_and_secret_are_shown_once(client, runtime, receiver, developer):
    made = await client.post(
        "/v1/bots",
        headers=developer.headers,
        json={"name": "Helper", "webhook_url": receiver.hook("helper"), "description": "Answers questions"},
    )

    assert made.status_code == 201, made.text
    bot = made.json()
    assert (bot["owner_id"], bot["name"], bot["receives"], bot["status"]) == (
        developer.user_id,
        "Helper",
        "mentions",
        "active",
    )
    assert bot["is_visible_to_guests"] is False and bot["description"] == "Answers questions"
    assert bot["api_key"]["key"].startswith("rk_") and bot["api_key"]["key"].startswith(bot["api_key"]["prefix"])
    assert bot["webhook_secret"].startswith("whsec_")
    shown = (await client.get(f"/v1/bots/{bot['id']}", headers=developer.headers)).json()
    assert "api_key" not in shown and "webhook_secret" not in shown and "key" not in str(shown)
    async with system_transaction(runtime.system_engine) as db:
        account = (
            await db.execute(
                text("SELECT kind, status, email, phone_number, password_hash FROM auth.users WHERE id = :id"),
                {"id": UUID(bot["id"])},
            )
        ).one()
        sealed = (
            await db.execute(text("SELECT webhook_secret FROM bots.bots WHERE id = :id"), {"id": UUID(bot["id"])})
        ).scalar_one()
    assert tuple(account) == ("bot", "active", None, None, None)
    # Kept encrypted, and the server can read it back to sign.
    assert bot["webhook_secret"].encode() not in sealed
    assert _webhooks.open_secret(runtime.keyring, sealed) == bot["webhook_secret"]


async def test_a_bot_signs_in_with_its_key_as_itself_and_is_named_as_made(client, receiver, developer, bob):
    bot = await make_bot(client, receiver, developer, "helper", name="Helper")

    me = await client.get("/v1/conversations", headers=bot.headers)
    profile = await client.get(f"/v1/users/{bot.id}/profile", headers=bob.headers)

    assert me.status_code == 200, me.text
    assert me.json()["items"] == []
    assert profile.json()["display_name"] == "Helper"
    # Account security is for a signed-in person, never for a key.
    refused = await client.post("/v1/bots", headers=bot.headers, json={"name": "x", "webhook_url": receiver.hook("x")})
    assert problem_type(refused) == "session-required"


async def test_bots_are_listed_to_whoever_manages_them(client, runtime, receiver, developer, bob, admin):
    first = await make_bot(client, receiver, developer, "one")
    second = await make_bot(client, receiver, developer, "two")
    await make_developer(runtime, bob)
    bobs = await make_bot(client, receiver, bob, "bobs")

    mine = await client.get("/v1/bots", headers=developer.headers, params={"limit": 1})
    rest = await client.get("/v1/bots", headers=developer.headers, params={"cursor": mine.json()["next"]})
    every = await client.get("/v1/bots", headers=admin.headers)

    assert [b["id"] for b in mine.json()["items"] + rest.json()["items"]] == [second.id, first.id]
    assert rest.json()["next"] is None
    assert {b["id"] for b in every.json()["items"]} == {first.id, second.id, bobs.id}


async def test_a_bot_is_changed_and_its_profile_follows_its_name(client, receiver, developer, bob):
    bot = await make_bot(client, receiver, developer, "helper")

    changed = await client.patch(
        f"/v1/bots/{bot.id}",
        headers=developer.headers,
        json={"name": "Concierge", "receives": "all", "is_visible_to_guests": True, "status": "disabled"},
    )

    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["name"], body["receives"], body["is_visible_to_guests"], body["status"]) == (
        "Concierge",
        "all",
        True,
        "disabled",
    )
    assert body["webhook_url"] == receiver.hook("helper")
    profile = await client.get(f"/v1/users/{bot.id}/profile", headers=bob.headers)
    assert profile.json()["display_name"] == "Concierge"


@pytest.mark.parametrize(
    ("body", "wrong"),
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"webhook_url": "ftp://example.com/hook"}, "webhook_url"),
        ({"webhook_url": "/relative"}, "webhook_url"),
        ({"webhook_url": "https://example.com:port/hook"}, "webhook_url"),
        ({"webhook_url": "HTTPS://example.com/hook"}, "webhook_url"),
        ({"webhook_url": "https://[::1/hook"}, "webhook_url"),
        ({"webhook_url": "https://example.com/hook#part"}, "webhook_url"),
        ({"webhook_url": "https://example.com/" + "a" * 2000}, "webhook_url"),
        ({"description": "x" * 1001}, "description"),
        ({"receives": "everything"}, "receives"),
        ({"status": "deleted"}, "status"),
        ({"owner_id": "00000000-0000-0000-0000-000000000000"}, "owner_id"),
    ],
)
async def test_bad_changes_are_refused_with_what_is_wrong(client, receiver, developer, body, wrong):
    bot = await make_bot(client, receiver, developer, "helper")

    refused = await client.patch(f"/v1/bots/{bot.id}", headers=developer.headers, json=body)

    assert refused.status_code == 422, refused.text
    assert problem_type(refused) == "validation-error"
    assert wrong in refused.json()["detail"]


async def test_a_new_key_replaces_the_old_one(client, runtime, receiver, developer):
    bot = await make_bot(client, receiver, developer, "helper")

    rotated = await client.post(f"/v1/bots/{bot.id}/keys", headers=developer.headers)

    assert rotated.status_code == 201, rotated.text
    key = rotated.json()["key"]
    assert key != bot.key
    assert (await client.get("/v1/conversations", headers=bearer(key))).status_code == 200
    old = await client.get("/v1/conversations", headers=bot.headers)
    assert old.status_code == 401 and problem_type(old) == "invalid-token"
    # The streams the old key opened hear it, and close (as for any revoked key).
    async with system_transaction(runtime.system_engine) as db:
        revoked = (
            await db.execute(
                text("SELECT payload FROM kernel.events WHERE scope_id = :bot AND type = 'api_key.revoked'"),
                {"bot": UUID(bot.id)},
            )
        ).scalars()
        assert list(revoked) == [{"api_key_id": bot.body["api_key"]["id"]}]


async def test_a_deleted_bot_is_gone_and_its_key_with_it(client, runtime, receiver, developer):
    bot = await make_bot(client, receiver, developer, "helper")

    deleted = await client.delete(f"/v1/bots/{bot.id}", headers=developer.headers)

    assert deleted.status_code == 204
    assert problem_type(await client.get(f"/v1/bots/{bot.id}", headers=developer.headers)) == "bot-not-found"
    assert (await client.get("/v1/conversations", headers=bot.headers)).status_code == 401
    assert problem_type(await client.delete(f"/v1/bots/{bot.id}", headers=developer.headers)) == "bot-not-found"
    async with system_transaction(runtime.system_engine) as db:
        status = (
            await db.execute(text("SELECT status FROM auth.users WHERE id = :id"), {"id": UUID(bot.id)})
        ).scalar_one()
    assert status == "deleted"


async def test_only_administrators_make_platform_bots(client, receiver, developer, admin, bob):
    refused = await client.post(
        "/v1/bots",
        headers=developer.headers,
        json={"name": "Desk", "webhook_url": receiver.hook("desk"), "platform": True},
    )
    made = await make_bot(client, receiver, admin, "desk", platform=True)

    assert problem_type(refused) == "platform-admin-required"
    assert made.body["owner_id"] is None
    assert (await client.get(f"/v1/bots/{made.id}", headers=admin.headers)).status_code == 200
    for someone in (developer, bob):
        assert (await client.get(f"/v1/bots/{made.id}", headers=someone.headers)).status_code == 404


async def test_an_administrator_manages_anyones_bot(client, receiver, developer, admin):
    bot = await make_bot(client, receiver, developer, "helper")

    changed = await client.patch(f"/v1/bots/{bot.id}", headers=admin.headers, json={"status": "disabled"})
    rotated = await client.post(f"/v1/bots/{bot.id}/keys", headers=admin.headers)

    assert changed.status_code == 200 and changed.json()["status"] == "disabled"
    assert rotated.status_code == 201


async def test_unknown_bots_are_not_found(client, developer):
    missing = "00000000-0000-7000-8000-000000000000"
    for method, path in (
        ("GET", f"/v1/bots/{missing}"),
        ("PATCH", f"/v1/bots/{missing}"),
        ("DELETE", f"/v1/bots/{missing}"),
        ("POST", f"/v1/bots/{missing}/keys"),
        ("GET", f"/v1/bots/{missing}/interactions"),
    ):
        answer = await client.request(method, path, headers=developer.headers, json={} if method == "PATCH" else None)
        assert answer.status_code == 404, (method, path, answer.text)
        assert problem_type(answer) == "bot-not-found"


async def test_the_owner_hears_of_each_change(client, runtime, receiver, developer):
    bot = await make_bot(client, receiver, developer, "helper")
    await client.patch(f"/v1/bots/{bot.id}", headers=developer.headers, json={"receives": "all"})
    await client.post(f"/v1/bots/{bot.id}/keys", headers=developer.headers)
    await client.delete(f"/v1/bots/{bot.id}", headers=developer.headers)

    async with system_transaction(runtime.system_engine) as db:
        rows = await db.execute(
            text("SELECT type, payload FROM kernel.events WHERE scope_id = :u AND type LIKE 'bot.%' ORDER BY position"),
            {"u": UUID(developer.user_id)},
        )
        events = [(row.type, row.payload) for row in rows]

    assert [event for event, _ in events] == ["bot.created", "bot.updated", "bot.key_rotated", "bot.deleted"]
    assert all(payload["bot_id"] == bot.id for _, payload in events)
    assert events[1][1]["changed"] == ["receives"]


def test_production_delivers_only_over_https_to_public_hosts():
    rule = _webhooks.WebhookRule(production=True)
    for url in (
        "http://hooks.example.com/bot",
        "https://localhost/bot",
        "https://api.localhost/bot",
        "https://127.0.0.1/bot",
        "https://10.0.0.7/bot",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/bot",
        "https://[fd00::1]/bot",
    ):
        assert not rule.admits(url), url
    assert rule.admits("https://hooks.example.com/bot")
    assert rule.admits("https://93.184.216.34/bot")
    # Anywhere, outside production: a developer's machine runs its receiver locally.
    assert _webhooks.WebhookRule(production=False).admits("http://127.0.0.1:8080/bot")


def test_production_hosts_can_be_listed():
    rule = _webhooks.WebhookRule(production=True, hosts=("bots.example.com",))

    assert rule.admits("https://bots.example.com/a") and rule.admits("https://eu.bots.example.com/a")
    assert not rule.admits("https://example.com/a") and not rule.admits("https://evilbots.example.com.evil.net/a")


@pytest.mark.parametrize("host", ["127.1", "0x7f000001", "2130706433", "no-such-host.invalid"])
async def test_a_host_that_resolves_to_no_public_address_is_refused_at_delivery(host):
    """Spellings of loopback that no address parser takes for one, and a name that does
    not resolve: admitted as names when given, refused by what they resolve to."""
    rule = _webhooks.WebhookRule(production=True)

    with pytest.raises(_webhooks.TargetRefused):
        await rule.check_target(f"https://{host}/hook")


async def test_a_production_server_refuses_a_local_webhook(client, receiver, developer, app):
    app.state.runtime.settings = app.state.runtime.settings.model_copy(update={"environment": "production"})
    try:
        refused = await client.post(
            "/v1/bots", headers=developer.headers, json={"name": "Local", "webhook_url": receiver.hook("local")}
        )
    finally:
        app.state.runtime.settings = app.state.runtime.settings.model_copy(update={"environment": "test"})

    assert refused.status_code == 422
    assert problem_type(refused) == "webhook-url-refused"


async def test_people_hold_no_bot_powers_by_default(client, receiver, bob: Persona):
    answer = await client.get("/v1/bots", headers=bob.headers)

    assert answer.status_code == 200 and answer.json()["items"] == []


async def test_a_bot_closes_with_its_owners_account(client, runtime, receiver, developer):
    """When its owner's account is erased (its row deleted, as compliance does), the bot
    goes with it, and its account closes: its key stops working."""
    bot = await make_bot(client, receiver, developer, "helper")

    async with system_transaction(runtime.system_engine) as db:
        await db.execute(text("DELETE FROM auth.users WHERE id = :id"), {"id": UUID(developer.user_id)})
        left = (await db.execute(text("SELECT count(*) FROM bots.bots"))).scalar_one()
        status = (
            await db.execute(text("SELECT status FROM auth.users WHERE id = :id"), {"id": UUID(bot.id)})
        ).scalar_one()

    assert (left, status) == (0, "deleted")
    assert (await client.get("/v1/conversations", headers=bot.headers)).status_code == 401
