"""Credentials and authenticated requests.

An access token is refreshed a little before it expires, and once more when the server
answers 401 `invalid-token` anyway (a clock skew, a server restarted with a new key).
Refreshing rotates the refresh token and the server ends the session when an old one
comes back, so refreshes are serialised and a caller that saw a stale token does not
refresh again once another caller has.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from rapport.client.errors import NotSignedIn, error_for
from rapport.client.models import TokenPair

# Problem types after which a refresh may help: the access token expired or was not
# accepted. `token-expired` is accepted too, should the server ever tell expiry apart.
REFRESHABLE = frozenset({"invalid-token", "token-expired"})


class Session:
    """Who the client is: an access token with its refresh token, or an API key."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.api_key: str | None = None
        self.tokens: TokenPair | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def signed_in(self) -> bool:
        return self.api_key is not None or self.tokens is not None

    @property
    def can_refresh(self) -> bool:
        return self.api_key is None and self.tokens is not None

    def adopt(self, tokens: TokenPair) -> None:
        self.api_key = None
        self.tokens = tokens
        # Well before expiry: a minute early, or half-way for very short lifetimes.
        lead = min(60.0, tokens.expires_in / 2)
        self._refresh_at = time.monotonic() + tokens.expires_in - lead

    def use_api_key(self, key: str) -> None:
        self.tokens = None
        self.api_key = key

    def forget(self) -> None:
        self.tokens = None
        self.api_key = None

    def current(self) -> str:
        """The bearer credential as it is now, without refreshing."""
        if self.api_key is not None:
            return self.api_key
        if self.tokens is None:
            raise NotSignedIn()
        return self.tokens.access_token

    async def token(self) -> str:
        """A bearer credential that is not about to expire."""
        if self.can_refresh and time.monotonic() >= self._refresh_at:
            await self.refresh(stale=self.current())
        return self.current()

    async def refresh(self, *, stale: str | None = None) -> TokenPair:
        """Exchange the refresh token for a new pair. With `stale`, the access token the
        caller found wanting: if another caller has replaced it meanwhile, that pair
        is kept and no second refresh is made."""
        async with self._lock:
            if self.tokens is None or self.api_key is not None:
                raise NotSignedIn()
            if stale is not None and self.tokens.access_token != stale:
                return self.tokens
            response = await self.http.post("/v1/auth/refresh", json={"refresh_token": self.tokens.refresh_token})
            if response.status_code == 401:
                # The session is over (revoked, expired, or its token reused): nothing to refresh.
                self.tokens = None
            raise_for_problem(response)
            self.adopt(TokenPair.model_validate_json(response.content))
            return self.tokens  # type: ignore[return-value]  # adopt just set it

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        authenticated: bool = True,
    ) -> httpx.Response:
        """Send a request, with the bearer credential unless `authenticated` is off;
        raise the matching RapportError for any 4xx or 5xx."""
        query = {key: value for key, value in (params or {}).items() if value is not None}
        if not authenticated:
            response = await self.http.request(method, path, json=json, params=query)
            raise_for_problem(response)
            return response
        token = await self.token()
        response = await self._send(method, path, token, json=json, params=query)
        if response.status_code == 401 and self.can_refresh and problem_slug(response) in REFRESHABLE:
            await self.refresh(stale=token)
            response = await self._send(method, path, self.current(), json=json, params=query)
        raise_for_problem(response)
        return response

    async def _send(self, method: str, path: str, token: str, *, json: Any, params: dict[str, Any]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return await self.http.request(method, path, json=json, params=params, headers=headers)


def problem_of(response: httpx.Response) -> dict[str, Any]:
    """The problem+json body of an error answer, or one made from its status line when
    the body is not a problem (a proxy's HTML page, an empty 502)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "type" in body:
        return body
    return {
        "type": "about:blank",
        "status": response.status_code,
        "title": response.reason_phrase,
        "detail": response.text[:500] or response.reason_phrase,
    }


def problem_slug(response: httpx.Response) -> str:
    return str(problem_of(response).get("type", "")).rsplit(":", 1)[-1]


def raise_for_problem(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    retry_after = response.headers.get("Retry-After")
    seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
    raise error_for(problem_of(response), status=response.status_code, retry_after=seconds)
