"""Apple Push Notification service, token-based: an ES256 JWT of the team, signed by an
APNs key (`kid`), authorises `POST /3/device/{token}` over HTTP/2, which APNs requires.
The sender keeps its own HTTP/2 client: one connection carries every push, as Apple asks."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rapport.config import Settings
from rapport.notifications._providers import Outcome, PushMessage, PushTarget, network_failure, retryable

# Apple refuses a provider token older than an hour, and one renewed more often than every
# twenty minutes: it is made anew every fifty.
TOKEN_REUSE_S = 50 * 60
# The device tokens APNs no longer delivers to: deactivate them (410 comes as Unregistered).
GONE_REASONS = frozenset({"BadDeviceToken", "Unregistered"})


class ApnsSender:
    def __init__(
        self, *, key_id: str, team_id: str, private_key: str, topic: str, endpoint: str, http: httpx.AsyncClient
    ) -> None:
        self._key_id = key_id
        self._team_id = team_id
        self._private_key = private_key
        self._topic = topic
        self._endpoint = endpoint.rstrip("/")
        self._http = http
        self._token: tuple[str, float] | None = None  # provider token, made at (monotonic)
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> ApnsSender | str:
        """The sender, with its own HTTP/2 client, or why there is none.

        Raises:
            ValueError: the key is set but is not an EC private key in PEM.
        """
        missing = [
            f"RAPPORT_{name.upper()}"
            for name in ("apns_key_id", "apns_team_id", "apns_private_key", "apns_topic")
            if not getattr(settings, name)
        ]
        if missing:
            return f"{', '.join(missing)} not set"
        assert settings.apns_key_id and settings.apns_team_id and settings.apns_private_key and settings.apns_topic
        private_key = _pem(settings.apns_private_key.get_secret_value())
        # Prior knowledge of HTTP/2 on http:// (a local APNs stand-in); ALPN agrees on h2 over TLS.
        http = httpx.AsyncClient(http1=False, http2=True, timeout=httpx.Timeout(10.0))
        return cls(
            key_id=settings.apns_key_id,
            team_id=settings.apns_team_id,
            private_key=private_key,
            topic=settings.apns_topic,
            endpoint=settings.apns_endpoint,
            http=http,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, target: PushTarget, message: PushMessage) -> Outcome:
        if not target.token:
            return Outcome(delivered=False, http_status=None, gone=False, retry=False, detail="no APNs device token")
        url = f"{self._endpoint}/3/device/{target.token}"
        body = orjson.dumps(apns_payload(message))
        headers = {
            "apns-topic": self._topic,
            "apns-push-type": "alert",
            "apns-priority": "5" if message.urgency in ("very-low", "low") else "10",
            # 0: deliver now or never, which a TTL of 0 means in Web Push too.
            "apns-expiration": str(int(time.time()) + message.ttl_s) if message.ttl_s > 0 else "0",
            "content-type": "application/json",
        }
        if message.tag:
            headers["apns-collapse-id"] = collapse_id(message.tag)
        # An expired or refused provider token (403) is made anew once, and the push tried again.
        for fresh in (False, True):
            headers["authorization"] = f"bearer {await self._provider_token(fresh=fresh)}"
            try:
                response = await self._http.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                return network_failure(exc)
            if response.status_code != 403 or _reason(response) not in ("ExpiredProviderToken", "InvalidProviderToken"):
                break
        return _outcome(response)

    async def _provider_token(self, *, fresh: bool) -> str:
        async with self._lock:
            now = time.monotonic()
            if not fresh and self._token is not None and now - self._token[1] < TOKEN_REUSE_S:
                return self._token[0]
            token = jwt.encode(
                {"iss": self._team_id, "iat": int(time.time())},
                self._private_key,
                algorithm="ES256",
                headers={"kid": self._key_id},
            )
            self._token = (token, now)
            return token


def apns_payload(message: PushMessage) -> dict[str, Any]:
    aps: dict[str, Any] = {"alert": {"title": message.title, "body": message.body}, "sound": "default"}
    if message.tag:
        aps["thread-id"] = message.tag
    payload: dict[str, Any] = {"aps": aps, "data": message.data}
    if message.url:
        payload["url"] = message.url
    return payload


def collapse_id(tag: str) -> str:
    """apns-collapse-id holds at most 64 bytes: a longer tag is replaced by its digest."""
    return tag if len(tag.encode()) <= 64 else hashlib.sha256(tag.encode()).hexdigest()


def _pem(value: str) -> str:
    """The .p8 key's PEM text, given as such or as the path of the file.

    Raises:
        ValueError: neither, or not an elliptic-curve key (APNs keys are P-256).
    """
    try:
        text = value if value.lstrip().startswith("-----BEGIN") else Path(value).expanduser().read_text()
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"RAPPORT_APNS_PRIVATE_KEY is neither a PEM private key nor the path of one: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("RAPPORT_APNS_PRIVATE_KEY is not an elliptic-curve key (APNs signs with ES256)")
    return text


def _reason(response: httpx.Response) -> str | None:
    try:
        reason = response.json().get("reason")
    except ValueError:
        return None
    return str(reason) if reason else None


def _outcome(response: httpx.Response) -> Outcome:
    status = response.status_code
    apns_id = response.headers.get("apns-id")
    if status == 200:
        return Outcome(
            delivered=True, http_status=status, gone=False, retry=False, detail="accepted", provider_id=apns_id
        )
    reason = _reason(response)
    return Outcome(
        delivered=False,
        http_status=status,
        gone=status == 410 or reason in GONE_REASONS,
        retry=retryable(status),
        detail=reason or response.text[:300] or str(status),
        provider_id=apns_id,
    )
