"""What the bots tests share: a webhook receiver (a real HTTP server that checks each
delivery's signature as a bot's own server would), making bots through the API, and the
deliveries driven by the test (the dispatcher's round, then a job worker with quick
retries)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import orjson
from fastapi import FastAPI
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rapport.access import service as access_service
from rapport.bots import service
from rapport.kernel import jobs
from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime
from tests.notifications.fakes import FakeServer
from tests.support import Persona, bearer

# How old a delivery's timestamp may be before the receiver refuses it (a replay).
TOLERANCE_S = 300
# Short enough for a test, long enough that no timing below is luck.
RETRY_BASE_S = 0.1


@dataclass
class Delivery:
    """A delivery the receiver accepted: its signature held."""

    hook: str
    headers: dict[str, str]
    body: dict[str, Any]


class WebhookReceiver(FakeServer):
    """Bots' webhooks at `/hooks/<name>`: each checks `Rapport-Signature` against its
    bot's secret (`expect`), refuses (401) a delivery whose signature or timestamp does
    not hold, and answers `{"ok": true}`, or the statuses of `fail_next`."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[str, str] = {}
        self.received: list[Delivery] = []
        self.refused: list[tuple[str, str]] = []

    def reset(self) -> None:
        """Forget every hook, delivery and failure to come (a new test)."""
        self.secrets.clear()
        self.received.clear()
        self.refused.clear()
        self._failures.clear()

    def hook(self, name: str) -> str:
        return f"{self.url}/hooks/{name}"

    def expect(self, name: str, secret: str) -> None:
        self.secrets[name] = secret

    def to(self, name: str) -> list[Delivery]:
        return [delivery for delivery in self.received if delivery.hook == name]

    def _routes(self) -> list[Route]:
        return [Route("/hooks/{name}", self._deliver, methods=["POST"])]

    async def _deliver(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = await request.body()
        reason = verify(self.secrets.get(name, ""), request.headers.get("rapport-signature", ""), body)
        if reason is not None:
            self.refused.append((name, reason))
            return JSONResponse({"error": reason}, status_code=401)
        failure = self._take_failure()
        if failure is not None:
            return JSONResponse({"error": "busy"}, status_code=failure)
        self.received.append(Delivery(name, dict(request.headers), orjson.loads(body)))
        return JSONResponse({"ok": True})


def verify(secret: str, header: str, body: bytes, *, now: float | None = None) -> str | None:
    """Why a signature does not hold, or None when it does: as a receiver checks it, with
    nothing of Rapport's code. Any one `v1` under the secret will do (after a rotation of
    the secret, a delivery carries one under each of the new and the previous secrets)."""
    pairs = [part.split("=", 1) for part in header.split(",") if "=" in part]
    stamps = [value for name, value in pairs if name == "t"]
    macs = [value for name, value in pairs if name == "v1"]
    if not secret or len(stamps) != 1 or not macs or not stamps[0].isdigit():
        return "malformed signature"
    expected = hmac.new(secret.encode(), stamps[0].encode() + b"." + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, mac) for mac in macs):
        return "wrong signature"
    if abs((now or time.time()) - int(stamps[0])) > TOLERANCE_S:
        return "stale timestamp"
    return None


async def make_developer(runtime: Runtime, persona: Persona) -> Persona:
    """Give a persona the bot-developer role (chat:robot:manage), as system work."""
    async with system_transaction(runtime.system_engine) as db:
        await access_service.grant_role_system(db, UUID(persona.user_id), "bot-developer")
    return persona


@dataclass
class Bot:
    """A bot as its maker got it: its id, its API key and its webhook secret."""

    id: str
    key: str
    secret: str
    hook: str
    body: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.key)


async def make_bot(
    client: httpx.AsyncClient, receiver: WebhookReceiver, owner: Persona, hook: str, **fields: Any
) -> Bot:
    """A bot made by `owner` through the API (named after its hook unless `name` is
    given), its webhook at the receiver's /hooks/<hook>."""
    made = await client.post(
        "/v1/bots", headers=owner.headers, json={"name": hook, "webhook_url": receiver.hook(hook), **fields}
    )
    assert made.status_code == 201, made.text
    body = made.json()
    receiver.expect(hook, body["webhook_secret"])
    return Bot(body["id"], body["api_key"]["key"], body["webhook_secret"], hook, body)


async def add_bot(client: httpx.AsyncClient, persona: Persona, conversation_id: UUID, bot: Bot) -> None:
    added = await client.post(
        f"/v1/conversations/{conversation_id}/participants", headers=persona.headers, json={"user_id": bot.id}
    )
    assert added.status_code == 201, added.text


def make_worker(runtime: Runtime, **options: Any) -> jobs.Worker:
    options = {
        "poll_seconds": 0.1,
        "lock_timeout_seconds": 60,
        "retry": jobs.RetryPolicy(RETRY_BASE_S, jitter=0),
    } | options
    return jobs.Worker(runtime, **options)


@dataclass
class Deliveries:
    """The dispatcher and a job worker, both driven by the test."""

    app: FastAPI
    runtime: Runtime
    worker: jobs.Worker

    async def settle(self, *, within: float = 15.0) -> None:
        """Every message committed so far is dispatched, and every delivery that is due
        has been attempted (retries only once due)."""
        async with asyncio.timeout(within):
            await service.dispatch_all(self.runtime.system_engine)
            await self.worker.wait_idle()

    async def until(self, done: Callable[[], Awaitable[bool]], *, within: float = 20.0) -> None:
        """Settle, again and again, until `done` holds (retries come due one after another)."""
        async with asyncio.timeout(within):
            while True:
                await self.settle(within=within)
                if await done():
                    return
                await asyncio.sleep(0.05)


async def interactions_of(runtime: Runtime, bot: Bot) -> list[Any]:
    """The bot's interactions, oldest first, as system work sees them."""
    async with system_transaction(runtime.system_engine) as db:
        rows = await db.execute(
            text("SELECT * FROM bots.robot_interactions WHERE bot_id = :b ORDER BY id"), {"b": UUID(bot.id)}
        )
        return list(rows)


async def dead_deliveries(runtime: Runtime) -> list[Any]:
    async with system_transaction(runtime.system_engine) as db:
        return list(await jobs.list_dead_jobs(db))
