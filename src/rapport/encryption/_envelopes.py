"""Envelopes: the ciphertexts of an encrypted message, one per recipient device, written
with the message in the sender's transaction and read by each device's owner until the
device acknowledges them.

The envelopes' insert policy checks again what `_recipients` checks here (the sender's
device, each device's owner taking part in the conversation, the message the sender's);
this module tells the client which device was wrong."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import bindparam, delete, insert, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.encryption._devices import access_device
from rapport.encryption.errors import UnknownDevice
from rapport.encryption.models import devices, envelopes
from rapport.encryption.schemas import EncryptedEdit, EncryptedSend, EnvelopeOut, EnvelopePage, decode, encode
from rapport.kernel.actor import Actor
from rapport.kernel.ids import uuid7
from rapport.messaging import service as messaging_service

ENVELOPES_DEFAULT_LIMIT = 100
ENVELOPES_MAX_LIMIT = 500

_OWNERS = text("SELECT d.id, encryption.device_owner_in(d.id, :c) AS owner FROM unnest(:ids) AS d(id)").bindparams(
    bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True)))
)


async def _check_sender_device(db: AsyncConnection, *, actor: Actor, device_id: UUID) -> None:
    found = await db.execute(select(devices.c.id).where(devices.c.id == device_id, devices.c.user_id == actor.user_id))
    if found.first() is None:
        raise UnknownDevice("sender_device_id: not one of your devices.", device_id=str(device_id))


async def _recipients(db: AsyncConnection, *, conversation_id: UUID, body: EncryptedEdit) -> dict[UUID, UUID]:
    """Each envelope's device and its owner.

    Raises:
        UnknownDevice: a device that is no participant's (the first such, named).
    """
    ids = [envelope.device_id for envelope in body.envelopes]
    owners = {row.id: row.owner for row in await db.execute(_OWNERS, {"c": conversation_id, "ids": ids})}
    for device_id in ids:
        if owners.get(device_id) is None:
            raise UnknownDevice(
                f"envelopes: device {device_id} is not a device of someone who takes part in this conversation.",
                device_id=str(device_id),
            )
    return owners


async def _store(
    db: AsyncConnection,
    *,
    actor: Actor,
    conversation_id: UUID,
    message: messaging_service.EncryptedMessage,
    body: EncryptedEdit,
    owners: dict[UUID, UUID],
    edit: bool,
) -> None:
    await db.execute(
        insert(envelopes),
        [
            {
                "id": uuid7(),
                "device_id": envelope.device_id,
                "recipient_id": owners[envelope.device_id],
                "conversation_id": conversation_id,
                "message_id": message.id,
                "seq": message.seq,
                "sender_id": actor.user_id,
                "sender_device_id": body.sender_device_id,
                "type": envelope.type,
                "ciphertext": decode(envelope.ciphertext),
                "edit": edit,
            }
            for envelope in body.envelopes
        ],
    )


async def do_send_encrypted(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, body: EncryptedSend
) -> messaging_service.EncryptedMessage:
    """Send an encrypted message: its row (no text) and one envelope per device, in one
    transaction; `message.created` reaches the conversation as for any send. A retry with
    the same client_message_id returns the first message and stores nothing.

    Raises:
        UnknownDevice: the sender's device is not theirs, or an envelope's device belongs
            to nobody taking part.
        ConversationNotFound, ConversationNotEncrypted, ConversationNotActive, CannotSend,
        ReplyNotFound: see messaging's do_post_encrypted_message.
    """
    await messaging_service.access_conversation(db, actor=actor, conversation_id=conversation_id)
    await _check_sender_device(db, actor=actor, device_id=body.sender_device_id)
    owners = await _recipients(db, conversation_id=conversation_id, body=body)
    message = await messaging_service.do_post_encrypted_message(
        db,
        actor=actor,
        conversation_id=conversation_id,
        client_message_id=body.client_message_id,
        reply_to=body.reply_to,
    )
    if message.created:
        await _store(
            db, actor=actor, conversation_id=conversation_id, message=message, body=body, owners=owners, edit=False
        )
    return message


async def do_edit_encrypted(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, message_id: UUID, body: EncryptedEdit
) -> messaging_service.EncryptedMessage:
    """Edit one's own encrypted message: it shows as edited, and each device receives the
    new ciphertext as an envelope marked `edit`.

    Raises:
        UnknownDevice: as do_send_encrypted.
        ConversationNotFound, MessageNotFound, ConversationNotEncrypted, NotAllowed,
        CannotSend: see messaging's do_edit_encrypted_message.
    """
    await messaging_service.access_conversation(db, actor=actor, conversation_id=conversation_id)
    await _check_sender_device(db, actor=actor, device_id=body.sender_device_id)
    owners = await _recipients(db, conversation_id=conversation_id, body=body)
    message = await messaging_service.do_edit_encrypted_message(
        db, actor=actor, conversation_id=conversation_id, message_id=message_id
    )
    await _store(db, actor=actor, conversation_id=conversation_id, message=message, body=body, owners=owners, edit=True)
    return message


async def list_envelopes(
    db: AsyncConnection, *, actor: Actor, device_id: UUID, after: UUID | None, limit: int
) -> EnvelopePage:
    """What waits for one of the actor's devices, oldest first, after `after`.

    Raises:
        DeviceNotFound: see access_device.
    """
    await access_device(db, actor=actor, device_id=device_id)
    statement = select(envelopes).where(envelopes.c.device_id == device_id).order_by(envelopes.c.id).limit(limit + 1)
    if after is not None:
        statement = statement.where(envelopes.c.id > after)
    rows = (await db.execute(statement)).all()
    items = [
        EnvelopeOut(
            id=row.id,
            message_id=row.message_id,
            conversation_id=row.conversation_id,
            seq=row.seq,
            sender_id=row.sender_id,
            sender_device_id=row.sender_device_id,
            type=row.type,
            ciphertext=encode(row.ciphertext),
            edit=row.edit,
            created_at=row.created_at,
        )
        for row in rows[:limit]
    ]
    return EnvelopePage(items=items, next=items[-1].id if len(rows) > limit else None)


async def do_acknowledge(db: AsyncConnection, *, actor: Actor, device_id: UUID, up_to: UUID) -> int:
    """Delete the envelopes of one of the actor's devices up to `up_to`, included. Returns
    how many went.

    Raises:
        DeviceNotFound: see access_device.
    """
    await access_device(db, actor=actor, device_id=device_id)
    gone = await db.execute(delete(envelopes).where(envelopes.c.device_id == device_id, envelopes.c.id <= up_to))
    return int(gone.rowcount)
