"""Guests: someone without an account joins one support room through a link its customer
or an agent in it made. The link expires, admits a number of guests (one by default), and
its token is shown once and kept only as its HMAC-SHA256 under a key derived from the
server's secret, so that a copy of the table does not let anyone test guessed tokens;
redeeming it makes a guest account (identity's, kind `guest`) with a session, named as the
guest asked, and a participant of that room alone, in the role `guest`. A room closed to
guests admits none, whatever links exist; when the room closes, its guests' sessions end
and its links are revoked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity import service as identity_service
from rapport.kernel.actor import Actor, Client
from rapport.kernel.crypto import Keyring, random_token
from rapport.kernel.db import AnyRow
from rapport.kernel.ids import uuid7
from rapport.kernel.pagination import MAX_LIMIT, Page, PageRequest, keyset, make_page
from rapport.kernel.runtime import Runtime
from rapport.modules.support import _conversations
from rapport.modules.support._rooms import access_room, announce, customer_or_agent, load_room, room_out
from rapport.modules.support.errors import (
    GuestLinkExpired,
    GuestLinkNotFound,
    GuestLinkUsed,
    GuestsNotAllowed,
    RoomClosed,
)
from rapport.modules.support.models import guest_links, guests
from rapport.modules.support.schemas import (
    GuestLinkCreate,
    GuestLinkCreated,
    GuestLinkOut,
    GuestSession,
    GuestSessionCreate,
)
from rapport.social import service as social_service

TOKEN_PREFIX = "rsg_"
# The purpose the key of the tokens' HMAC is derived for (rapport.kernel.crypto.Keyring).
TOKEN_KEY_PURPOSE = "support-guest-link"


@dataclass(frozen=True)
class LinkPermit:
    actor: Actor
    conversation_id: UUID


def token_hash(keyring: Keyring, token: str) -> bytes:
    """What is kept of a link's token: its HMAC-SHA256 under the server's key for links."""
    return keyring.mac(TOKEN_KEY_PURPOSE, token)


def _admits_guests(room: AnyRow) -> None:
    if room.status == "closed":
        raise RoomClosed()
    if not room.guests_allowed:
        raise GuestsNotAllowed()


async def authorise_guest_link(db: AsyncConnection, *, actor: Actor, conversation_id: UUID) -> LinkPermit:
    """Raises:
    RoomNotFound: not a room the actor sees.
    NotRoomMember: the actor is neither its customer nor an agent taking part in it.
    RoomClosed: it is closed.
    GuestsNotAllowed: it admits no guests.
    """
    room = await access_room(db, actor=actor, conversation_id=conversation_id)
    await customer_or_agent(db, actor=actor, room=room)
    _admits_guests(room)
    return LinkPermit(actor=actor, conversation_id=conversation_id)


async def do_create_guest_link(
    db: AsyncConnection, *, rt: Runtime, permit: LinkPermit, body: GuestLinkCreate
) -> GuestLinkCreated:
    """Make a guest link (system work); its token is in the answer, this once.

    Raises:
        RoomClosed, GuestsNotAllowed: the room changed meanwhile.
    """
    _admits_guests(await load_room(db, conversation_id=permit.conversation_id))
    token = random_token(TOKEN_PREFIX)
    row = (
        await db.execute(
            insert(guest_links)
            .values(
                id=uuid7(),
                conversation_id=permit.conversation_id,
                token_hash=token_hash(rt.keyring, token),
                created_by=permit.actor.user_id,
                # The database's clock: the one redeeming compares with.
                expires_at=func.now() + timedelta(seconds=body.expires_in_seconds),
                max_uses=body.max_uses,
            )
            .returning(guest_links)
        )
    ).one()
    return GuestLinkCreated(**GuestLinkOut.model_validate(row._mapping).model_dump(), token=token)


async def list_guest_links(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, page: PageRequest
) -> Page[GuestLinkOut]:
    """The links to a room that the actor made, newest first.

    Raises:
        RoomNotFound: not a room the actor sees.
    """
    await access_room(db, actor=actor, conversation_id=conversation_id)
    query = select(guest_links).where(
        guest_links.c.conversation_id == conversation_id, guest_links.c.created_by == actor.user_id
    )
    rows = (await db.execute(keyset(query, guest_links.c.id, page))).all()
    return make_page([GuestLinkOut.model_validate(row._mapping) for row in rows], page)


async def authorise_revoke_guest_link(db: AsyncConnection, *, actor: Actor, link_id: UUID) -> LinkPermit:
    """Raises:
    GuestLinkNotFound: no link of the actor's has this id.
    """
    row = (
        await db.execute(
            select(guest_links.c.conversation_id).where(
                guest_links.c.id == link_id, guest_links.c.created_by == actor.user_id
            )
        )
    ).one_or_none()
    if row is None:
        raise GuestLinkNotFound("You made no guest link with this id.")
    return LinkPermit(actor=actor, conversation_id=row.conversation_id)


async def do_revoke_guest_link(db: AsyncConnection, *, permit: LinkPermit, link_id: UUID) -> None:
    """Revoke a link (system work): it admits nobody more; its guests stay. Revoking
    again changes nothing."""
    await db.execute(
        update(guest_links)
        .where(guest_links.c.id == link_id, guest_links.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


async def do_redeem_guest_link(
    db: AsyncConnection, *, rt: Runtime, client: Client, body: GuestSessionCreate
) -> GuestSession:
    """Redeem a guest link (system work, for someone not signed in): a guest account named
    `display_name`, signed in, a guest of the link's room. Publishes `support.guest.joined`.

    Raises:
        GuestLinkNotFound: no live link has this token (wrong, or revoked).
        GuestLinkExpired: its time has passed.
        GuestLinkUsed: it admitted as many guests as it may.
        RoomClosed: the room is closed (which revoked the link).
        GuestsNotAllowed: the room admits no guests any more.
    """
    link = (
        await db.execute(
            select(guest_links, (guest_links.c.expires_at <= func.now()).label("expired"))
            .where(guest_links.c.token_hash == token_hash(rt.keyring, body.token))
            .with_for_update(of=guest_links)
        )
    ).one_or_none()
    if link is None:
        raise GuestLinkNotFound()
    if link.revoked_at is not None:
        # Closing the room revoked it: its holder is told the room closed, not that the
        # token is wrong.
        if (await load_room(db, conversation_id=link.conversation_id)).status == "closed":
            raise RoomClosed()
        raise GuestLinkNotFound()
    if link.expired:
        raise GuestLinkExpired()
    if link.uses >= link.max_uses:
        raise GuestLinkUsed()
    room = await load_room(db, conversation_id=link.conversation_id, lock=True)
    _admits_guests(room)
    guest_id, tokens = await identity_service.do_create_guest(db, rt=rt, client=client)
    guest = Actor(user_id=guest_id)
    await social_service.do_update_profile(
        db, actor=guest, changes=social_service.ProfileUpdate(display_name=body.display_name)
    )
    await _conversations.enrol(db, conversation_id=room.conversation_id, user_id=guest_id, role="guest")
    await db.execute(
        insert(guests).values(
            user_id=guest_id, conversation_id=room.conversation_id, link_id=link.id, display_name=body.display_name
        )
    )
    await db.execute(update(guest_links).where(guest_links.c.id == link.id).values(uses=guest_links.c.uses + 1))
    await announce(db, room=room, type="support.guest.joined", actor_id=None, guest_id=guest_id)
    return GuestSession(tokens=tokens, room=room_out(room))


async def end_guests(db: AsyncConnection, *, conversation_id: UUID) -> list[UUID]:
    """The room closes to its guests (system work): its links still open are revoked, and
    each guest's sessions and any API keys they made stop working at once (identity tells
    their devices, whose sockets close). Returns the room's guests; ending again changes
    nothing."""
    await db.execute(
        update(guest_links)
        .where(guest_links.c.conversation_id == conversation_id, guest_links.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    found = await db.execute(
        select(guests.c.user_id).where(guests.c.conversation_id == conversation_id).order_by(guests.c.user_id)
    )
    ended = list(found.scalars())
    for guest_id in ended:
        await identity_service.revoke_sessions(db, user_id=guest_id, reason="revoked")
        await _revoke_api_keys(db, guest=Actor(user_id=guest_id))
    return ended


async def _revoke_api_keys(db: AsyncConnection, *, guest: Actor) -> None:
    # A revoked key leaves the list: each round starts again from the first page.
    first = PageRequest(limit=MAX_LIMIT, after_id=None)
    while keys := (await identity_service.list_api_keys(db, actor=guest, page=first)).items:
        for key in keys:
            await identity_service.do_revoke_api_key(db, actor=guest, api_key_id=key.id, client=Client())
