"""Albums, their items, shares, versions, comments and profile photos, attacked by mallory,
a stranger: through the API she sees and changes nothing of alice's (the same 404 as for
what does not exist), and straight through SQL as `rapport_app` in her context (or in
nobody's) alice's rows of media.albums, media.album_items, media.shared_files,
media.file_versions, media.file_comments and media.profile_photos are invisible and
unchangeable. Bob had alice's file and album shared with him: once his shares are revoked
or expired, neither the API nor SQL in his context gives him anything of them; a link
revoked or expired gives nothing either, even to a transaction that names its hash.

Alice's profile is private, so that her profile photos are hers alone to see."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.provisioning import DatabaseUrls
from tests.media.collections_support import ALBUMS, PHOTOS, SHARED_WITH_ME, add_item, expire, image, make_album, share
from tests.media.upload_support import MEDIA, png_bytes, processed
from tests.module_scope import build_once
from tests.security.messaging_sql import DENIED, POLICY, attempt, changed
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database


@dataclass(frozen=True)
class Alices:
    file: str  # an image: version 2 now, in the album, shared with bob for comment, commented on
    photo: str  # her profile photo 1
    album: str
    file_share: str  # the file's share to bob
    album_share: str  # the album's share to bob
    link: dict[str, Any]  # a link share of the file
    comment: str  # her comment on the file
    bobs_comment: str


@dataclass(frozen=True)
class World:
    alice: Persona
    bob: Persona
    mallory: Persona
    alices: Alices


@pytest.fixture(scope="module")
async def module_world(module_app: FastAPI, module_database: DatabaseUrls) -> World:
    """Alice's file, photo, album, shares and comments; bob had them shared with him;
    mallory a stranger. Built once: each test's reset puts it back as it was
    (module_scope.build_once)."""
    async with build_once(module_app, module_database) as built:
        alice, bob, mallory = await built.personas("alice", "bob", "mallory")
        return World(alice, bob, mallory, await _build(built.client, module_app, alice, bob))


@pytest.fixture
def alices(module_world: World, database: DatabaseUrls) -> Alices:
    """Alice's rows, as built: the test's database was reset to them."""
    return module_world.alices


# The world's people, for the tests that name them.
@pytest.fixture
def alice(module_world: World, alices: Alices) -> Persona:
    return module_world.alice


@pytest.fixture
def bob(module_world: World, alices: Alices) -> Persona:
    return module_world.bob


@pytest.fixture
def mallory(module_world: World, alices: Alices) -> Persona:
    return module_world.mallory


async def _build(client, app, alice, bob) -> Alices:
    file = await image(client, alice)
    photo = await image(client, alice)
    album = await make_album(client, alice, title="Private trip")
    assert (await add_item(client, alice, album["id"], file["id"])).status_code == 201
    file_share = await share(client, alice, f"{MEDIA}/{file['id']}", user_id=bob.user_id, permission="comment")
    album_share = await share(client, alice, f"{ALBUMS}/{album['id']}", user_id=bob.user_id)
    link = await share(client, alice, f"{MEDIA}/{file['id']}", link=True, expires_in_seconds=3600)
    versioned = await client.post(
        f"{MEDIA}/{file['id']}/versions", headers=alice.headers, files={"file": ("photo.png", png_bytes(), "image/png")}
    )
    assert versioned.status_code == 201, versioned.text
    comments = []
    for who in (alice, bob):
        made = await client.post(f"{MEDIA}/{file['id']}/comments", headers=who.headers, json={"body": "Nice"})
        assert made.status_code == 201, made.text
        comments.append(made.json()["id"])
    assert (await client.put(f"{PHOTOS}/1", headers=alice.headers, json={"file_id": photo["id"]})).status_code == 200
    hidden = await client.patch("/v1/profile", headers=alice.headers, json={"profile_visibility": "private"})
    assert hidden.status_code == 200, hidden.text
    await processed(app)
    return Alices(
        file=file["id"],
        photo=photo["id"],
        album=album["id"],
        file_share=file_share["id"],
        album_share=album_share["id"],
        link=link,
        comment=comments[0],
        bobs_comment=comments[1],
    )


# Reading each table: how many of alice's rows each person's context sees.
READS = {
    "media.albums": "SELECT count(*) FROM media.albums WHERE id = :album",
    "media.album_items": "SELECT count(*) FROM media.album_items WHERE album_id = :album",
    "media.shared_files": "SELECT count(*) FROM media.shared_files WHERE owner_id = :alice",
    "media.file_versions": "SELECT count(*) FROM media.file_versions WHERE file_id = :file",
    "media.file_comments": "SELECT count(*) FROM media.file_comments WHERE file_id = :file",
    "media.profile_photos": "SELECT count(*) FROM media.profile_photos WHERE user_id = :alice",
}


def _params(alices: Alices, alice: Persona) -> dict[str, Any]:
    return {"album": UUID(alices.album), "file": UUID(alices.file), "alice": UUID(alice.user_id)}


@pytest.mark.parametrize("table", sorted(READS))
async def test_a_stranger_and_nobody_read_none_of_alices_rows(app_engine, alices, alice, mallory, table):
    params = _params(alices, alice)

    seen = {
        who: await attempt(app_engine, persona, READS[table], **params)
        for who, persona in {"alice": alice, "mallory": mallory, "nobody": None}.items()
    }

    assert seen["alice"] > 0 and (seen["mallory"], seen["nobody"]) == (0, 0)


async def test_bob_reads_what_is_shared_with_him_and_only_his_own_shares(app_engine, alices, alice, bob):
    params = _params(alices, alice)

    seen = {table: await attempt(app_engine, bob, query, **params) for table, query in READS.items()}

    # The link share and the other shares are alice's business; her photos are private.
    assert seen == {
        "media.albums": 1,
        "media.album_items": 1,
        "media.shared_files": 2,
        "media.file_versions": 1,
        "media.file_comments": 2,
        "media.profile_photos": 0,
    }


async def test_a_stranger_writes_nothing_of_alices(app_engine, client, alices, alice, mallory):
    own = await image(client, mallory)
    mine = await make_album(client, mallory, title="Mallory's")
    p = {**_params(alices, alice), "mallory": UUID(mallory.user_id), "own": UUID(own["id"]), "mine": UUID(mine["id"])}

    refused = {
        "an album for alice": await attempt(
            app_engine,
            mallory,
            "INSERT INTO media.albums (id, owner_id, title) VALUES (gen_random_uuid(), :alice, 'Mine') RETURNING 1",
            **p,
        ),
        "her file in alice's album": await attempt(
            app_engine,
            mallory,
            "INSERT INTO media.album_items (album_id, file_id, position) VALUES (:album, :own, 9) RETURNING 1",
            **p,
        ),
        "alice's file in her album": await attempt(
            app_engine,
            mallory,
            "INSERT INTO media.album_items (album_id, file_id, position) VALUES (:mine, :file, 1) RETURNING 1",
            **p,
        ),
        "alice's file shared with herself": await attempt(
            app_engine,
            mallory,
            "INSERT INTO media.shared_files (id, owner_id, file_id, shared_with) "
            "VALUES (gen_random_uuid(), :mallory, :file, :mallory) RETURNING 1",
            **p,
        ),
        "alice's album shared with herself": await attempt(
            app_engine,
            mallory,
            "INSERT INTO media.shared_files (id, owner_id, album_id, shared_with) "
            "VALUES (gen_random_uuid(), :mallory, :album, :mallory) RETURNING 1",
            **p,
        ),
        "a comment on alice's file": await attempt(
            app_engine,
            mallory,
            "INSERT INTO media.file_comments (id, file_id, author_id, body) "
            "VALUES (gen_random_uuid(), :file, :mallory, 'hi') RETURNING 1",
            **p,
        ),
        "a photo slot of alice's": await attempt(
            app_engine,
            mallory,
            "INSERT INTO media.profile_photos (user_id, position, file_id) VALUES (:alice, 2, :own) RETURNING 1",
            **p,
        ),
        "alice's file as her photo": await attempt(
            app_engine,
            mallory,
            "INSERT INTO media.profile_photos (user_id, position, file_id) VALUES (:mallory, 1, :file) RETURNING 1",
            **p,
        ),
        "a version of alice's file": await attempt(
            app_engine,
            mallory,
            "INSERT INTO media.file_versions (file_id, version, sha256, size_bytes, content_type) "
            "SELECT :file, 99, sha256, size_bytes, content_type FROM media.files WHERE id = :own RETURNING 1",
            **p,
        ),
    }
    untouched = {
        "rename alice's album": "UPDATE media.albums SET title = 'Mine' WHERE id = :album RETURNING 1",
        "delete alice's album": "DELETE FROM media.albums WHERE id = :album RETURNING 1",
        "move alice's items": "UPDATE media.album_items SET position = 5 WHERE album_id = :album RETURNING 1",
        "remove alice's items": "DELETE FROM media.album_items WHERE album_id = :album RETURNING 1",
        "revoke alice's shares": "UPDATE media.shared_files SET revoked_at = now() WHERE owner_id = :alice RETURNING 1",
        "delete alice's shares": "DELETE FROM media.shared_files WHERE owner_id = :alice RETURNING 1",
        "edit alice's comments": "UPDATE media.file_comments SET body = 'mine' WHERE file_id = :file RETURNING 1",
        "move alice's photos": "UPDATE media.profile_photos SET position = 3 WHERE user_id = :alice RETURNING 1",
        "remove alice's photos": "DELETE FROM media.profile_photos WHERE user_id = :alice RETURNING 1",
    }

    assert refused == {
        **dict.fromkeys(list(refused)[:8], POLICY),
        "a version of alice's file": DENIED,
    }
    assert {name: await changed(app_engine, mallory, sql, **p) for name, sql in untouched.items()} == dict.fromkeys(
        untouched, 0
    )
    for statement in (
        "UPDATE media.file_versions SET size_bytes = 0 WHERE file_id = :file RETURNING 1",
        "DELETE FROM media.file_versions WHERE file_id = :file RETURNING 1",
        "DELETE FROM media.file_comments WHERE file_id = :file RETURNING 1",
    ):
        assert await changed(app_engine, alice, statement, **p) == DENIED
    assert await attempt(app_engine, alice, READS["media.file_versions"], **p) == 1


async def test_those_shared_with_change_nothing_but_their_own_comments(app_engine, alices, alice, bob):
    p = {**_params(alices, alice), "bob": UUID(bob.user_id), "mine": UUID(alices.bobs_comment)}
    p["alices_comment"] = UUID(alices.comment)

    untouched = {
        "rename the album": "UPDATE media.albums SET title = 'Bob''s' WHERE id = :album RETURNING 1",
        "move its items": "UPDATE media.album_items SET position = 5 WHERE album_id = :album RETURNING 1",
        "remove its items": "DELETE FROM media.album_items WHERE album_id = :album RETURNING 1",
        "undo a revocation": "UPDATE media.shared_files SET expires_at = NULL WHERE shared_with = :bob RETURNING 1",
        "end his shares": "UPDATE media.shared_files SET revoked_at = now() WHERE shared_with = :bob RETURNING 1",
        "edit alice's comment": "UPDATE media.file_comments SET body = 'bob' WHERE id = :alices_comment RETURNING 1",
    }

    touched = {name: await changed(app_engine, bob, sql, **p) for name, sql in untouched.items()}

    assert touched == {**dict.fromkeys(untouched, 0), "undo a revocation": DENIED}
    edited = "UPDATE media.file_comments SET body = 'edited' WHERE id = :mine RETURNING 1"
    assert await changed(app_engine, bob, edited, **p) == 1


# The API, as mallory


async def test_a_stranger_gets_nothing_of_alices_through_the_api(client, alices, alice, mallory):
    own = await image(client, mallory)
    attacks = [
        ("GET", f"{ALBUMS}/{alices.album}", None, "album-not-found"),
        ("PATCH", f"{ALBUMS}/{alices.album}", {"title": "Mine"}, "album-not-found"),
        ("DELETE", f"{ALBUMS}/{alices.album}", None, "album-not-found"),
        ("POST", f"{ALBUMS}/{alices.album}/items", {"file_id": own["id"]}, "album-not-found"),
        ("DELETE", f"{ALBUMS}/{alices.album}/items/{alices.file}", None, "album-not-found"),
        ("PUT", f"{ALBUMS}/{alices.album}/items/order", {"file_ids": [alices.file]}, "album-not-found"),
        ("GET", f"{ALBUMS}/{alices.album}/shares", None, "album-not-found"),
        ("POST", f"{ALBUMS}/{alices.album}/shares", {"user_id": mallory.user_id}, "album-not-found"),
        ("GET", f"{MEDIA}/{alices.file}/shares", None, "file-not-found"),
        ("POST", f"{MEDIA}/{alices.file}/shares", {"link": True, "expires_in_seconds": 600}, "file-not-found"),
        ("DELETE", f"{MEDIA}/shares/{alices.file_share}", None, "share-not-found"),
        ("GET", f"{MEDIA}/{alices.file}/versions", None, "file-not-found"),
        ("GET", f"{MEDIA}/{alices.file}/versions/1/content", None, "file-not-found"),
        ("GET", f"{MEDIA}/{alices.file}/comments", None, "file-not-found"),
        ("POST", f"{MEDIA}/{alices.file}/comments", {"body": "hi"}, "file-not-found"),
        ("PATCH", f"{MEDIA}/comments/{alices.comment}", {"body": "mine"}, "comment-not-found"),
        ("DELETE", f"{MEDIA}/comments/{alices.comment}", None, "comment-not-found"),
        ("GET", f"{PHOTOS}/{alice.user_id}", None, "user-not-found"),
        ("GET", f"{MEDIA}/{alices.photo}/content", None, "file-not-found"),
    ]

    answers = [
        (method, path, (response.status_code, problem_type(response)))
        for method, path, body, _ in attacks
        for response in [await client.request(method, path, headers=mallory.headers, json=body)]
    ]

    assert answers == [(method, path, (404, slug)) for method, path, _, slug in attacks]
    assert (await client.get(SHARED_WITH_ME, headers=mallory.headers)).json()["items"] == []
    response = await client.post(
        f"{MEDIA}/{alices.file}/versions", headers=mallory.headers, files={"file": ("x.png", png_bytes(), "image/png")}
    )
    assert (response.status_code, problem_type(response)) == (404, "file-not-found")
    # And nothing of it changed.
    album = (await client.get(f"{ALBUMS}/{alices.album}", headers=alice.headers)).json()
    assert (album["title"], [i["file_id"] for i in album["items"]]) == ("Private trip", [alices.file])
    assert (await client.get(f"{MEDIA}/{alices.file}", headers=alice.headers)).json()["version"] == 2


# Ended shares


async def _bob_reads(client, app_engine, alices: Alices, alice: Persona, bob: Persona) -> dict[str, Any]:
    params = _params(alices, alice)
    return {
        "api: file": (await client.get(f"{MEDIA}/{alices.file}", headers=bob.headers)).status_code,
        "api: content": (await client.get(f"{MEDIA}/{alices.file}/content", headers=bob.headers)).status_code,
        "api: comments": (await client.get(f"{MEDIA}/{alices.file}/comments", headers=bob.headers)).status_code,
        "api: album": (await client.get(f"{ALBUMS}/{alices.album}", headers=bob.headers)).status_code,
        "api: shared with me": len((await client.get(SHARED_WITH_ME, headers=bob.headers)).json()["items"]),
        "sql: file": await attempt(app_engine, bob, "SELECT count(*) FROM media.files WHERE id = :file", **params),
        **{
            f"sql: {table}": await attempt(app_engine, bob, query, **params)
            for table, query in READS.items()
            if table not in ("media.shared_files", "media.profile_photos")
        },
    }


NOTHING = {
    "api: file": 404,
    "api: content": 404,
    "api: comments": 404,
    "api: album": 404,
    "api: shared with me": 0,
    "sql: file": 0,
    "sql: media.albums": 0,
    "sql: media.album_items": 0,
    "sql: media.file_versions": 0,
    "sql: media.file_comments": 0,
}


async def test_revoked_shares_give_nothing(client, app_engine, alices, alice, bob):
    assert (await _bob_reads(client, app_engine, alices, alice, bob))["api: content"] == 200

    for share_id in (alices.file_share, alices.album_share):
        assert (await client.delete(f"{MEDIA}/shares/{share_id}", headers=alice.headers)).status_code == 204

    assert await _bob_reads(client, app_engine, alices, alice, bob) == NOTHING
    made = await client.post(f"{MEDIA}/{alices.file}/comments", headers=bob.headers, json={"body": "still here?"})
    assert (made.status_code, problem_type(made)) == (404, "file-not-found")


async def test_expired_shares_give_nothing(client, database, app_engine, alices, alice, bob):
    for share_id in (alices.file_share, alices.album_share):
        await expire(database, share_id)

    assert await _bob_reads(client, app_engine, alices, alice, bob) == NOTHING


async def _through_link(engine: AsyncEngine, token: str, file_id: str) -> int:
    """How many of the file's rows a transaction of nobody's sees, naming a link's hash."""
    async with engine.begin() as db:
        await db.execute(
            text("SELECT set_config('rapport.media_link', :h, true)"), {"h": hashlib.sha256(token.encode()).hexdigest()}
        )
        count: int = (
            await db.execute(text("SELECT count(*) FROM media.files WHERE id = :f"), {"f": UUID(file_id)})
        ).scalar_one()
        return count


async def test_a_link_ended_gives_nothing_even_to_its_hash(client, database, app_engine, alices, alice):
    token = alices.link["token"]
    assert await _through_link(app_engine, token, alices.file) == 1
    assert await _through_link(app_engine, token + "x", alices.file) == 0

    await expire(database, alices.link["id"])
    assert await _through_link(app_engine, token, alices.file) == 0
    assert (await client.get(alices.link["url"])).status_code == 404

    other = await share(client, alice, f"{MEDIA}/{alices.file}", link=True, expires_in_seconds=3600)
    await client.delete(f"{MEDIA}/shares/{other['id']}", headers=alice.headers)
    assert await _through_link(app_engine, other["token"], alices.file) == 0
    assert (await client.get(f"{other['url']}/content")).status_code == 404
