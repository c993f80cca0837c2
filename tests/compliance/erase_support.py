"""What the export, deletion and erasure tests share: an app that serves the compliance
routes with files kept in the test's own folder, a person whose data fills every table the
API writes (`populate_person`, grown from tests.support.populate), and looking at the
database and the storage as the superuser sees them, past row-level security.

Import the fixtures into a test module to use them there (they stand for conftest's
`settings` and `fresh_app` in that module):

    from tests.compliance.erase_support import compliance_app, compliance_settings  # noqa: F401
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import zipfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pyotp
import pytest
from aiosmtpd.controller import Controller
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text

from rapport.app import create_app
from rapport.compliance import api_account, api_exports
from rapport.config import Settings
from rapport.kernel.db import system_transaction
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from rapport.modules.coparenting import service as coparenting_service
from rapport.modules.matching import service as matching_service
from tests.encryption import support as encryption_support
from tests.matching.test_stripe_webhooks import SECRET as STRIPE_WEBHOOK_SECRET
from tests.matching.test_stripe_webhooks import subscribe
from tests.media.tus_support import create as tus_create
from tests.support import STARTUP_TIMEOUT_S, Mailbox, Persona, make_settings, populate

EXPORTS = "/v1/me/exports"
ME = "/v1/me"


def include_compliance(app: FastAPI) -> None:
    """The compliance routers, where the app does not serve them already."""
    paths = {(getattr(route, "path", ""), method) for route in app.routes for method in getattr(route, "methods", ())}
    if (EXPORTS, "POST") not in paths:
        app.include_router(api_exports.router)
    if (ME, "DELETE") not in paths:
        app.include_router(api_account.router)
    # Consents and administration are compliance's too: served with the rest.
    from rapport.compliance import api_admin, api_consents

    if ("/v1/me/consents", "POST") not in paths:
        app.include_router(api_consents.router)
    if ("/v1/admin/breaches", "POST") not in paths:
        app.include_router(api_admin.router)


@pytest.fixture(name="settings")
def compliance_settings(smtp_server: tuple[Controller, Mailbox], tmp_path: Path) -> Settings:
    """Files' bytes (and archives) in this test's own folder: the erase proof searches it.
    Stripe's webhooks signed as tests.matching's deliveries are, to make a subscription."""
    controller, _ = smtp_server
    return make_settings(
        smtp_host="127.0.0.1",
        smtp_port=controller.port,
        media_dir=tmp_path / "media",
        stripe_webhook_secret=STRIPE_WEBHOOK_SECRET,
    )


@pytest.fixture(name="fresh_app")
async def compliance_app(settings: Settings, database: DatabaseUrls) -> AsyncIterator[FastAPI]:
    application = create_app(settings, database_url=database.app, system_database_url=database.worker)
    include_compliance(application)
    async with LifespanManager(application, startup_timeout=STARTUP_TIMEOUT_S, shutdown_timeout=STARTUP_TIMEOUT_S):
        yield application


async def jobs_done(app: FastAPI) -> None:
    async with asyncio.timeout(30):
        await app.state.notifications.catch_up()
        await app.state.worker.wait_idle()


# -- SQL as the superuser (past row-level security) -------------------------------------


async def superuser(urls: DatabaseUrls) -> asyncpg.Connection:
    return await asyncpg.connect(asyncpg_dsn(urls.admin.set(database=urls.app.database)))


async def fetch(urls: DatabaseUrls, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await superuser(urls)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def execute(urls: DatabaseUrls, query: str, *args: Any) -> str:
    conn = await superuser(urls)
    try:
        result: str = await conn.execute(query, *args)
        return result
    finally:
        await conn.close()


async def make_admin(urls: DatabaseUrls, user_id: str) -> None:
    """A platform administrator, made as an operator would (as a replica: no guard, no audit)."""
    conn = await superuser(urls)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("UPDATE auth.users SET is_admin = true WHERE id = $1", UUID(user_id))
    finally:
        await conn.close()


# -- exports ------------------------------------------------------------------------------


async def exported(client: httpx.AsyncClient, app: FastAPI, persona: Persona) -> tuple[dict[str, Any], bytes]:
    """Ask for an export, let the worker make it, and download it: its status and the zip."""
    asked = await client.post(EXPORTS, headers=persona.headers)
    assert asked.status_code == 202, asked.text
    await jobs_done(app)
    status = await client.get(f"{EXPORTS}/{asked.json()['id']}", headers=persona.headers)
    assert status.status_code == 200, status.text
    assert status.json()["status"] == "completed", status.json()
    download = await client.get(status.json()["download_url"], headers=persona.headers)
    assert download.status_code == 200, download.text
    return status.json(), download.content


def archive_sections(data: bytes) -> dict[str, list[dict[str, Any]]]:
    """The rows of each JSON Lines file of an archive, by its name."""
    import orjson

    sections: dict[str, list[dict[str, Any]]] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            if name.endswith(".jsonl"):
                sections[name] = [orjson.loads(line) for line in archive.read(name).splitlines() if line]
    return sections


# -- a person in every table --------------------------------------------------------------

# Words no one else in the fixture writes, so that finding one after the erasure can only
# mean something of the person stayed. Made-up words: the text search's stemmer keeps them
# whole in its vectors, where they are searched too.
DISPLAY_NAME = "Quillane Zorbitrax"
PREFERRED_NAME = "Quilly Vexmoor"
PHONE = "+14155550173"
BIO = "Grows glimmerwort and frondlex"
STATUS = "Walking the dravenpath"
SAID = [
    "Meet at the xylobrant kiosk",
    "Bring the quorvelin maps",
    "Edited: the zantheric plan",
    "A vorpalique secret, soon deleted",
    "Ask about the plimsorax",
    "Thread of the murgalot ideas",
]
TOPIC_TITLE = "Brenquill planning"
DRAFT = "Unsent thought about skelvaris"
REPORT_DETAILS = "Bob wrote something glarnishing"
COMMENT = "Look at the trellimond bloom"
DEVICE = "Zorbitrax pocket phone"
ENCRYPTED_DEVICE = "Quillfeather handset"
# Co-parenting: what she keeps about her child and her co-parent, a task of the shared room,
# a word she asked mediation to watch, a draft it analysed, a message the topics organised.
CHILD_NAME = "Plumbrick"
CHILD_SCHOOL = "Flindermoss academy"
COPARENT_SCHEDULE = "Alternate weeks at the zembrovic house"
TASK_TITLE = "Pack the trombulisk costume"
TRIGGER = "snorvaldic"
HOSTILE_DRAFT = "You never listen about the plorkentine, you idiot!!"
ORGANISED = "The teacher wants the vexlorian class forms"
# Community: tags she alone uses (the vocabulary forgets a tag no one carries), a story,
# a habit and a check-in, her garden.
MY_TAG = "quendrilwick"
STORY_TAG = "brastomel"
STORY_TITLE = "The wobbleferry crossing"
STORY_CONTENT = "We rowed past the quintabrel lighthouse"
HABIT = "Grendlewhip stretches"
CHECKIN_NOTE = "Felt the mossquiver calm"
GARDEN = "Thistlemorn corner"
# Matching: her dating profile's words (bob's profile names none of them).
DATING_BIO = "Reads pelmorrax poetry aloud"
INTEREST = "zephyrquill"
CITY = "Drovanmere"
SUPPORT_ISSUE = "My quorveltine invoice is wrong"
ESCALATION_REASON = "Needs a vantriblous review"
ANALYTICS_SCREEN = "Plonkwhistle page"
CRASH_MESSAGE = "Lost the grumbleworth note"
# Rows the system writes for her where no request of the fixture can: an unfinished
# resumable upload (its name, and its first bytes staged on disk), an SMS notification,
# a sign-in identity of an OpenID Connect provider, the last moment she was seen.
UPLOAD_NAME = "Wimbleforth letter.txt"
UPLOAD_BEGUN = "Dear snorkelwimble, about the"
SMS_BODY = "Bob asked to be your contact on Rapport"
OIDC_SUBJECT = "108734455510299kestrelmund"
PARIS = (48.8566, 2.3522)


@dataclass
class Populated:
    """What `populate_person` made: ids the tests look for afterwards."""

    group_id: str = ""
    direct_id: str = ""
    channel_id: str = ""
    carols_id: str = ""
    shared_room_id: str = ""
    messages: dict[str, str] = field(default_factory=dict)
    photo_id: str = ""
    photo_bytes: bytes = b""
    shared_bytes_id: str = ""
    shared_bytes: bytes = b""
    own_bytes: list[bytes] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


def png(seed: int, size: tuple[int, int] = (40, 30)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.frombytes("RGB", size, bytes((seed * 7 + i) % 256 for i in range(size[0] * size[1] * 3))).save(out, "PNG")
    return out.getvalue()


async def _ok(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in (statuses or (200, 201, 202, 204)), (response.request.url, response.text)
    if response.status_code == 204 or not response.content:
        return {}
    body: dict[str, Any] = response.json()
    return body


async def _send(client: httpx.AsyncClient, persona: Persona, conversation: str, **body: Any) -> dict[str, Any]:
    return await _ok(
        await client.post(f"/v1/conversations/{conversation}/messages", headers=persona.headers, json=body)
    )


async def populate_person(
    client: httpx.AsyncClient,
    app: FastAPI,
    urls: DatabaseUrls,
    alice: Persona,
    bob: Persona,
    carol: Persona,
    mallory: Persona,
) -> Populated:
    """tests.support.populate, then more of alice everywhere the API writes: every profile
    part, settings and notification preferences, a second factor and its recovery codes,
    a failed sign-in and a password-reset code, a direct conversation with bob, edits,
    deletions, mentions both ways, a forward of her words by bob, reports both ways, a
    topic thread, a draft, a hidden message, a version of her photo, a file of bob's with
    the same bytes as one of hers, consents, a status, a device, an export, others'
    traces of her (bob's contact entry, mallory's block, their notifications), her
    co-parenting (`_coparent`), her community (`_community`), her matching (`_matching`) and
    her support desk (`_support_desk`), her analytics, location and end-to-end
    encryption, an unfinished resumable upload (`_unfinished_upload`), and what the system
    writes about her without a request (`_system_records`: an SMS sent to her, a sign-in
    identity, her last-seen moment)."""
    made = Populated()
    await populate(client, alice, bob, carol, mallory)
    h = alice.headers
    conversations = (await _ok(await client.get("/v1/conversations", headers=h)))["items"]
    made.group_id = next(c["id"] for c in conversations if c.get("name") == "Weekend")
    made.channel_id = next(c["id"] for c in conversations if c.get("name") == "Gardening")
    steps: list[tuple[Persona, str, str, Any]] = [
        (alice, "PATCH", "/v1/profile", {"display_name": DISPLAY_NAME, "bio": BIO}),
        (alice, "PATCH", "/v1/settings", {"theme": "dark"}),
        (alice, "PUT", "/v1/profile/parts/demographics", {"preferred_name": PREFERRED_NAME, "city": "Lyon"}),
        (alice, "PUT", "/v1/profile/parts/employment", {"occupation": "Glimmerwort grower"}),
        (alice, "PUT", "/v1/profile/parts/health", {"accessibility_needs": "Large frondlex print"}),
        (alice, "PUT", "/v1/profile/parts/financials", {"income_range": "prefer_not_to_say"}),
        (alice, "PUT", "/v1/profile/parts/background", {"hometown": "Zorbitrax Falls"}),
        (alice, "POST", "/v1/statuses", {"content": STATUS}),
        (alice, "POST", "/v1/devices", {"name": DEVICE, "device_type": "tablet", "platform": "android"}),
        (
            alice,
            "PUT",
            "/v1/notification-preferences",
            {"time_zone": "Europe/Paris", "channels": [{"type": "message", "channel": "email", "enabled": False}]},
        ),
        (mallory, "PUT", f"/v1/blocks/{alice.user_id}", None),
    ]
    for persona, method, path, body in steps:
        await _ok(await client.request(method, path, headers=persona.headers, json=body))
    await _ok(await client.post("/v1/me/consents", headers=h, json={"consent_type": "ai_features", "granted": True}))
    # Sign-in history with a failure, and a password-reset code mailed to her address.
    await _ok(await client.post("/v1/auth/login", json={"email": alice.email, "password": "wrong password here"}), 401)
    await _ok(await client.post("/v1/auth/password/forgot", json={"email": alice.email}), 202)
    # Her phone number (setting one through the API needs an SMS gateway) and her being a
    # platform administrator: set as a replica (no guard, no audit), as an operator would.
    conn = await superuser(urls)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute(
                "UPDATE auth.users SET phone_number = $2, phone_verified_at = now(), is_admin = true WHERE id = $1",
                UUID(alice.user_id),
                PHONE,
            )
    finally:
        await conn.close()
    # What she does as an administrator: a blocked term, a breach and its notification.
    await _ok(await client.post("/v1/admin/moderation/blocked-terms", headers=h, json={"term": "spamwordix"}), 201)
    breach = await _ok(
        await client.post(
            "/v1/admin/breaches",
            headers=h,
            json={
                "title": "Lost backup tape",
                "description": "A backup tape went missing in transit.",
                "severity": "low",
                "detected_at": "2026-11-01T10:00:00Z",
            },
        ),
        201,
    )
    await _ok(
        await client.post(
            f"/v1/admin/breaches/{breach['id']}/notifications",
            headers=h,
            json={"audience": "affected_users", "channel": "email", "recipients": 1, "user_ids": [bob.user_id]},
        ),
        201,
    )

    # A direct conversation with bob, where she edits, deletes, mentions and is mentioned.
    direct = await _ok(
        await client.post("/v1/conversations", headers=h, json={"type": "direct", "participant_ids": [bob.user_id]})
    )
    made.direct_id = direct["id"]
    first = await _send(
        client, alice, made.direct_id, content=SAID[0], mentions=[bob.user_id], client_message_id="kiosk-1"
    )
    second = await _send(client, alice, made.direct_id, content=SAID[1])
    await _ok(
        await client.patch(
            f"/v1/conversations/{made.direct_id}/messages/{second['id']}", headers=h, json={"content": SAID[2]}
        )
    )
    doomed = await _send(client, alice, made.direct_id, content=SAID[3])
    await _ok(await client.delete(f"/v1/conversations/{made.direct_id}/messages/{doomed['id']}", headers=h))
    bobs = await _send(client, bob, made.direct_id, content="Sure, see you there", mentions=[alice.user_id])
    await _ok(await client.put(f"/v1/conversations/{made.direct_id}/messages/{bobs['id']}/reactions/🎉", headers=h))
    await _ok(await client.post(f"/v1/conversations/{made.direct_id}/messages/{bobs['id']}/hide", headers=h))
    await _ok(
        await client.post(
            f"/v1/conversations/{made.direct_id}/messages/{bobs['id']}/report",
            headers=h,
            json={"reason": "spam", "details": REPORT_DETAILS},
        ),
        201,
    )
    await _ok(
        await client.post(
            f"/v1/conversations/{made.direct_id}/messages/{first['id']}/report",
            headers=bob.headers,
            json={"reason": "other"},
        ),
        201,
    )
    # Bob forwards her words to a conversation of his with carol.
    carols = await _ok(
        await client.post(
            "/v1/conversations",
            headers=bob.headers,
            json={"type": "group", "name": "Bob and Carol", "participant_ids": [carol.user_id]},
        ),
        201,
    )
    made.carols_id = carols["id"]
    await _ok(
        await client.post(
            f"/v1/conversations/{made.direct_id}/messages/{first['id']}/forward",
            headers=bob.headers,
            json={"conversation_ids": [made.carols_id]},
        )
    )
    # In the group: a message in a topic thread of hers, a draft, a reaction of hers.
    topic = await _ok(
        await client.post(f"/v1/conversations/{made.group_id}/threads", headers=h, json={"title": TOPIC_TITLE}), 201
    )
    threaded = await _send(client, alice, made.group_id, content=SAID[5], thread_id=topic["id"])
    asked = await _send(client, alice, made.group_id, content=SAID[4])
    await _ok(await client.put(f"/v1/conversations/{made.group_id}/draft", headers=h, json={"content": DRAFT}))
    history = (await _ok(await client.get(f"/v1/conversations/{made.group_id}/messages", headers=h)))["items"]
    bob_yes = next(m for m in history if m["content"] == "Yes!")
    await _ok(await client.put(f"/v1/conversations/{made.group_id}/messages/{bob_yes['id']}/reactions/👍", headers=h))
    made.messages = {
        "first": first["id"],
        "second": second["id"],
        "doomed": doomed["id"],
        "bobs": bobs["id"],
        "threaded": threaded["id"],
        "asked": asked["id"],
    }

    # Media: her photo gets a new version; bob uploads bytes she uploaded too (shared blob).
    files = (await _ok(await client.get("/v1/media", headers=h)))["items"]
    photo = files[0]
    made.photo_id = photo["id"]
    made.photo_bytes = await _content(client, alice, made.photo_id)
    version = png(11)
    await _ok(
        await client.post(
            f"/v1/media/{made.photo_id}/versions", headers=h, files={"file": ("photo-v2.png", version, "image/png")}
        ),
        201,
    )
    made.shared_bytes = png(23)
    mine = await _ok(
        await client.post("/v1/media", headers=h, files={"file": ("twin.png", made.shared_bytes, "image/png")}), 201
    )
    await _ok(
        await client.post(
            "/v1/media", headers=bob.headers, files={"file": ("twin-of-bob.png", made.shared_bytes, "image/png")}
        ),
        201,
    )
    made.shared_bytes_id = mine["id"]
    await _ok(await client.post(f"/v1/media/{made.photo_id}/comments", headers=h, json={"body": COMMENT}), 201)
    made.own_bytes = [made.photo_bytes, version]

    # A second factor, confirmed, with recovery codes.
    enrolment = await _ok(await client.post("/v1/auth/totp", headers=h))
    code = pyotp.TOTP(enrolment["secret"]).now()
    await _ok(await client.post("/v1/auth/totp/confirm", headers=h, json={"code": code}))

    await _coparent(client, app, alice, bob, carol, made)
    await _community(client, alice)
    await _matching(client, app, alice, bob)
    await _support_desk(client, urls, alice, bob)
    await _analytics(client, alice)
    await _experiment(client, urls, alice)
    await _location(client, urls, alice)
    await _encryption(client, alice, bob)
    await _unfinished_upload(client, alice)
    await _system_records(app, alice)

    await jobs_done(app)
    # An export made (its archive stored), then everything the jobs wrote since.
    await exported(client, app, alice)
    await jobs_done(app)
    made.texts = [
        *SAID,
        *(DISPLAY_NAME, PREFERRED_NAME, BIO, STATUS, TOPIC_TITLE, DRAFT, REPORT_DETAILS, COMMENT, DEVICE),
        *(CHILD_NAME, CHILD_SCHOOL, COPARENT_SCHEDULE, TASK_TITLE, TRIGGER, HOSTILE_DRAFT, ORGANISED),
        *(MY_TAG, STORY_TAG, STORY_TITLE, STORY_CONTENT, HABIT, CHECKIN_NOTE, GARDEN),
        *(DATING_BIO, INTEREST, CITY),
        *(SUPPORT_ISSUE, ESCALATION_REASON),
        *(ANALYTICS_SCREEN, CRASH_MESSAGE),
        ENCRYPTED_DEVICE,
        *(UPLOAD_NAME, UPLOAD_BEGUN, OIDC_SUBJECT),
    ]
    return made


async def _coparent(
    client: httpx.AsyncClient, app: FastAPI, alice: Persona, bob: Persona, carol: Persona, made: Populated
) -> None:
    """Alice as a co-parent: paired with bob (her code, his acceptance) in a shared room
    whose topics she has organised, where she sets a task about her child; carol's
    e-mail invitation to her still pending; details of her child and her co-parent among
    her contacts; a trigger, an analysed draft and its rewrite's outcome, her statistics
    and her communication profile."""
    h = alice.headers
    code = await _ok(await client.post("/v1/coparenting/pairings", headers=h, json={"invite_type": "code"}), 201)
    pairing = await _ok(
        await client.post("/v1/coparenting/pairings/accept", headers=bob.headers, json={"code": code["pairing_code"]})
    )
    made.shared_room_id = pairing["shared_room_id"]
    await _ok(
        await client.post(
            "/v1/coparenting/pairings", headers=carol.headers, json={"invite_type": "email", "email": alice.email}
        ),
        201,
    )

    child = await _ok(
        await client.post("/v1/contacts", headers=h, json={"first_name": CHILD_NAME, "relationship": "My Child"}), 201
    )
    await _ok(
        await client.put(
            f"/v1/coparenting/contacts/{child['id']}/child-details",
            headers=h,
            json={"school": CHILD_SCHOOL, "allergies": "Peanuts", "activities": [{"name": "Swimming"}]},
        )
    )
    coparent = await _ok(
        await client.post("/v1/contacts", headers=h, json={"first_name": "Bob", "relationship": "My Co-Parent"}), 201
    )
    await _ok(
        await client.put(
            f"/v1/coparenting/contacts/{coparent['id']}/coparent-details",
            headers=h,
            json={"custody_arrangement": "joint", "custody_schedule": COPARENT_SCHEDULE},
        )
    )
    await _ok(
        await client.post(
            "/v1/coparenting/tasks",
            headers=h,
            json={
                "title": TASK_TITLE,
                "conversation_id": made.shared_room_id,
                "related_contact_ids": [child["id"]],
            },
        ),
        201,
    )

    # Accepting the pairing switched topics on, as the parent who accepted: she switches
    # them off and on again, so that the room's switch is hers.
    topics = f"/v1/coparenting/rooms/{made.shared_room_id}/topics"
    await _ok(await client.delete(topics, headers=h), 204)
    await _ok(await client.put(topics, headers=h), 201)
    await _send(client, alice, made.shared_room_id, content=ORGANISED)
    await jobs_done(app)
    await coparenting_service.organise_all(app.state.runtime.system_engine)
    suggested = await _ok(
        await client.get(f"/v1/coparenting/rooms/{made.shared_room_id}/topic-suggestions", headers=bob.headers)
    )
    assert [s["sender_id"] for s in suggested["items"]] == [alice.user_id], suggested

    await _ok(
        await client.post(
            "/v1/coparenting/triggers", headers=h, json={"trigger_type": "phrase", "trigger_value": TRIGGER}
        ),
        201,
    )
    analysed = await _ok(
        await client.post(
            "/v1/coparenting/analysis", headers=h, json={"text": HOSTILE_DRAFT, "conversation_id": made.direct_id}
        )
    )
    await _ok(
        await client.post(
            f"/v1/coparenting/rewrites/{analysed['suggestion']['id']}/outcome", headers=h, json={"outcome": "accepted"}
        )
    )
    await _ok(await client.post("/v1/coparenting/communication-profile/learn", headers=h), 202)


async def _community(client: httpx.AsyncClient, alice: Persona) -> None:
    """Alice in the community: her tags (one she made for herself, one on a story of
    hers), a story for her friends, a habit with a check-in, her garden and how often she
    journals."""
    h = alice.headers
    await _ok(await client.put("/v1/me/tags", headers=h, json={"tags": [MY_TAG]}))
    await _ok(
        await client.post(
            "/v1/stories",
            headers=h,
            json={"title": STORY_TITLE, "content": STORY_CONTENT, "visibility": "friends", "tags": [STORY_TAG]},
        ),
        201,
    )
    habit = await _ok(await client.post("/v1/habits", headers=h, json={"name": HABIT, "meta": {"minutes": 10}}), 201)
    await _ok(await client.post(f"/v1/habits/{habit['id']}/checkins", headers=h, json={"note": CHECKIN_NOTE}), 201)
    await _ok(await client.put("/v1/garden", headers=h, json={"name": GARDEN, "theme": "zen"}))
    await _ok(await client.put("/v1/me/profile-extras", headers=h, json={"journaling_frequency": 5}))


async def _matching(client: httpx.AsyncClient, app: FastAPI, alice: Persona, bob: Persona) -> None:
    """Alice dating: her profile, an assessment, the people most like her (and she among
    bob's), a daily match with bob that both like (mutual), and a premium subscription
    paid through Stripe."""
    h = alice.headers
    profiles = [
        (alice, {"gender": "woman", "bio": DATING_BIO, "interests": [INTEREST], "city": CITY, "pref_genders": ["man"]}),
        (bob, {"gender": "man", "interests": ["chess"], "pref_genders": ["woman"]}),
    ]
    for persona, profile in profiles:
        body = {"birth_date": "1990-01-01", "latitude": PARIS[0], "longitude": PARIS[1], **profile}
        await _ok(await client.put("/v1/matching/profile", headers=persona.headers, json=body))
    await _ok(await client.post("/v1/matching/assessments", headers=h, json={"responses": [4] * 36}), 201)
    for persona in (alice, bob):
        await _ok(await client.post("/v1/matching/similar/refresh", headers=persona.headers))

    # Proposals are system work (the daily job): no route makes them.
    await matching_service.propose_daily(app.state.runtime.system_engine)
    for persona in (alice, bob):
        [match] = (await _ok(await client.get("/v1/matching/daily", headers=persona.headers)))["matches"]
        await _ok(await client.post(f"/v1/matching/matches/{match['id']}/like", headers=persona.headers))
    [mutual] = (await _ok(await client.get("/v1/matching/daily", headers=h)))["matches"]
    assert mutual["status"] == "mutual" and mutual["conversation_id"], mutual

    await subscribe(client, alice)


async def _support_desk(client: httpx.AsyncClient, urls: DatabaseUrls, alice: Persona, bob: Persona) -> None:
    """Alice at the support desk, an administrator there: a T2 agent by her own grant, a
    bot's owner, the customer of a room with a guest link, the agent who joins bob's room,
    escalates it and takes the escalation, the one who set an SLA; and in a group of hers,
    a rename and a role change that the room's history keeps."""
    await make_admin(urls, alice.user_id)
    h = alice.headers
    for role in ("support-t2", "bot-developer"):
        await _ok(await client.post("/v1/admin/grants", headers=h, json={"user_id": alice.user_id, "role": role}), 201)
    bot = {"name": "The helper", "webhook_url": "https://bots.example.com/alice"}
    await _ok(await client.post("/v1/bots", headers=h, json=bot), 201)
    hers = await _ok(await client.post("/v1/support/rooms", headers=h, json={"issue_description": SUPPORT_ISSUE}), 201)
    room = hers["room"]["conversation_id"]
    await _ok(await client.post(f"/v1/support/rooms/{room}/guest-links", headers=h, json={}), 201)
    his = await _ok(
        await client.post("/v1/support/rooms", headers=bob.headers, json={"issue_description": "Bob's own issue"}), 201
    )
    room = his["room"]["conversation_id"]
    await _ok(await client.post(f"/v1/support/rooms/{room}/join", headers=h))
    body = {"reason": ESCALATION_REASON, "to_level": "T2", "priority": 2}
    escalation = await _ok(await client.post(f"/v1/support/rooms/{room}/escalations", headers=h, json=body), 201)
    await _ok(await client.post(f"/v1/support/escalations/{escalation['id']}/assign", headers=h, json={}))
    sla = {"first_response_minutes": 30, "resolution_minutes": 600}
    await _ok(await client.put("/v1/support/sla/2", headers=h, json=sla))

    group = {"type": "group", "name": "The circle", "participant_ids": [bob.user_id]}
    group_id = (await _ok(await client.post("/v1/conversations", headers=h, json=group), 201))["id"]
    await _ok(await client.patch(f"/v1/conversations/{group_id}", headers=h, json={"name": "The club"}))
    role = {"role": "admin"}
    await _ok(await client.patch(f"/v1/conversations/{group_id}/participants/{bob.user_id}", headers=h, json=role))


async def _analytics(client: httpx.AsyncClient, alice: Persona) -> None:
    """Alice's analytics: her consent, events of a session (and so the session), a crash
    with her message. Her sign-ins and sends are recorded from the outbox meanwhile."""
    h = alice.headers
    await _ok(await client.post("/v1/me/consents", headers=h, json={"consent_type": "privacy_policy", "granted": True}))
    session = "0193a5f0-0000-7000-8000-00000000a11c"
    events = [
        {"event_name": "app_open", "session_id": session},
        {"event_name": "screen_view", "session_id": session, "properties": {"screen": ANALYTICS_SCREEN}},
    ]
    assert (await _ok(await client.post("/v1/analytics/events", headers=h, json={"events": events}), 202)) == {
        "accepted": 2
    }
    crash = {"platform": "web", "exception_type": "TypeError", "stack_trace": "at save (app.js:10:2)"}
    await _ok(await client.post("/v1/analytics/crashes", headers=h, json={**crash, "message": CRASH_MESSAGE}), 202)


async def _experiment(client: httpx.AsyncClient, urls: DatabaseUrls, alice: Persona) -> None:
    """Alice's variant of an A/B test (an administrator's test, made here as the
    superuser): her exposure is recorded."""
    await execute(
        urls,
        "INSERT INTO analytics.ab_tests (id, key, name, variants, conversion_event) VALUES"
        " (gen_random_uuid(), 'erase-proof', 'Erase proof',"
        ' \'[{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]\', \'first_message\')',
    )
    await _ok(await client.get("/v1/analytics/experiments/erase-proof", headers=alice.headers))


async def _location(client: httpx.AsyncClient, urls: DatabaseUrls, alice: Persona) -> None:
    """Alice's whereabouts: a sign-in from a Tor exit (the test client's address, put in
    the IP database as an operator's import would), which becomes a location and a
    suspicious one; her geofence and a platform one she made as an administrator, and the
    location her phone sent inside them (an event)."""
    h = alice.headers
    await execute(
        urls,
        "INSERT INTO location.ip_addresses (id, network, ip_version, source, latitude, longitude, is_tor, risk_score)"
        " VALUES (gen_random_uuid(), '203.0.113.7/32', 4, 'mmdb', 40.7128, -74.006, true, 90)",
    )
    await _ok(await client.post("/v1/auth/login", json={"email": alice.email, "password": alice.password}))
    circle = {"shape": "circle", "center": [48.8566, 2.3522], "radius_m": 500}
    await _ok(await client.post("/v1/geofences", headers=h, json={"name": "Near home", **circle}), 201)
    await _ok(await client.post("/v1/geofences", headers=h, json={"name": "Venue", "platform": True, **circle}), 201)
    point = {"location_type": "gps", "latitude": 48.857, "longitude": 2.352, "accuracy_m": 15}
    await _ok(await client.post("/v1/me/locations", headers=h, json=point), 201)


async def _encryption(client: httpx.AsyncClient, alice: Persona, bob: Persona) -> None:
    """Alice's end-to-end encryption: a device with its keys and one-time prekeys, an
    encrypted direct conversation with bob, a message of hers to bob's device and one of
    his to hers (envelopes she sent and that wait for her)."""
    mine = await encryption_support.register(client, alice, ENCRYPTED_DEVICE)
    his = await encryption_support.register(client, bob, "Bob's phone")
    room = await encryption_support.open_encrypted(client, alice, bob, type="direct")
    for sender, device, other in ((alice, mine, his), (bob, his, mine)):
        sent = await encryption_support.send_encrypted(client, sender, room, device, [other])
        assert sent.status_code == 201, sent.text


async def _unfinished_upload(client: httpx.AsyncClient, alice: Persona) -> None:
    """A resumable upload of hers, begun and not finished: its row, and its first bytes in
    the staging folder (the erasure must remove both)."""
    begun = UPLOAD_BEGUN.encode()
    answer = await tus_create(client, alice, len(begun) * 4, body=begun, filename=UPLOAD_NAME)
    assert answer.status_code == 201, answer.text
    assert answer.headers["upload-offset"] == str(len(begun)), answer.headers


# What the system writes as `rapport_worker`, each as its own writer does: the SMS
# channel's record of a text sent to her number (for a notification of hers), the OpenID
# Connect sign-in's link of a provider's subject to her account, the presence heartbeat's
# last-seen moment (realtime.record_last_seen).
_SMS_SENT = """
INSERT INTO notifications.sms_notifications (id, user_id, notification_id, phone, body, provider,
                                             provider_message_id, status, attempts, sent_at)
SELECT kernel.uuid7_like(), n.user_id, n.id, :phone, :body, 'twilio', 'SM' || md5(n.id::text), 'sent', 1, now()
  FROM notifications.notifications n
 WHERE n.user_id = :user_id
 ORDER BY n.created_at
 LIMIT 1
"""
_IDENTITY_LINKED = """
INSERT INTO auth.identities (id, user_id, provider, subject, email, last_login_at)
VALUES (kernel.uuid7_like(), :user_id, 'google', :subject, :email, now())
"""
_LAST_SEEN = "SELECT realtime.record_last_seen(ARRAY[CAST(:user_id AS uuid)], ARRAY[now()])"


async def _system_records(app: FastAPI, alice: Persona) -> None:
    user_id = UUID(alice.user_id)
    async with system_transaction(app.state.runtime.system_engine) as db:
        sent = await db.execute(text(_SMS_SENT), {"user_id": user_id, "phone": PHONE, "body": SMS_BODY})
        assert sent.rowcount == 1, "she has a notification to send by SMS"
        await db.execute(text(_IDENTITY_LINKED), {"user_id": user_id, "subject": OIDC_SUBJECT, "email": alice.email})
        await db.execute(text(_LAST_SEEN), {"user_id": user_id})


async def _content(client: httpx.AsyncClient, persona: Persona, file_id: str) -> bytes:
    response = await client.get(f"/v1/media/{file_id}/content", headers=persona.headers)
    assert response.status_code == 200, response.text
    return response.content


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def stored_files(media_dir: Path) -> dict[bytes, Path]:
    """Every file under the media folder (blobs, staging), by the SHA-256 of its bytes."""
    found: dict[bytes, Path] = {}
    for path in media_dir.rglob("*"):
        if path.is_file():
            found[sha256(path.read_bytes())] = path
    return found


def needles_in(data: bytes, needles: Sequence[str]) -> list[str]:
    lowered = data.lower()
    return [needle for needle in needles if needle.lower().encode() in lowered]
