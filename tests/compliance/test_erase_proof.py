"""The erase proof: alice's data fills every table the API writes; she deletes her account;
the clock passes her grace period; the erasure runs. Then every column of every table in
every schema Rapport owns (found in the catalogue, each value cast to text: jsonb, arrays
and search vectors included) is searched for her id, address, names, phone number and
every text she wrote, and so is every stored file for her files' bytes: nothing is found.
What the policy keeps is only the compliance log's record of the erasure, which names
her by a subject no one can trace back to her without both her id and the deployment's key.

And the conversations she took part in stay readable to the others: every message keeps
its place, hers without content or sender."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from fastapi import FastAPI

from rapport.compliance import service_deletion
from rapport.config import Settings
from rapport.kernel import provisioning
from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime
from tests.compliance.erase_support import (
    Populated,
    compliance_app,  # noqa: F401  (this module's app serves the compliance routes)
    compliance_settings,  # noqa: F401
    fetch,
    jobs_done,
    needles_in,
    populate_person,
    sha256,
    stored_files,
)
from tests.support import Persona

# Tables the API fills for a person, each with a column naming them: before the erasure,
# alice has a row in every one of them, except these (each with the reason). What only
# the system writes (an SMS sent, an OpenID Connect identity, the last-seen moment) the
# fixture writes as the system does.
NOT_FILLED_BY_THE_FIXTURE = {
    "support.guests": "a guest is an account of its own, made by a support room's link: a person never is one",
}

# Every table, every column, as text: a function so that each table is one statement.
_COLUMNS = """
SELECT format('%I.%I', n.nspname, c.relname) AS name,
       array_agg(format('%I', a.attname) ORDER BY a.attnum) AS columns
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE n.nspowner = $1::text::regrole AND c.relkind IN ('r', 'p') AND NOT c.relispartition
 GROUP BY 1
 ORDER BY 1
"""
_USER_COLUMNS = """
SELECT format('%I.%I', n.nspname, c.relname) AS name, array_agg(format('%I', a.attname)) AS columns
  FROM pg_constraint k
  JOIN pg_class c ON c.oid = k.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
 WHERE k.contype = 'f' AND k.confrelid = 'auth.users'::regclass AND k.conparentid = 0
 GROUP BY 1
"""


async def _found(urls: DatabaseUrls, needles: list[str]) -> list[str]:
    """Every `table.column` whose text holds one of the needles (case folded), and which."""
    hits: list[str] = []
    for table in await fetch(urls, _COLUMNS, provisioning.OWNER_ROLE):
        for column in table["columns"]:
            rows = await fetch(
                urls,
                f"SELECT n FROM unnest($1::text[]) AS n WHERE EXISTS ("
                f"  SELECT 1 FROM {table['name']} t WHERE strpos(lower(t.{column}::text), n) > 0)",
                needles,
            )
            hits += [f"{table['name']}.{column}: {row['n']}" for row in rows]
    return hits


async def _empty_tables(urls: DatabaseUrls, user_id: UUID) -> set[str]:
    """The tables with a column naming a person where alice has no row."""
    empty = set()
    for table in await fetch(urls, _USER_COLUMNS):
        condition = " OR ".join(f"{column} = $1" for column in table["columns"])
        [row] = await fetch(urls, f"SELECT count(*) AS n FROM {table['name']} WHERE {condition}", user_id)
        if row["n"] == 0:
            empty.add(table["name"])
    return empty


def _needles(alice: Persona, made: Populated) -> list[str]:
    words = [alice.user_id, alice.user_id.replace("-", ""), alice.email, "alice", "+14155550173", "4155550173"]
    # Each text whole, and each of its made-up words (what a search vector keeps of it).
    invented = [word for text in made.texts for word in text.lower().split() if len(word) >= 8 and word.isalpha()]
    return sorted({needle.lower() for needle in [*words, *made.texts, *invented, "saturday?", "the garden"]})


async def test_nothing_of_an_erased_person_stays(
    client: httpx.AsyncClient,
    app: FastAPI,
    runtime: Runtime,
    database: DatabaseUrls,
    settings: Settings,
    alice: Persona,
    bob: Persona,
    carol: Persona,
    mallory: Persona,
) -> None:
    made = await populate_person(client, app, database, alice, bob, carol, mallory)
    user_id = UUID(alice.user_id)
    needles = _needles(alice, made)
    assert await _found(database, [alice.user_id]), "the search finds what is there"
    media_dir = Path(str(settings.media_dir))
    own = {sha256(data) for data in made.own_bytes}
    assert own <= set(stored_files(media_dir))
    exports = await fetch(database, "SELECT storage_key FROM compliance.exports WHERE user_id = $1", user_id)

    deleted = await client.request("DELETE", "/v1/me", headers=alice.headers, json={"password": alice.password})
    assert deleted.status_code == 202, deleted.text
    await jobs_done(app)
    empty = await _empty_tables(database, user_id)
    assert sorted(empty - set(NOT_FILLED_BY_THE_FIXTURE)) == [], "every table the API writes holds her data"
    assert sorted(set(NOT_FILLED_BY_THE_FIXTURE) - empty) == [], "the list of exceptions stays true"
    # Within the grace period nothing is erased yet.
    assert await service_deletion.erase_now_due(runtime) == []
    later = datetime.now(UTC) + timedelta(days=settings.account_deletion_grace_days, minutes=1)
    [erased] = await service_deletion.erase_now_due(runtime, now=later)
    await jobs_done(app)

    found = await _found(database, needles)
    assert found == [], "\n".join(found)
    stored = stored_files(media_dir)
    assert own & set(stored) == set(), "her files' bytes are gone"
    assert sha256(made.shared_bytes) in stored, "bytes another file uses stay"
    assert exports and all(
        not (media_dir / "blobs" / export["storage_key"]).exists() for export in exports if export["storage_key"]
    ), "her archives are gone"
    for path in stored.values():
        assert needles_in(path.read_bytes(), needles) == [], path

    # What the policy keeps: the erasure's own record, naming no one.
    [record] = await fetch(
        database,
        "SELECT user_id, details FROM compliance.compliance_logs WHERE event_type = 'data_deletion_completed'",
    )
    assert record["user_id"] is None
    assert erased.subject == service_deletion.subject_of(runtime.keyring, user_id)
    assert f'"subject": "{erased.subject}"' in record["details"]

    await _conversations_stay_readable(client, bob, carol, made)


async def _conversations_stay_readable(
    client: httpx.AsyncClient, bob: Persona, carol: Persona, made: Populated
) -> None:
    group = await client.get(f"/v1/conversations/{made.group_id}/messages", headers=bob.headers)
    assert group.status_code == 200, group.text
    messages: list[dict[str, Any]] = sorted(group.json()["items"], key=lambda m: m["seq"])
    assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1)), "every place is kept"
    hers = [m for m in messages if m["sender_id"] is None]
    assert hers and all(m["content"] == "" for m in hers)
    assert {m["content"] for m in messages if m["sender_id"] == bob.user_id} == {"Yes!"}
    yes = next(m for m in messages if m["content"] == "Yes!")
    assert yes["reply_to_id"] == messages[0]["id"], "replies still point where they did"
    threaded = next(m for m in messages if m["id"] == made.messages["threaded"])
    assert threaded["thread_id"] is not None, "threads keep their messages"
    # The direct conversation keeps bob's side, closed; the forwarded copy lost her words.
    direct = await client.get(f"/v1/conversations/{made.direct_id}/messages", headers=bob.headers)
    assert direct.status_code == 200, direct.text
    assert {m["content"] for m in direct.json()["items"]} == {"", "Sure, see you there"}
    copied = await client.get(f"/v1/conversations/{made.carols_id}/messages", headers=carol.headers)
    assert [m["content"] for m in copied.json()["items"]] == [""]
    listed = await client.get("/v1/conversations", headers=bob.headers)
    assert listed.status_code == 200, listed.text
    [pair] = [c for c in listed.json()["items"] if c["id"] == made.direct_id]
    assert pair["status"] == "closed"
    # Her channel, which no one else joined, is gone.
    channel = await client.get(f"/v1/conversations/{made.channel_id}", headers=bob.headers)
    assert channel.status_code == 404
