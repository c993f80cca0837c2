"""The catalogue's chat permissions in the support desk, each granted, not granted and
revoked: chat:room:join (joining a room), chat:message:send and chat:file:upload (an agent
posting and attaching in a room they are not the customer of), chat:robot:invoke
(bringing a bot into a room), chat:message:read (a supervisor reading a room). The
customer, their guests and ordinary conversations need none of them; chat:room:create
is no longer in the catalogue.

Roles made here hold one permission each, so that one can be taken away alone: Quinn
works the T1 queue (`queue-t1`) and is given the rest a role at a time."""

from __future__ import annotations

import io
from typing import Any
from uuid import UUID

import httpx
import pytest
from PIL import Image

from rapport.access import service as access_service
from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime
from tests.messaging.support import make_conversation
from tests.support import Persona, problem_type
from tests.support_desk.support import (
    ROOMS,
    Desk,
    as_system,
    events,
    grant,
    guest_link,
    guest_persona,
    join,
    ok,
    open_room,
    redeem,
    send,
)

pytestmark = pytest.mark.module_database


def refused(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert (response.status_code, problem_type(response)) == (status, slug), response.text
    body: dict[str, Any] = response.json()
    return body


def lacks(response: httpx.Response, permission: str) -> None:
    body = refused(response, 403, "permission-required")
    assert body["permission"] == permission


async def make_role(runtime: Runtime, name: str, *permissions: str) -> str:
    """A role holding just these permissions, made as system work."""
    await as_system(runtime, "INSERT INTO access.roles (id, name) VALUES (kernel.uuid7_like(), :n)", n=name)
    for permission in permissions:
        await as_system(
            runtime,
            "INSERT INTO access.role_permissions (role_id, permission) SELECT id, :p FROM access.roles WHERE name = :n",
            n=name,
            p=permission,
        )
    return name


async def revoke(runtime: Runtime, persona: Persona, role: str, conversation_id: str | None = None) -> None:
    async with system_transaction(runtime.system_engine) as db:
        assert await access_service.revoke_role_system(
            db, UUID(persona.user_id), role, UUID(conversation_id) if conversation_id else None
        )


@pytest.fixture
async def quinn(make_persona: Any, runtime: Runtime) -> Persona:
    """An agent of T1 holding nothing else yet."""
    return await grant(runtime, await make_persona("quinn"), await make_role(runtime, "queue-t1", "support:queue:t1"))


async def post(client: httpx.AsyncClient, sender: Persona, room_id: str, **fields: Any) -> httpx.Response:
    return await client.post(
        f"/v1/conversations/{room_id}/messages", headers=sender.headers, json={"content": "hello", **fields}
    )


async def posted(client: httpx.AsyncClient, sender: Persona, room_id: Any, **fields: Any) -> dict[str, Any]:
    return ok(await post(client, sender, str(room_id), **fields), 201)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


async def upload(client: httpx.AsyncClient, persona: Persona) -> str:
    made = await client.post("/v1/media", headers=persona.headers, files={"file": ("shot.png", _png(), "image/png")})
    assert made.status_code == 201, made.text
    file_id: str = made.json()["id"]
    return file_id


async def make_bot(client: httpx.AsyncClient, owner: Persona, **fields: Any) -> str:
    made = await client.post(
        "/v1/bots", headers=owner.headers, json={"name": "Helper", "webhook_url": "http://127.0.0.1:9/hook", **fields}
    )
    assert made.status_code == 201, made.text
    bot_id: str = made.json()["id"]
    return bot_id


async def add(client: httpx.AsyncClient, persona: Persona, room_id: str, user_id: str) -> httpx.Response:
    return await client.post(
        f"/v1/conversations/{room_id}/participants", headers=persona.headers, json={"user_id": user_id}
    )


# --- chat:room:join ----------------------------------------------------------------------------


async def test_an_agent_of_the_level_without_chat_room_join_does_not_join(
    client: httpx.AsyncClient, desk: Desk, quinn: Persona
) -> None:
    room = await open_room(client, desk.alice)

    lacks(await join(client, quinn, room["conversation_id"]), "chat:room:join")
    ok(await join(client, desk.tess, room["conversation_id"]))


async def test_chat_room_join_granted_for_one_room_joins_that_room_alone(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk, quinn: Persona
) -> None:
    first, second = await open_room(client, desk.alice), await open_room(client, desk.alice)
    await grant(runtime, quinn, await make_role(runtime, "joiner", "chat:room:join"), first["conversation_id"])

    ok(await join(client, quinn, first["conversation_id"]))
    lacks(await join(client, quinn, second["conversation_id"]), "chat:room:join")


async def test_revoking_chat_room_join_stops_the_next_join(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk, quinn: Persona
) -> None:
    first, second = await open_room(client, desk.alice), await open_room(client, desk.alice)
    await grant(runtime, quinn, await make_role(runtime, "joiner", "chat:room:join"))
    ok(await join(client, quinn, first["conversation_id"]))

    await revoke(runtime, quinn, "joiner")

    lacks(await join(client, quinn, second["conversation_id"]), "chat:room:join")


# --- chat:message:send ---------------------------------------------------------------------------


async def test_an_agent_in_the_room_without_chat_message_send_cannot_post(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk, quinn: Persona
) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    await grant(runtime, quinn, await make_role(runtime, "joiner", "chat:room:join"))
    ok(await join(client, quinn, room_id))

    lacks(await post(client, quinn, room_id), "chat:message:send")
    assert await as_system(runtime, "SELECT id FROM messaging.messages WHERE conversation_id = :c", c=room_id) == []


async def test_an_agent_holding_chat_message_send_posts(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    ok(await join(client, desk.tess, room_id))

    sent = await send(client, desk.tess, room_id, "How can I help?")

    assert sent["sender_id"] == desk.tess.user_id


async def test_revoking_chat_message_send_stops_an_agent_posting(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk
) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    ok(await join(client, desk.tess, room_id))
    await send(client, desk.tess, room_id, "Looking into it")

    await revoke(runtime, desk.tess, "support-t1")

    lacks(await post(client, desk.tess, room_id), "chat:message:send")


async def test_chat_message_send_for_one_room_posts_there_alone(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk, quinn: Persona
) -> None:
    first = (await open_room(client, desk.alice))["conversation_id"]
    second = (await open_room(client, desk.alice))["conversation_id"]
    await grant(runtime, quinn, await make_role(runtime, "joiner", "chat:room:join"))
    sender = await make_role(runtime, "sender", "chat:message:send")
    await grant(runtime, quinn, sender, first)
    ok(await join(client, quinn, first))
    ok(await join(client, quinn, second))

    await send(client, quinn, first)
    lacks(await post(client, quinn, second), "chat:message:send")


async def test_the_customer_and_a_guest_post_without_any_grant(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    link = await guest_link(client, desk.alice, room_id)
    guest = guest_persona(ok(await redeem(client, link["token"]), 201))

    await send(client, desk.alice, room_id, "Still waiting")
    await send(client, guest, room_id, "Me too")


async def test_ordinary_conversations_need_no_grant(client: httpx.AsyncClient, app_engine: Any, desk: Desk) -> None:
    group = await make_conversation(app_engine, desk.mallory, desk.alice)

    await send(client, desk.mallory, group, "No grant needed here")
    await posted(client, desk.alice, group, content="Nor here", attachments=[await upload(client, desk.alice)])


# --- chat:file:upload ---------------------------------------------------------------------------


async def test_an_agent_holding_chat_file_upload_attaches(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    ok(await join(client, desk.tess, room_id))

    sent = await posted(client, desk.tess, room_id, content="See this", attachments=[await upload(client, desk.tess)])

    assert len(sent["attachments"]) == 1


async def test_an_agent_without_chat_file_upload_posts_but_does_not_attach(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk, quinn: Persona
) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    await grant(runtime, quinn, await make_role(runtime, "writer", "chat:room:join", "chat:message:send"))
    ok(await join(client, quinn, room_id))
    shot = await upload(client, quinn)

    lacks(await post(client, quinn, room_id, attachments=[shot]), "chat:file:upload")
    await send(client, quinn, room_id, "Text only")


async def test_revoking_chat_file_upload_stops_an_agent_attaching(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk, quinn: Persona
) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    await grant(runtime, quinn, await make_role(runtime, "writer", "chat:room:join", "chat:message:send"))
    await grant(runtime, quinn, await make_role(runtime, "uploader", "chat:file:upload"))
    ok(await join(client, quinn, room_id))
    await posted(client, quinn, room_id, attachments=[await upload(client, quinn)])

    await revoke(runtime, quinn, "uploader")

    lacks(await post(client, quinn, room_id, attachments=[await upload(client, quinn)]), "chat:file:upload")


async def test_the_customer_attaches_without_any_grant(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]

    sent = await posted(
        client, desk.alice, room_id, content="The error", attachments=[await upload(client, desk.alice)]
    )

    assert len(sent["attachments"]) == 1


# --- chat:robot:invoke --------------------------------------------------------------------------


async def bring(client: httpx.AsyncClient, persona: Persona, room_id: str, bot_id: str) -> httpx.Response:
    return await client.post(f"{ROOMS}/{room_id}/bots", headers=persona.headers, json={"bot_id": bot_id})


async def members(runtime: Runtime, room_id: str) -> set[str]:
    rows = await as_system(
        runtime,
        "SELECT user_id::text AS id FROM messaging.participants WHERE conversation_id = :c AND status = 'active'",
        c=room_id,
    )
    return {row.id for row in rows}


async def test_an_agent_holding_chat_robot_invoke_brings_their_bot_in(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk
) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    await grant(runtime, desk.tess, "bot-developer")
    bot = await make_bot(client, desk.tess)
    ok(await join(client, desk.tess, room_id))

    ok(await bring(client, desk.tess, room_id, bot))

    assert bot in await members(runtime, room_id)
    [(scope, payload)] = [(scope, body) for kind, scope, body in await events(runtime) if kind == "support.bot.added"]
    assert (scope, payload["bot_id"]) == (room_id, bot)


async def test_without_chat_robot_invoke_no_bot_comes_into_a_support_room(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk, quinn: Persona
) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    await grant(runtime, quinn, await make_role(runtime, "joiner", "chat:room:join"))
    await grant(runtime, quinn, "bot-developer")
    await grant(runtime, desk.alice, "bot-developer")
    ok(await join(client, quinn, room_id))

    lacks(await bring(client, quinn, room_id, await make_bot(client, quinn)), "chat:robot:invoke")
    # The customer too: a bot hears the agents, so the desk decides who brings one.
    lacks(await bring(client, desk.alice, room_id, await make_bot(client, desk.alice)), "chat:robot:invoke")
    assert await members(runtime, room_id) == {desk.alice.user_id, quinn.user_id}


async def test_chat_robot_invoke_brings_in_only_a_bot_one_manages(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk
) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    await grant(runtime, desk.theo, "bot-developer")
    theos = await make_bot(client, desk.theo)
    ok(await join(client, desk.tess, room_id))

    refused(await bring(client, desk.tess, room_id, theos), 404, "bot-not-found")


async def test_revoking_chat_robot_invoke_stops_bringing_bots_in(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk, quinn: Persona
) -> None:
    first = (await open_room(client, desk.alice))["conversation_id"]
    second = (await open_room(client, desk.alice))["conversation_id"]
    await grant(runtime, quinn, await make_role(runtime, "joiner", "chat:room:join"))
    await grant(runtime, quinn, await make_role(runtime, "invoker", "chat:robot:invoke"))
    await grant(runtime, quinn, "bot-developer")
    bot = await make_bot(client, quinn)
    ok(await join(client, quinn, first))
    ok(await join(client, quinn, second))
    ok(await bring(client, quinn, first, bot))

    await revoke(runtime, quinn, "invoker")

    lacks(await bring(client, quinn, second, bot), "chat:robot:invoke")
    assert bot not in await members(runtime, second)


async def test_bots_outside_the_desk_need_no_chat_robot_invoke(
    client: httpx.AsyncClient, runtime: Runtime, app_engine: Any, desk: Desk
) -> None:
    group = await make_conversation(app_engine, desk.mallory, desk.alice)
    await grant(runtime, desk.mallory, "bot-developer")

    ok(await add(client, desk.mallory, str(group), await make_bot(client, desk.mallory)), 201)


# --- chat:message:read --------------------------------------------------------------------------


async def observe(client: httpx.AsyncClient, persona: Persona, room_id: str) -> httpx.Response:
    return await client.get(f"{ROOMS}/{room_id}/messages", headers=persona.headers)


async def test_observing_without_chat_message_read_shows_no_messages(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk, make_persona: Any
) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    await send(client, desk.alice, room_id, "Private details")
    olga = await grant(
        runtime, await make_persona("olga"), await make_role(runtime, "watcher", "supervisor:chat:observe")
    )

    lacks(await observe(client, olga, room_id), "chat:message:read")
    ok(await client.get(f"{ROOMS}/{room_id}", headers=olga.headers))
    assert len(ok(await observe(client, desk.sam, room_id))["items"]) == 1


async def test_revoking_chat_message_read_stops_a_supervisor_reading(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk, make_persona: Any
) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    olga = await grant(
        runtime, await make_persona("olga"), await make_role(runtime, "watcher", "supervisor:chat:observe")
    )
    await grant(runtime, olga, await make_role(runtime, "reader", "chat:message:read"), room_id)
    ok(await observe(client, olga, room_id))

    await revoke(runtime, olga, "reader", room_id)

    lacks(await observe(client, olga, room_id), "chat:message:read")


# --- chat:room:create -------------------------------------------------------------------------


async def test_chat_room_create_is_no_longer_a_permission(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk
) -> None:
    names = {row.name for row in await as_system(runtime, "SELECT name FROM access.permissions")}

    assert "chat:room:create" not in names
    assert {
        "chat:room:join",
        "chat:message:send",
        "chat:message:read",
        "chat:robot:invoke",
        "chat:file:upload",
    } <= names
    # Opening a room needs no grant.
    await open_room(client, desk.mallory)
