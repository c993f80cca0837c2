"""Request and response shapes of devices, key bundles and envelopes.

Keys, signatures and ciphertexts travel as base64 (standard alphabet, padded); a public
key is exactly 32 bytes, a signature 64, a ciphertext 1 byte to 64 KiB."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field

from rapport.kernel.schemas import JsonUuid, Strict, Text

MAX_ONE_TIME_PREKEYS_PER_REQUEST = 200
MAX_ENVELOPES = 1000
MAX_CIPHERTEXT = 65_536
MAX_KEY_ID = 2**63 - 1

EnvelopeType = Literal["prekey", "message"]


def decode(value: str) -> bytes:
    """The bytes of a base64 field (validated by the schema already)."""
    return base64.b64decode(value, validate=True)


def encode(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _base64(low: int, high: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be base64 (standard alphabet, padded)") from None
        if not low <= len(raw) <= high:
            raise ValueError(f"must be {low} bytes" if low == high else f"must be {low} to {high} bytes")
        return value

    return check


PublicKey = Annotated[str, AfterValidator(_base64(32, 32)), Field(description="A public key: 32 bytes, base64.")]
Signature = Annotated[
    str, AfterValidator(_base64(64, 64)), Field(description="An Ed25519 signature: 64 bytes, base64.")
]
Ciphertext = Annotated[
    str, AfterValidator(_base64(1, MAX_CIPHERTEXT)), Field(description="Opaque bytes (at most 64 KiB), base64.")
]
KeyId = Annotated[int, Field(ge=0, le=MAX_KEY_ID)]
DeviceName = Annotated[str, Text(100, name=True)]


class SignedPrekey(Strict):
    """An X25519 prekey signed by the device's signing key (Ed25519 over its 32 raw bytes)."""

    key_id: KeyId
    public_key: PublicKey
    signature: Signature


class OneTimePrekey(Strict):
    key_id: KeyId
    public_key: PublicKey


def _distinct(keys: list[OneTimePrekey]) -> list[OneTimePrekey]:
    if len({key.key_id for key in keys}) != len(keys):
        raise ValueError("each key_id once")
    return keys


OneTimePrekeys = Annotated[
    list[OneTimePrekey], Field(max_length=MAX_ONE_TIME_PREKEYS_PER_REQUEST), AfterValidator(_distinct)
]


class DeviceKeys(Strict):
    """A device's identity: its X25519 identity key, its Ed25519 signing key, a signed
    prekey and one-time prekeys (the earlier one-time prekeys are dropped)."""

    identity_key: PublicKey
    signing_key: PublicKey
    signed_prekey: SignedPrekey
    one_time_prekeys: OneTimePrekeys = Field(default_factory=list)


class DeviceCreate(DeviceKeys):
    """A device that takes part in end-to-end encryption, with its public keys."""

    name: DeviceName


class PrekeyUpload(Strict):
    keys: Annotated[list[OneTimePrekey], Field(min_length=1), AfterValidator(_distinct)] = Field(
        max_length=MAX_ONE_TIME_PREKEYS_PER_REQUEST
    )


class SignedPrekeyOut(BaseModel):
    key_id: int
    public_key: str
    signature: str


class EncryptionDeviceOut(BaseModel):
    id: UUID
    name: str
    identity_key: str
    signing_key: str
    signed_prekey: SignedPrekeyOut
    one_time_prekeys: int = Field(description="How many of its one-time prekeys are left.")
    created_at: datetime


class PrekeyCount(BaseModel):
    one_time_prekeys: int


class OneTimePrekeyOut(BaseModel):
    key_id: int
    public_key: str


class BundleOut(BaseModel):
    device_id: UUID
    identity_key: str
    signing_key: str
    signed_prekey: SignedPrekeyOut
    one_time_prekey: OneTimePrekeyOut | None = Field(description="Handed out once; null when none is left.")


class KeyBundles(BaseModel):
    user_id: UUID
    devices: list[BundleOut]


class Envelope(Strict):
    device_id: JsonUuid
    type: EnvelopeType
    ciphertext: Ciphertext


def _one_per_device(envelopes: list[Envelope]) -> list[Envelope]:
    if len({envelope.device_id for envelope in envelopes}) != len(envelopes):
        raise ValueError("one envelope per device")
    return envelopes


Envelopes = Annotated[list[Envelope], Field(min_length=1, max_length=MAX_ENVELOPES), AfterValidator(_one_per_device)]


class EncryptedEdit(Strict):
    """The message's new text, encrypted for each device as a send is."""

    sender_device_id: JsonUuid
    envelopes: Envelopes


class EncryptedSend(EncryptedEdit):
    """A message encrypted once per recipient device (the sender's other devices too).
    `client_message_id` makes the send idempotent."""

    client_message_id: Annotated[str, Text(100)] | None = None
    reply_to: JsonUuid | None = None


class EnvelopeOut(BaseModel):
    id: UUID
    message_id: UUID
    conversation_id: UUID
    seq: int
    sender_id: UUID
    sender_device_id: UUID
    type: EnvelopeType
    ciphertext: str
    edit: bool = Field(description="The message's new text after an edit.")
    created_at: datetime


class EnvelopePage(BaseModel):
    items: list[EnvelopeOut]
    next: UUID | None = Field(description="Pass it as `after` for the next page; null at the end.")


class Acknowledge(Strict):
    up_to: JsonUuid = Field(description="The last envelope read: it and those before it are deleted.")


class EncryptionDeviceList(BaseModel):
    """The caller's devices with encryption keys."""

    items: list[EncryptionDeviceOut]
