"""Keys a device would make (the public halves, as the API takes them) and the steps the
encryption tests share."""

from __future__ import annotations

import base64
import os
from typing import Any
from uuid import UUID

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.support import Persona


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def x25519() -> str:
    raw = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return b64(raw)


def signed_prekey(signing: Ed25519PrivateKey, key_id: int = 1) -> dict[str, Any]:
    public = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"key_id": key_id, "public_key": b64(public), "signature": b64(signing.sign(public))}


def prekeys(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"key_id": start + n, "public_key": x25519()} for n in range(count)]


def device_keys(one_time: int = 5, signing: Ed25519PrivateKey | None = None) -> dict[str, Any]:
    """A device's identity and prekeys, as `PUT .../identity` takes them."""
    signing = signing or Ed25519PrivateKey.generate()
    return {
        "identity_key": x25519(),
        "signing_key": b64(signing.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)),
        "signed_prekey": signed_prekey(signing),
        "one_time_prekeys": prekeys(one_time),
    }


def new_device(name: str = "phone", one_time: int = 5) -> dict[str, Any]:
    return {"name": name, **device_keys(one_time)}


async def register(client: httpx.AsyncClient, persona: Persona, name: str = "phone", one_time: int = 5) -> str:
    """Register a device with keys; its id."""
    response = await client.post("/v1/encryption/devices", json=new_device(name, one_time), headers=persona.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def ciphertext(size: int = 48) -> str:
    return b64(os.urandom(size))


async def send_encrypted(
    client: httpx.AsyncClient,
    sender: Persona,
    conversation_id: UUID | str,
    sender_device: str,
    devices: list[str],
    **fields: Any,
) -> httpx.Response:
    body = {
        "sender_device_id": sender_device,
        "envelopes": [{"device_id": device, "type": "prekey", "ciphertext": ciphertext()} for device in devices],
        **fields,
    }
    return await client.post(
        f"/v1/conversations/{conversation_id}/encrypted-messages", json=body, headers=sender.headers
    )


async def open_encrypted(client: httpx.AsyncClient, creator: Persona, *others: Persona, type: str = "group") -> str:
    body: dict[str, Any] = {"type": type, "is_encrypted": True, "participant_ids": [o.user_id for o in others]}
    if type == "group":
        body["name"] = "Secret room"
    response = await client.post("/v1/conversations", json=body, headers=creator.headers)
    assert response.status_code in (200, 201), response.text
    return str(response.json()["id"])
