"""What test modules share besides fixtures: the personas' shape, settings for tests, and
the few API steps many tests take (signing in, becoming contacts, answering problems).

Fixtures live in tests/conftest.py; plain functions and types live here, imported by name.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import socket
import tempfile
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import URL

from rapport.config import Settings
from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime

PASSWORD = "correct horse battery staple"
# How long the tests' apps may take to start and stop: asgi-lifespan's default of 5 s is
# short for a start (pools, the realtime feed and bus, partitions) on a loaded machine.
STARTUP_TIMEOUT_S = 60
LOGIN = "/v1/auth/login"


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "secret_key": "test-secret-key-that-is-long-enough-for-hmac",
        # Cheap argon2id: the tests exercise the flows, not the cost.
        "password_time_cost": 1,
        "password_memory_cost_kib": 1024,
        "password_parallelism": 1,
        "log_json": True,
        "log_level": "WARNING",
        # Uploaded bytes in a folder of the test process, never under the working folder
        # (tests/media gives each of its tests or modules a folder of its own).
        "media_dir": Path(tempfile.gettempdir()) / f"rapport-test-media-{os.getpid()}",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def rapport_env(admin_url: URL, database: DatabaseUrls, **settings: str) -> dict[str, str]:
    """The environment of a `rapport` command against the test's database: this
    environment without any RAPPORT_ setting of the developer's, and these."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAPPORT_")}
    env.update(
        RAPPORT_DATABASE_URL=admin_url.render_as_string(hide_password=False),
        RAPPORT_DATABASE_NAME=str(database.owner.database),
        RAPPORT_ENVIRONMENT="test",
        RAPPORT_SECRET_KEY="test-secret-key-that-is-long-enough-for-hmac",
        RAPPORT_LOG_LEVEL="WARNING",
        **settings,
    )
    return env


@dataclass
class Mailbox:
    """What the SMTP server received."""

    messages: list[Message] = field(default_factory=list)

    # aiosmtpd calls its handler's hooks by these names.
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]

    async def wait_for(self, address: str, *, count: int = 1, within: float = 5.0) -> list[Message]:
        """The messages to this address, once at least `count` have arrived: mail leaves
        through the job queue, a moment after the request that asked for it."""
        deadline = asyncio.get_running_loop().time() + within
        while len(self.to(address)) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{len(self.to(address))} of {count} messages reached {address}")
            await asyncio.sleep(0.02)
        return self.to(address)

    async def code_for(self, address: str, *, count: int = 1, within: float = 5.0) -> str:
        """The six-digit code in the newest message to this address that carries one,
        waiting for the `count`-th such message to arrive (notifications, such as a
        security e-mail after a password change, do not count)."""
        deadline = asyncio.get_running_loop().time() + within
        while len(self.codes_to(address)) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{len(self.codes_to(address))} of {count} codes reached {address}")
            await asyncio.sleep(0.02)
        return self.last_code(address)

    def codes_to(self, address: str) -> list[str]:
        """The six-digit codes mailed to this address, oldest first."""
        codes = []
        for message in self.to(address):
            payload = message.get_payload(decode=True)
            match = re.search(r"\b(\d{6})\b", payload.decode() if isinstance(payload, bytes) else "")
            if match:
                codes.append(match.group(1))
        return codes

    def last_code(self, address: str) -> str:
        """The six-digit code in the newest message to this address."""
        for message in reversed(self.to(address)):
            payload = message.get_payload(decode=True)
            match = re.search(r"\b(\d{6})\b", payload.decode() if isinstance(payload, bytes) else "")
            if match:
                return match.group(1)
        raise AssertionError(f"no code was mailed to {address}")


@dataclass
class Persona:
    """A named user with a verified account, signed in through the API."""

    name: str
    email: str
    password: str
    user_id: str = ""
    access_token: str = ""
    refresh_token: str = ""
    session_id: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for an access token or an API key."""
    return {"Authorization": f"Bearer {token}"}


def wrong(code: str) -> str:
    """A six-digit code that is surely not `code`."""
    return f"{(int(code) + 1) % 1_000_000:06d}"


def problem_type(response: httpx.Response) -> str:
    """The stable problem type slug of an error answer."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return str(response.json()["type"]).rsplit(":", 1)[-1]


async def create_verified_user(runtime: Runtime, email: str, password: str = PASSWORD) -> str:
    """A verified account made as the system would, without mail; its user id."""
    from rapport.identity import service
    from rapport.kernel.db import system_transaction

    async with system_transaction(runtime.system_engine) as db:
        return str(await service.do_create_user(db, rt=runtime, email=email, password=password, verified=True))


# Who the test client is (conftest's ASGI transport): a session opened without a request
# records the same address and user agent as one signed in through the client.
TEST_CLIENT_IP = "203.0.113.7"
TEST_USER_AGENT = f"python-httpx/{httpx.__version__}"


async def open_persona(runtime: Runtime, name: str) -> Persona:
    """A persona with a verified account and an open session, made in one system
    transaction: the account as the system makes it, and the session and tokens a sign-in
    opens. For tests whose subject is not signing in; it leaves what a session leaves (the
    session, its refresh token), not a sign-in's history, throttles or events, which
    tests of signing in get from `sign_in`."""
    from rapport.identity import service
    from rapport.identity._sessions import create_session
    from rapport.identity.schemas import Device
    from rapport.kernel.actor import Client
    from rapport.kernel.db import system_transaction

    persona = Persona(name=name, email=f"{name}@example.com", password=PASSWORD)
    client = Client(ip=TEST_CLIENT_IP, user_agent=TEST_USER_AGENT)
    async with system_transaction(runtime.system_engine) as db:
        user_id = await service.do_create_user(db, rt=runtime, email=persona.email, password=PASSWORD, verified=True)
        pair = await create_session(db, rt=runtime, user_id=user_id, client=client, device=Device())
    persona.access_token = pair.access_token
    persona.refresh_token = pair.refresh_token
    persona.session_id = str(pair.session_id)
    persona.user_id = str(pair.user_id)
    return persona


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD, **device: Any) -> httpx.Response:
    """POST /v1/auth/login, whatever it answers."""
    return await client.post(LOGIN, json={"email": email, "password": password, **device})


async def sign_in(client: httpx.AsyncClient, persona: Persona, **device: Any) -> Persona:
    """The persona with the tokens of a new session."""
    response = await login(client, persona.email, persona.password, **device)
    assert response.status_code == 200, response.text
    tokens = response.json()
    persona.access_token = tokens["access_token"]
    persona.refresh_token = tokens["refresh_token"]
    persona.session_id = tokens["session_id"]
    persona.user_id = tokens["user_id"]
    return persona


async def befriend(client: httpx.AsyncClient, a: Persona, b: Persona) -> None:
    """a asks b, b accepts: each is in the other's contacts."""
    asked = await client.post("/v1/contact-requests", headers=a.headers, json={"user_id": b.user_id})
    assert asked.status_code == 201, asked.text
    accepted = await client.post(f"/v1/contact-requests/{asked.json()['id']}/accept", headers=b.headers)
    assert accepted.status_code == 200, accepted.text


async def register_persona(client: httpx.AsyncClient, mailbox: Mailbox, name: str) -> Persona:
    """A persona made as a person would: registered, verified with the mailed code, and so
    signed in. For servers whose runtime a test cannot reach."""
    persona = Persona(name=name, email=f"{name}@example.com", password=PASSWORD)
    # The mailbox may hold older codes to this address, from earlier tests.
    earlier = len(mailbox.codes_to(persona.email))
    registered = await client.post("/v1/auth/register", json={"email": persona.email, "password": PASSWORD})
    assert registered.status_code == 202, registered.text
    code = await mailbox.code_for(persona.email, count=earlier + 1)
    verified = await client.post("/v1/auth/verify-email", json={"email": persona.email, "code": code})
    assert verified.status_code == 200, verified.text
    tokens = verified.json()
    persona.access_token, persona.refresh_token = tokens["access_token"], tokens["refresh_token"]
    persona.session_id, persona.user_id = tokens["session_id"], tokens["user_id"]
    return persona


async def populate(client: httpx.AsyncClient, alice: Persona, bob: Persona, carol: Persona, mallory: Persona) -> None:
    """Rows in the tables the API writes, through the API: alice and bob are contacts
    (in alice's group "Family"), carol's request to alice waits, alice keeps a contact
    without an account, has an API key, a device, a push subscription, a status and demographics, and blocks
    mallory; alice, bob and carol talk in a group (see _converse). Sweeps over the API then
    reach handlers with ids that exist."""
    await befriend(client, alice, bob)
    steps: list[tuple[Persona, str, str, Any]] = [
        (carol, "POST", "/v1/contact-requests", {"user_id": alice.user_id}),
        (alice, "POST", "/v1/contacts", {"first_name": "Lily", "relationship": "My Child"}),
        (alice, "POST", "/v1/auth/api-keys", {"name": "deploy bot"}),
        (alice, "POST", "/v1/devices", {"name": "Alice's phone", "device_type": "mobile", "platform": "ios"}),
        (alice, "POST", "/v1/push-subscriptions", {"provider": "apns", "token": "a1" * 32}),
        (alice, "POST", "/v1/statuses", {"content": "Out walking"}),
        (alice, "POST", "/v1/me/exports", None),
        (alice, "PUT", "/v1/profile/parts/demographics", {}),
        (alice, "PATCH", "/v1/profile", {"display_name": "Alice", "bio": "Gardener"}),
        (alice, "PUT", f"/v1/blocks/{mallory.user_id}", None),
    ]
    for persona, method, path, body in steps:
        response = await client.request(method, path, headers=persona.headers, json=body)
        assert response.status_code < 300, (method, path, response.text)
    group = await client.post("/v1/contact-groups", headers=alice.headers, json={"name": "Family"})
    assert group.status_code == 201, group.text
    contacts = (await client.get("/v1/contacts", headers=alice.headers)).json()["items"]
    [bobs] = [c for c in contacts if c["contact_user_id"] == bob.user_id]
    member = await client.put(f"/v1/contact-groups/{group.json()['id']}/members/{bobs['id']}", headers=alice.headers)
    assert member.status_code == 204, member.text
    photo = await _share_media(client, alice, bob)
    await _converse(client, alice, bob, carol, photo=photo)


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 80, 20)).save(out, "PNG")
    return out.getvalue()


async def _share_media(client: httpx.AsyncClient, alice: Persona, bob: Persona) -> str:
    """Alice's image, in her album "Garden" shared with bob, shared itself with him for
    comment, commented on by both, and her first profile photo. Its id."""
    made = await client.post("/v1/media", headers=alice.headers, files={"file": ("photo.png", _png(), "image/png")})
    assert made.status_code == 201, made.text
    photo: str = made.json()["id"]
    album = await client.post("/v1/media/albums", headers=alice.headers, json={"title": "Garden"})
    assert album.status_code == 201, album.text
    album_id = album.json()["id"]
    steps: list[tuple[Persona, str, str, Any]] = [
        (alice, "POST", f"/v1/media/albums/{album_id}/items", {"file_id": photo}),
        (alice, "POST", f"/v1/media/albums/{album_id}/shares", {"user_id": bob.user_id}),
        (alice, "POST", f"/v1/media/{photo}/shares", {"user_id": bob.user_id, "permission": "comment"}),
        (alice, "POST", f"/v1/media/{photo}/comments", {"body": "First bloom"}),
        (bob, "POST", f"/v1/media/{photo}/comments", {"body": "Lovely"}),
        (alice, "PUT", "/v1/media/profile-photos/1", {"file_id": photo}),
    ]
    for persona, method, path, body in steps:
        response = await client.request(method, path, headers=persona.headers, json=body)
        assert response.status_code < 300, (method, path, response.text)
    return photo


async def _converse(client: httpx.AsyncClient, alice: Persona, bob: Persona, carol: Persona, *, photo: str) -> None:
    """Alice's group with bob and carol, with messages (one carrying her photo), a thread,
    a pin, a reaction, a draft, an invite link and a call; and her public channel."""
    made = await client.post(
        "/v1/conversations",
        headers=alice.headers,
        json={"type": "group", "name": "Weekend", "participant_ids": [bob.user_id, carol.user_id]},
    )
    assert made.status_code == 201, made.text
    room = f"/v1/conversations/{made.json()['id']}"
    first = await client.post(f"{room}/messages", headers=alice.headers, json={"content": "Saturday?"})
    assert first.status_code == 201, first.text
    message = f"{room}/messages/{first.json()['id']}"
    steps: list[tuple[Persona, str, str, Any]] = [
        (bob, "POST", f"{room}/messages", {"content": "Yes!", "reply_to": first.json()["id"]}),
        (alice, "POST", f"{room}/messages", {"content": "The garden", "attachments": [photo]}),
        (bob, "PUT", f"{message}/reactions/👍", None),
        (alice, "PUT", f"{room}/pins/{first.json()['id']}", None),
        (alice, "POST", f"{room}/threads", {"root_message_id": first.json()["id"]}),
        (carol, "PUT", f"{room}/draft", {"content": "Maybe"}),
        (alice, "POST", f"{room}/invites", {"max_uses": 5}),
        (alice, "POST", f"{room}/calls", {"type": "audio"}),
        (bob, "POST", f"{room}/read", {"message_id": first.json()["id"]}),
        (alice, "POST", "/v1/conversations", {"type": "channel", "name": "Gardening"}),
    ]
    for persona, method, path, body in steps:
        response = await client.request(method, path, headers=persona.headers, json=body)
        assert response.status_code < 300, (method, path, response.text)
