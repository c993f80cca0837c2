"""Local stand-ins for the third parties notifications reach, each a real HTTP server
(hypercorn, on a free loopback port) speaking the service's own protocol and checking
its authentication the way the service does:

- `PushService`: a Web Push service (RFC 8030) that verifies the VAPID token (RFC 8292)
  and decrypts the aes128gcm payload (RFC 8291) with the subscription's private key, as
  the browser would: `received` holds what the service worker would read.
- `FcmService`: FCM HTTP v1 with its OAuth 2.0 token endpoint (service-account JWT bearer).
- `ApnsService`: APNs over HTTP/2 with token-based (ES256 JWT) authentication.
- `SmsService`: Twilio's Messages API with basic auth.

Each is an async context manager (or `start()`/`stop()`), with `url`, `received`,
`mark_gone(...)` and `fail_next(status, times=1)`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import re
import secrets
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support import free_port


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _point(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


class FakeServer:
    """A Starlette app served by hypercorn (HTTP/1.1, and HTTP/2 by prior knowledge)."""

    url: str

    def __init__(self) -> None:
        self._shutdown = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failures: list[int] = []

    def _routes(self) -> list[Route]:
        raise NotImplementedError

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next `times` sends with `status` (as the service does when overloaded)."""
        self._failures.extend([status] * times)

    def _take_failure(self) -> int | None:
        return self._failures.pop(0) if self._failures else None

    async def start(self) -> None:
        port = free_port()
        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.accesslog = None
        config.errorlog = None
        config.graceful_timeout = 1
        self.url = f"http://127.0.0.1:{port}"
        self._shutdown.clear()
        app = Starlette(routes=self._routes())
        self._task = asyncio.create_task(serve(app, config, shutdown_trigger=self._shutdown.wait))  # type: ignore[arg-type]
        deadline = time.monotonic() + 10
        while True:
            if self._task.done():
                self._task.result()
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.01)
                continue
            writer.close()
            await writer.wait_closed()
            return

    async def stop(self) -> None:
        self._shutdown.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# --- Web Push ------------------------------------------------------------------------


@dataclass
class BrowserSubscription:
    """What `pushManager.subscribe()` makes in a browser: an endpoint at the push service,
    and the P-256 key pair and 16-byte auth secret the browser keeps to decrypt."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes
    application_server_key: str | None  # the VAPID public key it was made for (None: any)

    @property
    def p256dh(self) -> str:
        return b64url(_point(self.private_key))

    @property
    def auth(self) -> str:
        return b64url(self.auth_secret)

    def as_json(self) -> dict[str, Any]:
        """`PushSubscription.toJSON()`, as a browser posts it to the server."""
        return {"endpoint": self.endpoint, "expirationTime": None, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


@dataclass
class ReceivedPush:
    endpoint: str
    payload: bytes  # decrypted: what the service worker's push event reads
    ttl: int
    urgency: str
    topic: str | None
    vapid_key: str  # the `k` of the Authorization header
    vapid_claims: dict[str, Any]
    authorization: str
    received_at: float = field(default_factory=time.time)

    def json(self) -> Any:
        return orjson.loads(self.payload)


class PushRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


_URGENCIES = {"very-low", "low", "normal", "high"}
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")


class PushService(FakeServer):
    """A Web Push service. `subscribe()` plays the browser; pushes the application server
    sends land, decrypted, in `received`; `refused` keeps why others were refused."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[ReceivedPush] = []
        self.refused: list[tuple[str, int, str]] = []
        self._subscriptions: dict[str, BrowserSubscription] = {}
        self._gone: dict[str, int] = {}

    def subscribe(self, application_server_key: str | None = None) -> BrowserSubscription:
        subscription = BrowserSubscription(
            endpoint=f"{self.url}/push/{secrets.token_urlsafe(24)}",
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth_secret=secrets.token_bytes(16),
            application_server_key=application_server_key,
        )
        self._subscriptions[subscription.endpoint] = subscription
        return subscription

    def mark_gone(self, endpoint: str, status: int = 410) -> None:
        """The user unsubscribed (410) or the subscription expired and was forgotten (404)."""
        self._gone[endpoint] = status

    def received_by(self, endpoint: str) -> list[ReceivedPush]:
        return [push for push in self.received if push.endpoint == endpoint]

    def _routes(self) -> list[Route]:
        return [Route("/push/{id}", self._push, methods=["POST"])]

    async def _push(self, request: Request) -> Response:
        endpoint = f"{self.url}/push/{request.path_params['id']}"
        try:
            push = self._accept(endpoint, request.headers, await request.body())
        except PushRefused as refused:
            self.refused.append((endpoint, refused.status, refused.reason))
            return JSONResponse({"reason": refused.reason}, status_code=refused.status)
        self.received.append(push)
        return Response(
            status_code=201, headers={"Location": f"{self.url}/message/{uuid.uuid4()}", "TTL": str(push.ttl)}
        )

    def _accept(self, endpoint: str, headers: Any, body: bytes) -> ReceivedPush:
        subscription = self._subscriptions.get(endpoint)
        if subscription is None:
            raise PushRefused(404, "no such subscription")
        if endpoint in self._gone:
            raise PushRefused(self._gone[endpoint], "subscription gone")
        failure = self._take_failure()
        if failure is not None:
            raise PushRefused(failure, "service unavailable")
        vapid_key, claims, authorization = self._check_vapid(headers.get("authorization", ""), subscription)
        if headers.get("content-encoding") != "aes128gcm":
            raise PushRefused(415, "Content-Encoding must be aes128gcm")
        ttl = headers.get("ttl")
        if ttl is None or not ttl.isdigit():
            raise PushRefused(400, "TTL header missing or not a number")
        urgency = headers.get("urgency", "normal")
        if urgency not in _URGENCIES:
            raise PushRefused(400, f"bad Urgency {urgency!r}")
        topic = headers.get("topic")
        if topic is not None and not _TOPIC.fullmatch(topic):
            raise PushRefused(400, f"bad Topic {topic!r}")
        if len(body) > 4096:
            raise PushRefused(413, "payload larger than 4096 bytes")
        try:
            payload = decrypt_aes128gcm(body, subscription.private_key, subscription.auth_secret)
        except ValueError as exc:
            raise PushRefused(400, f"cannot decrypt: {exc}") from exc
        return ReceivedPush(
            endpoint=endpoint,
            payload=payload,
            ttl=int(ttl),
            urgency=urgency,
            topic=topic,
            vapid_key=vapid_key,
            vapid_claims=claims,
            authorization=authorization,
        )

    def _check_vapid(self, authorization: str, subscription: BrowserSubscription) -> tuple[str, dict[str, Any], str]:
        """RFC 8292: `vapid t=<JWT>, k=<P-256 public key>`; the JWT is ES256 by that key, for
        this origin, expiring within 24 hours, with a contact."""
        scheme, _, params = authorization.partition(" ")
        if scheme.lower() != "vapid":
            raise PushRefused(401, "Authorization is not vapid")
        parts = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
        token, key = parts.get("t"), parts.get("k")
        if not token or not key:
            raise PushRefused(401, "vapid without t or k")
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
            origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.url))
            claims = jwt.decode(
                token, public, algorithms=["ES256"], audience=origin, options={"require": ["aud", "exp", "sub"]}
            )
        except (ValueError, jwt.InvalidTokenError) as exc:
            raise PushRefused(401, f"invalid VAPID token: {exc}") from exc
        if claims["exp"] > time.time() + 24 * 3600:
            raise PushRefused(401, "VAPID token expires more than 24 hours ahead")
        if not str(claims["sub"]).startswith(("mailto:", "https://")):
            raise PushRefused(401, "VAPID sub is not a mailto: or https: contact")
        expected = subscription.application_server_key
        if expected is not None and b64url_decode(expected) != b64url_decode(key):
            raise PushRefused(403, "VAPID key is not the one the subscription was made with")
        return key, claims, authorization


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (without Starlette's multipart parser)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return {}
    return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def decrypt_aes128gcm(body: bytes, private_key: ec.EllipticCurvePrivateKey, auth_secret: bytes) -> bytes:
    """RFC 8291 §3.4 and RFC 8188 §2, written out from the RFCs (not with the library the
    sender uses), as a user agent decrypts a push message: one record, keyed by ECDH between
    the subscription's key and the sender's key in the header, and the auth secret.

    Raises:
        ValueError: anything a browser would refuse.
    """
    if len(body) < 21:
        raise ValueError("shorter than the aes128gcm header")
    salt, rs, id_len = body[:16], int.from_bytes(body[16:20], "big"), body[20]
    sender_point, records = body[21 : 21 + id_len], body[21 + id_len :]
    if id_len != 65:
        raise ValueError("the key id is not the sender's P-256 public key")
    if rs < 18:
        raise ValueError("record size too small")
    if len(records) > rs:
        raise ValueError("a push message is a single record (RFC 8291 §4)")
    sender = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender_point)
    ecdh_secret = private_key.exchange(ec.ECDH(), sender)
    key_info = b"WebPush: info\x00" + _point(private_key) + sender_point
    ikm = _hmac(_hmac(auth_secret, ecdh_secret), key_info + b"\x01")
    prk = _hmac(salt, ikm)
    cek = _hmac(prk, b"Content-Encoding: aes128gcm\x00\x01")[:16]
    nonce = _hmac(prk, b"Content-Encoding: nonce\x00\x01")[:12]
    try:
        plain = AESGCM(cek).decrypt(nonce, records, None)  # record 0: the nonce as derived
    except Exception as exc:
        raise ValueError("authentication tag does not verify") from exc
    unpadded = plain.rstrip(b"\x00")
    if not unpadded or unpadded[-1] != 2:
        raise ValueError("the last record's delimiter is not 0x02")
    return unpadded[:-1]


# --- FCM -------------------------------------------------------------------------------


@dataclass
class ReceivedFcm:
    project: str
    message: dict[str, Any]
    access_token: str


class FcmService(FakeServer):
    """FCM HTTP v1 and the OAuth 2.0 token endpoint its service account is given."""

    project_id = "rapport-test"

    def __init__(self) -> None:
        super().__init__()
        self.received: list[ReceivedFcm] = []
        self.token_requests = 0
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._key_id = secrets.token_hex(20)
        self._client_email = f"firebase-adminsdk@{self.project_id}.iam.gserviceaccount.com"
        self._access_tokens: set[str] = set()
        self._gone: set[str] = set()
        self._ids = itertools.count(1)

    def service_account(self) -> dict[str, Any]:
        """The JSON key file as the Firebase console gives it, its token URI pointing here."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": self._key_id,
            "private_key": pem,
            "client_email": self._client_email,
            "client_id": "1234567890",
            "token_uri": f"{self.url}/token",
        }

    def mark_gone(self, token: str) -> None:
        """The app was uninstalled: FCM answers UNREGISTERED."""
        self._gone.add(token)

    def revoke_access_tokens(self) -> None:
        self._access_tokens.clear()

    def _routes(self) -> list[Route]:
        return [
            Route("/token", self._token, methods=["POST"]),
            Route("/v1/projects/{project}/messages:send", self._send, methods=["POST"]),
        ]

    async def _token(self, request: Request) -> Response:
        form = await _form(request)
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        assertion = form.get("assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
            if header.get("kid") != self._key_id:
                raise jwt.InvalidTokenError("unknown kid")
            claims = jwt.decode(
                assertion,
                self._key.public_key(),
                algorithms=["RS256"],
                audience=f"{self.url}/token",
                issuer=self._client_email,
                options={"require": ["iss", "aud", "iat", "exp", "scope"]},
            )
        except jwt.InvalidTokenError as exc:
            return JSONResponse({"error": "invalid_grant", "error_description": str(exc)}, status_code=400)
        if claims["exp"] - claims["iat"] > 3600:
            return JSONResponse({"error": "invalid_grant", "error_description": "lifetime over 1h"}, status_code=400)
        if "https://www.googleapis.com/auth/firebase.messaging" not in str(claims["scope"]).split():
            return JSONResponse({"error": "invalid_scope"}, status_code=400)
        self.token_requests += 1
        access_token = f"ya29.{secrets.token_urlsafe(32)}"
        self._access_tokens.add(access_token)
        return JSONResponse({"access_token": access_token, "expires_in": 3599, "token_type": "Bearer"})

    async def _send(self, request: Request) -> Response:
        project = request.path_params["project"]
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self._access_tokens:
            return _fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if project != self.project_id:
            return _fcm_error(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH")
        failure = self._take_failure()
        if failure is not None:
            return _fcm_error(failure, "UNAVAILABLE" if failure >= 500 else "RESOURCE_EXHAUSTED", "try later")
        message = orjson.loads(await request.body()).get("message")
        problem = _fcm_message_problem(message)
        if problem:
            return _fcm_error(400, "INVALID_ARGUMENT", problem, "INVALID_ARGUMENT")
        if message["token"] in self._gone:
            return _fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
        self.received.append(ReceivedFcm(project=project, message=message, access_token=token))
        return JSONResponse({"name": f"projects/{project}/messages/0:{next(self._ids)}"})


def _fcm_message_problem(message: Any) -> str | None:
    if not isinstance(message, dict) or not isinstance(message.get("token"), str):
        return "message.token is required"
    data = message.get("data", {})
    if not all(isinstance(value, str) for value in data.values()):
        return "data values must be strings"
    android = message.get("android", {})
    if "ttl" in android and not re.fullmatch(r"\d+(\.\d+)?s", android["ttl"]):
        return "android.ttl is a duration like 3600s"
    if android.get("priority", "NORMAL") not in ("NORMAL", "HIGH"):
        return "android.priority is NORMAL or HIGH"
    return None


def _fcm_error(status: int, grpc_status: str, message: str, error_code: str | None = None) -> JSONResponse:
    details = (
        [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code}]
        if error_code
        else []
    )
    return JSONResponse(
        {"error": {"code": status, "message": message, "status": grpc_status, "details": details}}, status_code=status
    )


# --- APNs ------------------------------------------------------------------------------


@dataclass
class ReceivedApns:
    device_token: str
    headers: dict[str, str]
    payload: dict[str, Any]
    http_version: str
    apns_id: str


class ApnsService(FakeServer):
    """APNs: HTTP/2 only, provider tokens (ES256 JWT, `kid` = key id, `iss` = team id)."""

    key_id = "ABC123DEFG"
    team_id = "DEF123GHIJ"
    topic = "org.rapport.app"

    def __init__(self) -> None:
        super().__init__()
        self.received: list[ReceivedApns] = []
        self.provider_tokens_seen: list[str] = []
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._gone: dict[str, str] = {}
        self._expired: set[str] = set()

    @property
    def private_key_pem(self) -> str:
        """The .p8 file the Apple developer account gives."""
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    def mark_gone(self, device_token: str, reason: str = "Unregistered") -> None:
        """Unregistered: 410 (the app was removed); BadDeviceToken: 400."""
        self._gone[device_token] = reason

    def expire_provider_tokens(self) -> None:
        """Every provider token seen so far is now too old (ExpiredProviderToken)."""
        self._expired.update(self.provider_tokens_seen)

    def _routes(self) -> list[Route]:
        return [Route("/3/device/{token}", self._push, methods=["POST"])]

    async def _push(self, request: Request) -> Response:
        apns_id = request.headers.get("apns-id") or str(uuid.uuid4()).upper()
        # Read whole before any answer: hypercorn drops the connection when DATA frames
        # arrive for a stream it has already answered.
        body = await request.body()
        if request.scope.get("http_version") != "2":
            # APNs itself speaks nothing but HTTP/2.
            return Response(status_code=505)
        headers = dict(request.headers)
        device_token = request.path_params["token"]
        try:
            payload = self._accept(headers, body, device_token)
        except PushRefused as refused:
            answer: dict[str, Any] = {"reason": refused.reason}
            if refused.status == 410:
                answer["timestamp"] = int(time.time() * 1000)
            return JSONResponse(answer, status_code=refused.status, headers={"apns-id": apns_id})
        self.received.append(ReceivedApns(device_token, headers, payload, request.scope["http_version"], apns_id))
        return Response(status_code=200, headers={"apns-id": apns_id})

    def _accept(self, headers: dict[str, str], body: bytes, device_token: str) -> dict[str, Any]:
        problem = self._check_token(headers.get("authorization", ""))
        if problem:
            raise PushRefused(403, problem)
        problem = _apns_header_problem(headers, self.topic)
        if problem:
            raise PushRefused(400, problem)
        failure = self._take_failure()
        if failure is not None:
            raise PushRefused(failure, "TooManyRequests" if failure == 429 else "ServiceUnavailable")
        if len(body) > 4096:
            raise PushRefused(413, "PayloadTooLarge")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise PushRefused(400, "PayloadEmpty") from exc
        if not isinstance(payload, dict) or "aps" not in payload:
            raise PushRefused(400, "PayloadEmpty")
        if device_token in self._gone:
            reason = self._gone[device_token]
            raise PushRefused(410 if reason == "Unregistered" else 400, reason)
        return payload

    def _check_token(self, authorization: str) -> str | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "MissingProviderToken"
        self.provider_tokens_seen.append(token)
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != "ES256" or header.get("kid") != self.key_id:
                return "InvalidProviderToken"
            claims = jwt.decode(
                token, self._key.public_key(), algorithms=["ES256"], options={"require": ["iss", "iat"]}
            )
        except jwt.InvalidTokenError:
            return "InvalidProviderToken"
        if claims["iss"] != self.team_id:
            return "InvalidProviderToken"
        if token in self._expired or claims["iat"] < time.time() - 3600:
            return "ExpiredProviderToken"
        return None


def _apns_header_problem(headers: dict[str, str], topic: str) -> str | None:
    checks: list[tuple[Callable[[], bool], str]] = [
        (lambda: "apns-topic" in headers, "MissingTopic"),
        (lambda: headers["apns-topic"] == topic, "TopicDisallowed"),
        (lambda: headers.get("apns-push-type") in ("alert", "background", "voip", "location"), "InvalidPushType"),
        (lambda: headers.get("apns-priority", "10") in ("1", "5", "10"), "BadPriority"),
        (lambda: headers.get("apns-expiration", "0").isdigit(), "BadExpirationDate"),
        (lambda: len(headers.get("apns-collapse-id", "").encode()) <= 64, "BadCollapseId"),
    ]
    for check, reason in checks:
        if not check():
            return reason
    return None


# --- SMS -------------------------------------------------------------------------------


@dataclass
class ReceivedSms:
    sid: str
    to: str
    sender: str  # From, or the Messaging Service SID
    body: str
    idempotency_key: str | None


class SmsService(FakeServer):
    """Twilio's Messages API: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form
    encoded, basic auth with the account SID and auth token. A repeated Idempotency-Key
    answers the message it first made, and sends nothing more."""

    def __init__(self) -> None:
        super().__init__()
        self.account = "AC" + secrets.token_hex(16)
        self.token = secrets.token_hex(16)
        self.sender = "+15005550006"
        self.received: list[ReceivedSms] = []
        self._unreachable: set[str] = set()
        self._by_key: dict[str, ReceivedSms] = {}

    def mark_gone(self, phone: str) -> None:
        """The owner replied STOP: Twilio answers 21610."""
        self._unreachable.add(phone)

    def _routes(self) -> list[Route]:
        return [Route("/2010-04-01/Accounts/{account}/Messages.json", self._create, methods=["POST"])]

    async def _create(self, request: Request) -> Response:
        expected = "Basic " + base64.b64encode(f"{self.account}:{self.token}".encode()).decode()
        if request.path_params["account"] != self.account or request.headers.get("authorization") != expected:
            return _twilio_error(401, 20003, "Authenticate")
        failure = self._take_failure()
        if failure is not None:
            return _twilio_error(failure, 20429 if failure == 429 else 20500, "try later")
        form = await _form(request)
        to, body = form.get("To", ""), form.get("Body", "")
        sender = form.get("From") or form.get("MessagingServiceSid") or ""
        if not re.fullmatch(r"\+[1-9]\d{6,14}", to):
            return _twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not sender:
            return _twilio_error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required.")
        if not body:
            return _twilio_error(400, 21602, "Message body is required.")
        if to in self._unreachable:
            return _twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
        key = request.headers.get("idempotency-key")
        if key is not None and key in self._by_key:
            return JSONResponse(self._resource(self._by_key[key]), status_code=201)
        sms = ReceivedSms(sid="SM" + secrets.token_hex(16), to=to, sender=sender, body=body, idempotency_key=key)
        self.received.append(sms)
        if key is not None:
            self._by_key[key] = sms
        return JSONResponse(self._resource(sms), status_code=201)

    def _resource(self, sms: ReceivedSms) -> dict[str, Any]:
        return {
            "sid": sms.sid,
            "account_sid": self.account,
            "to": sms.to,
            "from": sms.sender,
            "body": sms.body,
            "status": "queued",
            "num_segments": "1",
            "uri": f"/2010-04-01/Accounts/{self.account}/Messages/{sms.sid}.json",
        }


def _twilio_error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
        status_code=status,
    )


def closed_port_url() -> str:
    """A loopback URL where nothing listens: a provider that cannot be reached."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def provider_settings(
    *,
    vapid_private_key: str | None = None,
    fcm: FcmService | None = None,
    apns: ApnsService | None = None,
    sms: SmsService | None = None,
) -> dict[str, Any]:
    """Settings overrides (for `make_settings(**...)`) that point the providers at these
    fakes; Web Push needs only a VAPID key (`rapport.notifications.vapid.new_key_pair()`),
    since each subscription names its own push service."""
    values: dict[str, Any] = {}
    if vapid_private_key is not None:
        values.update(vapid_private_key=vapid_private_key, vapid_subject="mailto:ops@rapport.test")
    if fcm is not None:
        values.update(fcm_service_account_json=orjson.dumps(fcm.service_account()).decode(), fcm_endpoint=fcm.url)
    if apns is not None:
        values.update(
            apns_key_id=apns.key_id,
            apns_team_id=apns.team_id,
            apns_private_key=apns.private_key_pem,
            apns_topic=apns.topic,
            apns_endpoint=apns.url,
        )
    if sms is not None:
        values.update(sms_base_url=sms.url, sms_account=sms.account, sms_token=sms.token, sms_sender=sms.sender)
    return values
