"""Contact lists (GET/POST /v1/contacts, GET/PATCH/DELETE /v1/contacts/{id}) and contact
groups (/v1/contact-groups, their members). A contact is another account, made in pairs
when a request is accepted, or someone without one (seed 000: a child, a co-parent by
e-mail), linked to their account when they join with that address.

Alice keeps the list; bob is her contact; mallory tries to reach into it."""

from __future__ import annotations

import pytest

from rapport.kernel.ids import uuid7
from tests.support import Persona, befriend, problem_type

pytestmark = pytest.mark.module_database

CONTACTS = "/v1/contacts"
GROUPS = "/v1/contact-groups"
CAROL = "carol@example.com"
CAROL_PASSWORD = "carol's long enough password"


async def add(client, persona: Persona, **fields):
    return await client.post(CONTACTS, headers=persona.headers, json=fields)


async def added(client, persona: Persona, **fields) -> dict:
    response = await add(client, persona, **fields)
    assert response.status_code == 201, response.text
    return response.json()


async def contacts_of(client, persona: Persona, **params) -> list[dict]:
    response = await client.get(CONTACTS, headers=persona.headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def account_contact(client, owner: Persona, other: Persona) -> dict:
    [contact] = [c for c in await contacts_of(client, owner) if c["contact_user_id"] == other.user_id]
    return contact


async def group(client, persona: Persona, name: str) -> dict:
    response = await client.post(GROUPS, headers=persona.headers, json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()


def member_url(group_id: str, contact_id: str) -> str:
    return f"{GROUPS}/{group_id}/members/{contact_id}"


# Contacts without an account


async def test_a_contact_without_an_account_is_added(client, alice):
    response = await add(client, alice, first_name="Lily", last_name="Liddell", relationship="My Child")
    assert (response.status_code, response.json()["first_name"], response.json()["contact_user_id"]) == (
        201,
        "Lily",
        None,
    )


async def test_a_co_parent_is_added_by_email(client, alice):
    contact = await added(client, alice, email="Pat@Example.COM ", relationship="My Co-Parent")
    assert (contact["email"], contact["relationship"]) == ("pat@example.com", "My Co-Parent")


async def test_every_field_of_a_new_contact_is_kept(client, alice):
    fields = {
        "first_name": "Lily",
        "last_name": "Liddell",
        "email": "lily@example.com",
        "phone": "+44 (0) 20 7946 0000",
        "relationship": "My Child",
        "nickname": "Lil",
        "notes": "Allergic to cats.",
    }
    contact = await added(client, alice, **fields)
    assert {key: contact[key] for key in fields} == fields


async def test_a_new_contact_is_neither_favourite_nor_muted_nor_linked(client, alice):
    contact = await added(client, alice, first_name="Lily")
    assert (contact["is_favorite"], contact["is_muted"], contact["linked_at"]) == (False, False, None)


async def test_a_new_contact_is_listed(client, alice):
    contact = await added(client, alice, first_name="Lily")
    assert [c["id"] for c in await contacts_of(client, alice)] == [contact["id"]]


async def test_a_contact_is_read_by_id(client, alice):
    contact = await added(client, alice, first_name="Lily")
    response = await client.get(f"{CONTACTS}/{contact['id']}", headers=alice.headers)
    assert response.json() == contact


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"relationship": "My Child"},
        {"phone": "+44 20 7946 0000"},
        {"notes": "who?"},
        {"first_name": ""},
        {"first_name": "   "},
        {"last_name": "Liddell"},
        {"nickname": "Lil"},
    ],
    ids=[
        "nothing",
        "relationship-only",
        "phone-only",
        "notes-only",
        "empty-name",
        "blank-name",
        "last-name-only",
        "nickname-only",
    ],
)
async def test_a_contact_needs_a_first_name_or_an_email(client, alice, fields):
    response = await add(client, alice, **fields)
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


@pytest.mark.parametrize(
    "fields",
    [
        {"first_name": "Lily", "email": "not an address"},
        {"first_name": "a" * 101},
        {"first_name": "Lily", "phone": "call me"},
        {"first_name": "Lily", "phone": "1" * 41},
        {"first_name": "Lily", "notes": "n" * 2001},
        {"first_name": "Lily", "contact_user_id": str(uuid7())},
        {"first_name": "Lily", "is_favorite": True},
        {"first_name": "Lily", "relationship": "r" * 101},
    ],
    ids=[
        "bad-email",
        "name-101",
        "phone-words",
        "phone-41",
        "notes-2001",
        "contact-user-id",
        "favourite-on-create",
        "relationship-101",
    ],
)
async def test_bad_contact_input_is_refused(client, alice, fields):
    response = await add(client, alice, **fields)
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_a_second_contact_with_the_same_email_is_refused(client, alice):
    await added(client, alice, email="pat@example.com")
    response = await add(client, alice, first_name="Pat", email="PAT@example.com")
    assert (response.status_code, problem_type(response)) == (409, "contact-exists")


async def test_two_people_may_keep_the_same_email(client, alice, bob):
    await added(client, alice, email="pat@example.com")
    response = await add(client, bob, email="pat@example.com")
    assert response.status_code == 201


async def test_contacts_are_listed_newest_first_a_page_at_a_time(client, alice):
    ids = [(await added(client, alice, first_name=name))["id"] for name in ("Lily", "Tom", "Ann")]
    first = (await client.get(CONTACTS, headers=alice.headers, params={"limit": 2})).json()
    second = (await client.get(CONTACTS, headers=alice.headers, params={"limit": 2, "cursor": first["next"]})).json()
    assert ([c["id"] for c in first["items"]], [c["id"] for c in second["items"]], second["next"]) == (
        ids[:0:-1],
        ids[:1],
        None,
    )


# Changing a contact


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nickname", "Lil"),
        ("is_favorite", True),
        ("is_muted", True),
        ("first_name", "Lilian"),
        ("last_name", "Liddell"),
        ("email", "lily@example.com"),
        ("phone", "+44 20 7946 0000"),
        ("relationship", "My Child"),
        ("notes", "Allergic to cats."),
    ],
)
async def test_patch_changes_one_field_of_a_contact(client, alice, field, value):
    contact = await added(client, alice, first_name="Lily")
    await client.patch(f"{CONTACTS}/{contact['id']}", headers=alice.headers, json={field: value})
    assert (await client.get(f"{CONTACTS}/{contact['id']}", headers=alice.headers)).json()[field] == value


async def test_null_clears_a_nickname(client, alice):
    contact = await added(client, alice, first_name="Lily", nickname="Lil")
    response = await client.patch(f"{CONTACTS}/{contact['id']}", headers=alice.headers, json={"nickname": None})
    assert response.json()["nickname"] is None


async def test_null_for_a_flag_is_refused(client, alice):
    contact = await added(client, alice, first_name="Lily")
    await client.patch(f"{CONTACTS}/{contact['id']}", headers=alice.headers, json={"is_favorite": True})
    response = await client.patch(f"{CONTACTS}/{contact['id']}", headers=alice.headers, json={"is_favorite": None})
    kept = (await client.get(f"{CONTACTS}/{contact['id']}", headers=alice.headers)).json()["is_favorite"]
    assert (response.status_code, kept) == (422, True)


async def test_an_empty_patch_changes_nothing(client, alice):
    contact = await added(client, alice, first_name="Lily")
    response = await client.patch(f"{CONTACTS}/{contact['id']}", headers=alice.headers, json={})
    assert response.json() == contact


async def test_a_contact_cannot_lose_both_name_and_email(client, alice):
    contact = await added(client, alice, first_name="Lily", email="lily@example.com")
    response = await client.patch(
        f"{CONTACTS}/{contact['id']}", headers=alice.headers, json={"first_name": None, "email": None}
    )
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_a_contact_cannot_take_another_contacts_email(client, alice):
    await added(client, alice, email="pat@example.com")
    contact = await added(client, alice, first_name="Lily")
    response = await client.patch(
        f"{CONTACTS}/{contact['id']}", headers=alice.headers, json={"email": "pat@example.com"}
    )
    assert (response.status_code, problem_type(response)) == (409, "contact-exists")


@pytest.mark.parametrize(
    "body",
    [{"contact_user_id": str(uuid7())}, {"is_favorite": "often"}, {"email": "nope"}],
    ids=["contact-user-id", "favourite-word", "bad-email"],
)
async def test_bad_contact_changes_are_refused(client, alice, body):
    contact = await added(client, alice, first_name="Lily")
    response = await client.patch(f"{CONTACTS}/{contact['id']}", headers=alice.headers, json=body)
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_an_account_contact_takes_a_nickname(client, alice, bob):
    await befriend(client, alice, bob)
    contact = await account_contact(client, alice, bob)
    response = await client.patch(f"{CONTACTS}/{contact['id']}", headers=alice.headers, json={"nickname": "Bobby"})
    assert response.json()["nickname"] == "Bobby"


async def test_a_nickname_is_the_owners_alone(client, alice, bob):
    await befriend(client, alice, bob)
    contact = await account_contact(client, alice, bob)
    await client.patch(f"{CONTACTS}/{contact['id']}", headers=alice.headers, json={"nickname": "Bobby"})
    assert (await account_contact(client, bob, alice))["nickname"] is None


async def test_favourites_are_listed_alone(client, alice):
    favourite = await added(client, alice, first_name="Lily")
    await added(client, alice, first_name="Tom")
    await client.patch(f"{CONTACTS}/{favourite['id']}", headers=alice.headers, json={"is_favorite": True})
    assert [c["id"] for c in await contacts_of(client, alice, favorites="true")] == [favourite["id"]]


# Removing a contact


async def test_removing_a_contact_without_an_account(client, alice):
    contact = await added(client, alice, first_name="Lily")
    response = await client.delete(f"{CONTACTS}/{contact['id']}", headers=alice.headers)
    assert response.status_code == 204


async def test_a_removed_contact_is_gone(client, alice):
    contact = await added(client, alice, first_name="Lily")
    await client.delete(f"{CONTACTS}/{contact['id']}", headers=alice.headers)
    response = await client.get(f"{CONTACTS}/{contact['id']}", headers=alice.headers)
    assert (response.status_code, problem_type(response)) == (404, "contact-not-found")


async def test_removing_an_account_contact_empties_the_removers_list(client, alice, bob):
    await befriend(client, alice, bob)
    await client.delete(f"{CONTACTS}/{(await account_contact(client, alice, bob))['id']}", headers=alice.headers)
    assert await contacts_of(client, alice) == []


async def test_removing_an_account_contact_removes_the_other_side(client, alice, bob):
    await befriend(client, alice, bob)
    await client.delete(f"{CONTACTS}/{(await account_contact(client, alice, bob))['id']}", headers=alice.headers)
    assert await contacts_of(client, bob) == []


async def test_after_removal_the_two_may_ask_again(client, alice, bob):
    await befriend(client, alice, bob)
    await client.delete(f"{CONTACTS}/{(await account_contact(client, alice, bob))['id']}", headers=alice.headers)
    response = await client.post("/v1/contact-requests", headers=bob.headers, json={"user_id": alice.user_id})
    assert (response.status_code, response.json()["status"]) == (201, "pending")


async def test_removing_twice_is_not_found(client, alice):
    contact = await added(client, alice, first_name="Lily")
    await client.delete(f"{CONTACTS}/{contact['id']}", headers=alice.headers)
    response = await client.delete(f"{CONTACTS}/{contact['id']}", headers=alice.headers)
    assert (response.status_code, problem_type(response)) == (404, "contact-not-found")


# Someone else's contacts


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_another_users_contact_is_not_found(client, alice, mallory, method):
    contact = await added(client, alice, first_name="Lily")
    response = await client.request(
        method,
        f"{CONTACTS}/{contact['id']}",
        headers=mallory.headers,
        json={"nickname": "mine"} if method == "PATCH" else None,
    )
    assert (response.status_code, problem_type(response)) == (404, "contact-not-found")


async def test_another_users_contact_is_left_alone(client, alice, mallory):
    contact = await added(client, alice, first_name="Lily")
    await client.patch(f"{CONTACTS}/{contact['id']}", headers=mallory.headers, json={"nickname": "mine"})
    await client.delete(f"{CONTACTS}/{contact['id']}", headers=mallory.headers)
    assert (await client.get(f"{CONTACTS}/{contact['id']}", headers=alice.headers)).json() == contact


async def test_an_unknown_contact_is_not_found(client, alice):
    response = await client.get(f"{CONTACTS}/{uuid7()}", headers=alice.headers)
    assert (response.status_code, problem_type(response)) == (404, "contact-not-found")


async def test_another_users_list_is_not_shown(client, alice, mallory):
    await added(client, alice, first_name="Lily")
    assert await contacts_of(client, mallory) == []


# Linking a contact to the account its person makes


async def register_carol(client, mailbox) -> dict:
    """Carol joins through the API and verifies her address; her token pair."""
    registered = await client.post("/v1/auth/register", json={"email": CAROL, "password": CAROL_PASSWORD})
    assert registered.status_code == 202, registered.text
    verified = await client.post("/v1/auth/verify-email", json={"email": CAROL, "code": await mailbox.code_for(CAROL)})
    assert verified.status_code == 200, verified.text
    return verified.json()


async def test_a_contact_is_linked_when_its_person_joins(client, mailbox, alice):
    contact = await added(client, alice, first_name="Carol", email=CAROL, relationship="My Co-Parent")
    carol = await register_carol(client, mailbox)
    linked = (await client.get(f"{CONTACTS}/{contact['id']}", headers=alice.headers)).json()
    assert (linked["contact_user_id"], linked["linked_at"] is not None) == (carol["user_id"], True)


async def test_a_linked_contact_keeps_what_its_owner_wrote(client, mailbox, alice):
    contact = await added(client, alice, first_name="Carol", email=CAROL, relationship="My Co-Parent")
    await register_carol(client, mailbox)
    linked = (await client.get(f"{CONTACTS}/{contact['id']}", headers=alice.headers)).json()
    assert (linked["first_name"], linked["relationship"]) == ("Carol", "My Co-Parent")


async def test_a_contact_is_not_linked_before_the_address_is_verified(client, mailbox, alice):
    contact = await added(client, alice, email=CAROL)
    await client.post("/v1/auth/register", json={"email": CAROL, "password": CAROL_PASSWORD})
    pending = (await client.get(f"{CONTACTS}/{contact['id']}", headers=alice.headers)).json()
    assert (pending["contact_user_id"], pending["linked_at"]) == (None, None)


async def test_every_list_keeping_the_address_is_linked(client, mailbox, alice, bob):
    await added(client, alice, email=CAROL)
    await added(client, bob, email=CAROL)
    carol = await register_carol(client, mailbox)
    linked = [c["contact_user_id"] for persona in (alice, bob) for c in await contacts_of(client, persona)]
    assert linked == [carol["user_id"], carol["user_id"]]


async def test_a_linked_contact_can_be_asked_to_be_a_contact_both_ways(client, mailbox, alice):
    await added(client, alice, email=CAROL)
    carol = await register_carol(client, mailbox)
    response = await client.post("/v1/contact-requests", headers=alice.headers, json={"user_id": carol["user_id"]})
    assert (response.status_code, response.json()["status"]) == (201, "pending")


async def test_a_linked_contact_who_accepts_keeps_one_row_per_side(client, mailbox, alice):
    await added(client, alice, email=CAROL)
    carol = await register_carol(client, mailbox)
    carol_headers = {"Authorization": f"Bearer {carol['access_token']}"}
    asked = await client.post("/v1/contact-requests", headers=carol_headers, json={"user_id": alice.user_id})
    await client.post(f"/v1/contact-requests/{asked.json()['id']}/accept", headers=alice.headers)
    sides = [
        [c["contact_user_id"] for c in (await client.get(CONTACTS, headers=h)).json()["items"]]
        for h in (alice.headers, carol_headers)
    ]
    assert sides == [[carol["user_id"]], [alice.user_id]]


# Groups


async def test_a_group_is_made(client, alice):
    response = await client.post(GROUPS, headers=alice.headers, json={"name": "Family"})
    assert (response.status_code, response.json()["name"]) == (201, "Family")


async def test_groups_are_listed_by_name(client, alice):
    for name in ("work", "Family", "book club"):
        await group(client, alice, name)
    listed = (await client.get(GROUPS, headers=alice.headers)).json()["items"]
    assert [g["name"] for g in listed] == ["book club", "Family", "work"]


async def group_pages(client, persona: Persona, limit: int) -> list[list[str]]:
    """Every page of the persona's groups, following `next` to the end: their names."""
    pages, cursor = [], None
    while True:
        params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        response = await client.get(GROUPS, headers=persona.headers, params=params)
        assert response.status_code == 200, response.text
        pages.append([g["name"] for g in response.json()["items"]])
        cursor = response.json()["next"]
        if cursor is None:
            return pages


async def test_groups_are_listed_by_name_a_page_at_a_time(client, alice):
    for name in ("Work", "family", "Book club", "Zoo", "Art"):
        await group(client, alice, name)
    assert await group_pages(client, alice, 2) == [["Art", "Book club"], ["family", "Work"], ["Zoo"]]


async def test_a_page_of_groups_resumes_after_its_last_group_even_once_deleted(client, alice):
    for name in ("a1", "b2", "c3", "d4"):
        await group(client, alice, name)
    first = (await client.get(GROUPS, headers=alice.headers, params={"limit": 2})).json()
    [b2] = [g for g in first["items"] if g["name"] == "b2"]
    await client.delete(f"{GROUPS}/{b2['id']}", headers=alice.headers)
    second = (await client.get(GROUPS, headers=alice.headers, params={"limit": 2, "cursor": first["next"]})).json()
    assert ([g["name"] for g in second["items"]], second["next"]) == (["c3", "d4"], None)


@pytest.mark.parametrize("cursor", ["not a cursor!", "AZK7c2bKcQCAAAAAAAAAAA", "AQ", "Av8"], ids=str)
async def test_a_cursor_not_made_by_the_group_list_is_refused(client, alice, cursor):
    response = await client.get(GROUPS, headers=alice.headers, params={"cursor": cursor})
    assert (response.status_code, problem_type(response)) == (400, "invalid-cursor")


async def test_a_group_name_is_taken_regardless_of_case(client, alice):
    await group(client, alice, "Family")
    response = await client.post(GROUPS, headers=alice.headers, json={"name": "FAMILY"})
    assert (response.status_code, problem_type(response)) == (409, "contact-group-exists")


async def test_two_people_may_each_have_a_family(client, alice, bob):
    await group(client, alice, "Family")
    response = await client.post(GROUPS, headers=bob.headers, json={"name": "Family"})
    assert response.status_code == 201


@pytest.mark.parametrize(
    "body",
    [{"name": ""}, {"name": "   "}, {"name": "g" * 61}, {}, {"name": "Family", "x": 1}],
    ids=["empty", "blank", "61", "missing", "unknown-field"],
)
async def test_a_bad_group_name_is_refused(client, alice, body):
    response = await client.post(GROUPS, headers=alice.headers, json=body)
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_a_group_is_renamed(client, alice):
    family = await group(client, alice, "Family")
    await client.patch(f"{GROUPS}/{family['id']}", headers=alice.headers, json={"name": "Kin"})
    assert [g["name"] for g in (await client.get(GROUPS, headers=alice.headers)).json()["items"]] == ["Kin"]


async def test_a_group_cannot_take_another_groups_name(client, alice):
    await group(client, alice, "Family")
    work = await group(client, alice, "Work")
    response = await client.patch(f"{GROUPS}/{work['id']}", headers=alice.headers, json={"name": "family"})
    assert (response.status_code, problem_type(response)) == (409, "contact-group-exists")


async def test_a_group_is_deleted(client, alice):
    family = await group(client, alice, "Family")
    response = await client.delete(f"{GROUPS}/{family['id']}", headers=alice.headers)
    assert (response.status_code, (await client.get(GROUPS, headers=alice.headers)).json()["items"]) == (204, [])


async def test_deleting_a_group_keeps_its_contacts(client, alice):
    family = await group(client, alice, "Family")
    lily = await added(client, alice, first_name="Lily")
    await client.put(member_url(family["id"], lily["id"]), headers=alice.headers)
    await client.delete(f"{GROUPS}/{family['id']}", headers=alice.headers)
    assert [c["id"] for c in await contacts_of(client, alice)] == [lily["id"]]


async def test_a_contact_is_put_in_a_group(client, alice):
    family = await group(client, alice, "Family")
    lily = await added(client, alice, first_name="Lily")
    response = await client.put(member_url(family["id"], lily["id"]), headers=alice.headers)
    assert response.status_code == 204


async def test_a_groups_contacts_are_listed(client, alice):
    family = await group(client, alice, "Family")
    lily = await added(client, alice, first_name="Lily")
    await added(client, alice, first_name="Tom")
    await client.put(member_url(family["id"], lily["id"]), headers=alice.headers)
    assert [c["id"] for c in await contacts_of(client, alice, group_id=family["id"])] == [lily["id"]]


async def test_an_account_contact_is_put_in_a_group(client, alice, bob):
    await befriend(client, alice, bob)
    family = await group(client, alice, "Family")
    await client.put(member_url(family["id"], (await account_contact(client, alice, bob))["id"]), headers=alice.headers)
    assert [c["contact_user_id"] for c in await contacts_of(client, alice, group_id=family["id"])] == [bob.user_id]


async def test_putting_a_contact_in_a_group_twice_changes_nothing(client, alice):
    family = await group(client, alice, "Family")
    lily = await added(client, alice, first_name="Lily")
    await client.put(member_url(family["id"], lily["id"]), headers=alice.headers)
    response = await client.put(member_url(family["id"], lily["id"]), headers=alice.headers)
    assert (response.status_code, len(await contacts_of(client, alice, group_id=family["id"]))) == (204, 1)


async def test_a_contact_is_taken_out_of_a_group(client, alice):
    family = await group(client, alice, "Family")
    lily = await added(client, alice, first_name="Lily")
    await client.put(member_url(family["id"], lily["id"]), headers=alice.headers)
    response = await client.delete(member_url(family["id"], lily["id"]), headers=alice.headers)
    assert (response.status_code, await contacts_of(client, alice, group_id=family["id"])) == (204, [])


async def test_taking_out_a_contact_not_in_the_group_is_not_found(client, alice):
    family = await group(client, alice, "Family")
    lily = await added(client, alice, first_name="Lily")
    response = await client.delete(member_url(family["id"], lily["id"]), headers=alice.headers)
    assert (response.status_code, problem_type(response)) == (404, "contact-not-found")


async def test_a_removed_contact_leaves_its_groups(client, alice):
    family = await group(client, alice, "Family")
    lily = await added(client, alice, first_name="Lily")
    await client.put(member_url(family["id"], lily["id"]), headers=alice.headers)
    await client.delete(f"{CONTACTS}/{lily['id']}", headers=alice.headers)
    assert await contacts_of(client, alice, group_id=family["id"]) == []


async def test_an_unknown_group_is_not_found(client, alice):
    response = await client.get(CONTACTS, headers=alice.headers, params={"group_id": str(uuid7())})
    assert (response.status_code, problem_type(response)) == (404, "contact-group-not-found")


# Someone else's groups


@pytest.fixture
async def alices_family(client, alice) -> dict:
    """Alice's group Family with Lily in it: ids of both."""
    family = await group(client, alice, "Family")
    lily = await added(client, alice, first_name="Lily")
    await client.put(member_url(family["id"], lily["id"]), headers=alice.headers)
    return {"group": family["id"], "contact": lily["id"]}


async def test_another_users_group_cannot_be_listed(client, mallory, alices_family):
    response = await client.get(CONTACTS, headers=mallory.headers, params={"group_id": alices_family["group"]})
    assert (response.status_code, problem_type(response)) == (404, "contact-group-not-found")


async def test_another_users_group_cannot_be_renamed(client, mallory, alices_family):
    response = await client.patch(f"{GROUPS}/{alices_family['group']}", headers=mallory.headers, json={"name": "Mine"})
    assert (response.status_code, problem_type(response)) == (404, "contact-group-not-found")


async def test_another_users_group_cannot_be_deleted(client, mallory, alices_family):
    response = await client.delete(f"{GROUPS}/{alices_family['group']}", headers=mallory.headers)
    assert (response.status_code, problem_type(response)) == (404, "contact-group-not-found")


async def test_another_users_group_takes_no_members(client, mallory, alices_family):
    own = await added(client, mallory, first_name="Eve")
    response = await client.put(member_url(alices_family["group"], own["id"]), headers=mallory.headers)
    assert (response.status_code, problem_type(response)) == (404, "contact-group-not-found")


async def test_another_users_group_loses_no_members(client, mallory, alices_family):
    response = await client.delete(
        member_url(alices_family["group"], alices_family["contact"]), headers=mallory.headers
    )
    assert (response.status_code, problem_type(response)) == (404, "contact-group-not-found")


async def test_another_users_contact_cannot_join_ones_group(client, mallory, alices_family):
    own = await group(client, mallory, "Targets")
    response = await client.put(member_url(own["id"], alices_family["contact"]), headers=mallory.headers)
    assert (response.status_code, problem_type(response)) == (404, "contact-not-found")


async def test_another_users_groups_are_not_listed(client, mallory, alices_family):
    assert (await client.get(GROUPS, headers=mallory.headers)).json()["items"] == []


async def test_another_users_group_is_left_alone(client, alice, mallory, alices_family):
    await client.patch(f"{GROUPS}/{alices_family['group']}", headers=mallory.headers, json={"name": "Mine"})
    await client.delete(member_url(alices_family["group"], alices_family["contact"]), headers=mallory.headers)
    await client.delete(f"{GROUPS}/{alices_family['group']}", headers=mallory.headers)
    members = await contacts_of(client, alice, group_id=alices_family["group"])
    assert [c["id"] for c in members] == [alices_family["contact"]]
