"""Firebase Cloud Messaging, HTTP v1 API: a service account signs a JWT (RS256) that the
OAuth 2.0 token endpoint exchanges for an access token (RFC 7523), which authorises
`POST /v1/projects/{project}/messages:send`."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import orjson

from rapport.config import Settings
from rapport.notifications._providers import Outcome, PushMessage, PushTarget, network_failure, retryable

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
# Access tokens live an hour; one is replaced five minutes before, not mid-request.
ASSERTION_LIFETIME_S = 3600
TOKEN_MARGIN_S = 300


@dataclass(frozen=True)
class ServiceAccount:
    client_email: str
    private_key: str  # PEM, RSA
    private_key_id: str | None
    project_id: str | None
    token_uri: str | None

    @classmethod
    def parse(cls, text: str) -> ServiceAccount:
        """The JSON key file the Firebase console downloads.

        Raises:
            ValueError: not JSON, or without client_email and private_key.
        """
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"the FCM service account is not JSON: {exc}") from exc
        if not isinstance(data, dict) or not data.get("client_email") or not data.get("private_key"):
            raise ValueError("the FCM service account has no client_email or private_key")
        return cls(
            client_email=data["client_email"],
            private_key=data["private_key"],
            private_key_id=data.get("private_key_id"),
            project_id=data.get("project_id"),
            token_uri=data.get("token_uri"),
        )


class _TokenRefused(Exception):
    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome


class FcmSender:
    def __init__(
        self, *, account: ServiceAccount, project_id: str, token_uri: str, endpoint: str, http: httpx.AsyncClient
    ) -> None:
        self._account = account
        self._token_uri = token_uri
        self._url = f"{endpoint.rstrip('/')}/v1/projects/{project_id}/messages:send"
        self._http = http
        self._token: tuple[str, float] | None = None  # access token, expiry (monotonic)
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.AsyncClient) -> FcmSender | str:
        """The sender, or why there is none.

        Raises:
            ValueError: the service account is set but unusable.
        """
        if settings.fcm_service_account_json is not None:
            text = settings.fcm_service_account_json.get_secret_value()
        elif settings.fcm_service_account_file is not None:
            text = settings.fcm_service_account_file.read_text()
        else:
            return "neither RAPPORT_FCM_SERVICE_ACCOUNT_FILE nor RAPPORT_FCM_SERVICE_ACCOUNT_JSON is set"
        account = ServiceAccount.parse(text)
        project_id = settings.fcm_project_id or account.project_id
        if not project_id:
            raise ValueError("the FCM service account names no project_id, and RAPPORT_FCM_PROJECT_ID is not set")
        return cls(
            account=account,
            project_id=project_id,
            token_uri=settings.fcm_token_uri or account.token_uri or DEFAULT_TOKEN_URI,
            endpoint=settings.fcm_endpoint,
            http=http,
        )

    async def send(self, target: PushTarget, message: PushMessage) -> Outcome:
        if not target.token:
            return Outcome(delivered=False, http_status=None, gone=False, retry=False, detail="no FCM token")
        body = orjson.dumps({"message": fcm_message(target.token, message)})
        # A token revoked before its hour is up is answered 401: one more try with a new one.
        for fresh in (False, True):
            try:
                token = await self._access_token(fresh=fresh)
                response = await self._http.post(
                    self._url,
                    content=body,
                    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=UTF-8"},
                )
            except _TokenRefused as refused:
                return refused.outcome
            except httpx.HTTPError as exc:
                return network_failure(exc)
            if response.status_code != 401:
                break
        return _outcome(response)

    async def _access_token(self, *, fresh: bool) -> str:
        async with self._lock:
            if not fresh and self._token is not None and time.monotonic() < self._token[1]:
                return self._token[0]
            now = int(time.time())
            claims = {
                "iss": self._account.client_email,
                "scope": SCOPE,
                "aud": self._token_uri,
                "iat": now,
                "exp": now + ASSERTION_LIFETIME_S,
            }
            headers = {"kid": self._account.private_key_id} if self._account.private_key_id else None
            assertion = jwt.encode(claims, self._account.private_key, algorithm="RS256", headers=headers)
            response = await self._http.post(
                self._token_uri,
                data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
            )
            if response.status_code != 200:
                raise _TokenRefused(
                    Outcome(
                        delivered=False,
                        http_status=response.status_code,
                        gone=False,
                        retry=retryable(response.status_code),
                        detail=f"token endpoint: {response.text[:300]}",
                    )
                )
            answer = response.json()
            expires_in = int(answer.get("expires_in", ASSERTION_LIFETIME_S))
            self._token = (answer["access_token"], time.monotonic() + max(0, expires_in - TOKEN_MARGIN_S))
            return self._token[0]


def fcm_message(token: str, message: PushMessage) -> dict[str, Any]:
    """The v1 `Message`: a notification the system shows, the data the app reads (string
    values only, as FCM requires), and per-platform delivery options."""
    data = dict(message.data)
    if message.url:
        data["url"] = message.url
    high = message.urgency == "high"
    android: dict[str, Any] = {"ttl": f"{max(0, message.ttl_s)}s", "priority": "HIGH" if high else "NORMAL"}
    apns_headers = {
        "apns-priority": "5" if message.urgency in ("very-low", "low") else "10",
        "apns-expiration": str(int(time.time()) + max(0, message.ttl_s)),
    }
    if message.tag:
        android["collapse_key"] = message.tag
        android["notification"] = {"tag": message.tag}
        apns_headers["apns-collapse-id"] = message.tag[:64]
    return {
        "token": token,
        "notification": {"title": message.title, "body": message.body},
        "data": data,
        "android": android,
        "apns": {"headers": apns_headers},
    }


def _outcome(response: httpx.Response) -> Outcome:
    status = response.status_code
    if status == 200:
        name = response.json().get("name")
        return Outcome(delivered=True, http_status=status, gone=False, retry=False, detail="accepted", provider_id=name)
    code = _error_code(response)
    return Outcome(
        delivered=False,
        http_status=status,
        # The app was uninstalled or the token expired: FCM will never take it again.
        gone=code == "UNREGISTERED",
        retry=retryable(status),
        detail=f"{code or status}: {response.text[:300]}",
    )


def _error_code(response: httpx.Response) -> str | None:
    """FCM's own code (UNREGISTERED, QUOTA_EXCEEDED, …) from the error's FcmError detail,
    else the error's gRPC status."""
    try:
        error = response.json().get("error", {})
    except ValueError:
        return None
    for detail in error.get("details", []):
        if isinstance(detail, dict) and detail.get("errorCode"):
            return str(detail["errorCode"])
    status = error.get("status")
    return str(status) if status else None
