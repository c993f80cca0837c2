"""The client's HTTP calls against a real server: typed answers, pagination, idempotent
sends, and errors as one hierarchy carrying the problem."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pydantic
import pytest

from rapport.client import (
    Client,
    Conflict,
    Conversation,
    Forbidden,
    Message,
    NotFound,
    RapportError,
    RateLimited,
    Unauthorized,
    ValidationError,
)
from tests.support import Persona

pytestmark = pytest.mark.module_database


async def test_me_is_the_signed_in_account(alice_client: Client, alice: Persona) -> None:
    me = await alice_client.me()
    assert (str(me.id), me.email, me.email_verified) == (alice.user_id, alice.email, True)


async def test_groups_and_direct_conversations(alice_client: Client, bob: Persona, carol: Persona) -> None:
    group = await alice_client.create_group("Weekend", [bob.user_id, carol.user_id], description="Plans")
    assert isinstance(group, Conversation)
    assert (group.type, group.name, group.member_count) == ("group", "Weekend", 3)
    assert group.membership is not None and group.membership.role == "owner"

    direct = await alice_client.create_direct(bob.user_id)
    again = await alice_client.create_direct(bob.user_id)
    assert direct.id == again.id
    assert str(direct.direct_with) == bob.user_id
    assert (await alice_client.conversation(group.id)).name == "Weekend"


async def test_the_conversation_list_iterates_every_page(alice_client: Client, bob: Persona) -> None:
    made = {(await alice_client.create_group(f"Room {n}", [bob.user_id])).id for n in range(5)}
    listed = [c.id async for c in alice_client.conversations(page_size=2)]
    assert sorted(listed) == sorted(made)  # each once, across three pages


async def test_history_goes_back_and_forward(alice_client: Client, bob: Persona) -> None:
    room = await alice_client.create_group("History", [bob.user_id])
    sent = [await alice_client.send(room.id, f"message {n}") for n in range(5)]

    older = [m.content async for m in alice_client.history(room.id, page_size=2)]
    assert older == [f"message {n}" for n in reversed(range(5))]
    before = [m.content async for m in alice_client.history(room.id, before=sent[3].id, page_size=2)]
    assert before == ["message 2", "message 1", "message 0"]
    newer = [m.content async for m in alice_client.history(room.id, after=sent[0].id, page_size=3)]
    assert newer == ["message 1", "message 2", "message 3", "message 4"]


async def test_a_send_retried_with_its_client_message_id_is_made_once(alice_client: Client, bob: Persona) -> None:
    room = await alice_client.create_group("Once", [bob.user_id])
    first = await alice_client.send(room.id, "hello")
    assert first.client_message_id  # made by the client
    again = await alice_client.send(room.id, "hello", client_message_id=first.client_message_id)
    assert again.id == first.id
    assert [m.id async for m in alice_client.history(room.id)] == [first.id]


class LoseFirstAnswer(httpx.AsyncBaseTransport):
    """The network: the first message POST reaches the server, its answer never comes back."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path.endswith("/messages") and not self.lost:
            self.lost += 1
            await response.aclose()
            raise httpx.ReadError("connection reset", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_send_whose_answer_is_lost_is_retried_without_a_duplicate(
    server_url: str, alice: Persona, bob: Persona
) -> None:
    network = LoseFirstAnswer()
    async with Client(server_url, transport=network) as client:
        await client.login(alice.email, alice.password)
        room = await client.create_group("Flaky", [bob.user_id])
        message = await client.send(room.id, "only once")
        assert network.lost == 1
        assert [(m.id, m.content) async for m in client.history(room.id)] == [(message.id, "only once")]


async def test_edit_react_read_and_delete(alice_client: Client, bob_client: Client, bob: Persona) -> None:
    room = await alice_client.create_group("Edits", [bob.user_id])
    message = await alice_client.send(room.id, "draft")

    edited = await alice_client.edit(room.id, message.id, "final")
    assert (edited.content, edited.is_edited) == ("final", True)

    await bob_client.react(room.id, message.id, "👍")
    seen = await bob_client.message(room.id, message.id)
    assert [(r.emoji, r.count, r.reacted) for r in seen.reactions] == [("👍", 1, True)]
    await bob_client.unreact(room.id, message.id, "👍")
    assert (await bob_client.message(room.id, message.id)).reactions == ()

    state = await bob_client.mark_read(room.id, message.id)
    assert (state.read_seq, state.unread_count) == (message.seq, 0)

    await alice_client.delete(room.id, message.id)
    gone = await bob_client.message(room.id, message.id)
    assert gone.is_deleted and gone.content == ""


async def test_sync_lists_the_events_after_a_position(alice_client: Client, bob_client: Client, bob: Persona) -> None:
    start = await bob_client.sync()
    while start.more:
        start = await bob_client.sync(start.position)
    room = await alice_client.create_group("Synced", [bob.user_id])
    message = await alice_client.send(room.id, "hi bob")

    # An event takes its position a moment after its commit (the outbox keeps them in order).
    async with asyncio.timeout(5):
        while True:
            page = await bob_client.sync(start.position)
            created = [e for e in page.events if e.type == "message.created"]
            if created:
                break
            await asyncio.sleep(0.02)
    assert [e.payload["message_id"] for e in created] == [str(message.id)]
    assert created[0].scope.id == room.id
    positions = [e.position for e in page.events]
    assert positions == sorted(positions) and page.position >= positions[-1]


async def test_contacts(alice_client: Client, bob_client: Client, alice: Persona, bob: Persona) -> None:
    asked = await alice_client.request_contact(bob.user_id, message="Hi Bob")
    assert [r.id async for r in bob_client.contact_requests()] == [asked.id]
    assert [r.id async for r in alice_client.contact_requests(direction="outgoing")] == [asked.id]
    accepted = await bob_client.answer_contact_request(asked.id, "accept")
    assert accepted.status == "accepted"
    assert [str(c.contact_user_id) async for c in alice_client.contacts()] == [bob.user_id]

    lily = await alice_client.add_contact(first_name="Lily", relationship="My Child")
    assert (lily.first_name, lily.contact_user_id) == ("Lily", None)
    assert lily.id in {c.id async for c in alice_client.contacts()}
    await alice_client.delete_contact(lily.id)
    assert [str(c.contact_user_id) async for c in alice_client.contacts()] == [bob.user_id]


async def test_errors_carry_the_problem(alice_client: Client, bob_client: Client, carol: Persona) -> None:
    with pytest.raises(NotFound) as missing:
        await alice_client.conversation(uuid.uuid4())
    assert (missing.value.status, missing.value.slug) == (404, "conversation-not-found")
    assert missing.value.type == "urn:rapport:problem:conversation-not-found"
    assert missing.value.detail and missing.value.problem["title"]

    with pytest.raises(ValidationError) as invalid:
        await alice_client.create_group("", [carol.user_id])
    assert invalid.value.status == 422 and invalid.value.errors

    await alice_client.request_contact(carol.user_id)
    with pytest.raises(Conflict) as twice:
        await alice_client.request_contact(carol.user_id)
    assert twice.value.slug == "contact-request-pending"

    bob = await bob_client.me()
    broadcast = await alice_client.create_conversation("broadcast", name="News", participant_ids=[bob.id])
    with pytest.raises(Forbidden) as refused:
        await bob_client.send(broadcast.id, "may I?")
    assert refused.value.slug == "cannot-send"
    assert isinstance(refused.value, RapportError)


async def test_too_many_failed_sign_ins_are_rate_limited(server_url: str, carol: Persona) -> None:
    async with Client(server_url) as client:
        for _ in range(10):
            try:
                await client.login(carol.email, "not the password at all")
            except Unauthorized as wrong:
                assert wrong.slug == "invalid-credentials"
            except RateLimited as limited:
                assert limited.slug == "login-throttled"
                assert limited.retry_after is not None and limited.retry_after > 0
                return
        pytest.fail("ten wrong passwords in a row were never rate limited")


async def test_a_message_answer_is_a_frozen_model(alice_client: Client, bob: Persona) -> None:
    room = await alice_client.create_group("Frozen", [bob.user_id])
    message = await alice_client.send(room.id, "x")
    assert isinstance(message, Message)
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        message.content = "y"  # type: ignore[misc]
