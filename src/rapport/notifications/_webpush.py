"""Web Push (RFC 8030) to the push service a browser subscribed with: the payload
encrypted for the subscription (aes128gcm, RFC 8291 over RFC 8188, by http-ece) and the
request signed by this server's VAPID key (RFC 8292, by py-vapid)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from urllib.parse import urlsplit

import http_ece
import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from rapport.config import Settings
from rapport.notifications import vapid
from rapport.notifications._providers import Outcome, PushMessage, PushTarget, network_failure, retryable

# Push services accept 4096 bytes of body; the aes128gcm header (86 bytes with the sender's
# key as key id), the padding delimiter and the tag (17) leave this much for the JSON.
MAX_PLAINTEXT = 4096 - 86 - 17
# A VAPID token may live up to 24 hours; it is made for 12 and reused for 11, so a push
# never carries one that expires in flight.
TOKEN_LIFETIME_S = 12 * 3600
TOKEN_REUSE_S = 11 * 3600
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")


class WebPushSender:
    def __init__(self, *, private_key: ec.EllipticCurvePrivateKey, subject: str, http: httpx.AsyncClient) -> None:
        # py-vapid's own check of the subject refuses https: contacts with a path, which RFC
        # 8292 allows; the settings check it is a mailto: or https: URI.
        self._vapid = Vapid02(private_key, conf={"no-strict": True})
        self._subject = subject
        self._http = http
        self.public_key = vapid.public_key_of(private_key)
        # Authorization header per push service origin (the token's audience), with its age.
        self._tokens: dict[str, tuple[float, str]] = {}

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.AsyncClient) -> WebPushSender | str:
        """The sender, or why there is none.

        Raises:
            ValueError: the private key does not parse, or the public key set beside it is
                not its public half (browsers would subscribe with a key whose pushes the
                push services then refuse).
        """
        if settings.vapid_private_key is None:
            return "RAPPORT_VAPID_PRIVATE_KEY is not set (`rapport admin vapid-keys` makes a pair)"
        if not settings.vapid_subject:
            return "RAPPORT_VAPID_SUBJECT is not set (a mailto: or https: contact for the push services)"
        private_key = vapid.load_private_key(settings.vapid_private_key.get_secret_value())
        sender = cls(private_key=private_key, subject=settings.vapid_subject, http=http)
        given = settings.vapid_public_key
        if given and vapid.b64url_decode(given) != vapid.b64url_decode(sender.public_key):
            raise ValueError("RAPPORT_VAPID_PUBLIC_KEY is not the public key of RAPPORT_VAPID_PRIVATE_KEY")
        return sender

    async def send(self, target: PushTarget, message: PushMessage) -> Outcome:
        if not (target.endpoint and target.p256dh and target.auth):
            return Outcome(
                delivered=False,
                http_status=None,
                gone=False,
                retry=False,
                detail="subscription without endpoint or keys",
            )
        try:
            body = encrypt(payload(message), p256dh=target.p256dh, auth=target.auth)
        except ValueError as exc:
            # Keys a browser could not have made: the subscription can never be pushed to.
            return Outcome(delivered=False, http_status=None, gone=True, retry=False, detail=f"bad keys: {exc}")
        headers = {
            "Authorization": self._authorization(target.endpoint),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(max(0, message.ttl_s)),
            "Urgency": message.urgency,
        }
        if message.tag:
            headers["Topic"] = topic(message.tag)
        try:
            response = await self._http.post(target.endpoint, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return network_failure(exc)
        return _outcome(response)

    def _authorization(self, endpoint: str) -> str:
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        now = time.time()
        cached = self._tokens.get(audience)
        if cached is not None and now - cached[0] < TOKEN_REUSE_S:
            return cached[1]
        claims = {"aud": audience, "exp": int(now) + TOKEN_LIFETIME_S, "sub": self._subject}
        header: str = self._vapid.sign(claims)["Authorization"]
        self._tokens[audience] = (now, header)
        return header


def _outcome(response: httpx.Response) -> Outcome:
    status = response.status_code
    if status in (200, 201, 202):
        # The Location names the push message at the push service (RFC 8030 §5).
        location = response.headers.get("location")
        return Outcome(
            delivered=True, http_status=status, gone=False, retry=False, detail="accepted", provider_id=location
        )
    detail = response.text[:500] or response.reason_phrase
    return Outcome(
        delivered=False,
        http_status=status,
        # 404 and 410: the subscription expired or the user revoked it (RFC 8030 §7.3).
        gone=status in (404, 410),
        retry=retryable(status),
        detail=detail,
    )


def payload(message: PushMessage) -> bytes:
    """The JSON the service worker's `push` event reads; a body too long for one push is
    shortened (the notification links to the whole)."""
    fields: dict[str, object] = {
        "title": message.title,
        "body": message.body,
        "url": message.url,
        "tag": message.tag,
        "data": message.data,
    }
    encoded = orjson.dumps(fields)
    if len(encoded) <= MAX_PLAINTEXT:
        return encoded
    # The longest prefix of the body that fits, found by bisection: characters take one to
    # four bytes in UTF-8 and more once escaped, so no count of them can be computed ahead.
    fits, too_long = 0, len(message.body)
    while too_long - fits > 1:
        middle = (fits + too_long) // 2
        if len(orjson.dumps({**fields, "body": message.body[:middle] + "…"})) <= MAX_PLAINTEXT:
            fits = middle
        else:
            too_long = middle
    encoded = orjson.dumps({**fields, "body": message.body[:fits] + "…"})
    if len(encoded) > MAX_PLAINTEXT:
        # Even without a body it does not fit (a huge title or data): the bare essentials.
        encoded = orjson.dumps({"title": message.title[:200], "body": "", "url": message.url, "tag": message.tag})
    return encoded


def encrypt(plaintext: bytes, *, p256dh: str, auth: str) -> bytes:
    """The aes128gcm body for a subscription's keys, with a fresh sender key and salt.

    Raises:
        ValueError: p256dh is not a P-256 point or auth is not 16 bytes.
    """
    receiver = vapid.b64url_decode(p256dh)
    secret = vapid.b64url_decode(auth)
    if len(secret) != 16:
        raise ValueError("the auth secret is not 16 bytes")
    # Checked here so that a bad point raises ValueError rather than http-ece's own errors.
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), receiver)
    sender = ec.generate_private_key(ec.SECP256R1())
    body: bytes = http_ece.encrypt(
        plaintext,
        salt=os.urandom(16),
        private_key=sender,
        dh=receiver,
        auth_secret=secret,
        keyid=None,
        rs=4096,
        version="aes128gcm",
    )
    return body


def topic(tag: str) -> str:
    """The Topic header (RFC 8030 §5.4: at most 32 base64url characters): the tag itself when
    it fits, else a digest of it, the same for the same tag."""
    if _TOPIC.fullmatch(tag):
        return tag
    return base64.urlsafe_b64encode(hashlib.sha256(tag.encode()).digest()).decode()[:32]
