"""End-to-end encryption: devices and their public keys, key bundles, encrypted messages
and each device's envelopes (docs/decisions/0028).

Clients run Signal's X3DH and Double Ratchet, pairwise per device: a sender fetches the
key bundles of each person in the conversation (`POST /v1/users/{id}/key-bundles`, its
own too), encrypts the message once per device and sends every ciphertext in one request;
each device reads what was addressed to it (`GET /v1/encryption/devices/{id}/envelopes`) and
acknowledges it. Keys, signatures and ciphertexts are base64 (standard, padded). Rapport
keeps public keys and opaque bytes: it sees who writes to whom and when, never the text.

A device with keys (`/v1/encryption/devices`) is not the device a person registers for
notifications (`/v1/devices`, social's): one phone may be both, and a client that wants
no encryption never registers keys."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from rapport.encryption import schemas as s
from rapport.encryption import service
from rapport.kernel.deps import NO_CONTENT, CallerDep
from rapport.messaging import service as messaging_service

router = APIRouter(prefix="/v1", tags=["encryption"])

JSON = "application/json"


@router.post("/encryption/devices", status_code=status.HTTP_201_CREATED, response_model=s.EncryptionDeviceOut)
async def register_device(body: s.DeviceCreate, caller: CallerDep) -> s.EncryptionDeviceOut:
    """Register a device for end-to-end encryption with its public keys (`identity_key`,
    `signing_key`, `signed_prekey`, `one_time_prekeys`), through a signed-in session; the
    signed prekey's signature is checked (422 `invalid-prekey-signature`)."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.do_register_device(db, actor=actor, body=body)


@router.get("/encryption/devices", response_model=s.EncryptionDeviceList)
async def list_devices(caller: CallerDep) -> s.EncryptionDeviceList:
    """Your devices with encryption keys, with how many one-time prekeys each has left."""
    async with caller.transaction() as (db, actor):
        return s.EncryptionDeviceList(items=await service.list_devices(db, actor=actor))


@router.delete("/encryption/devices/{device_id}", **NO_CONTENT)
async def remove_device(device_id: UUID, caller: CallerDep) -> None:
    """Revoke one of your devices: its keys and the envelopes waiting for it go, and senders
    no longer see it. Errors: 404 `encryption-device-not-found`."""
    async with caller.transaction() as (db, actor):
        await service.do_revoke_device(db, actor=actor, device_id=device_id)


@router.put("/encryption/devices/{device_id}/identity", response_model=s.EncryptionDeviceOut)
async def replace_identity(device_id: UUID, body: s.DeviceKeys, caller: CallerDep) -> s.EncryptionDeviceOut:
    """Give one of your devices a new identity (its app was reinstalled): new identity and
    signing keys, a signed prekey and one-time prekeys (the earlier ones are dropped).
    Recorded among your security events; each encrypted conversation you take part in
    hears `device.identity_changed`. Through a signed-in session.

    Errors: 404 `encryption-device-not-found`; 422 `invalid-prekey-signature`."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.do_replace_identity(db, actor=actor, device_id=device_id, body=body, client=caller.client)


@router.put("/encryption/devices/{device_id}/signed-prekey", response_model=s.EncryptionDeviceOut)
async def replace_signed_prekey(device_id: UUID, body: s.SignedPrekey, caller: CallerDep) -> s.EncryptionDeviceOut:
    """Rotate a device's signed prekey, signed by its signing key. Through a signed-in session.

    Errors: 404 `encryption-device-not-found`; 422 `invalid-prekey-signature`."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.do_replace_signed_prekey(db, actor=actor, device_id=device_id, body=body)


@router.post("/encryption/devices/{device_id}/one-time-prekeys", response_model=s.PrekeyCount)
async def add_prekeys(device_id: UUID, body: s.PrekeyUpload, caller: CallerDep) -> s.PrekeyCount:
    """Upload one-time prekeys (1 to 200); answers how many the device holds now. Through a
    signed-in session.

    Errors: 404 `encryption-device-not-found`; 409 `prekey-exists` (a key_id it holds), `too-many-prekeys`."""
    async with caller.transaction(session_required=True) as (db, actor):
        count = await service.do_add_prekeys(db, actor=actor, device_id=device_id, keys=body.keys)
    return s.PrekeyCount(one_time_prekeys=count)


@router.get("/users/{user_id}/key-bundles", response_model=s.KeyBundles)
async def look_at_key_bundles(user_id: UUID, caller: CallerDep) -> s.KeyBundles:
    """Someone's devices and their keys without any one-time prekey (`one_time_prekey` is
    null): which devices there are and their identity keys, for a client that has sessions
    with most of them; it then claims (POST) only for the new ones. Your own too.

    Errors: 404 `user-not-found` (unknown, or a block between you, either way)."""
    async with caller.transaction() as (db, actor):
        return await service.do_claim_key_bundles(db, actor=actor, user_id=user_id, take=False)


@router.post("/users/{user_id}/key-bundles", response_model=s.KeyBundles)
async def claim_key_bundles(user_id: UUID, caller: CallerDep) -> s.KeyBundles:
    """Someone's devices and their keys, each with one one-time prekey handed out to you
    alone (null when none is left): a POST, since it takes them. Your own too, for your
    other devices. When a device has fewer than 10 left, its owner hears
    `encryption.prekeys_low`.

    Errors: 404 `user-not-found` (unknown, or a block between you, either way)."""
    async with caller.transaction() as (db, actor):
        return await service.do_claim_key_bundles(db, actor=actor, user_id=user_id)


@router.post(
    "/conversations/{conversation_id}/encrypted-messages",
    status_code=status.HTTP_201_CREATED,
    response_model=messaging_service.MessageOut,
    responses={200: {"model": messaging_service.MessageOut, "description": "Sent before with this client_message_id."}},
)
async def send_encrypted(conversation_id: UUID, body: s.EncryptedSend, caller: CallerDep) -> Response:
    """Send an end-to-end encrypted message: one ciphertext per recipient device (your own
    other devices too), all in this request. The message is as any other (`content` empty,
    `content_encrypted` true); each device reads its envelope. A retry with the same
    `client_message_id` answers the first message (200).

    Errors: 404 `conversation-not-found`; 409 `conversation-not-encrypted`,
    `conversation-not-active`; 403 `cannot-send`; 422 `unknown-device` (naming it),
    `reply-not-found`."""
    async with caller.transaction() as (db, actor):
        message = await service.do_send_encrypted(db, actor=actor, conversation_id=conversation_id, body=body)
    return Response(message.json, status_code=201 if message.created else 200, media_type=JSON)


@router.put(
    "/conversations/{conversation_id}/encrypted-messages/{message_id}", response_model=messaging_service.MessageOut
)
async def edit_encrypted(conversation_id: UUID, message_id: UUID, body: s.EncryptedEdit, caller: CallerDep) -> Response:
    """Edit your encrypted message: it shows as edited, and each device receives the new
    ciphertext (an envelope with `edit` true).

    Errors: 404 `conversation-not-found`, `message-not-found`; 403 `not-allowed-in-conversation`,
    `cannot-send`; 409 `conversation-not-encrypted`; 422 `unknown-device`."""
    async with caller.transaction() as (db, actor):
        message = await service.do_edit_encrypted(
            db, actor=actor, conversation_id=conversation_id, message_id=message_id, body=body
        )
    return Response(message.json, media_type=JSON)


@router.get("/encryption/devices/{device_id}/envelopes", response_model=s.EnvelopePage)
async def list_envelopes(
    device_id: UUID,
    caller: CallerDep,
    after: Annotated[
        UUID | None, Query(description="The `next` of the previous page, or the last envelope read.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=service.ENVELOPES_MAX_LIMIT)] = service.ENVELOPES_DEFAULT_LIMIT,
) -> s.EnvelopePage:
    """What was addressed to one of your devices, oldest first, until it acknowledges it.

    Errors: 404 `encryption-device-not-found`."""
    async with caller.transaction() as (db, actor):
        return await service.list_envelopes(db, actor=actor, device_id=device_id, after=after, limit=limit)


@router.post("/encryption/devices/{device_id}/envelopes/ack", **NO_CONTENT)
async def acknowledge(device_id: UUID, body: s.Acknowledge, caller: CallerDep) -> None:
    """Delete one of your devices' envelopes up to `up_to` (included): they were read.

    Errors: 404 `encryption-device-not-found`."""
    async with caller.transaction() as (db, actor):
        await service.do_acknowledge(db, actor=actor, device_id=device_id, up_to=body.up_to)
