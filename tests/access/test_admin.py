"""Access administrators manage roles and grants through /v1/admin: every change is in
audit.admin_actions with who, what and why, and every grant or revocation is told to its
holder. Everyone else is refused with 403 `permission-required`.

Ada is a platform administrator; dave an access administrator through a role holding
access:admin:manage; carol the person roles are granted to; mallory holds nothing."""

from __future__ import annotations

import json
from uuid import UUID

import httpx
import pytest

from rapport.kernel.ids import uuid7
from tests.access.support import admin_actions, admin_persona, grant, grant_events  # noqa: F401 (the admin fixture)
from tests.messaging.support import make_conversation
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

REASON = "Joins the support team (ticket 7)"


async def role_named(client: httpx.AsyncClient, admin: Persona, name: str) -> dict:
    listed = await client.get("/v1/admin/roles", headers=admin.headers, params={"limit": 200})
    assert listed.status_code == 200, listed.text
    [role] = [item for item in listed.json()["items"] if item["name"] == name]
    return role


async def make_role(client: httpx.AsyncClient, admin: Persona, name: str = "triage", **body: object) -> dict:
    made = await client.post("/v1/admin/roles", headers=admin.headers, json={"name": name, **body})
    assert made.status_code == 201, made.text
    return made.json()


async def grant_via_api(client: httpx.AsyncClient, admin: Persona, person: Persona, role: str, **body: object):
    return await client.post(
        "/v1/admin/grants", headers=admin.headers, json={"user_id": person.user_id, "role": role, **body}
    )


# Who may


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/admin/permissions", None),
        ("GET", "/v1/admin/roles", None),
        ("POST", "/v1/admin/roles", {"name": "mine"}),
        ("GET", "/v1/admin/roles/{role}", None),
        ("PATCH", "/v1/admin/roles/{role}", {"description": "mine"}),
        ("DELETE", "/v1/admin/roles/{role}", None),
        ("PUT", "/v1/admin/roles/{role}/permissions", {"permissions": ["access:admin:manage"]}),
        ("GET", "/v1/admin/grants", None),
        ("POST", "/v1/admin/grants", {"user_id": "{me}", "role": "support-manager"}),
        ("DELETE", "/v1/admin/grants/{grant}", None),
    ],
)
async def test_only_access_administrators_may(client, admin, runtime, database, carol, mallory, method, path, body):
    role = await make_role(client, admin)
    held = await grant(runtime, carol, "support-t1")
    values = {"role": role["id"], "grant": str(held), "me": mallory.user_id}
    if body is not None:
        body = {key: value.format(**values) if isinstance(value, str) else value for key, value in body.items()}

    refused = await client.request(method, path.format(**values), headers=mallory.headers, json=body)

    assert refused.status_code == 403, refused.text
    assert problem_type(refused) == "permission-required"
    assert refused.json()["permission"] == "access:admin:manage"
    assert [row["action"] for row in await admin_actions(database)] == ["role_created"]


async def test_a_role_holding_access_admin_manage_makes_an_access_administrator(
    client, admin, make_persona, runtime, database, carol
):
    await make_role(client, admin, "access-admins", permissions=["access:admin:manage"])
    dave = await make_persona("dave")
    await grant(runtime, dave, "access-admins")

    granted = await grant_via_api(client, dave, carol, "support-t1", reason=REASON)

    assert granted.status_code == 201, granted.text
    recorded = (await admin_actions(database))[-1]
    assert (recorded["admin_id"], recorded["action"], recorded["target_user_id"]) == (
        UUID(dave.user_id),
        "grant_created",
        UUID(carol.user_id),
    )


async def test_an_access_administrators_role_reaches_no_other_administration(client, admin, make_persona, runtime):
    await make_role(client, admin, "access-admins", permissions=["access:admin:manage"])
    dave = await make_persona("dave")
    await grant(runtime, dave, "access-admins")

    refused = await client.get("/v1/admin/compliance-logs", headers=dave.headers, params={"reason": "curious"})

    assert refused.status_code == 403, refused.text


async def test_a_grant_within_one_conversation_administers_nothing(client, admin, app_engine, runtime, alice, bob):
    await make_role(client, admin, "access-admins", permissions=["access:admin:manage"])
    room = await make_conversation(app_engine, alice, bob)
    await grant(runtime, bob, "access-admins", room)

    refused = await client.get("/v1/admin/grants", headers=bob.headers)

    assert refused.status_code == 403, refused.text


# The catalogue and roles


async def test_the_catalogue_lists_every_permission_by_name(client, admin):
    listed = await client.get("/v1/admin/permissions", headers=admin.headers)

    assert listed.status_code == 200, listed.text
    names = [item["name"] for item in listed.json()["items"]]
    assert names == sorted(names)
    assert {"chat:robot:manage", "supervisor:chat:observe", "support:queue:manager", "access:admin:manage"} <= set(
        names
    )
    [observe] = [item for item in listed.json()["items"] if item["name"] == "supervisor:chat:observe"]
    assert (observe["domain"], observe["action"]) == ("supervisor:chat", "observe")


async def test_the_built_in_roles_are_there_with_their_permissions(client, admin):
    t2 = await role_named(client, admin, "support-t2")
    developer = await role_named(client, admin, "bot-developer")

    assert t2["is_builtin"] and developer["is_builtin"]
    assert {"support:queue:t1", "support:queue:t2", "chat:escalation:assign"} <= set(t2["permissions"])
    assert "support:queue:t3" not in t2["permissions"]
    assert developer["permissions"] == ["chat:robot:manage"]


async def test_making_a_role_records_it_and_stores_its_name_in_lower_case(client, admin, database):
    made = await client.post(
        "/v1/admin/roles",
        headers=admin.headers,
        json={"name": "Night-Shift", "description": "Evenings", "permissions": ["chat:room:join"], "reason": REASON},
    )

    assert made.status_code == 201, made.text
    role = made.json()
    assert (role["name"], role["description"], role["permissions"], role["is_builtin"]) == (
        "night-shift",
        "Evenings",
        ["chat:room:join"],
        False,
    )
    assert (await client.get(f"/v1/admin/roles/{role['id']}", headers=admin.headers)).json() == role
    [recorded] = await admin_actions(database)
    assert (recorded["admin_id"], recorded["action"], recorded["target"], recorded["reason"]) == (
        UUID(admin.user_id),
        "role_created",
        "role:night-shift",
        REASON,
    )


async def test_a_change_without_a_reason_is_recorded_as_such(client, admin, database):
    await make_role(client, admin)

    [recorded] = await admin_actions(database)
    assert recorded["reason"] == "No reason given."


@pytest.mark.parametrize(
    ("body", "status", "problem"),
    [
        ({"name": "support-t1"}, 409, "role-name-taken"),
        ({"name": "SUPPORT-T1"}, 409, "role-name-taken"),
        ({"name": "x", "permissions": ["chat:room:fly"]}, 422, "unknown-permission"),
        ({"name": "x", "permissions": ["chat-room-join"]}, 422, "validation-error"),
        ({"name": "x", "permissions": ["chat:room:join", "chat:room:join"]}, 422, "validation-error"),
        ({"name": "has space"}, 422, "validation-error"),
        ({"name": "-dash"}, 422, "validation-error"),
        ({"name": "x" * 64}, 422, "validation-error"),
        ({"name": "x", "is_builtin": True}, 422, "validation-error"),
        ({"name": "x", "description": "d" * 501}, 422, "validation-error"),
    ],
)
async def test_a_bad_role_is_refused_and_says_why(client, admin, database, body, status, problem):
    refused = await client.post("/v1/admin/roles", headers=admin.headers, json=body)

    assert refused.status_code == status, refused.text
    assert problem_type(refused) == problem
    assert await admin_actions(database) == []


async def test_an_unknown_permission_is_named(client, admin):
    refused = await client.post(
        "/v1/admin/roles", headers=admin.headers, json={"name": "x", "permissions": ["chat:room:join", "chat:room:fly"]}
    )

    assert refused.json()["permissions"] == ["chat:room:fly"]


async def test_renaming_and_describing_a_role(client, admin, database):
    role = await make_role(client, admin)

    changed = await client.patch(
        f"/v1/admin/roles/{role['id']}", headers=admin.headers, json={"name": "Triage-2", "description": "Sorting"}
    )

    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["description"]) == ("triage-2", "Sorting")
    recorded = (await admin_actions(database))[-1]
    assert recorded["action"] == "role_changed"
    assert json.loads(recorded["details"])["before"] == {"name": "triage", "description": ""}


async def test_a_built_in_role_keeps_its_name_but_may_be_described(client, admin):
    t1 = await role_named(client, admin, "support-t1")

    renamed = await client.patch(f"/v1/admin/roles/{t1['id']}", headers=admin.headers, json={"name": "tier-one"})
    described = await client.patch(f"/v1/admin/roles/{t1['id']}", headers=admin.headers, json={"description": "T1"})
    same_name = await client.patch(f"/v1/admin/roles/{t1['id']}", headers=admin.headers, json={"name": "support-t1"})

    assert renamed.status_code == 409 and problem_type(renamed) == "builtin-role"
    assert described.status_code == 200 and described.json()["description"] == "T1"
    assert same_name.status_code == 200, same_name.text


async def test_renaming_onto_another_roles_name_or_clearing_it_is_refused(client, admin):
    role = await make_role(client, admin)
    url = f"/v1/admin/roles/{role['id']}"

    taken = await client.patch(url, headers=admin.headers, json={"name": "supervisor"})
    cleared = await client.patch(url, headers=admin.headers, json={"name": None})

    assert taken.status_code == 409 and problem_type(taken) == "role-name-taken"
    assert cleared.status_code == 422 and problem_type(cleared) == "validation-error"


async def test_setting_a_roles_permissions_replaces_them_and_records_the_difference(
    client, admin, runtime, app_engine, database, carol
):
    role = await make_role(client, admin, permissions=["chat:room:join", "chat:room:close"])
    await grant(runtime, carol, "triage")

    replaced = await client.put(
        f"/v1/admin/roles/{role['id']}/permissions",
        headers=admin.headers,
        json={"permissions": ["chat:room:join", "supervisor:chat:observe"], "reason": REASON},
    )

    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["permissions"] == ["chat:room:join", "supervisor:chat:observe"]
    mine = (await client.get("/v1/permissions/me", headers=carol.headers)).json()["permissions"]
    assert [item["permission"] for item in mine] == ["chat:room:join", "supervisor:chat:observe"]
    details = json.loads((await admin_actions(database))[-1]["details"])
    assert (details["added"], details["removed"]) == (["supervisor:chat:observe"], ["chat:room:close"])


async def test_setting_unknown_permissions_changes_nothing(client, admin):
    role = await make_role(client, admin, permissions=["chat:room:join"])

    refused = await client.put(
        f"/v1/admin/roles/{role['id']}/permissions", headers=admin.headers, json={"permissions": ["no:such:thing"]}
    )

    assert refused.status_code == 422 and problem_type(refused) == "unknown-permission"
    assert (await client.get(f"/v1/admin/roles/{role['id']}", headers=admin.headers)).json()["permissions"] == [
        "chat:room:join"
    ]


async def test_a_built_in_role_cannot_be_deleted(client, admin):
    t1 = await role_named(client, admin, "support-t1")

    refused = await client.delete(f"/v1/admin/roles/{t1['id']}", headers=admin.headers)

    assert refused.status_code == 409 and problem_type(refused) == "builtin-role"


async def test_deleting_a_role_revokes_its_grants_and_tells_their_holders(client, admin, runtime, database, carol):
    role = await make_role(client, admin, permissions=["chat:room:join"])
    held = await grant(runtime, carol, "triage")

    deleted = await client.delete(f"/v1/admin/roles/{role['id']}", headers=admin.headers, params={"reason": REASON})

    assert deleted.status_code == 204, deleted.text
    assert (await client.get(f"/v1/admin/roles/{role['id']}", headers=admin.headers)).status_code == 404
    assert (await client.get("/v1/permissions/me", headers=carol.headers)).json()["permissions"] == []
    assert (await grant_events(runtime))[-1] == (
        "access.grant.revoked",
        "user",
        carol.user_id,
        {"grant_id": str(held), "role": "triage", "conversation_id": None},
    )
    recorded = (await admin_actions(database))[-1]
    assert (recorded["action"], recorded["reason"], json.loads(recorded["details"])["grants_revoked"]) == (
        "role_deleted",
        REASON,
        1,
    )


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE", "PUT"])
async def test_an_unknown_role_is_not_found(client, admin, method):
    path = f"/v1/admin/roles/{uuid7()}" + ("/permissions" if method == "PUT" else "")
    body = {"permissions": []} if method == "PUT" else ({"description": "x"} if method == "PATCH" else None)

    missing = await client.request(method, path, headers=admin.headers, json=body)

    assert missing.status_code == 404 and problem_type(missing) == "role-not-found"


async def test_roles_are_listed_newest_first_a_page_at_a_time(client, admin):
    made = [await make_role(client, admin, f"role-{n}") for n in range(3)]

    first = await client.get("/v1/admin/roles", headers=admin.headers, params={"limit": 2})
    second = await client.get(
        "/v1/admin/roles", headers=admin.headers, params={"limit": 2, "cursor": first.json()["next"]}
    )

    assert [item["name"] for item in first.json()["items"]] == ["role-2", "role-1"]
    assert second.json()["items"][0]["name"] == made[0]["name"]


# Grants


async def test_granting_a_role_tells_the_person_and_is_recorded(client, admin, runtime, database, carol):
    granted = await grant_via_api(client, admin, carol, "support-t2", reason=REASON)

    assert granted.status_code == 201, granted.text
    body = granted.json()
    assert (body["user_id"], body["role"], body["conversation_id"], body["granted_by"]) == (
        carol.user_id,
        "support-t2",
        None,
        admin.user_id,
    )
    mine = (await client.get("/v1/permissions/me", headers=carol.headers)).json()["permissions"]
    assert {"permission": "support:queue:t2", "conversation_id": None, "via_role": "support-t2"} in mine
    assert await grant_events(runtime) == [
        (
            "access.grant.created",
            "user",
            carol.user_id,
            {"grant_id": body["id"], "role": "support-t2", "conversation_id": None},
        )
    ]
    [recorded] = await admin_actions(database)
    assert (recorded["action"], recorded["target_user_id"], recorded["target"], recorded["reason"]) == (
        "grant_created",
        UUID(carol.user_id),
        f"grant:{body['id']}",
        REASON,
    )


async def test_granting_within_a_conversation(client, admin, app_engine, alice, bob, carol):
    room = await make_conversation(app_engine, alice, bob)

    granted = await grant_via_api(client, admin, carol, "supervisor", conversation_id=str(room))

    assert granted.status_code == 201, granted.text
    assert granted.json()["conversation_id"] == str(room)
    again_everywhere = await grant_via_api(client, admin, carol, "supervisor")
    assert again_everywhere.status_code == 201, again_everywhere.text


async def test_granting_what_the_person_holds_there_already_is_a_conflict(client, admin, database, carol):
    first = await grant_via_api(client, admin, carol, "supervisor")

    again = await grant_via_api(client, admin, carol, "supervisor")

    assert again.status_code == 409 and problem_type(again) == "grant-exists"
    assert again.json()["grant_id"] == first.json()["id"]
    assert [row["action"] for row in await admin_actions(database)] == ["grant_created"]


@pytest.mark.parametrize(
    ("change", "status", "problem"),
    [
        ({"role": "no-such-role"}, 404, "role-not-found"),
        ({"role": "Not A Role"}, 422, "validation-error"),
        ({"user_id": "{ghost}"}, 404, "user-not-found"),
        ({"user_id": "not-a-uuid"}, 422, "validation-error"),
        ({"conversation_id": "{ghost}"}, 404, "grant-conversation-not-found"),
        ({"role": None}, 422, "validation-error"),
        ({"extra": 1}, 422, "validation-error"),
        ({"reason": " "}, 422, "validation-error"),
    ],
)
async def test_a_bad_grant_is_refused_and_says_why(client, admin, database, carol, change, status, problem):
    body = {"user_id": carol.user_id, "role": "support-t1"}
    body.update(
        {key: value.format(ghost=uuid7()) if isinstance(value, str) else value for key, value in change.items()}
    )

    refused = await client.post("/v1/admin/grants", headers=admin.headers, json=body)

    assert refused.status_code == status, refused.text
    assert problem_type(refused) == problem
    assert await admin_actions(database) == []


async def test_revoking_a_grant_tells_its_holder_and_is_recorded(client, admin, runtime, database, carol):
    granted = (await grant_via_api(client, admin, carol, "bot-developer")).json()

    revoked = await client.delete(f"/v1/admin/grants/{granted['id']}", headers=admin.headers, params={"reason": REASON})

    assert revoked.status_code == 204, revoked.text
    assert (await client.get("/v1/permissions/me", headers=carol.headers)).json()["permissions"] == []
    assert (await grant_events(runtime))[-1] == (
        "access.grant.revoked",
        "user",
        carol.user_id,
        {"grant_id": granted["id"], "role": "bot-developer", "conversation_id": None},
    )
    recorded = (await admin_actions(database))[-1]
    assert (recorded["action"], recorded["target_user_id"], recorded["reason"]) == (
        "grant_revoked",
        UUID(carol.user_id),
        REASON,
    )
    again = await client.delete(f"/v1/admin/grants/{granted['id']}", headers=admin.headers)
    assert again.status_code == 404 and problem_type(again) == "grant-not-found"


async def test_grants_are_listed_newest_first_by_person_and_conversation(client, admin, app_engine, alice, bob, carol):
    room = await make_conversation(app_engine, alice, bob)
    everywhere = (await grant_via_api(client, admin, carol, "support-t1")).json()
    here = (await grant_via_api(client, admin, carol, "supervisor", conversation_id=str(room))).json()
    bobs = (await grant_via_api(client, admin, bob, "bot-developer")).json()

    def ids(response: httpx.Response) -> list[str]:
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    url = "/v1/admin/grants"
    assert ids(await client.get(url, headers=admin.headers)) == [bobs["id"], here["id"], everywhere["id"]]
    assert ids(await client.get(url, headers=admin.headers, params={"user_id": carol.user_id})) == [
        here["id"],
        everywhere["id"],
    ]
    assert ids(await client.get(url, headers=admin.headers, params={"conversation_id": str(room)})) == [here["id"]]
    page = await client.get(url, headers=admin.headers, params={"limit": 2})
    rest = await client.get(url, headers=admin.headers, params={"limit": 2, "cursor": page.json()["next"]})
    assert ids(rest) == [everywhere["id"]] and rest.json()["next"] is None
    bad_cursor = await client.get(url, headers=admin.headers, params={"cursor": "!!"})
    assert bad_cursor.status_code == 400 and problem_type(bad_cursor) == "invalid-cursor"


async def test_an_api_key_cannot_administer(client, admin):
    key = await client.post("/v1/auth/api-keys", headers=admin.headers, json={"name": "script"})
    assert key.status_code == 201, key.text

    refused = await client.get("/v1/admin/grants", headers={"Authorization": f"Bearer {key.json()['key']}"})

    assert refused.status_code == 403 and problem_type(refused) == "session-required"
