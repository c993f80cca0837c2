"""Every statement Rapport runs on a messaging table names `conversation_id`, so that the
messaging tables can be distributed by it in Citus and each statement routed to one shard
(docs/SCALING.md, "Citus").

The statements are the ones PostgreSQL ran, not the ones found in the source: the module
runs a representative flow through the API (send, reply, history, read, react, edit,
delete, hide, search, pins, threads, drafts, invites, calls, participants, sync, the
conversation list, a data archive), then erases an account and applies the retention
policies, on an app of its own, on a server of its own whose `pg_stat_statements`
tracks nested statements too (tests/scale/statements_server.py), and then reads every
statement that server recorded in the module's database: the route's SQL, and the SQL
inside the functions and triggers it called, background rounds included (notifications,
bots, the support desk's watcher, analytics).

A statement touches a messaging table when its text names `messaging.<table>` for a table
with a `conversation_id` column (the tables Citus would distribute by it). It passes when
`conversation_id` routes it: compared in its WHERE or a JOIN, or written in an INSERT's
columns (`names_the_conversation`, read from the text: no SQL parser is needed for
statements this regular, and the last test pins what it accepts). Otherwise it must be on
the allow-list below, which says why it is fine for Citus or what it would need there; an
entry that no statement needs any more fails too. (`messaging.conversations` itself would
be distributed by its `id`; the check covers the tables that hang off it.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from aiosmtpd.controller import Controller
from asgi_lifespan import LifespanManager
from sqlalchemy.engine import URL

from rapport.app import create_app
from rapport.compliance import service_deletion, service_retention
from rapport.config import Settings
from rapport.kernel import migrate, provisioning
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from tests.scale.statements_server import statements_server
from tests.support import (
    PASSWORD,
    STARTUP_TIMEOUT_S,
    Mailbox,
    Persona,
    create_verified_user,
    make_settings,
    populate,
    sign_in,
)

DATABASE = "rapport_citus"

# Statements on a messaging table that do not name conversation_id, each with why Citus is
# fine with it, or what it would need. A pattern matches the statement's text (as
# pg_stat_statements normalised it) anywhere.
ALLOWED: list[tuple[str, str]] = [
    (
        r"^SELECT \(to_jsonb\(t\) - CAST\(\$1 AS text\[\]\)(?: - \$\d+)*\)::text FROM messaging\.\w+ t WHERE ",
        # The archive of one person's data (rapport.compliance._archive): their rows in each
        # table, by the columns naming them, across all their conversations, in an export
        # job's read-only snapshot. On Citus a multi-shard SELECT that each shard answers
        # from its index on that column; it runs once per request for an archive, so the
        # fan-out costs nothing that matters.
        "a person's data archive",
    ),
    (
        r"FROM \(VALUES \(\$\d+\)\) AS one \(x\)\s+LEFT JOIN messaging\.participants p ON p\.user_id = \$\d+",
        # A person's memberships and their windows (rapport.messaging._sync), read when a
        # stream connects and per page of GET /v1/sync: by person, across conversations by
        # nature. On Citus a multi-shard read of participants by user_id, once per
        # connection; at the scale where that fan-out shows, a per-person copy of the
        # memberships distributed by user_id serves it (docs/SCALING.md, "Citus").
        "a person's memberships",
    ),
    (
        r"^EXPLAIN \(FORMAT JSON\) SELECT FROM messaging\.messages m WHERE",
        # Search's estimate of how many messages a range of days holds and how many hold
        # the words (messaging.search_messages): EXPLAIN only, no row is read. On Citus the
        # coordinator plans it from the shards' statistics; the estimate only chooses how
        # the search proceeds, so a coarser one changes speed, never answers.
        "search's planner estimate",
    ),
    (
        r"\bWHERE (?:m\.)?\w+ = target\b",
        # compliance.erase_messages(target) (migration 0024), erasing one account: the
        # person's messages (collected first by sender), and their name on threads,
        # reports and edits, across every conversation they wrote in. On Citus multi-shard
        # UPDATEs and a multi-shard read by person, each shard using its index on that
        # column; once per erased account, in a background job. The later statements of
        # the function work from the collected rows by conversation_id and are routed.
        "an account's erasure, by person",
    ),
    (
        r"\bforwarded_from_id (?:IN \(SELECT e\.id FROM erased_messages e\)|= s\.id)",
        # The same erasure following copies forwarded by others (compliance.erase_messages
        # and rapport.compliance._erase's notifications): a copy lives in another
        # conversation and names only the message it came from. Multi-shard on Citus, and
        # rare; to route it, a copy would also name the conversation it came from.
        "forwarded copies of an erased account's messages",
    ),
]


@dataclass
class Recorded:
    """What the server recorded in the module's database after the flow."""

    statements: list[str]
    distributed: set[str]


@pytest.fixture(scope="module")
def server() -> Iterator[URL]:
    with statements_server() as admin:
        yield admin


@pytest.fixture(scope="module")
async def recorded(server: URL, smtp_server: tuple[Controller, Mailbox]) -> Recorded:
    settings = make_settings(smtp_host="127.0.0.1", smtp_port=smtp_server[0].port)
    urls = provisioning.urls_for(server, database=DATABASE, settings=settings)
    await provisioning.provision(urls, settings)
    await migrate.upgrade(urls.owner)
    superuser = await asyncpg.connect(asyncpg_dsn(server.set(database=DATABASE)))
    try:
        await superuser.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await superuser.execute("SELECT pg_stat_statements_reset()")
        await run_the_flow(urls, settings)
        statements = await superuser.fetch(
            """
            SELECT s.query FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
             WHERE d.datname = $1
            """,
            DATABASE,
        )
        distributed = await superuser.fetch(
            """
            SELECT c.relname FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'conversation_id' AND NOT a.attisdropped
             WHERE n.nspname = 'messaging' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
            """
        )
    finally:
        await superuser.close()
    return Recorded([row["query"] for row in statements], {row["relname"] for row in distributed})


async def run_the_flow(urls: DatabaseUrls, settings: Settings) -> None:
    application = create_app(settings, database_url=urls.app, system_database_url=urls.worker)
    async with LifespanManager(application, startup_timeout=STARTUP_TIMEOUT_S, shutdown_timeout=STARTUP_TIMEOUT_S):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://rapport.test") as client:
            people = []
            for name in ("alice", "bob", "carol", "mallory", "dave"):
                await create_verified_user(application.state.runtime, f"{name}@example.com")
                people.append(await sign_in(client, Persona(name, f"{name}@example.com", PASSWORD)))
            alice, bob, carol, mallory, dave = people
            # The wide tour the API sweeps use, then messaging's every route in one group.
            await populate(client, alice, bob, carol, mallory)
            await converse(client, alice, bob, carol, dave)
            # What runs across conversations by nature: a person's account erased (their
            # messages kept without them), and the retention policies applied.
            deleted = await client.request("DELETE", "/v1/me", headers=dave.headers, json={"password": PASSWORD})
            assert deleted.status_code == 202, deleted.text
        await application.state.notifications.catch_up()
        await application.state.worker.wait_idle()
        runtime = application.state.runtime
        later = datetime.now(UTC) + timedelta(days=400)
        assert len(await service_deletion.erase_now_due(runtime, now=later)) == 1
        await service_retention.run_retention(runtime.system_engine, settings=settings, now=datetime.now(UTC))


async def converse(client: httpx.AsyncClient, alice: Persona, bob: Persona, carol: Persona, dave: Persona) -> None:
    async def call(persona: Persona, method: str, path: str, body: object = None, **params: str) -> httpx.Response:
        response = await client.request(method, path, headers=persona.headers, json=body, params=params or None)
        assert response.status_code < 300, (method, path, response.text)
        return response

    made = await call(
        alice, "POST", "/v1/conversations", {"type": "group", "name": "Allotment", "participant_ids": [bob.user_id]}
    )
    room = f"/v1/conversations/{made.json()['id']}"
    first = (await call(alice, "POST", f"{room}/messages", {"content": "Tomatoes or beans?"})).json()["id"]
    second = (await call(bob, "POST", f"{room}/messages", {"content": "Beans", "reply_to": first})).json()["id"]
    message = f"{room}/messages/{first}"
    steps: list[tuple[Persona, str, str, object, dict[str, str]]] = [
        (alice, "POST", f"{room}/participants", {"user_id": carol.user_id}, {}),
        (alice, "POST", f"{room}/participants", {"user_id": dave.user_id}, {}),
        (alice, "GET", f"{room}/participants", None, {}),
        (alice, "PATCH", f"{room}/participants/{carol.user_id}", {"role": "moderator"}, {}),
        (alice, "DELETE", f"{room}/participants/{dave.user_id}", None, {}),
        (carol, "GET", f"{room}/messages", None, {}),
        (carol, "GET", f"{room}/messages", None, {"around": second}),
        (carol, "GET", message, None, {}),
        (alice, "PATCH", message, {"content": "Tomatoes, or beans?"}, {}),
        (alice, "GET", f"{message}/edits", None, {}),
        (carol, "PUT", f"{message}/reactions/🍅", None, {}),
        (carol, "DELETE", f"{message}/reactions/🍅", None, {}),
        (bob, "PUT", f"{message}/reactions/👍", None, {}),
        (carol, "POST", f"{room}/read", {"message_id": second}, {}),
        (carol, "POST", f"{room}/delivered", {"message_id": second}, {}),
        (carol, "POST", f"{room}/unread", {"message_id": second}, {}),
        (alice, "GET", f"{message}/receipts", None, {}),
        (alice, "PUT", f"{room}/pins/{first}", None, {}),
        (carol, "GET", f"{room}/pins", None, {}),
        (alice, "DELETE", f"{room}/pins/{first}", None, {}),
        (carol, "POST", f"/v1/conversations/{made.json()['id']}/messages/{second}/hide", None, {}),
        (carol, "GET", "/v1/messages/search", None, {"q": "beans"}),
        (carol, "GET", "/v1/messages/search", None, {"q": "tomat", "conversation_id": made.json()["id"]}),
        (carol, "GET", "/v1/conversations", None, {}),
        (carol, "GET", room, None, {}),
        (carol, "GET", "/v1/sync", None, {}),
        (carol, "PUT", f"{room}/draft", {"content": "Both"}, {}),
        (carol, "GET", f"{room}/draft", None, {}),
        (carol, "DELETE", f"{room}/draft", None, {}),
        (bob, "DELETE", f"{room}/messages/{second}", None, {}),
        (alice, "PATCH", f"{room}/me", {"is_muted": True}, {}),
        (carol, "POST", f"{room}/leave", None, {}),
    ]
    for persona, method, path, body, params in steps:
        await call(persona, method, path, body, **params)


def touched(statement: str, distributed: set[str]) -> set[str]:
    return {name for name in re.findall(r"\bmessaging\.(\w+)\b", statement) if name in distributed}


# conversation_id where it routes a statement to one shard: compared in a WHERE or a JOIN
# (`= $1`, `= m.conversation_id`, `IN (…)`, `= ANY (…)`, a row of keys compared), joined
# with USING, or written in an INSERT's columns. A mention in the select list alone, or in
# ORDER BY, does not count.
_COMPARED = re.compile(
    r"""\bconversation_id\b(?:[\w\s.,]*\))?\s*(?:=|IN\b)"""
    r"""|(?:=|\bIN\s*\(|\bANY\s*\()\s*\(?[\w.]*conversation_id\b"""
    r"""|\bUSING\s*\([^)]*\bconversation_id\b""",
    re.IGNORECASE,
)
_INSERT_COLUMNS = re.compile(r"INSERT\s+INTO\s+messaging\.\w+\s*(?:AS\s+\w+\s*)?\(([^)]*)\)", re.IGNORECASE)


def names_the_conversation(statement: str) -> bool:
    if _COMPARED.search(statement):
        return True
    return any(re.search(r"\bconversation_id\b", columns) for columns in _INSERT_COLUMNS.findall(statement))


def allowed(statement: str) -> bool:
    return any(re.search(pattern, statement.strip(), re.DOTALL) for pattern, _ in ALLOWED)


def test_the_flow_was_recorded_inside_the_functions_too(recorded: Recorded) -> None:
    """The check below sees something: the insert of a message (inside
    messaging.send_message and its trigger), not only the function's call."""
    assert {"messages", "participants", "reactions", "pins"} <= recorded.distributed
    assert any(re.search(r"INSERT INTO messaging\.messages\b", s) for s in recorded.statements)
    assert sum(1 for s in recorded.statements if touched(s, recorded.distributed)) > 30


def test_every_statement_on_a_messaging_table_names_its_conversation(recorded: Recorded) -> None:
    unnamed = [
        statement
        for statement in recorded.statements
        if touched(statement, recorded.distributed) and not names_the_conversation(statement)
    ]
    outside = [statement for statement in unnamed if not allowed(statement)]
    assert outside == [], "\n\n---\n\n".join(outside)


def test_every_allowance_is_still_needed(recorded: Recorded) -> None:
    """An entry of the allow-list that no statement needs any more is taken out."""
    unnamed = [
        statement.strip()
        for statement in recorded.statements
        if touched(statement, recorded.distributed) and not names_the_conversation(statement)
    ]
    unused = [name for pattern, name in ALLOWED if not any(re.search(pattern, s, re.DOTALL) for s in unnamed)]
    assert unused == []


@pytest.mark.parametrize(
    ("statement", "routed"),
    [
        ("UPDATE messaging.messages SET content = $1 WHERE conversation_id = $2 AND seq = $3", True),
        ("INSERT INTO messaging.reactions (conversation_id, message_id, user_id, emoji) VALUES ($1, $2, $3, $4)", True),
        ("SELECT m.id FROM messaging.pins p JOIN messaging.messages m ON m.conversation_id = p.conversation_id", True),
        ("DELETE FROM messaging.drafts WHERE (conversation_id, user_id) IN (SELECT $1, $2)", True),
        ("SELECT conversation_id FROM messaging.messages WHERE id = $1", False),
        ("SELECT m.id FROM messaging.messages m WHERE m.sender_id = $1 ORDER BY m.conversation_id", False),
        ("INSERT INTO messaging.mentions SELECT * FROM messaging.messages WHERE id = $1", False),
    ],
)
def test_the_check_reads_where_the_conversation_is_named(statement: str, routed: bool) -> None:
    """The check itself: conversation_id compared, joined on or written counts; selected or
    sorted by does not."""
    assert names_the_conversation(statement) is routed
