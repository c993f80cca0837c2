"""`Client`: signing in and the common calls of the HTTP API, plus the stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Literal, TypeVar
from urllib.parse import quote
from uuid import UUID

import httpx
from pydantic import BaseModel

from rapport.client._bodies import message_body, new_client_message_id
from rapport.client._session import Session
from rapport.client._stream import Backoff, Stream
from rapport.client.errors import ServerError, StreamClosed, TwoFactorRequired
from rapport.client.models import (
    ApiKey,
    Contact,
    ContactRequest,
    Conversation,
    ConversationSummary,
    Message,
    ReadState,
    SyncPage,
    TokenPair,
    User,
)

M = TypeVar("M", bound=BaseModel)
DeviceType = Literal["mobile", "tablet", "desktop", "web", "unknown"]
# Waits between the attempts of a send that met a network failure or a 5xx.
SEND_RETRY_DELAYS = (0.2, 1.0)


def _seg(value: UUID | str) -> str:
    """One path segment: ids and emoji may not reach another path."""
    return quote(str(value), safe="")


class Client:
    """An async client of one Rapport server. Sign in with `login` (or pass `api_key`),
    then call the API; access tokens are refreshed by themselves. Use it as
    `async with Client(url) as client:` or call `aclose()`.

    `transport` replaces the network (an `httpx.ASGITransport` to call an app in
    process); the stream always needs a real server, at `stream_url` when it is served
    apart from the API (`ws://` or `wss://` and its path, by default `/v1/stream` of
    `base_url`).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        stream_url: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff: Backoff | None = None,
        heartbeat_timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        scheme = "wss" if self.base_url.startswith("https:") else "ws"
        self.stream_url = stream_url or f"{scheme}:{self.base_url.split(':', 1)[1]}/v1/stream"
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=transport, headers={"User-Agent": "rapport-client"}
        )
        self._session = Session(self._http)
        if api_key is not None:
            self._session.use_api_key(api_key)
        self._backoff = backoff or Backoff()
        self._heartbeat_timeout = heartbeat_timeout
        self._streams: list[Stream] = []

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the streams and the connections (the session stays signed in)."""
        for stream in list(self._streams):
            await stream.close()
        await self._http.aclose()

    # Signing in.

    @property
    def tokens(self) -> TokenPair | None:
        """The current token pair, to keep and give back to `use_tokens` later."""
        return self._session.tokens

    def use_tokens(self, tokens: TokenPair) -> None:
        """Go on with a session signed in earlier (its refresh token still valid)."""
        self._session.adopt(tokens)

    def use_api_key(self, key: str) -> None:
        """Act with an API key (`rk_…`): no session, nothing to refresh."""
        self._session.use_api_key(key)

    async def login(
        self, email: str, password: str, *, device_type: DeviceType = "unknown", device_name: str | None = None
    ) -> TokenPair:
        """Sign in with e-mail and password.

        Raises:
            TwoFactorRequired: the account has two-factor on; finish with `login_totp`.
            Unauthorized: wrong e-mail or password (`invalid-credentials`).
            RateLimited: too many failed sign-ins (`login-throttled`), with `retry_after`.
            Forbidden: the account is disabled or its e-mail not verified.
        """
        body = {"email": email, "password": password, "device_type": device_type, "device_name": device_name}
        answer = (await self._session.request("POST", "/v1/auth/login", json=body, authenticated=False)).json()
        if answer.get("mfa_required"):
            raise TwoFactorRequired(mfa_token=answer["mfa_token"], expires_in=int(answer["expires_in"]))
        return self._signed_in(answer)

    async def login_totp(
        self,
        mfa_token: str,
        *,
        code: str | None = None,
        recovery_code: str | None = None,
        device_type: DeviceType = "unknown",
        device_name: str | None = None,
    ) -> TokenPair:
        """Finish a sign-in that raised TwoFactorRequired, with a TOTP or a recovery code."""
        body = {
            "mfa_token": mfa_token,
            "code": code,
            "recovery_code": recovery_code,
            "device_type": device_type,
            "device_name": device_name,
        }
        answer = (await self._session.request("POST", "/v1/auth/login/totp", json=body, authenticated=False)).json()
        return self._signed_in(answer)

    def _signed_in(self, answer: dict[str, Any]) -> TokenPair:
        tokens = TokenPair.model_validate(answer)
        self._session.adopt(tokens)
        return tokens

    async def refresh(self) -> TokenPair:
        """Exchange the refresh token now (done by itself before expiry otherwise)."""
        return await self._session.refresh()

    async def logout(self) -> None:
        """End the session on the server and forget its tokens; close the streams."""
        for stream in list(self._streams):
            await stream.close()
        try:
            await self._session.request("POST", "/v1/auth/logout")
        finally:
            self._session.forget()

    async def me(self) -> User:
        return await self._get(User, "/v1/auth/me")

    async def create_api_key(self, name: str) -> ApiKey:
        """A key for a bot or a script; its `key` is shown only in this answer."""
        return await self._post(ApiKey, "/v1/auth/api-keys", {"name": name})

    # Conversations.

    def conversations(self, *, page_size: int = 50) -> AsyncIterator[ConversationSummary]:
        """Your conversations, pinned first then by latest activity, page after page."""
        return self._pages(ConversationSummary, "/v1/conversations", {"limit": page_size})

    async def conversation(self, conversation_id: UUID | str) -> Conversation:
        return await self._get(Conversation, f"/v1/conversations/{_seg(conversation_id)}")

    async def create_group(
        self, name: str, participant_ids: Iterable[UUID | str] = (), *, description: str | None = None
    ) -> Conversation:
        """A group with you as owner and these people as members."""
        return await self.create_conversation(
            "group", name=name, description=description, participant_ids=participant_ids
        )

    async def create_direct(self, user_id: UUID | str) -> Conversation:
        """The direct conversation with this person (the existing one if there is one)."""
        return await self.create_conversation("direct", participant_ids=[user_id])

    async def create_conversation(
        self, type: str, *, participant_ids: Iterable[UUID | str] = (), **fields: Any
    ) -> Conversation:
        """Any kind of conversation (`direct`, `group`, `channel`, `broadcast`, `support`);
        `fields` are those of `POST /v1/conversations` (name, description, settings, …)."""
        body = {"type": type, "participant_ids": [str(p) for p in participant_ids]}
        body.update({key: value for key, value in fields.items() if value is not None})
        return await self._post(Conversation, "/v1/conversations", body)

    # Messages.

    async def send(
        self,
        conversation_id: UUID | str,
        content: str,
        *,
        client_message_id: str | None = None,
        type: str = "text",
        reply_to: UUID | str | None = None,
        thread_id: UUID | str | None = None,
        mentions: Iterable[UUID | str] = (),
        content_metadata: Mapping[str, Any] | None = None,
    ) -> Message:
        """Send a message. A network failure or a 5xx is retried with the same
        `client_message_id` (made here unless given), so the message is made once.

        Raises:
            NotFound: no such conversation, or you take no part in it.
            Forbidden: you may not send here (`cannot-send`).
            ValidationError: the body is refused, field by field.
        """
        body = message_body(
            content,
            client_message_id=client_message_id or new_client_message_id(),
            type=type,
            reply_to=reply_to,
            thread_id=thread_id,
            mentions=mentions,
            content_metadata=content_metadata,
        )
        path = f"/v1/conversations/{_seg(conversation_id)}/messages"
        for delay in SEND_RETRY_DELAYS:
            try:
                return await self._post(Message, path, body)
            except (httpx.TransportError, ServerError):
                await asyncio.sleep(delay)
        return await self._post(Message, path, body)

    def history(
        self,
        conversation_id: UUID | str,
        *,
        before: UUID | str | None = None,
        after: UUID | str | None = None,
        page_size: int = 50,
    ) -> AsyncIterator[Message]:
        """The conversation's messages you may see, page after page: newest first going
        back (from the newest, or from just before `before`), or, with `after`, oldest
        first going forward from just after that message."""
        return self._history(conversation_id, before=before, after=after, page_size=page_size)

    async def _history(
        self, conversation_id: UUID | str, *, before: UUID | str | None, after: UUID | str | None, page_size: int
    ) -> AsyncIterator[Message]:
        if before is not None and after is not None:
            raise ValueError("give `before` or `after`, not both")
        direction = "after" if after is not None else "before"
        start = after if after is not None else before
        anchor = None if start is None else str(start)
        path = f"/v1/conversations/{_seg(conversation_id)}/messages"
        while True:
            page = (await self._session.request("GET", path, params={"limit": page_size, direction: anchor})).json()
            for item in page["items"]:
                yield Message.model_validate(item)
            anchor = page.get("next")
            if not anchor:
                return

    async def message(self, conversation_id: UUID | str, message_id: UUID | str) -> Message:
        return await self._get(Message, self._message_path(conversation_id, message_id))

    async def edit(
        self,
        conversation_id: UUID | str,
        message_id: UUID | str,
        content: str,
        *,
        mentions: Iterable[UUID | str] | None = None,
        content_metadata: Mapping[str, Any] | None = None,
    ) -> Message:
        """Edit your message (the server keeps the earlier versions)."""
        body: dict[str, Any] = {"content": content}
        if mentions is not None:
            body["mentions"] = [str(user) for user in mentions]
        if content_metadata is not None:
            body["content_metadata"] = dict(content_metadata)
        response = await self._session.request("PATCH", self._message_path(conversation_id, message_id), json=body)
        return Message.model_validate_json(response.content)

    async def delete(self, conversation_id: UUID | str, message_id: UUID | str) -> None:
        """Delete a message for everyone (yours, or anyone's as a moderator)."""
        await self._session.request("DELETE", self._message_path(conversation_id, message_id))

    async def react(self, conversation_id: UUID | str, message_id: UUID | str, emoji: str) -> None:
        await self._session.request("PUT", f"{self._message_path(conversation_id, message_id)}/reactions/{_seg(emoji)}")

    async def unreact(self, conversation_id: UUID | str, message_id: UUID | str, emoji: str) -> None:
        path = f"{self._message_path(conversation_id, message_id)}/reactions/{_seg(emoji)}"
        await self._session.request("DELETE", path)

    async def mark_read(self, conversation_id: UUID | str, message_id: UUID | str) -> ReadState:
        """Everything up to this message is read (the marker never moves back)."""
        path = f"/v1/conversations/{_seg(conversation_id)}/read"
        return await self._post(ReadState, path, {"message_id": str(message_id)})

    @staticmethod
    def _message_path(conversation_id: UUID | str, message_id: UUID | str) -> str:
        return f"/v1/conversations/{_seg(conversation_id)}/messages/{_seg(message_id)}"

    # Events.

    async def sync(self, since: int = 0, *, limit: int = 100) -> SyncPage:
        """The events you may receive after `since`, in order; send `position` back as
        the next `since` (at once while `more`; reload state when `resync`)."""
        response = await self._session.request("GET", "/v1/sync", params={"since": since, "limit": limit})
        return SyncPage.model_validate_json(response.content)

    def stream(self, since: int | None = None, *, buffer: int = 1000, ack_timeout: float = 30.0) -> Stream:
        """Follow `/v1/stream`: every event after `since` (after now when None), then
        live, across reconnections. Iterate it; `async with` it to close it at the end.
        At most `buffer` events wait unread before the socket stops being read; a frame
        sent over it fails with TimeoutError when not acknowledged within `ack_timeout`."""
        stream = Stream(
            self._session,
            self.stream_url,
            since=since,
            backoff=self._backoff,
            heartbeat_timeout=self._heartbeat_timeout,
            buffer=buffer,
            ack_timeout=ack_timeout,
            on_close=self._forget_stream,
        )
        self._streams.append(stream)
        return stream

    async def stream_send(self, conversation_id: UUID | str, content: str, **options: Any) -> Message:
        """Send a message over the newest open stream (see `Stream.send_message`).

        Raises:
            StreamClosed: no stream is open.
        """
        if not self._streams:
            raise StreamClosed("no-stream", "Open a stream with Client.stream() first.")
        return await self._streams[-1].send_message(conversation_id, content, **options)

    def _forget_stream(self, stream: Stream) -> None:
        if stream in self._streams:
            self._streams.remove(stream)

    # Contacts.

    def contacts(self, *, favorites: bool = False, page_size: int = 50) -> AsyncIterator[Contact]:
        params = {"limit": page_size, "favorites": "true" if favorites else None}
        return self._pages(Contact, "/v1/contacts", params)

    async def add_contact(self, **fields: Any) -> Contact:
        """A contact with or without an account: first_name, last_name, email, phone,
        relationship, nickname, notes."""
        return await self._post(Contact, "/v1/contacts", fields)

    async def delete_contact(self, contact_id: UUID | str) -> None:
        await self._session.request("DELETE", f"/v1/contacts/{_seg(contact_id)}")

    def contact_requests(
        self, *, direction: Literal["incoming", "outgoing"] = "incoming", page_size: int = 50
    ) -> AsyncIterator[ContactRequest]:
        """Pending contact requests made to you (or, `outgoing`, by you)."""
        return self._pages(ContactRequest, "/v1/contact-requests", {"direction": direction, "limit": page_size})

    async def request_contact(self, user_id: UUID | str, *, message: str | None = None) -> ContactRequest:
        """Ask someone to become a contact (at once, if they asked you too)."""
        body = {"user_id": str(user_id), "message": message}
        return await self._post(ContactRequest, "/v1/contact-requests", body)

    async def answer_contact_request(
        self, request_id: UUID | str, answer: Literal["accept", "reject", "cancel"]
    ) -> ContactRequest:
        return await self._post(ContactRequest, f"/v1/contact-requests/{_seg(request_id)}/{answer}", None)

    # Plumbing.

    async def _get(self, model: type[M], path: str) -> M:
        return model.model_validate_json((await self._session.request("GET", path)).content)

    async def _post(self, model: type[M], path: str, body: Any) -> M:
        return model.model_validate_json((await self._session.request("POST", path, json=body)).content)

    async def _pages(self, model: type[M], path: str, params: dict[str, Any]) -> AsyncIterator[M]:
        cursor: str | None = None
        while True:
            page = (await self._session.request("GET", path, params={**params, "cursor": cursor})).json()
            for item in page["items"]:
                yield model.model_validate(item)
            cursor = page.get("next")
            if not cursor:
                return
