"""Devices and their keys: registering one, listing, revoking, replacing its identity or
its signed prekey, topping up its one-time prekeys, and handing out someone's key
bundles.

All of it runs in the person's own transaction: row-level security shows and lets them
change their own devices only. Someone else's keys come only from the definer function
`encryption.claim_key_bundles`, which takes each one-time prekey as it hands it out."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.encryption.errors import (
    DeviceNotFound,
    InvalidPrekeySignature,
    PrekeyExists,
    TooManyDevices,
    TooManyPrekeys,
    UserNotFound,
)
from rapport.encryption.models import devices, one_time_prekeys
from rapport.encryption.schemas import (
    BundleOut,
    DeviceCreate,
    DeviceKeys,
    EncryptionDeviceOut,
    KeyBundles,
    OneTimePrekey,
    OneTimePrekeyOut,
    SignedPrekey,
    SignedPrekeyOut,
    decode,
    encode,
)
from rapport.identity import service as identity_service
from rapport.kernel.actor import Actor, Client
from rapport.kernel.db import AnyRow
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Scope, publish
from rapport.messaging import service as messaging_service

# Enough for a person's phones, tablets and browsers; each costs every sender an envelope.
MAX_DEVICES = 20
# Clients keep about a hundred; this bounds what one device may store.
MAX_ONE_TIME_PREKEYS = 1000
# Below this many one-time prekeys left after a fetch, the owner is told to upload more.
PREKEYS_LOW = 10

_CLAIM = text("SELECT * FROM encryption.claim_key_bundles(:target, :take)")


def verify_signed_prekey(signing_key: bytes, prekey: SignedPrekey) -> None:
    """Raises InvalidPrekeySignature unless `prekey.signature` is the Ed25519 signature of
    the prekey's 32 bytes under `signing_key`."""
    try:
        Ed25519PublicKey.from_public_bytes(signing_key).verify(decode(prekey.signature), decode(prekey.public_key))
    except (InvalidSignature, ValueError):
        raise InvalidPrekeySignature() from None


def _out(row: AnyRow, count: int) -> EncryptionDeviceOut:
    return EncryptionDeviceOut(
        id=row.id,
        name=row.name,
        identity_key=encode(row.identity_key),
        signing_key=encode(row.signing_key),
        signed_prekey=SignedPrekeyOut(
            key_id=row.signed_prekey_id,
            public_key=encode(row.signed_prekey),
            signature=encode(row.signed_prekey_signature),
        ),
        one_time_prekeys=count,
        created_at=row.created_at,
    )


def _signed_values(prekey: SignedPrekey) -> dict[str, Any]:
    return {
        "signed_prekey_id": prekey.key_id,
        "signed_prekey": decode(prekey.public_key),
        "signed_prekey_signature": decode(prekey.signature),
    }


async def _count(db: AsyncConnection, device_id: UUID) -> int:
    counted = await db.execute(
        select(func.count()).select_from(one_time_prekeys).where(one_time_prekeys.c.device_id == device_id)
    )
    return int(counted.scalar_one())


async def _add_prekeys(db: AsyncConnection, *, actor: Actor, device_id: UUID, keys: list[OneTimePrekey]) -> int:
    """Store one-time prekeys; returns how many the device holds now.

    Raises:
        PrekeyExists: a key_id the device holds already.
        TooManyPrekeys: more than MAX_ONE_TIME_PREKEYS in all.
    """
    if keys:
        added = await db.execute(
            pg_insert(one_time_prekeys)
            .values(
                [
                    {
                        "device_id": device_id,
                        "key_id": key.key_id,
                        "user_id": actor.user_id,
                        "public_key": decode(key.public_key),
                    }
                    for key in keys
                ]
            )
            .on_conflict_do_nothing()
            .returning(one_time_prekeys.c.key_id)
        )
        if len(added.all()) != len(keys):
            raise PrekeyExists()
    count = await _count(db, device_id)
    if count > MAX_ONE_TIME_PREKEYS:
        raise TooManyPrekeys(f"A device holds at most {MAX_ONE_TIME_PREKEYS} one-time prekeys.")
    return count


async def access_device(db: AsyncConnection, *, actor: Actor, device_id: UUID, lock: bool = False) -> AnyRow:
    """One of the actor's devices.

    Raises:
        DeviceNotFound: no such device, or someone else's (row-level security hides it).
    """
    statement = select(devices).where(devices.c.id == device_id, devices.c.user_id == actor.user_id)
    if lock:
        statement = statement.with_for_update()
    row: AnyRow | None = (await db.execute(statement)).one_or_none()
    if row is None:
        raise DeviceNotFound()
    return row


async def get_device(db: AsyncConnection, *, actor: Actor, device_id: UUID) -> EncryptionDeviceOut:
    """Raises DeviceNotFound: see access_device."""
    row = await access_device(db, actor=actor, device_id=device_id)
    return _out(row, await _count(db, device_id))


async def list_devices(db: AsyncConnection, *, actor: Actor) -> list[EncryptionDeviceOut]:
    """The actor's devices, oldest first, with how many one-time prekeys each has left."""
    left = (
        select(func.count())
        .select_from(one_time_prekeys)
        .where(one_time_prekeys.c.device_id == devices.c.id)
        .scalar_subquery()
        .label("left")
    )
    rows = await db.execute(select(devices, left).where(devices.c.user_id == actor.user_id).order_by(devices.c.id))
    return [_out(row, row.left) for row in rows]


async def do_register_device(db: AsyncConnection, *, actor: Actor, body: DeviceCreate) -> EncryptionDeviceOut:
    """Register a device with its public keys (the signed prekey's signature checked).

    Raises:
        InvalidPrekeySignature: the signature does not verify under the signing key.
        TooManyDevices: the actor has MAX_DEVICES already.
    """
    verify_signed_prekey(decode(body.signing_key), body.signed_prekey)
    owned = await db.execute(select(func.count()).select_from(devices).where(devices.c.user_id == actor.user_id))
    if owned.scalar_one() >= MAX_DEVICES:
        raise TooManyDevices(f"A person has at most {MAX_DEVICES} devices with encryption keys.")
    device_id = uuid7()
    await db.execute(
        insert(devices).values(
            id=device_id,
            user_id=actor.user_id,
            name=body.name,
            identity_key=decode(body.identity_key),
            signing_key=decode(body.signing_key),
            **_signed_values(body.signed_prekey),
        )
    )
    await _add_prekeys(db, actor=actor, device_id=device_id, keys=body.one_time_prekeys)
    return await get_device(db, actor=actor, device_id=device_id)


async def do_revoke_device(db: AsyncConnection, *, actor: Actor, device_id: UUID) -> None:
    """Revoke one of the actor's devices: it, its one-time prekeys and the envelopes waiting
    for it go (foreign keys ON DELETE CASCADE). Senders see it gone from the next bundles.

    Raises:
        DeviceNotFound: see access_device.
    """
    gone = await db.execute(delete(devices).where(devices.c.id == device_id, devices.c.user_id == actor.user_id))
    if gone.rowcount == 0:
        raise DeviceNotFound()


async def do_replace_identity(
    db: AsyncConnection, *, actor: Actor, device_id: UUID, body: DeviceKeys, client: Client
) -> EncryptionDeviceOut:
    """Give a device a new identity (a reinstalled app): new identity, signing and signed
    prekeys, its one-time prekeys replaced. Recorded as a security event of the owner,
    and announced as `device.identity_changed` in each encrypted conversation they take
    part in, so that their contacts see the change.

    Raises:
        DeviceNotFound: see access_device.
        InvalidPrekeySignature: the signature does not verify under the new signing key.
    """
    await access_device(db, actor=actor, device_id=device_id, lock=True)
    verify_signed_prekey(decode(body.signing_key), body.signed_prekey)
    await db.execute(
        update(devices)
        .where(devices.c.id == device_id)
        .values(
            identity_key=decode(body.identity_key),
            signing_key=decode(body.signing_key),
            **_signed_values(body.signed_prekey),
        )
    )
    await db.execute(delete(one_time_prekeys).where(one_time_prekeys.c.device_id == device_id))
    await _add_prekeys(db, actor=actor, device_id=device_id, keys=body.one_time_prekeys)
    await identity_service.record_security_event(
        db,
        user_id=actor.user_id,
        event_type="encryption_identity_changed",
        client=client,
        severity="warning",
        details={"device_id": str(device_id)},
    )
    payload = {"user_id": str(actor.user_id), "device_id": str(device_id)}
    for conversation_id in await messaging_service.list_encrypted_conversation_ids(db, actor=actor):
        await publish(
            db,
            scope=Scope.conversation(conversation_id),
            type="device.identity_changed",
            payload={"conversation_id": str(conversation_id), **payload},
            actor_id=actor.user_id,
        )
    return await get_device(db, actor=actor, device_id=device_id)


async def do_replace_signed_prekey(
    db: AsyncConnection, *, actor: Actor, device_id: UUID, body: SignedPrekey
) -> EncryptionDeviceOut:
    """Rotate a device's signed prekey (signed by its current signing key).

    Raises:
        DeviceNotFound: see access_device.
        InvalidPrekeySignature: the signature does not verify under the device's signing key.
    """
    row = await access_device(db, actor=actor, device_id=device_id, lock=True)
    verify_signed_prekey(row.signing_key, body)
    await db.execute(update(devices).where(devices.c.id == device_id).values(**_signed_values(body)))
    return await get_device(db, actor=actor, device_id=device_id)


async def do_add_prekeys(db: AsyncConnection, *, actor: Actor, device_id: UUID, keys: list[OneTimePrekey]) -> int:
    """Top up a device's one-time prekeys; returns how many it holds now.

    Raises:
        DeviceNotFound: see access_device.
        PrekeyExists: a key_id the device holds already.
        TooManyPrekeys: more than MAX_ONE_TIME_PREKEYS in all.
    """
    await access_device(db, actor=actor, device_id=device_id, lock=True)
    return await _add_prekeys(db, actor=actor, device_id=device_id, keys=keys)


async def do_claim_key_bundles(db: AsyncConnection, *, actor: Actor, user_id: UUID, take: bool = True) -> KeyBundles:
    """Someone's devices with their keys, each with one one-time prekey handed out to the
    actor alone (null when none is left). Each device whose supply falls below PREKEYS_LOW
    is announced to its owner (`encryption.prekeys_low`). The actor's own devices too.
    `take=False` hands out no one-time prekey: a look at which devices there are, for a
    client that has sessions with most of them already.

    Raises:
        UserNotFound: no such active account, or a block between the two (either way).
    """
    try:
        rows = (await db.execute(_CLAIM, {"target": user_id, "take": take})).all()
    except DBAPIError as error:
        if getattr(getattr(error.orig, "__cause__", None), "sqlstate", None) == "RE404":
            raise UserNotFound() from None
        raise
    bundles = []
    for row in rows:
        one_time = None
        if row.one_time_key_id is not None:
            one_time = OneTimePrekeyOut(key_id=row.one_time_key_id, public_key=encode(row.one_time_key))
            if row.remaining < PREKEYS_LOW:
                await publish(
                    db,
                    scope=Scope.user(user_id),
                    type="encryption.prekeys_low",
                    payload={"device_id": str(row.device_id), "remaining": int(row.remaining)},
                    actor_id=actor.user_id,
                )
        bundles.append(
            BundleOut(
                device_id=row.device_id,
                identity_key=encode(row.identity_key),
                signing_key=encode(row.signing_key),
                signed_prekey=SignedPrekeyOut(
                    key_id=row.signed_prekey_id,
                    public_key=encode(row.signed_prekey),
                    signature=encode(row.signed_prekey_signature),
                ),
                one_time_prekey=one_time,
            )
        )
    return KeyBundles(user_id=user_id, devices=bundles)
