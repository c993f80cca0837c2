"""Files as mallory, a stranger: she reads, downloads, deletes and lists nothing of alice's
by id, and learns nothing (the same 404 as for a file that does not exist); straight
through SQL as `rapport_app` in her context, alice's rows of every media table are
invisible and unchangeable, and nobody's context reads `media.blobs` at all (that some
bytes were uploaded is nobody's business). Then the four ways a file is readable by
others than its owner, each tested with someone it does not reach: an attachment (a
participant who may see the message, not one removed or who joined after it, not once
the message is deleted), a profile photo (as the profile is seen, never across a block),
a share (until revoked or expired; a link by its token's hash alone)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.config import Settings
from rapport.kernel.db import create_engine, system_transaction, user_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import DatabaseUrls
from tests.media.upload_support import attach, png_bytes, processed, uploaded
from tests.messaging.support import make_conversation, send
from tests.module_scope import build_once
from tests.security.messaging_sql import DENIED, POLICY, attempt, changed
from tests.support import Mailbox, Persona, make_settings, problem_type

pytestmark = pytest.mark.module_database

MEDIA = "/v1/media"
NOWHERE = "01930000-0000-7000-8000-000000000000"
# Every table of the media schema that holds someone's rows, with its key column for a count.
ALICES_TABLES = (
    "media.files",
    "media.thumbnails",
    "media.processing",
    "media.uploads",
    "media.attachments",
    "media.profile_photos",
    "media.albums",
    "media.album_items",
    "media.shared_files",
    "media.file_versions",
    "media.file_comments",
)


@pytest.fixture(scope="module")
def module_settings(smtp_server: tuple[Controller, Mailbox], tmp_path_factory: pytest.TempPathFactory) -> Settings:
    controller, _ = smtp_server
    media: Path = tmp_path_factory.mktemp("media")
    return make_settings(smtp_host="127.0.0.1", smtp_port=controller.port, media_dir=media)


@pytest.fixture
async def owner_engine(database: DatabaseUrls) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database.owner, pool_size=1)
    yield engine
    await engine.dispose()


@dataclass(frozen=True)
class Alices:
    file: dict[str, Any]
    data: bytes
    portrait: dict[str, Any]
    message: dict[str, Any]
    conversation: UUID


async def _as(engine: AsyncEngine, who: Persona, statement: str, **params: Any) -> None:
    async with user_transaction(engine, UUID(who.user_id)) as db:
        await db.execute(text(statement), params)


@dataclass(frozen=True)
class World:
    alice: Persona
    bob: Persona
    carol: Persona
    mallory: Persona
    alices: Alices


@pytest.fixture(scope="module")
async def module_world(module_app: FastAPI, module_database: DatabaseUrls) -> World:
    """A photo of alice's with a row in every media table: attached to a message to bob,
    in an album shared with bob, commented on, with a thumbnail and an earlier version; her
    profile photo (another file; her profile is private); an upload of hers in progress.
    Carol and mallory have nothing. Built once: each test's reset puts it back as it was
    (module_scope.build_once)."""
    async with build_once(module_app, module_database) as built:
        alice, bob, carol, mallory = await built.personas("alice", "bob", "carol", "mallory")
        owner_engine = create_engine(module_database.owner, pool_size=1)
        try:
            alices = await _build(built.client, module_app, built.runtime, built.app_engine, owner_engine, alice, bob)
        finally:
            await owner_engine.dispose()
        return World(alice, bob, carol, mallory, alices)


@pytest.fixture
def alices(module_world: World, database: DatabaseUrls) -> Alices:
    """Alice's rows, as built: the test's database was reset to them."""
    return module_world.alices


# The world's people, for the tests that name them.
@pytest.fixture
def alice(module_world: World, database: DatabaseUrls) -> Persona:
    return module_world.alice


@pytest.fixture
def bob(module_world: World, database: DatabaseUrls) -> Persona:
    return module_world.bob


@pytest.fixture
def carol(module_world: World, database: DatabaseUrls) -> Persona:
    return module_world.carol


@pytest.fixture
def mallory(module_world: World, database: DatabaseUrls) -> Persona:
    return module_world.mallory


async def _build(client, app, runtime, app_engine, owner_engine, alice, bob) -> Alices:
    data = png_bytes(80, 60)
    file = await uploaded(client, alice, data, name="alice.png")
    portrait = await uploaded(client, alice, png_bytes(40, 40), name="portrait.png")
    hidden = await client.patch("/v1/profile", headers=alice.headers, json={"profile_visibility": "private"})
    assert hidden.status_code == 200, hidden.text
    conversation = await make_conversation(app_engine, alice, bob)
    message = await send(client, alice, conversation, "a photo")
    await attach(owner_engine, message, file["id"])
    await processed(app)
    album = uuid7()
    await _as(
        app_engine,
        alice,
        "INSERT INTO media.profile_photos (user_id, position, file_id) VALUES (:u, 1, :f)",
        u=alice.user_id,
        f=portrait["id"],
    )
    await _as(
        app_engine,
        alice,
        "INSERT INTO media.albums (id, owner_id, title) VALUES (:a, :u, 'Holidays')",
        a=album,
        u=alice.user_id,
    )
    await _as(
        app_engine,
        alice,
        "INSERT INTO media.album_items (album_id, file_id, position) VALUES (:a, :f, 0)",
        a=album,
        f=file["id"],
    )
    await _as(
        app_engine,
        alice,
        "INSERT INTO media.shared_files (id, owner_id, album_id, shared_with) VALUES (:s, :u, :a, :b)",
        s=uuid7(),
        u=alice.user_id,
        a=album,
        b=bob.user_id,
    )
    await _as(
        app_engine,
        alice,
        "INSERT INTO media.file_comments (id, file_id, author_id, body) VALUES (:c, :f, :u, 'Nice')",
        c=uuid7(),
        f=file["id"],
        u=alice.user_id,
    )
    await _as(
        app_engine,
        alice,
        "INSERT INTO media.uploads (id, owner_id, length, file_name) VALUES (:i, :u, 1000, 'big.mov')",
        i=uuid7(),
        u=alice.user_id,
    )
    async with owner_engine.begin() as db:  # as media.add_version writes it
        await db.execute(
            text(
                "INSERT INTO media.file_versions (file_id, version, sha256, size_bytes, content_type)"
                " SELECT id, 1, sha256, size_bytes, content_type FROM media.files WHERE id = :f"
            ),
            {"f": file["id"]},
        )
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text(
                "INSERT INTO media.thumbnails (file_id, size, sha256, width, height, content_type)"
                " SELECT id, 'small', sha256, 8, 6, 'image/webp' FROM media.files WHERE id = :f"
                " ON CONFLICT DO NOTHING"
            ),
            {"f": file["id"]},
        )
    return Alices(file=file, data=data, portrait=portrait, message=message, conversation=conversation)


async def refusal(engine: AsyncEngine, who: Persona, statement: str, **params: Any) -> str | None:
    """The SQLSTATE a statement run as `who` fails with, or None when it succeeds."""
    try:
        async with user_transaction(engine, UUID(who.user_id)) as db:
            await db.execute(text(statement), params)
    except DBAPIError as error:
        return str(getattr(error.orig.__cause__, "sqlstate", None)) if error.orig is not None else None
    return None


def _told(response) -> tuple[int, dict[str, Any]]:
    """What an answer tells, but for where and when it was asked."""
    body = {key: value for key, value in response.json().items() if key not in ("instance", "request_id")}
    return response.status_code, body


def _same_answer(theirs, missing) -> bool:
    """The answer about alice's file is the answer about no file at all."""
    return _told(theirs) == _told(missing)


# -- through the API -------------------------------------------------------------------------


@pytest.mark.parametrize("method,suffix", [("GET", ""), ("GET", "/content"), ("DELETE", "")])
async def test_a_stranger_is_answered_as_if_the_file_did_not_exist(client, alices, mallory, method, suffix):
    theirs = await client.request(method, f"{MEDIA}/{alices.file['id']}{suffix}", headers=mallory.headers)
    missing = await client.request(method, f"{MEDIA}/{NOWHERE}{suffix}", headers=mallory.headers)

    assert theirs.status_code == 404 and problem_type(theirs) == "file-not-found"
    assert _same_answer(theirs, missing)


async def test_a_stranger_deletes_nothing_and_lists_nothing(client, alices, alice, mallory):
    await client.delete(f"{MEDIA}/{alices.file['id']}", headers=mallory.headers)

    assert (await client.get(MEDIA, headers=mallory.headers)).json()["items"] == []
    listed = (await client.get(MEDIA, headers=alice.headers)).json()["items"]
    assert [item["id"] for item in listed] == [alices.portrait["id"], alices.file["id"]]
    content = await client.get(f"{MEDIA}/{alices.file['id']}/content", headers=alice.headers)
    assert content.content == alices.data


async def test_a_participant_reads_an_attachment_a_removed_one_does_not(client, alices, alice, bob):
    url = f"{MEDIA}/{alices.file['id']}/content"
    assert (await client.get(url, headers=bob.headers)).content == alices.data

    removed = await client.delete(
        f"/v1/conversations/{alices.conversation}/participants/{bob.user_id}", headers=alice.headers
    )
    await client.delete(f"{MEDIA}/{alices.file['id']}", headers=alice.headers)  # out of the album shared with bob

    assert removed.status_code == 204
    after = await client.get(url, headers=bob.headers)
    assert after.status_code == 404 and problem_type(after) == "file-not-found"


async def test_a_participant_who_joined_without_history_does_not_read_earlier_attachments(
    client, app_engine, alices, alice, carol
):
    async with user_transaction(app_engine, UUID(alice.user_id)) as db:
        await db.execute(
            text("SELECT messaging.add_participant(:c, :u, 'member', false)"),
            {"c": alices.conversation, "u": carol.user_id},
        )

    response = await client.get(f"{MEDIA}/{alices.file['id']}/content", headers=carol.headers)

    assert response.status_code == 404


async def test_a_deleted_message_takes_its_attachment_with_it(client, alices, alice, bob):
    await client.delete(f"{MEDIA}/{alices.file['id']}", headers=alice.headers)
    assert (await client.get(f"{MEDIA}/{alices.file['id']}/content", headers=bob.headers)).status_code == 200

    await client.delete(
        f"/v1/conversations/{alices.conversation}/messages/{alices.message['id']}", headers=alice.headers
    )

    for persona in (alice, bob):
        assert (await client.get(f"{MEDIA}/{alices.file['id']}", headers=persona.headers)).status_code == 404


async def test_a_profile_photo_is_seen_as_the_profile_is_never_across_a_block(client, alices, alice, carol, mallory):
    url = f"{MEDIA}/{alices.portrait['id']}"
    assert (await client.get(url, headers=carol.headers)).status_code == 404  # alice's profile is private

    await client.patch("/v1/profile", headers=alice.headers, json={"profile_visibility": "public"})
    blocked = await client.put(f"/v1/blocks/{mallory.user_id}", headers=alice.headers)

    assert blocked.status_code in (200, 201), blocked.text
    assert (await client.get(url, headers=carol.headers)).status_code == 200
    assert (await client.get(url, headers=mallory.headers)).status_code == 404
    assert (await client.get(f"{MEDIA}/{alices.file['id']}", headers=carol.headers)).status_code == 404


# -- through SQL as rapport_app ---------------------------------------------------------------


@pytest.mark.parametrize("table", ALICES_TABLES)
async def test_alices_rows_are_invisible_to_a_stranger_and_to_no_one(app_engine, alices, alice, mallory, table):
    assert await attempt(app_engine, alice, f"SELECT count(*) FROM {table}") >= 1
    assert await attempt(app_engine, mallory, f"SELECT count(*) FROM {table}") == 0
    assert await attempt(app_engine, None, f"SELECT count(*) FROM {table}") == 0


async def test_the_views_show_only_the_callers_own_files(app_engine, alices, alice, mallory):
    for view in ("media.processing_queue", "media.storage_summary"):
        assert await attempt(app_engine, alice, f"SELECT count(*) FROM {view}") >= 1
        assert await attempt(app_engine, mallory, f"SELECT count(*) FROM {view}") == 0


async def test_the_server_role_cannot_read_or_write_blobs_in_anyones_context(app_engine, alices, alice, mallory):
    digest = hashlib.sha256(alices.data).digest()
    for who in (alice, mallory, None):
        assert await attempt(app_engine, who, "SELECT count(*) FROM media.blobs") == DENIED
    assert (
        await attempt(
            app_engine,
            mallory,
            "INSERT INTO media.blobs (sha256, size_bytes, content_type, storage_provider, storage_key)"
            " VALUES (:h, 1, 'x/y', 'local', 'k')",
            h=hashlib.sha256(b"x").digest(),
        )
        == DENIED
    )
    assert await attempt(app_engine, mallory, "DELETE FROM media.blobs WHERE sha256 = :h", h=digest) == DENIED


async def test_a_stranger_changes_nothing_of_alices_file_through_sql(app_engine, alices, alice, mallory):
    file_id = alices.file["id"]

    assert (
        await changed(
            app_engine, mallory, "UPDATE media.files SET file_name = 'x' WHERE id = :f RETURNING 1", f=file_id
        )
        == DENIED
    )
    assert (
        await changed(app_engine, alice, "UPDATE media.files SET status = 'ready' WHERE id = :f RETURNING 1", f=file_id)
        == DENIED
    )
    assert await changed(app_engine, mallory, "DELETE FROM media.files WHERE id = :f RETURNING 1", f=file_id) == DENIED
    assert await attempt(app_engine, mallory, "SELECT media.delete_file(:f)", f=file_id) is False
    assert await attempt(app_engine, mallory, "SELECT count(*) FROM media.file_blob(:f)", f=file_id) == 0
    assert await attempt(app_engine, mallory, "SELECT media.may_read_file(:f)", f=file_id) is False
    await attempt(app_engine, mallory, "SELECT media.count_download(:f)", f=file_id)
    assert await attempt(app_engine, alice, "SELECT download_count FROM media.files WHERE id = :f", f=file_id) == 0
    assert await attempt(app_engine, alice, "SELECT deleted_at IS NULL FROM media.files WHERE id = :f", f=file_id)


async def test_a_stranger_cannot_write_rows_naming_alice_or_her_file(app_engine, alices, alice, mallory):
    file_id, digest = alices.file["id"], hashlib.sha256(alices.data).digest()

    as_alice = await attempt(
        app_engine,
        mallory,
        "INSERT INTO media.files (id, owner_id, file_name, content_type, kind, size_bytes, sha256)"
        " VALUES (:i, :u, 'x', 'image/png', 'image', 1, :h)",
        i=uuid7(),
        u=alice.user_id,
        h=digest,
    )
    step = await attempt(
        app_engine, mallory, "INSERT INTO media.processing (file_id, step) VALUES (:f, 'scan')", f=file_id
    )
    photo = await attempt(
        app_engine,
        mallory,
        "INSERT INTO media.profile_photos (user_id, position, file_id) VALUES (:u, 2, :f)",
        u=mallory.user_id,
        f=file_id,
    )
    share = await attempt(
        app_engine,
        mallory,
        "INSERT INTO media.shared_files (id, owner_id, file_id, shared_with) VALUES (:s, :u, :f, :u2)",
        s=uuid7(),
        u=mallory.user_id,
        f=file_id,
        u2=alice.user_id,
    )
    comment = await attempt(
        app_engine,
        mallory,
        "INSERT INTO media.file_comments (id, file_id, author_id, body) VALUES (:c, :f, :u, 'hi')",
        c=uuid7(),
        f=file_id,
        u=mallory.user_id,
    )
    attachment = await attempt(
        app_engine,
        alice,
        "INSERT INTO media.attachments (message_id, message_created_at, conversation_id, seq, file_id)"
        " VALUES (:m, now(), :c, 1, :f)",
        m=uuid7(),
        c=alices.conversation,
        f=file_id,
    )

    assert (as_alice, step, photo, share, comment) == (POLICY, POLICY, POLICY, POLICY, POLICY)
    assert attachment == DENIED  # only the send writes attachments


async def test_a_share_reads_until_revoked_or_expired(app_engine, alices, alice, bob, carol):
    file_id = alices.file["id"]
    share = uuid7()
    await _as(
        app_engine,
        alice,
        "INSERT INTO media.shared_files (id, owner_id, file_id, shared_with) VALUES (:s, :u, :f, :c)",
        s=share,
        u=alice.user_id,
        f=file_id,
        c=carol.user_id,
    )

    assert await attempt(app_engine, carol, "SELECT media.may_read_file(:f)", f=file_id) is True
    await _as(app_engine, alice, "UPDATE media.shared_files SET revoked_at = now() WHERE id = :s", s=share)
    assert await attempt(app_engine, carol, "SELECT media.may_read_file(:f)", f=file_id) is False
    assert await attempt(app_engine, carol, "SELECT count(*) FROM media.shared_files") == 1  # hers to see, revoked

    await _as(
        app_engine,
        alice,
        "INSERT INTO media.shared_files (id, owner_id, file_id, shared_with, expires_at)"
        " VALUES (:s, :u, :f, :c, now() - interval '1 second')",
        s=uuid7(),
        u=alice.user_id,
        f=file_id,
        c=carol.user_id,
    )
    assert await attempt(app_engine, carol, "SELECT media.may_read_file(:f)", f=file_id) is False


async def test_a_link_share_reads_by_its_token_hash_alone(app_engine, alices, alice, mallory):
    file_id = alices.file["id"]
    token_hash = hashlib.sha256(secrets.token_bytes(32)).digest()
    await _as(
        app_engine,
        alice,
        "INSERT INTO media.shared_files (id, owner_id, file_id, link_token_hash) VALUES (:s, :u, :f, :h)",
        s=uuid7(),
        u=alice.user_id,
        f=file_id,
        h=token_hash,
    )
    read = "SELECT count(*) FROM media.files WHERE id = :f"

    async def through_link(link: bytes) -> Any:
        async with app_engine.begin() as db:
            await db.execute(text("SELECT set_config('rapport.media_link', :h, true)"), {"h": link.hex()})
            return (await db.execute(text(read), {"f": file_id})).scalar()

    assert await through_link(token_hash) == 1
    assert await through_link(hashlib.sha256(b"guessed").digest()) == 0
    assert await attempt(app_engine, mallory, read, f=file_id) == 0
    assert await attempt(app_engine, None, "SELECT count(*) FROM media.file_by_link(:h)", h=token_hash) == 1
    assert await attempt(app_engine, None, "SELECT count(*) FROM media.shared_files") == 0


async def test_a_claim_made_ahead_with_a_false_size_and_type_is_corrected_by_the_upload(
    client, runtime, app_engine, alice, mallory
):
    data = png_bytes(30, 20)
    digest = hashlib.sha256(data).digest()
    key = f"{digest.hex()[:2]}/{digest.hex()[2:4]}/{digest.hex()}"
    claim = "SELECT media.register_blob(:h, :n, :t, 'local', :k)"

    wrong_key = await attempt(app_engine, mallory, claim, h=digest, n=1, t="text/html", k="../../etc/passwd")
    ahead = await attempt(app_engine, mallory, claim, h=digest, n=1, t="text/html", k=key)
    file = await uploaded(client, alice, data, name="real.png")
    later = await attempt(app_engine, mallory, claim, h=digest, n=1, t="text/html", k=key)
    content = await client.get(file["urls"]["content"], headers=alice.headers)

    assert wrong_key == "InvalidParameterValueError"
    assert ahead is None and later is None
    assert content.content == data and content.headers["content-type"] == "image/png"
    async with system_transaction(runtime.system_engine) as db:
        row = (
            await db.execute(text("SELECT size_bytes, content_type FROM media.blobs WHERE sha256 = :h"), {"h": digest})
        ).one()
    assert (row.size_bytes, row.content_type) == (len(data), "image/png")


async def test_the_definer_functions_tell_a_stranger_nothing_and_do_nothing_for_her(app_engine, alices, alice, mallory):
    """Each of media's definer functions, called by mallory about alice's file and album."""
    file_id = alices.file["id"]
    album = await attempt(app_engine, alice, "SELECT id FROM media.albums")
    asked = {
        "media.may_read_file_itself(:f)": False,
        "media.may_read_file(:f)": False,
        "media.may_comment_file(:f)": False,
        "media.owns_file(:f)": False,
        "media.shared_with_caller(:f, false)": False,
        "media.may_read_album(:a)": False,
        "(SELECT count(*) FROM media.file_blob(:f))": 0,
        "(SELECT count(*) FROM media.thumbnail_blob(:f, 'small'))": 0,
        "(SELECT count(*) FROM media.version_blob(:f, 1))": 0,
        "(SELECT count(*) FROM media.file_by_link(decode(repeat('ab', 32), 'hex')))": 0,
        "(SELECT count(*) FROM media.album_by_link(decode(repeat('ab', 32), 'hex')))": 0,
        "media.delete_file(:f)": False,
    }
    for call, nothing in asked.items():
        assert await attempt(app_engine, mallory, f"SELECT {call}", f=file_id, a=album) == nothing, call
        assert await attempt(app_engine, None, f"SELECT {call}", f=file_id, a=album) in (nothing, DENIED), call
    new_version = await refusal(
        app_engine,
        mallory,
        "SELECT media.add_version(:f, :h, 1, 'image/png', NULL, 'image')",
        f=file_id,
        h=hashlib.sha256(alices.data).digest(),
    )
    await attempt(app_engine, mallory, "SELECT media.count_download(:f)", f=file_id)

    assert new_version == "RF404"
    assert await attempt(app_engine, alice, "SELECT version FROM media.files WHERE id = :f", f=file_id) == 1
    assert await attempt(app_engine, alice, "SELECT download_count FROM media.files WHERE id = :f", f=file_id) == 0
    assert await attempt(app_engine, alice, "SELECT media.may_read_file(:f)", f=file_id) is True
    assert await attempt(app_engine, alice, "SELECT count(*) FROM media.thumbnail_blob(:f, 'small')", f=file_id) == 1
    assert await attempt(app_engine, alice, "SELECT count(*) FROM media.version_blob(:f, 1)", f=file_id) == 1
