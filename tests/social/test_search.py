"""Find people: GET /v1/users/search by username, display name and bio, ranked, by the
visibility rules and blocks, one keyset page at a time.

Alice searches. The people she looks for are made with an account each (the database
gives each a profile named after the e-mail's local part), then given a display name, a
bio and a visibility in SQL. Bob is her contact; mallory is a stranger."""

from __future__ import annotations

import base64
from uuid import UUID

import asyncpg
import pytest
from sqlalchemy import text

from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import asyncpg_dsn
from rapport.social import _search
from tests.support import Persona, create_verified_user, problem_type

pytestmark = pytest.mark.module_database

SEARCH = "/v1/users/search"


async def person(
    runtime, local_part: str, display_name: str | None = None, bio: str = "", visibility: str = "public"
) -> str:
    """Someone with an account and a profile; their username is `local_part`."""
    user_id = await create_verified_user(runtime, f"{local_part}@example.com")
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text(
                "UPDATE social.profiles SET display_name = :name, bio = :bio, profile_visibility = :visibility "
                "WHERE user_id = :id"
            ),
            {"name": display_name or local_part, "bio": bio, "visibility": visibility, "id": user_id},
        )
    return user_id


async def make_contacts(runtime, a: str, b: str) -> None:
    """a and b become contacts, as an accepted request would make them."""
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text(
                "INSERT INTO social.contact_requests (id, requester_id, addressee_id, status, responded_at) "
                "VALUES (:id, :a, :b, 'accepted', now())"
            ),
            {"id": uuid7(), "a": UUID(a), "b": UUID(b)},
        )
        await db.execute(
            text("INSERT INTO social.contacts (id, owner_id, contact_user_id) VALUES (:x, :a, :b), (:y, :b, :a)"),
            {"x": uuid7(), "y": uuid7(), "a": UUID(a), "b": UUID(b)},
        )


async def block(runtime, blocker: str, blocked: str) -> None:
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text("INSERT INTO social.blocks (blocker_id, blocked_id) VALUES (:a, :b)"),
            {"a": UUID(blocker), "b": UUID(blocked)},
        )


async def search(client, persona: Persona, q: str, **params):
    return await client.get(SEARCH, headers=persona.headers, params={"q": q, **params})


async def found(client, persona: Persona, q: str, **params) -> list[str]:
    """The usernames one page of results shows, in order."""
    response = await search(client, persona, q, **params)
    assert response.status_code == 200, response.text
    return [item["username"] for item in response.json()["items"]]


async def every_page(client, persona: Persona, q: str, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        response = await search(client, persona, q, **params)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([item["username"] for item in body["items"]])
        cursor = body["next"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "the cursor never ends"


# What matches


async def test_the_start_of_a_username_finds_the_person(client, runtime, alice):
    await person(runtime, "zoe.martin", "Z")
    assert await found(client, alice, "zoe.ma") == ["zoe.martin"]


async def test_an_at_sign_before_a_username_is_ignored(client, runtime, alice):
    await person(runtime, "zoe.martin", "Z")
    assert await found(client, alice, "@ZOE.MAR") == ["zoe.martin"]


async def test_a_word_of_the_display_name_finds_the_person(client, runtime, alice):
    await person(runtime, "pam", "Zoë Kowalczyk")
    assert await found(client, alice, "kowalczyk") == ["pam"]


async def test_the_start_of_a_display_name_word_finds_the_person(client, runtime, alice):
    await person(runtime, "pam", "Zoë Kowalczyk")
    assert await found(client, alice, "kowa") == ["pam"]


async def test_letters_beyond_ascii_match_in_any_case(client, runtime, alice):
    await person(runtime, "pam", "Zoë Kowalczyk")
    assert await found(client, alice, "ZOË") == ["pam"]


async def test_a_word_of_the_bio_finds_the_person(client, runtime, alice):
    await person(runtime, "pam", "Someone", bio="Amateur astronomer and baker.")
    assert await found(client, alice, "astronom") == ["pam"]


async def test_every_word_must_match(client, runtime, alice):
    await person(runtime, "pam", "Marta Nowak")
    await person(runtime, "pia", "Marta Kowalska")
    assert await found(client, alice, "marta nowak") == ["pam"]


async def test_words_may_match_in_different_fields(client, runtime, alice):
    await person(runtime, "pam", "Marta Nowak", bio="Cellist in Kraków.")
    await person(runtime, "pia", "Marta Kowalska", bio="Violinist.")
    assert await found(client, alice, "marta cellist") == ["pam"]


async def test_words_are_matched_whatever_their_order_or_separators(client, runtime, alice):
    await person(runtime, "pam", "Marta Nowak")
    assert await found(client, alice, "nowak, marta!") == ["pam"]


async def test_nothing_matches_an_unknown_word(client, runtime, alice):
    await person(runtime, "pam", "Marta Nowak")
    assert await found(client, alice, "zzyzx") == []


# Ranking


async def test_results_are_ranked_username_then_name_then_bio(client, runtime, alice):
    await person(runtime, "treelover", "Sam Tree", bio="Rowan trees in autumn")
    await person(runtime, "rlee", "Rowanne Lee")
    await person(runtime, "ratkinson", "Rowan Atkinson")
    await person(runtime, "rowanberry", "R B")
    await person(runtime, "rowan", "R")
    assert await found(client, alice, "rowan") == ["rowan", "rowanberry", "ratkinson", "rlee", "treelover"]


async def test_a_name_match_ranks_above_a_bio_match(client, runtime, alice):
    await person(runtime, "pam", "Sam", bio="Best friends with Marta")
    await person(runtime, "pia", "Marta Nowak")
    assert await found(client, alice, "marta") == ["pia", "pam"]


async def test_within_a_tier_more_occurrences_rank_higher(client, runtime, alice):
    await person(runtime, "pam", "Anna Smith", bio="")
    await person(runtime, "pia", "Anna Smith", bio="Smith by trade, Anna by name")
    assert await found(client, alice, "anna smith") == ["pia", "pam"]


# Who can be found


async def test_a_private_profile_is_not_found(client, runtime, alice):
    await person(runtime, "hermit", "Quiet Hermit", visibility="private")
    assert await found(client, alice, "hermit") == []


async def test_a_contacts_only_profile_is_not_found_by_a_stranger(client, runtime, alice):
    await person(runtime, "closed", "Closed Circle", visibility="contacts")
    assert await found(client, alice, "closed") == []


async def test_a_contacts_only_profile_is_found_by_a_contact(client, runtime, alice):
    closed = await person(runtime, "closed", "Closed Circle", visibility="contacts")
    await make_contacts(runtime, closed, alice.user_id)
    assert await found(client, alice, "closed") == ["closed"]


async def test_a_contacts_only_profile_stays_hidden_from_other_peoples_contacts(client, runtime, alice, bob):
    closed = await person(runtime, "closed", "Closed Circle", visibility="contacts")
    await make_contacts(runtime, closed, bob.user_id)
    assert await found(client, alice, "closed") == []


async def test_someone_who_blocked_the_caller_is_not_found(client, runtime, alice):
    blocker = await person(runtime, "blocker", "Public Blocker")
    await block(runtime, blocker, alice.user_id)
    assert await found(client, alice, "blocker") == []


async def test_someone_the_caller_blocked_is_not_found(client, runtime, alice):
    pest = await person(runtime, "pest", "Public Pest")
    await block(runtime, alice.user_id, pest)
    assert await found(client, alice, "pest") == []


async def test_a_contact_who_blocked_the_caller_is_not_found(client, runtime, alice):
    closed = await person(runtime, "closed", "Closed Circle", visibility="contacts")
    await make_contacts(runtime, closed, alice.user_id)
    await block(runtime, closed, alice.user_id)
    assert await found(client, alice, "closed") == []


async def test_a_block_hides_only_from_the_two_people(client, runtime, alice, mallory):
    blocker = await person(runtime, "blocker", "Public Blocker")
    await block(runtime, blocker, mallory.user_id)
    assert await found(client, alice, "blocker") == ["blocker"]


async def test_the_caller_is_not_among_the_results(client, runtime, alice):
    await person(runtime, "alicia", "Alicia")
    assert await found(client, alice, "ali") == ["alicia"]


# What a result holds


async def test_a_result_shows_who_the_person_is(client, runtime, alice):
    user_id = await person(runtime, "pam", "Marta Nowak", bio="Cellist.")
    response = await search(client, alice, "marta")
    assert response.json()["items"] == [
        {
            "user_id": user_id,
            "username": "pam",
            "display_name": "Marta Nowak",
            "avatar_url": None,
            "bio": "Cellist.",
            "is_verified": False,
        }
    ]


async def test_a_long_bio_is_cut_short(client, runtime, alice):
    await person(runtime, "pam", "Marta Nowak", bio="cello " * 80)
    response = await search(client, alice, "marta")
    assert len(response.json()["items"][0]["bio"]) == _search.BIO_PREVIEW


# Pages


async def test_pages_walk_every_result_once(client, runtime, alice):
    for n in range(12):
        await person(runtime, f"pager{n}", f"Pager Number{n}", bio="pager " * (n % 3))
    pages = await every_page(client, alice, "pager", limit=5)
    assert [len(page) for page in pages] == [5, 5, 2]
    assert sorted(name for page in pages for name in page) == sorted(f"pager{n}" for n in range(12))


async def test_pages_keep_the_ranking(client, runtime, alice):
    await person(runtime, "lark", "L")
    for n in range(6):
        await person(runtime, f"per{n}", "Lark Ascending" if n % 2 else "Someone", bio="" if n % 2 else "larks sing")
    ranked = await found(client, alice, "lark", limit=50)
    assert [name for page in await every_page(client, alice, "lark", limit=2) for name in page] == ranked


async def test_the_last_page_has_no_next_cursor(client, runtime, alice):
    await person(runtime, "pam", "Marta Nowak")
    assert (await search(client, alice, "marta", limit=1)).json()["next"] is None


async def test_a_query_matching_very_many_people_ranks_a_bounded_selection(
    client, runtime, alice, database, monkeypatch
):
    # Forty people match "a"; with five candidates per source the search gathers them by
    # reading the table (the planner, after ANALYZE, expects too many for a bitmap).
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text(
                "INSERT INTO auth.users (id, email, status, email_verified_at) "
                "SELECT kernel.uuid7_like(), 'many' || n || '@example.com', 'active', now()"
                " FROM generate_series(1, 40) n"
            )
        )
        await db.execute(
            text("UPDATE social.profiles SET display_name = 'Alex Many', bio = 'a' WHERE username LIKE 'many%'")
        )
    conn = await asyncpg.connect(asyncpg_dsn(database.owner))
    try:
        await conn.execute("ANALYZE social.profiles")
    finally:
        await conn.close()
    monkeypatch.setattr(_search, "CANDIDATES", 5)
    pages = await every_page(client, alice, "a", limit=4)
    names = [name for page in pages for name in page]
    assert 5 <= len(names) <= 15 and len(set(names)) == len(names)


# Refusals


@pytest.mark.parametrize(
    ("params", "status", "kind"),
    [
        ({"q": ""}, 422, "validation-error"),
        ({"q": "x" * 101}, 422, "validation-error"),
        ({"q": "   "}, 422, "invalid-search-query"),
        ({"q": "!?."}, 422, "invalid-search-query"),
        ({"q": "&&&"}, 422, "invalid-search-query"),
        ({"q": "'); --"}, 422, "invalid-search-query"),
        ({"q": " ".join("abcdefghijk")}, 422, "invalid-search-query"),
        ({"q": "marta", "limit": 0}, 422, "validation-error"),
        ({"q": "marta", "limit": 51}, 422, "validation-error"),
        ({"q": "marta", "cursor": "c" * 65}, 422, "validation-error"),
        ({}, 422, "validation-error"),
    ],
)
async def test_a_bad_request_is_refused(client, alice, params, status, kind):
    response = await client.get(SEARCH, headers=alice.headers, params=params)
    assert (response.status_code, problem_type(response)) == (status, kind)


@pytest.mark.parametrize(
    "cursor",
    ["not-a-cursor", "AAAA", base64.urlsafe_b64encode(bytes(25)).decode().rstrip("="), "====", "é"],
)
async def test_a_malformed_cursor_is_refused(client, alice, cursor):
    response = await search(client, alice, "marta", cursor=cursor)
    assert (response.status_code, problem_type(response)) == (400, "invalid-cursor")


async def test_a_cursor_of_another_query_is_refused(client, runtime, alice):
    await person(runtime, "pam", "Marta Nowak")
    await person(runtime, "pia", "Marta Kowalska")
    cursor = (await search(client, alice, "marta", limit=1)).json()["next"]
    response = await search(client, alice, "nowak", cursor=cursor)
    assert (response.status_code, problem_type(response)) == (400, "invalid-cursor")


async def test_searching_needs_a_signed_in_caller(client):
    response = await client.get(SEARCH, params={"q": "marta"})
    assert (response.status_code, problem_type(response)) == (401, "unauthenticated")


@pytest.mark.parametrize(
    "query",
    [
        "a:* | b",
        "a & !b",
        "(a | b) <-> c",
        "a:*A",
        "'a'",
        "a\\b",
        "it's",
        "a''b",
        "\\",
        "%_",
        "a\x00b",
        "ørsted",
        "名前",
        "👩‍🚀 astronaut",
        "a" * 100,
        "' OR 1=1 --",
        "$1",
        "a:*' & 'b",
        "<script>",
        "a\u200bb",
    ],
)
async def test_query_syntax_in_the_input_is_only_text(client, runtime, alice, query):
    await person(runtime, "pam", "Ana Bell")
    response = await search(client, alice, query)
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        # A NUL is refused at the edge, as in any parameter, before search reads it.
        assert problem_type(response) == ("validation-error" if "\x00" in query else "invalid-search-query")


async def test_operators_in_the_input_match_as_words(client, runtime, alice):
    await person(runtime, "pam", "Ana Bell")
    assert await found(client, alice, "ana:* | !bell") == ["pam"]


# The SQL function, as rapport_app


async def test_the_function_finds_nothing_without_a_user(runtime):
    await person(runtime, "pam", "Marta Nowak")
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM social.search_profiles('{marta}')"))).all()
    assert rows == []


QUERY_ALPHABET = (
    "aZ09 _.-@:*&|!()<>'\"\\%$;,\t\n\x00\u00e9\u00df\u0130\u03a3\u05d0\u0627\u4e2d\u200b\u202e\ufeff\U0001f600"
)


async def test_random_queries_and_cursors_never_cause_a_server_error(client, runtime, alice):
    import random

    await person(runtime, "pam", "Ana Bell", bio="cellist")
    rng = random.Random(20261121)
    failures = []
    for _ in range(150):
        query = "".join(rng.choice(QUERY_ALPHABET) for _ in range(rng.randint(0, 110)))
        params = {"q": query, "limit": rng.choice(["1", "20", "50", "0", "x"])}
        if rng.random() < 0.3:
            params["cursor"] = "".join(rng.choice("AZaz09-_=+/é") for _ in range(rng.randint(0, 70)))
        response = await client.get(SEARCH, headers=alice.headers, params=params)
        if response.status_code >= 500 or response.status_code not in (200, 400, 422):
            failures.append((params, response.status_code, response.text[:200]))
    assert failures == []


async def test_as_rapport_app_the_function_returns_no_hidden_profile(runtime, alice):
    await person(runtime, "hidden1", "Hidden One", visibility="private")
    await person(runtime, "hidden2", "Hidden Two", visibility="contacts")
    blocker = await person(runtime, "hidden3", "Hidden Three")
    pest = await person(runtime, "hidden4", "Hidden Four")
    shown = await person(runtime, "hidden5", "Hidden Five")
    await block(runtime, blocker, alice.user_id)
    await block(runtime, alice.user_id, pest)
    async with user_transaction(runtime.engine, UUID(alice.user_id)) as db:
        rows = (await db.execute(text("SELECT user_id FROM social.search_profiles('{hidden}', 'hidden', 50)"))).all()
    assert [str(row.user_id) for row in rows] == [shown]


async def test_rapport_app_cannot_read_profiles_past_row_level_security(runtime, mallory):
    """The definer's policy is for rapport_owner: rapport_app still sees only what it may."""
    await person(runtime, "hidden1", "Hidden One", visibility="private")
    async with user_transaction(runtime.engine, UUID(mallory.user_id)) as db:
        count = (await db.execute(text("SELECT count(*) FROM social.profiles WHERE username = 'hidden1'"))).scalar_one()
    assert count == 0
