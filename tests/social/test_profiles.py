"""Profiles: the one made with every account (GET/PATCH /v1/profile), other people's
(GET /v1/users/{id}/profile, /v1/users/by-username/{name}) by the visibility rules, the
verified badge (PUT /v1/admin/users/{id}/verified) and the record of changes
(GET /v1/profile/activity).

Alice owns the profile; bob is her contact; mallory is a stranger; the blocked person is
an ex-contact alice has blocked."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.ids import uuid7
from tests.support import Persona, befriend, create_verified_user, problem_type

pytestmark = pytest.mark.module_database

PROFILE = "/v1/profile"
ACTIVITY = "/v1/profile/activity"


def profile_of(user_id: str) -> str:
    return f"/v1/users/{user_id}/profile"


def by_username(name: str) -> str:
    return f"/v1/users/by-username/{name}"


def badge_of(user_id: str) -> str:
    return f"/v1/admin/users/{user_id}/verified"


async def patch(client, persona: Persona, **fields):
    return await client.patch(PROFILE, headers=persona.headers, json=fields)


async def own_profile(client, persona: Persona) -> dict:
    return (await client.get(PROFILE, headers=persona.headers)).json()


async def make_admin(runtime, persona: Persona) -> Persona:
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(text("UPDATE auth.users SET is_admin = true WHERE id = :id"), {"id": persona.user_id})
    return persona


async def username_of_new_account(client, runtime, email: str) -> str:
    """The username the account made for this address was given."""
    user_id = await create_verified_user(runtime, email)
    async with system_transaction(runtime.system_engine) as db:
        return (
            await db.execute(text("SELECT username FROM social.profiles WHERE user_id = :id"), {"id": user_id})
        ).scalar_one()


# The profile every account gets


async def test_a_new_account_has_a_profile_named_after_its_email(client, alice):
    profile = await own_profile(client, alice)
    assert (profile["username"], profile["display_name"], profile["profile_visibility"]) == ("alice", "alice", "public")


async def test_a_new_profile_starts_empty_and_unverified(client, alice):
    profile = await own_profile(client, alice)
    assert (profile["bio"], profile["links"], profile["interests"], profile["is_verified"]) == ("", [], [], False)


async def test_a_taken_username_gets_a_number(client, runtime, alice):
    assert await username_of_new_account(client, runtime, "alice@example.org") == "alice1"


async def test_the_next_taken_username_gets_the_next_number(client, runtime, alice):
    await create_verified_user(runtime, "alice@example.org")
    assert await username_of_new_account(client, runtime, "alice@example.net") == "alice2"


async def test_a_taken_username_is_found_regardless_of_case(client, alice, runtime):
    await patch(client, alice, username="Zed")
    assert await username_of_new_account(client, runtime, "zed@example.com") == "zed1"


async def test_a_generated_username_keeps_only_allowed_characters(runtime, client):
    assert await username_of_new_account(client, runtime, "mary-o'brien+news@example.com") == "maryobriennews"


async def test_a_short_local_part_is_padded_to_three_characters(runtime, client):
    assert await username_of_new_account(client, runtime, "jo@example.com") == "jo_"


# Changing one's profile


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "alice_in.wonderland"),
        ("display_name", "Alice Liddell"),
        ("bio", "Curiouser and curiouser."),
        ("avatar_url", "https://cdn.example.com/alice.png"),
        ("pronouns", "she/her"),
        ("birth_date", "1990-05-17"),
        ("language_code", "fr-CA"),
        ("timezone", "Europe/Paris"),
        ("links", [{"title": "Blog", "url": "https://alice.example.com/"}]),
        ("interests", ["chess", "croquet"]),
        ("profile_visibility", "contacts"),
    ],
)
async def test_patch_changes_one_field(client, alice, field, value):
    await patch(client, alice, **{field: value})
    assert (await own_profile(client, alice))[field] == value


async def test_patch_answers_with_the_changed_profile(client, alice):
    response = await patch(client, alice, display_name="Alice L.")
    assert (response.status_code, response.json()["display_name"]) == (200, "Alice L.")


async def test_patch_leaves_the_fields_not_sent(client, alice):
    await patch(client, alice, bio="Down the rabbit hole.")
    await patch(client, alice, pronouns="she/her")
    assert (await own_profile(client, alice))["bio"] == "Down the rabbit hole."


async def test_an_empty_patch_changes_nothing(client, alice):
    before = await own_profile(client, alice)
    response = await patch(client, alice)
    assert response.json() == before


@pytest.mark.parametrize("field", ["username", "display_name", "bio", "links", "interests", "profile_visibility"])
async def test_null_for_a_required_field_is_refused(client, alice, field):
    before = await own_profile(client, alice)
    response = await patch(client, alice, **{field: None})
    assert (response.status_code, (await own_profile(client, alice))[field]) == (422, before[field])


async def test_null_clears_an_optional_field(client, alice):
    await patch(client, alice, pronouns="she/her")
    await patch(client, alice, pronouns=None)
    assert (await own_profile(client, alice))["pronouns"] is None


async def test_display_name_is_trimmed(client, alice):
    response = await patch(client, alice, display_name="  Alice  ")
    assert response.json()["display_name"] == "Alice"


async def test_a_bio_of_500_characters_is_kept(client, alice):
    bio = ("A gardener who writes. " * 22)[:500]
    await patch(client, alice, bio=bio)
    assert (await own_profile(client, alice))["bio"] == bio


async def test_ten_links_and_thirty_interests_are_kept(client, alice):
    links = [{"title": f"L{i}", "url": f"https://example.com/{i}"} for i in range(10)]
    interests = [f"topic{i}" for i in range(30)]
    await patch(client, alice, links=links, interests=interests)
    kept = await own_profile(client, alice)
    assert (kept["links"], kept["interests"]) == (links, interests)


# Usernames


async def test_a_username_taken_in_another_case_is_refused(client, alice, bob):
    response = await patch(client, bob, username="ALICE")
    assert (response.status_code, problem_type(response)) == (409, "username-taken")


async def test_one_may_change_the_case_of_ones_own_username(client, alice):
    response = await patch(client, alice, username="Alice")
    assert response.json()["username"] == "Alice"


async def test_a_freed_username_can_be_taken(client, alice, bob):
    await patch(client, alice, username="alice_l")
    response = await patch(client, bob, username="alice")
    assert response.json()["username"] == "alice"


@pytest.mark.parametrize(
    "username",
    ["al ice", "al-ice", "alice!", "ålice", "al", "a" * 31, "", "alice\u200b"],
    ids=["space", "hyphen", "punctuation", "non-ascii", "too-short", "too-long", "empty", "zero-width-space"],
)
async def test_a_bad_username_is_refused(client, alice, username):
    response = await patch(client, alice, username=username)
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


# Bad input


@pytest.mark.parametrize(
    "fields",
    [
        {"bio": "a" * 501},
        {"display_name": ""},
        {"display_name": "   "},
        {"display_name": "a" * 81},
        {"avatar_url": "not a url"},
        {"avatar_url": "javascript:alert(1)"},
        {"avatar_url": "ftp://example.com/alice.png"},
        {"avatar_url": "https://example.com/" + "a" * 2100},
        {"avatar_url": "https://example.com/" + "a" * 2030},
        {"pronouns": "a" * 41},
        {"timezone": "Mars/Olympus_Mons"},
        {"timezone": "../../etc/passwd"},
        {"timezone": ""},
        {"birth_date": "2999-01-01"},
        {"birth_date": "1850-01-01"},
        {"birth_date": "17 May 1990"},
        {"language_code": "English"},
        {"links": [{"title": f"L{i}", "url": f"https://example.com/{i}"} for i in range(11)]},
        {"links": [{"title": "Blog", "url": "javascript:alert(1)"}]},
        {"links": [{"title": "", "url": "https://example.com/"}]},
        {"links": [{"url": "https://example.com/"}]},
        {"links": {"title": "Blog", "url": "https://example.com/"}},
        {"interests": [f"topic{i}" for i in range(31)]},
        {"interests": ["a" * 41]},
        {"interests": [""]},
        {"profile_visibility": "friends"},
        {"is_verified": True},
        {"user_id": "0190d4a0-0000-7000-8000-000000000000"},
        {"favourite_colour": "blue"},
        {"bio": "nul\u0000byte"},
    ],
    ids=[
        "bio-501",
        "display-name-empty",
        "display-name-blank",
        "display-name-81",
        "avatar-not-url",
        "avatar-javascript",
        "avatar-ftp",
        "avatar-2120",
        "avatar-2050",
        "pronouns-41",
        "timezone-unknown",
        "timezone-path",
        "timezone-empty",
        "birth-date-future",
        "birth-date-1850",
        "birth-date-prose",
        "language-code",
        "links-11",
        "link-javascript",
        "link-no-title",
        "link-missing-title",
        "links-object",
        "interests-31",
        "interest-41",
        "interest-empty",
        "visibility-unknown",
        "is-verified",
        "user-id",
        "unknown-field",
        "nul",
    ],
)
async def test_bad_profile_input_is_refused(client, alice, fields):
    response = await patch(client, alice, **fields)
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_refused_input_changes_nothing(client, alice):
    await patch(client, alice, bio="Kept.", display_name="a" * 81)
    assert (await own_profile(client, alice))["bio"] == ""


async def test_a_profile_cannot_be_read_without_signing_in(client):
    response = await client.get(PROFILE)
    assert response.status_code == 401


# Other people's profiles, by visibility


@pytest.fixture
async def circle(client, make_persona, alice, bob, mallory) -> dict[str, Persona]:
    """Alice; bob her contact; mallory a stranger; dave an ex-contact she blocks."""
    dave = await make_persona("dave")
    await befriend(client, alice, bob)
    await befriend(client, dave, alice)
    blocked = await client.put(f"/v1/blocks/{dave.user_id}", headers=alice.headers)
    assert blocked.status_code == 200, blocked.text
    return {"owner": alice, "contact": bob, "stranger": mallory, "blocked": dave}


# Someone alice blocks sees nothing of her, as if her profile were private.
VISIBLE = {
    "public": {"owner", "contact", "stranger"},
    "contacts": {"owner", "contact"},
    "private": {"owner"},
}
CASES = [(visibility, viewer) for visibility in VISIBLE for viewer in ("owner", "contact", "stranger", "blocked")]


@pytest.mark.parametrize(("visibility", "viewer"), CASES, ids=[f"{v}-{w}" for v, w in CASES])
async def test_profile_by_id_follows_its_visibility(client, circle, visibility, viewer):
    alice = circle["owner"]
    await patch(client, alice, profile_visibility=visibility)
    response = await client.get(profile_of(alice.user_id), headers=circle[viewer].headers)
    expected = (200, "alice") if viewer in VISIBLE[visibility] else (404, "profile-not-found")
    assert (response.status_code, response.json().get("username") or problem_type(response)) == expected


@pytest.mark.parametrize(("visibility", "viewer"), CASES, ids=[f"{v}-{w}" for v, w in CASES])
async def test_profile_by_username_follows_its_visibility(client, circle, visibility, viewer):
    alice = circle["owner"]
    await patch(client, alice, profile_visibility=visibility)
    response = await client.get(by_username("alice"), headers=circle[viewer].headers)
    expected = (200, alice.user_id) if viewer in VISIBLE[visibility] else (404, "profile-not-found")
    assert (response.status_code, response.json().get("user_id") or problem_type(response)) == expected


async def test_a_contact_who_is_removed_no_longer_sees_a_contacts_profile(client, alice, bob):
    await befriend(client, alice, bob)
    await patch(client, alice, profile_visibility="contacts")
    [contact] = (await client.get("/v1/contacts", headers=bob.headers)).json()["items"]
    await client.delete(f"/v1/contacts/{contact['id']}", headers=bob.headers)
    response = await client.get(profile_of(alice.user_id), headers=bob.headers)
    assert problem_type(response) == "profile-not-found"


async def test_an_unblocked_ex_contact_still_cannot_see_a_contacts_profile(client, circle):
    alice, dave = circle["owner"], circle["blocked"]
    await patch(client, alice, profile_visibility="contacts")
    await client.delete(f"/v1/blocks/{dave.user_id}", headers=alice.headers)
    response = await client.get(profile_of(alice.user_id), headers=dave.headers)
    assert problem_type(response) == "profile-not-found"


async def test_the_blocker_still_sees_the_person_blocked(client, circle):
    alice, dave = circle["owner"], circle["blocked"]
    response = await client.get(profile_of(dave.user_id), headers=alice.headers)
    assert (response.status_code, response.json()["username"]) == (200, "dave")


async def test_a_profile_is_found_by_username_in_any_case(client, alice, mallory):
    response = await client.get(by_username("ALICE"), headers=mallory.headers)
    assert response.json()["user_id"] == alice.user_id


async def test_an_unknown_user_id_has_no_profile(client, alice):
    response = await client.get(profile_of(str(uuid7())), headers=alice.headers)
    assert (response.status_code, problem_type(response)) == (404, "profile-not-found")


async def test_an_unknown_username_has_no_profile(client, alice):
    response = await client.get(by_username("nobody_here"), headers=alice.headers)
    assert (response.status_code, problem_type(response)) == (404, "profile-not-found")


async def test_a_malformed_user_id_is_refused(client, alice):
    response = await client.get(profile_of("not-a-uuid"), headers=alice.headers)
    assert problem_type(response) == "validation-error"


# The verified badge


async def test_a_user_cannot_grant_the_badge(client, alice, bob):
    response = await client.put(badge_of(bob.user_id), headers=alice.headers, json={"is_verified": True})
    assert (response.status_code, problem_type(response)) == (403, "admin-required")


async def test_a_user_cannot_grant_themselves_the_badge(client, alice):
    await client.put(badge_of(alice.user_id), headers=alice.headers, json={"is_verified": True})
    assert (await own_profile(client, alice))["is_verified"] is False


async def test_an_admin_grants_the_badge(client, runtime, alice, bob):
    admin = await make_admin(runtime, alice)
    response = await client.put(badge_of(bob.user_id), headers=admin.headers, json={"is_verified": True})
    assert (response.status_code, response.json()["is_verified"]) == (200, True)


async def test_the_badge_shows_on_the_profile(client, runtime, alice, bob):
    admin = await make_admin(runtime, alice)
    await client.put(badge_of(bob.user_id), headers=admin.headers, json={"is_verified": True})
    assert (await own_profile(client, bob))["is_verified"] is True


async def test_an_admin_withdraws_the_badge(client, runtime, alice, bob):
    admin = await make_admin(runtime, alice)
    await client.put(badge_of(bob.user_id), headers=admin.headers, json={"is_verified": True})
    await client.put(badge_of(bob.user_id), headers=admin.headers, json={"is_verified": False})
    assert (await own_profile(client, bob))["is_verified"] is False


async def test_an_admin_can_badge_a_private_profile(client, runtime, alice, bob):
    admin = await make_admin(runtime, alice)
    await patch(client, bob, profile_visibility="private")
    response = await client.put(badge_of(bob.user_id), headers=admin.headers, json={"is_verified": True})
    assert response.status_code == 200


async def test_badging_an_unknown_user_is_not_found(client, runtime, alice):
    admin = await make_admin(runtime, alice)
    response = await client.put(badge_of(str(uuid7())), headers=admin.headers, json={"is_verified": True})
    assert (response.status_code, problem_type(response)) == (404, "profile-not-found")


async def test_the_badge_is_not_a_profile_field(client, alice):
    response = await patch(client, alice, is_verified=True)
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_sql_as_the_app_cannot_set_the_badge(app_engine, alice):
    with pytest.raises(DBAPIError) as caught:
        async with user_transaction(app_engine, UUID(alice.user_id)) as db:
            await db.execute(
                text("UPDATE social.profiles SET is_verified = true WHERE user_id = :id"), {"id": alice.user_id}
            )
    assert isinstance(caught.value.orig.__cause__, asyncpg.exceptions.InsufficientPrivilegeError)


async def test_sql_as_the_app_cannot_move_a_profile_to_another_account(app_engine, alice, bob):
    with pytest.raises(DBAPIError) as caught:
        async with user_transaction(app_engine, UUID(alice.user_id)) as db:
            await db.execute(
                text("UPDATE social.profiles SET user_id = :bob WHERE user_id = :alice"),
                {"alice": alice.user_id, "bob": bob.user_id},
            )
    assert isinstance(caught.value.orig.__cause__, asyncpg.exceptions.InsufficientPrivilegeError)


# The record of changes


async def test_a_change_is_recorded_with_old_and_new_values(client, alice):
    await patch(client, alice, bio="Hello")
    [entry] = (await client.get(ACTIVITY, headers=alice.headers)).json()["items"]
    assert (entry["action"], entry["changes"]) == ("profile_updated", {"bio": {"old": "", "new": "Hello"}})


async def test_one_patch_is_one_record_of_every_field_it_changed(client, alice):
    await patch(client, alice, display_name="Alice L.", pronouns="she/her")
    [entry] = (await client.get(ACTIVITY, headers=alice.headers)).json()["items"]
    assert entry["changes"] == {
        "display_name": {"old": "alice", "new": "Alice L."},
        "pronouns": {"old": None, "new": "she/her"},
    }


async def test_a_patch_that_changes_nothing_is_not_recorded(client, alice):
    await patch(client, alice, display_name="alice")
    assert (await client.get(ACTIVITY, headers=alice.headers)).json()["items"] == []


async def test_the_record_is_newest_first(client, alice):
    await patch(client, alice, bio="first")
    await patch(client, alice, bio="second")
    entries = (await client.get(ACTIVITY, headers=alice.headers)).json()["items"]
    assert [entry["changes"]["bio"]["new"] for entry in entries] == ["second", "first"]


async def test_the_record_is_read_a_page_at_a_time(client, alice):
    for n in range(5):
        await patch(client, alice, bio=f"version {n}")
    pages, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(ACTIVITY, headers=alice.headers, params=params)).json()
        pages.append([entry["changes"]["bio"]["new"] for entry in page["items"]])
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == [["version 4", "version 3"], ["version 2", "version 1"], ["version 0"]]


async def test_a_cursor_of_another_list_is_refused_by_the_record(client, alice):
    response = await client.get(ACTIVITY, headers=alice.headers, params={"cursor": "AZK7c2bKcQCAAAAAAAAAAA"})
    assert (response.status_code, problem_type(response)) == (400, "invalid-cursor")


async def test_the_badge_is_recorded(client, runtime, alice, bob):
    admin = await make_admin(runtime, alice)
    await client.put(badge_of(bob.user_id), headers=admin.headers, json={"is_verified": True})
    [entry] = (await client.get(ACTIVITY, headers=bob.headers)).json()["items"]
    assert entry["changes"] == {"is_verified": {"old": False, "new": True}}


async def test_the_record_is_its_owners_alone(client, alice, bob):
    await patch(client, alice, bio="Hello")
    assert (await client.get(ACTIVITY, headers=bob.headers)).json()["items"] == []
