"""A bot's webhook: where this server agrees to POST, the secret that signs each delivery,
and the POST itself.

A delivery carries `Rapport-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<body>" under the secret>` (the timestamp is signed too, so a receiver can refuse
old deliveries replayed) and `Rapport-Delivery: <interaction id>` (the same on every
attempt: a receiver that has seen it may skip it). The secret is kept encrypted, since
the server needs it back to sign, never hashed.

A new secret replaces the old one at once, but for SECRET_GRACE after the rotation each
delivery is signed under both: `t=<t>,v1=<under the new>,v1=<under the previous>` (as
Stripe signs while an endpoint's secret rolls over). A receiver accepts a delivery when any
`v1` holds under the secret it knows, so it may switch to the new secret at any moment
within the grace and refuse none."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from rapport import __version__
from rapport.config import Settings
from rapport.kernel.crypto import Keyring, random_token

SIGNATURE_HEADER = "Rapport-Signature"
DELIVERY_HEADER = "Rapport-Delivery"
# How long the previous secret still signs after a rotation: a constant rather than a
# setting, long enough for a receiver's deployment, short enough that a leaked old secret
# soon stops mattering.
SECRET_GRACE = timedelta(hours=24)
_SECRET_PURPOSE = "bots.webhook-secret"
_SECRET_PREFIX = "whsec_"
# What is kept of a webhook's answer: enough for a JSON acknowledgement or an error page's start.
MAX_RESPONSE_BYTES = 16 * 1024


def new_secret() -> str:
    return random_token(_SECRET_PREFIX)


def seal_secret(keyring: Keyring, secret: str) -> bytes:
    return keyring.encrypt(_SECRET_PURPOSE, secret.encode())


def open_secret(keyring: Keyring, sealed: bytes) -> str:
    return keyring.decrypt(_SECRET_PURPOSE, sealed).decode()


def signature(secret: str, *, timestamp: int, body: bytes, previous: str | None = None) -> str:
    """The `Rapport-Signature` value of a body sent at `timestamp` (unix seconds): one
    `v1` under `secret`, then, within a rotation's grace, one under the `previous` secret."""
    macs = [_mac(key, timestamp, body) for key in (secret, previous) if key is not None]
    return ",".join([f"t={timestamp}", *(f"v1={mac}" for mac in macs)])


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


class TargetRefused(Exception):
    """The webhook's host is not one this server delivers to (now: a name can come to
    resolve to a private address after the URL was accepted)."""


@dataclass(frozen=True)
class WebhookRule:
    """Where a bot's webhook may point. In production: https, to a host of
    RAPPORT_BOT_WEBHOOK_HOSTS (or under one) when that list is set, never to an address
    that is not public (loopback, private networks, link-local, cloud metadata), checked
    when the URL is given and again, against what the name resolves to, before each
    delivery. Elsewhere: any http or https URL (a development machine's local receiver)."""

    production: bool
    hosts: tuple[str, ...] = ()

    @classmethod
    def for_settings(cls, settings: Settings) -> WebhookRule:
        return cls(
            production=settings.environment == "production",
            hosts=tuple(host.lower().strip(".") for host in settings.bot_webhook_hosts),
        )

    def admits(self, url: str) -> bool:
        if not self.production:
            return True
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        if parts.scheme != "https" or not host or host == "localhost" or host.endswith(".localhost"):
            return False
        if self.hosts and not any(host == name or host.endswith("." + name) for name in self.hosts):
            return False
        try:
            return ipaddress.ip_address(host).is_global
        except ValueError:
            return True  # a name: what it resolves to is checked at each delivery

    async def check_target(self, url: str) -> None:
        """Raises:
        TargetRefused: the URL is not admitted, or (in production) its host resolves to
            an address that is not public, or to none.
        """
        if not self.admits(url):
            raise TargetRefused("The webhook URL is not one this server delivers to.")
        if not self.production:
            return
        parts = urlsplit(url)
        try:
            found = await asyncio.get_running_loop().getaddrinfo(
                parts.hostname, parts.port or 443, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise TargetRefused(f"The webhook's host does not resolve: {exc}") from None
        addresses = {ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found}
        if not addresses or not all(address.is_global for address in addresses):
            raise TargetRefused("The webhook's host resolves to an address that is not public.")


@dataclass(frozen=True)
class Attempt:
    """What one POST to a webhook came to."""

    ok: bool
    http_status: int | None
    duration_ms: int
    error: str | None
    response: dict[str, Any] | None


async def post(
    client: httpx.AsyncClient,
    *,
    url: str,
    secret: str,
    delivery_id: str,
    body: bytes,
    timeout_s: float,
    previous_secret: str | None = None,
) -> Attempt:
    """POST a signed body once (signed under the previous secret too, when given); a 2xx
    answer is a success. Redirects are not followed (a webhook is where it says it is)."""
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"Rapport-Webhooks/{__version__}",
        SIGNATURE_HEADER: signature(secret, timestamp=timestamp, body=body, previous=previous_secret),
        DELIVERY_HEADER: delivery_id,
    }
    started = time.monotonic()
    try:
        async with client.stream(
            "POST", url, content=body, headers=headers, timeout=timeout_s, follow_redirects=False
        ) as answer:
            received = await _read_some(answer)
    except httpx.TimeoutException:
        return _failed(started, f"No answer within {timeout_s:g} s.")
    except httpx.HTTPError as exc:
        return _failed(started, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    duration_ms = _since(started)
    response = _response_data(received, answer.headers.get("content-type", ""))
    if answer.is_success:
        return Attempt(True, answer.status_code, duration_ms, None, response)
    return Attempt(False, answer.status_code, duration_ms, f"The webhook answered {answer.status_code}.", response)


async def _read_some(answer: httpx.Response) -> bytes:
    received = bytearray()
    async for chunk in answer.aiter_bytes():
        received += chunk
        if len(received) >= MAX_RESPONSE_BYTES:
            break
    return bytes(received[:MAX_RESPONSE_BYTES])


def _response_data(received: bytes, content_type: str) -> dict[str, Any] | None:
    if not received:
        return None
    # jsonb holds no \u0000: such JSON is kept as text.
    if "json" in content_type and b"\\u0000" not in received:
        try:
            parsed = orjson.loads(received)
        except orjson.JSONDecodeError:
            pass
        else:
            return parsed if isinstance(parsed, dict) else {"json": parsed}
    # PostgreSQL text holds no NUL.
    return {"text": received.decode("utf-8", errors="replace").replace("\x00", "\ufffd")}


def _since(started: float) -> int:
    return max(0, round((time.monotonic() - started) * 1000))


def _failed(started: float, error: str) -> Attempt:
    return Attempt(False, None, _since(started), error[:2000], None)
