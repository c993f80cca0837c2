"""Message search (GET /v1/messages/search): words, phrases, prefixes and exclusions;
every filter; only what the caller may see (their conversations, within their window,
never deleted or hidden messages); ranked pages; and refusals of bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.db import user_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import DatabaseUrls
from rapport.messaging import _search
from rapport.messaging._search import MessageSearchPage
from tests.messaging.messages_support import as_superuser, history
from tests.messaging.support import make_conversation, send
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

SEARCH = "/v1/messages/search"


async def search(client: httpx.AsyncClient, persona: Persona, q: str, **params: Any) -> dict[str, Any]:
    """One page of results, checked against the documented shape."""
    response = await client.get(SEARCH, headers=persona.headers, params={"q": q, **params})
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    MessageSearchPage.model_validate(page)
    return page


async def found(client: httpx.AsyncClient, persona: Persona, q: str, **params: Any) -> list[str]:
    """The contents found, best first."""
    return [item["content"] for item in (await search(client, persona, q, **params))["items"]]


async def as_user(engine: AsyncEngine, persona: Persona, statement: str, **params: Any) -> None:
    async with user_transaction(engine, UUID(persona.user_id)) as db:
        await db.execute(text(statement), params)


# Finding words


async def test_finds_the_messages_with_the_words(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    await send(client, alice, conversation, "Lunch at the harbour tomorrow?")
    await send(client, bob, conversation, "Sure, see you at the harbour")
    await send(client, bob, conversation, "Something else entirely")

    assert sorted(await found(client, bob, "harbour")) == [
        "Lunch at the harbour tomorrow?",
        "Sure, see you at the harbour",
    ]
    assert await found(client, alice, "HARBOUR tomorrow") == ["Lunch at the harbour tomorrow?"]
    assert await found(client, alice, "submarine") == []


async def test_a_result_is_the_message_as_history_shows_it_with_rank_and_snippet(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, alice, conversation, "The quarterly report is ready", client_message_id="r1")

    [hit] = (await search(client, alice, "report"))["items"]
    history = await client.get(f"/v1/conversations/{conversation}/messages", headers=alice.headers)
    [shown] = history.json()["items"]

    assert {key: value for key, value in hit.items() if key not in ("rank", "snippet")} == shown
    assert hit["id"] == sent["id"] and hit["client_message_id"] == "r1"
    assert 0 < hit["rank"] <= 1
    assert hit["snippet"] == "The quarterly <mark>report</mark> is ready"


async def test_the_snippet_is_escaped_html(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    await send(client, alice, conversation, '<script>alert("hi")</script> & tom\'s snippet')

    [hit] = (await search(client, bob, "snippet"))["items"]

    assert hit["snippet"] == ("&lt;script&gt;alert(&quot;hi&quot;)&lt;/script&gt; &amp; tom&#39;s <mark>snippet</mark>")


async def test_the_last_word_typed_matches_as_a_prefix(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    await send(client, alice, conversation, "hello world")
    await send(client, alice, conversation, "help wanted")

    assert sorted(await found(client, bob, "hel")) == ["hello world", "help wanted"]
    assert await found(client, bob, "hello wor") == ["hello world"]
    # Only the last word, and only while it is being typed.
    assert await found(client, bob, "hel world") == []
    assert await found(client, bob, '"hel"') == []
    assert await found(client, bob, "hel ") == []


async def test_phrases_or_and_exclusions(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    await send(client, alice, conversation, "the red car is fast")
    await send(client, alice, conversation, "a car that is red")
    await send(client, alice, conversation, "a blue boat")

    assert await found(client, bob, '"red car"') == ["the red car is fast"]
    assert sorted(await found(client, bob, "boat or fast")) == ["a blue boat", "the red car is fast"]
    assert await found(client, bob, "car -fast") == ["a car that is red"]


async def test_query_syntax_is_only_ever_words(client, app_engine, alice, bob):
    """What tsquery or SQL would read as operators is searched for as text."""
    conversation = await make_conversation(app_engine, alice, bob)
    await send(client, alice, conversation, "it's a deal: cats & dogs")

    for q in ("cats & dogs", "cats | dogs", "cats:*", "'cats'", "cats')--", "!cats dogs", "deal:A", "it's"):
        response = await client.get(SEARCH, headers=bob.headers, params={"q": q})
        assert response.status_code in (200, 422), (q, response.text)
    assert await found(client, bob, "cats & dogs") == ["it's a deal: cats & dogs"]
    assert await found(client, bob, "it's") == ["it's a deal: cats & dogs"]


async def test_the_best_match_comes_first(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    await send(client, alice, conversation, "budget " + " ".join(f"filler{n}" for n in range(40)))
    await send(client, alice, conversation, "budget budget: the budget meeting")
    await send(client, alice, conversation, "new budget")

    page = await search(client, bob, "budget")
    ranks = [item["rank"] for item in page["items"]]

    assert page["items"][0]["content"] == "budget budget: the budget meeting"
    assert page["items"][-1]["content"].startswith("budget filler0")
    assert ranks == sorted(ranks, reverse=True)


# Filters


async def test_filters_by_conversation_sender_and_type(client, app_engine, alice, bob, carol):
    one = await make_conversation(app_engine, alice, bob, carol)
    other = await make_conversation(app_engine, alice, bob)
    await send(client, alice, one, "invoice from alice")
    await send(client, bob, one, "invoice from bob")
    await send(client, bob, other, "invoice elsewhere")
    await send(client, bob, other, "invoice as a file", type="file", content_metadata={"name": "invoice.pdf"})

    assert sorted(await found(client, alice, "invoice", conversation_id=str(one))) == [
        "invoice from alice",
        "invoice from bob",
    ]
    assert sorted(await found(client, alice, "invoice", sender_id=bob.user_id)) == [
        "invoice as a file",
        "invoice elsewhere",
        "invoice from bob",
    ]
    assert await found(client, alice, "invoice", type="file") == ["invoice as a file"]
    assert await found(client, alice, "invoice", sender_id=alice.user_id, conversation_id=str(other)) == []


async def test_filters_by_time(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    first = await send(client, alice, conversation, "status one")
    second = await send(client, alice, conversation, "status two")
    third = await send(client, alice, conversation, "status three")
    at = {m["content"]: m["created_at"] for m in (first, second, third)}

    assert sorted(await found(client, bob, "status", since=at["status two"])) == ["status three", "status two"]
    assert sorted(await found(client, bob, "status", until=at["status two"])) == ["status one", "status two"]
    both = await found(client, bob, "status", since=at["status two"], until=at["status two"])
    assert both == ["status two"]
    # A moment without a time zone is UTC.
    naive = datetime.fromisoformat(at["status one"]).astimezone(UTC).replace(tzinfo=None).isoformat()
    assert "status one" in await found(client, bob, "status", since=naive)


async def test_older_months_are_searched_and_dates_narrow_them(client, app_engine, database: DatabaseUrls, alice, bob):
    """Messages in the partitions of earlier months are found, and a date range leaves out
    the months outside it."""
    conversation = await _archive(client, app_engine, database, alice, bob)
    archived = await history(client, bob, conversation)
    at = {message["content"]: message["created_at"] for message in archived}

    assert sorted(await found(client, bob, "archive")) == [
        "archive 1 months ago",
        "archive 2 months ago",
        "archive 3 months ago",
        "archive now",
    ]
    window = {"since": at["archive 2 months ago"], "until": at["archive 1 months ago"]}
    assert sorted(await found(client, bob, "archive", **window)) == ["archive 1 months ago", "archive 2 months ago"]
    assert (await search(client, bob, "archive"))["older_until"] is None


async def test_a_search_out_of_time_says_how_to_reach_older_messages(
    client, app_engine, database: DatabaseUrls, alice, bob, monkeypatch
):
    """With its budget spent after the newest month, a search answers with what it found
    there and an `until` for the older ones; its later pages read no further back."""
    conversation = await _archive(client, app_engine, database, alice, bob)
    await send(client, alice, conversation, "archive now, again")
    monkeypatch.setattr(_search, "SEARCH_BUDGET", timedelta(0))
    # More matches expected than candidates wanted: the first slice is the newest month
    # (with fewer, one statement reads the whole range, budget or not).
    monkeypatch.setattr(_search, "CANDIDATES", 3)

    first = await search(client, bob, "archive", limit=1)
    second = await search(client, bob, "archive", limit=1, cursor=first["next"])
    monkeypatch.undo()
    older = await found(client, bob, "archive", until=first["older_until"])

    newest = [item["content"] for item in first["items"] + second["items"]]
    assert sorted(newest) == ["archive now", "archive now, again"] and second["next"] is None
    assert second["older_until"] == first["older_until"] is not None
    assert sorted(older) == ["archive 1 months ago", "archive 2 months ago", "archive 3 months ago"]


async def _archive(client, app_engine, database: DatabaseUrls, alice, bob) -> UUID:
    """A conversation with a message in each of three earlier months, and one now. Each is
    more than a month old whatever the day (40, 80 and 120 days), so that a first slice of
    up to a month's days (messaging.search_messages) never reaches them."""
    conversation = await make_conversation(app_engine, alice, bob)
    now = datetime.now(UTC)
    months_ago = {n: (now - timedelta(days=40 * n)).replace(hour=12) for n in (3, 2, 1)}
    await _make_partitions(database, list(months_ago.values()))
    for n, moment in months_ago.items():
        await as_superuser(
            database,
            "INSERT INTO messaging.messages (id, conversation_id, sender_id, content, created_at)"
            " VALUES ($1, $2, $3, $4, messaging.id_time($1))",
            _uuid7_at(moment),
            conversation,
            UUID(alice.user_id),
            f"archive {n} months ago",
        )
    await send(client, alice, conversation, "archive now")
    return conversation


async def _make_partitions(database: DatabaseUrls, moments: list[datetime]) -> None:
    for moment in moments:
        first = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        following = (first + timedelta(days=32)).replace(day=1)
        name = f"messages_p{first:%Y%m}"
        await as_superuser(
            database,
            f"DO $$ BEGIN IF to_regclass('messaging.{name}') IS NULL THEN"
            f" SET LOCAL ROLE rapport_owner;"
            f" CREATE TABLE messaging.{name} PARTITION OF messaging.messages"
            f" FOR VALUES FROM ('{first.isoformat()}') TO ('{following.isoformat()}');"
            f" ALTER TABLE messaging.{name} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;"
            f" END IF; END $$",
        )


def _uuid7_at(moment: datetime) -> UUID:
    """A UUIDv7 made at `moment` (to the millisecond), like the server's ids."""
    milliseconds = int(moment.timestamp() * 1000)
    random_part = uuid7().int & ((1 << 80) - 1)
    return UUID(int=(milliseconds << 80) | random_part)


# Only what the caller may see


async def test_a_few_conversations_holding_many_messages_are_searched_by_the_words(
    client, app_engine, database: DatabaseUrls, alice, bob, carol
):
    """Someone in a few conversations that hold many messages (a large channel, say) is
    searched through the words' postings, their conversations kept by id (migration
    2026_12_01_0054): they find their own matches and none of another conversation's."""
    theirs = await make_conversation(app_engine, alice, bob)
    others = await make_conversation(app_engine, alice, carol)
    await as_superuser(
        database,
        "INSERT INTO messaging.messages (id, conversation_id, sender_id, content, created_at)"
        " SELECT g.id, $1, $2, 'filler ' || g.n, messaging.id_time(g.id)"
        "   FROM (SELECT kernel.uuid7_like() AS id, n FROM generate_series(1, 10001) AS n) AS g",
        theirs,
        UUID(alice.user_id),
    )
    await send(client, alice, theirs, "a kumquat for bob")
    await send(client, alice, others, "a kumquat for carol")
    await send(client, bob, theirs, "thanks for the kumquat")
    async with user_transaction(app_engine, UUID(bob.user_id)) as db:
        last_seq = (
            await db.execute(text("SELECT last_seq FROM messaging.conversations WHERE id = :c"), {"c": theirs})
        ).scalar_one()
    assert last_seq > 10_000  # more than messaging.search_messages' few_messages

    assert sorted(await found(client, bob, "kumquat")) == ["a kumquat for bob", "thanks for the kumquat"]
    assert await found(client, carol, "kumquat") == ["a kumquat for carol"]


async def test_a_stranger_finds_nothing_even_naming_the_conversation(client, app_engine, alice, bob, mallory):
    conversation = await make_conversation(app_engine, alice, bob)
    await send(client, alice, conversation, "the secret plan")

    assert await found(client, mallory, "secret") == []
    assert await found(client, mallory, "secret", conversation_id=str(conversation)) == []
    assert await found(client, mallory, "secret", sender_id=alice.user_id) == []


async def test_withheld_history_is_not_searched(client, app_engine, alice, bob, carol):
    conversation = await make_conversation(app_engine, alice, bob)
    await send(client, alice, conversation, "keynote draft before carol")
    await as_user(
        app_engine,
        alice,
        "SELECT messaging.add_participant(:c, :u, 'member', false)",
        c=conversation,
        u=carol.user_id,
    )
    await send(client, alice, conversation, "keynote draft after carol")

    assert await found(client, carol, "keynote") == ["keynote draft after carol"]
    assert len(await found(client, bob, "keynote")) == 2


async def test_nothing_after_leaving_is_searched(client, app_engine, alice, bob, carol):
    conversation = await make_conversation(app_engine, alice, bob, carol)
    await send(client, alice, conversation, "roadmap before leaving")
    await as_user(
        app_engine,
        carol,
        "SELECT messaging.change_participant(:c, :u, NULL, 'left', NULL, NULL, NULL)",
        c=conversation,
        u=carol.user_id,
    )
    await send(client, alice, conversation, "roadmap after leaving")

    assert await found(client, carol, "roadmap") == ["roadmap before leaving"]
    assert len(await found(client, bob, "roadmap")) == 2


async def test_hidden_and_deleted_messages_are_not_found(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    hidden = await send(client, bob, conversation, "gossip hidden by alice")
    deleted = await send(client, bob, conversation, "gossip deleted by bob")
    await send(client, bob, conversation, "gossip that stays")
    await as_user(
        app_engine,
        alice,
        "INSERT INTO messaging.hidden_messages (user_id, conversation_id, seq, message_id) VALUES (:u, :c, :s, :m)",
        u=alice.user_id,
        c=conversation,
        s=hidden["seq"],
        m=hidden["id"],
    )
    await as_user(
        app_engine,
        bob,
        "UPDATE messaging.messages SET deleted_at = now()"
        " WHERE conversation_id = :c AND id = :m AND created_at = messaging.id_time(:m)",
        c=conversation,
        m=deleted["id"],
    )

    assert await found(client, alice, "gossip") == ["gossip that stays"]
    assert sorted(await found(client, bob, "gossip")) == ["gossip hidden by alice", "gossip that stays"]


async def test_a_deleted_conversation_is_not_searched(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    await send(client, alice, conversation, "farewell party")
    await as_user(app_engine, alice, "SELECT messaging.delete_conversation(:c)", c=conversation)

    assert await found(client, bob, "farewell") == []


# Pages


async def test_pages_walk_every_match_once(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    for n in range(7):
        await send(client, alice, conversation, "ticket " + "x " * n + f"number{n}")

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = await search(client, bob, "ticket", **params)
        seen += [item["content"] for item in page["items"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break

    assert pages == 3 and len(seen) == 7 and len(set(seen)) == 7
    assert seen[0] == "ticket number0"  # the shortest message ranks first


async def test_later_pages_keep_the_first_pages_candidates(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    for n in range(3):
        await send(client, alice, conversation, f"agenda item {n}")
    first = await search(client, bob, "agenda", limit=2)
    await send(client, alice, conversation, "agenda")  # would rank first, but came later

    second = await search(client, bob, "agenda", limit=2, cursor=first["next"])

    shown = [item["content"] for item in first["items"] + second["items"]]
    assert sorted(shown) == ["agenda item 0", "agenda item 1", "agenda item 2"]
    assert second["next"] is None


# What every search pays at 10M messages (migration 2026_12_01_0054)


async def test_a_page_keeps_its_plan_and_reads_the_windows_from_the_index(app_engine):
    """A page's statement is planned once per connection (its custom plans cost about 8 ms
    of planning a call at 10M messages), and the caller's participations come with their
    windows from ix_participants_user_id alone."""
    async with app_engine.connect() as db:
        config = await db.scalar(text("SELECT proconfig FROM pg_proc WHERE oid = 'messaging.search_page'::regproc"))
        index = await db.scalar(
            text(
                "SELECT indexdef FROM pg_indexes"
                " WHERE schemaname = 'messaging' AND indexname = 'ix_participants_user_id'"
            )
        )
    assert "plan_cache_mode=force_generic_plan" in config
    assert index.endswith("(user_id, conversation_id) INCLUDE (status, is_pinned, history_from_seq, left_seq)")


# Refusals


@pytest.mark.parametrize(
    ("params", "status", "slug"),
    [
        ({}, 422, "validation-error"),
        ({"q": ""}, 422, "validation-error"),
        ({"q": "x" * 201}, 422, "validation-error"),
        ({"q": "   "}, 422, "invalid-message-search"),
        ({"q": "!!! ???"}, 422, "invalid-message-search"),
        ({"q": "-hello"}, 422, "invalid-message-search"),
        ({"q": "hello or -world"}, 422, "invalid-message-search"),
        ({"q": "hello", "type": "telegram"}, 422, "validation-error"),
        ({"q": "hello", "since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, 422, "validation-error"),
        ({"q": "hello", "since": "yesterday"}, 422, "validation-error"),
        ({"q": "hello", "conversation_id": "not-a-uuid"}, 422, "validation-error"),
        ({"q": "hello", "limit": 0}, 422, "validation-error"),
        ({"q": "hello", "limit": 51}, 422, "validation-error"),
        ({"q": "hello", "cursor": "not a cursor"}, 400, "invalid-cursor"),
        ({"q": "hello", "cursor": "AAAA"}, 400, "invalid-cursor"),
    ],
)
async def test_bad_input_is_refused(client, alice, params, status, slug):
    response = await client.get(SEARCH, headers=alice.headers, params=params)
    assert response.status_code == status, response.text
    assert problem_type(response) == slug


async def test_a_cursor_belongs_to_its_search(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    for n in range(3):
        await send(client, alice, conversation, f"minutes {n}")
    cursor = (await search(client, bob, "minutes", limit=1))["next"]

    other_query = await client.get(SEARCH, headers=bob.headers, params={"q": "minute", "cursor": cursor})
    other_filter = await client.get(
        SEARCH, headers=bob.headers, params={"q": "minutes", "cursor": cursor, "sender_id": alice.user_id}
    )

    assert (other_query.status_code, problem_type(other_query)) == (400, "invalid-cursor")
    assert (other_filter.status_code, problem_type(other_filter)) == (400, "invalid-cursor")


async def test_searching_needs_a_signed_in_caller(client):
    response = await client.get(SEARCH, params={"q": "hello"})
    assert response.status_code == 401 and problem_type(response) == "unauthenticated"
