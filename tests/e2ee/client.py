"""A reference end-to-end encrypted client of Rapport, over its HTTP API.

Each `Device` is one device of a person: it holds its private keys, registers their
public halves with Rapport's key directory, sets up a Signal session with every device it
talks to (X3DH from a fetched key bundle, then the Double Ratchet: see signal_protocol),
sends each message as one ciphertext per recipient device (the sender's own other devices
included) in one request, and reads, decrypts and acknowledges what was addressed to it.
Rapport sees public keys, ciphertexts and who sends to whom; never a key that decrypts.

What a message's plaintext holds besides its text: the conversation it was sent in, so
that a server moving a ciphertext into another conversation is caught.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.e2ee.signal_protocol import Bundle, DecryptionError, DeviceKeys, Peer, decrypt_prekey
from tests.support import Persona

ONE_TIME_PREKEYS = 100


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def checked(response: httpx.Response, *statuses: int) -> Any:
    assert response.status_code in statuses, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json() if response.content else None


def signed_prekey_json(keys: DeviceKeys) -> dict[str, Any]:
    spk = keys.signed_prekey
    return {"key_id": spk.key_id, "public_key": b64(spk.public_key), "signature": b64(spk.signature)}


def one_time_prekeys_json(made: dict[int, bytes]) -> list[dict[str, Any]]:
    return [{"key_id": key_id, "public_key": b64(public)} for key_id, public in made.items()]


def keys_json(keys: DeviceKeys, one_time_prekeys: dict[int, bytes]) -> dict[str, Any]:
    return {
        "identity_key": b64(keys.identity_key),
        "signing_key": b64(keys.signing_key),
        "signed_prekey": signed_prekey_json(keys),
        "one_time_prekeys": one_time_prekeys_json(one_time_prekeys),
    }


def bundle_from(device: dict[str, Any]) -> Bundle:
    spk, opk = device["signed_prekey"], device["one_time_prekey"]
    return Bundle(
        identity_key=unb64(device["identity_key"]),
        signing_key=unb64(device["signing_key"]),
        signed_prekey_id=spk["key_id"],
        signed_prekey=unb64(spk["public_key"]),
        signature=unb64(spk["signature"]),
        one_time_prekey_id=None if opk is None else opk["key_id"],
        one_time_prekey=None if opk is None else unb64(opk["public_key"]),
    )


@dataclass(frozen=True)
class Received:
    """One envelope, decrypted."""

    envelope_id: str
    message_id: str
    conversation_id: str
    seq: int
    sender_id: str
    sender_device_id: str
    text: str
    edit: bool


@dataclass
class Device:
    """One device of a person, speaking to Rapport through `http` as `persona`."""

    http: httpx.AsyncClient
    persona: Persona
    name: str
    keys: DeviceKeys
    id: str = ""
    # Our sessions, by the remote device's id; and whose each device is.
    peers: dict[str, Peer] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    # Identity keys seen to change (trust on first use): (device id, old, new).
    identity_changes: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    # What this device could not decrypt, by envelope id, and why.
    undecryptable: dict[str, str] = field(default_factory=dict)

    @classmethod
    async def register(
        cls, http: httpx.AsyncClient, persona: Persona, name: str, *, one_time_prekeys: int = ONE_TIME_PREKEYS
    ) -> Device:
        """A new device of the persona, its keys made here and registered."""
        keys = DeviceKeys.generate()
        made = keys.add_one_time_prekeys(one_time_prekeys)
        body = {"name": name, **keys_json(keys, made)}
        registered = checked(await http.post("/v1/encryption/devices", headers=persona.headers, json=body), 201)
        assert registered["identity_key"] == b64(keys.identity_key), registered
        assert registered["one_time_prekeys"] == one_time_prekeys, registered
        return cls(http, persona, name, keys, id=registered["id"])

    @property
    def user_id(self) -> str:
        return self.persona.user_id

    # -- Keys ----------------------------------------------------------------------------

    async def replace_identity(self, *, one_time_prekeys: int = ONE_TIME_PREKEYS) -> dict[str, Any]:
        """New keys for this device (as after a reinstall): every session starts over."""
        self.keys = DeviceKeys.generate()
        made = self.keys.add_one_time_prekeys(one_time_prekeys)
        self.peers.clear()
        response = await self.http.put(
            f"/v1/encryption/devices/{self.id}/identity", headers=self.persona.headers, json=keys_json(self.keys, made)
        )
        body: dict[str, Any] = checked(response, 200)
        return body

    async def rotate_signed_prekey(self) -> dict[str, Any]:
        self.keys.rotate_signed_prekey()
        response = await self.http.put(
            f"/v1/encryption/devices/{self.id}/signed-prekey",
            headers=self.persona.headers,
            json=signed_prekey_json(self.keys),
        )
        body: dict[str, Any] = checked(response, 200)
        return body

    async def upload_one_time_prekeys(self, count: int) -> int:
        made = self.keys.add_one_time_prekeys(count)
        response = await self.http.post(
            f"/v1/encryption/devices/{self.id}/one-time-prekeys",
            headers=self.persona.headers,
            json={"keys": one_time_prekeys_json(made)},
        )
        return int(checked(response, 200)["one_time_prekeys"])

    async def fetch_bundles(self, user_id: str, *, claim: bool) -> list[dict[str, Any]]:
        """The person's bundles: claimed (POST: one one-time prekey per device, taken), or
        only looked at (GET: none taken)."""
        path = f"/v1/users/{user_id}/key-bundles"
        response = await (self.http.post if claim else self.http.get)(path, headers=self.persona.headers)
        body = checked(response, 200)
        assert body["user_id"] == user_id, body
        devices: list[dict[str, Any]] = body["devices"]
        return devices

    async def discover(self, user_id: str) -> list[str]:
        """The person's devices now (our own other ones, for ourselves), each with a
        session: a new one from its claimed bundle where we have none, or where its
        identity key is not the one our session was set up with. Looking takes no
        one-time prekey; only a device that needs a session makes us claim."""
        found, stale = [], []
        for device in await self.fetch_bundles(user_id, claim=False):
            device_id = device["device_id"]
            if device_id == self.id:
                continue
            found.append(device_id)
            self.owners[device_id] = user_id
            known = self.peers.get(device_id)
            if known is None or known.identity_key != bundle_from(device).identity_key:
                stale.append(device_id)
        if stale:
            for device in await self.fetch_bundles(user_id, claim=True):
                if device["device_id"] not in stale:
                    continue
                bundle = bundle_from(device)
                known = self.peers.get(device["device_id"])
                if known is not None:
                    self.identity_changes.append((device["device_id"], known.identity_key, bundle.identity_key))
                self.peers[device["device_id"]] = Peer.initiate(self.keys, bundle)
        return found

    # -- Sending -------------------------------------------------------------------------

    async def participants(self, conversation_id: str) -> list[str]:
        people: list[str] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            response = await self.http.get(
                f"/v1/conversations/{conversation_id}/participants", headers=self.persona.headers, params=params
            )
            page = checked(response, 200)
            people += [p["user_id"] for p in page["items"] if p["status"] in ("active", "muted")]
            if not page["next"]:
                return people
            params["cursor"] = page["next"]

    async def envelopes_for(self, conversation_id: str, text: str) -> list[dict[str, Any]]:
        """One envelope for each device of each participant (our other devices too),
        found afresh: a device added since the last message gets this one. Each fetch
        takes one one-time prekey of every device, whether a session needs it or not:
        the key directory has no listing of a person's devices that takes none."""
        plaintext = json.dumps({"conversation_id": conversation_id, "text": text}).encode()
        envelopes = []
        for user_id in await self.participants(conversation_id):
            for device_id in await self.discover(user_id):
                kind, ciphertext = self.peers[device_id].encrypt(plaintext)
                envelopes.append({"device_id": device_id, "type": kind, "ciphertext": b64(ciphertext)})
        return envelopes

    async def send(self, conversation_id: str, text: str, **fields: Any) -> dict[str, Any]:
        body = {"sender_device_id": self.id, "envelopes": await self.envelopes_for(conversation_id, text), **fields}
        response = await self.http.post(
            f"/v1/conversations/{conversation_id}/encrypted-messages", headers=self.persona.headers, json=body
        )
        message: dict[str, Any] = checked(response, 201)
        return message

    async def edit(self, conversation_id: str, message_id: str, text: str) -> dict[str, Any]:
        body = {"sender_device_id": self.id, "envelopes": await self.envelopes_for(conversation_id, text)}
        response = await self.http.put(
            f"/v1/conversations/{conversation_id}/encrypted-messages/{message_id}",
            headers=self.persona.headers,
            json=body,
        )
        message: dict[str, Any] = checked(response, 200)
        return message

    # -- Receiving -----------------------------------------------------------------------

    async def fetch_envelopes(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """Everything queued for this device, oldest first, page after page."""
        envelopes: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": limit}
        while True:
            response = await self.http.get(
                f"/v1/encryption/devices/{self.id}/envelopes", headers=self.persona.headers, params=params
            )
            page = checked(response, 200)
            envelopes += page["items"]
            if not page["next"] or not page["items"]:
                return envelopes
            params["after"] = page["items"][-1]["id"]

    async def ack(self, up_to: str) -> None:
        response = await self.http.post(
            f"/v1/encryption/devices/{self.id}/envelopes/ack", headers=self.persona.headers, json={"up_to": up_to}
        )
        assert response.status_code == 204, response.text

    async def receive(self, *, ack: bool = True) -> list[Received]:
        """What was addressed to this device, decrypted, then acknowledged (so deleted).
        An envelope that does not decrypt is noted in `undecryptable`, not returned."""
        envelopes = await self.fetch_envelopes()
        received = []
        for envelope in envelopes:
            try:
                received.append(self.open(envelope))
            except DecryptionError as error:
                self.undecryptable[envelope["id"]] = str(error)
        if ack and envelopes:
            await self.ack(envelopes[-1]["id"])
        return received

    def open(self, envelope: dict[str, Any]) -> Received:
        sender_device = envelope["sender_device_id"]
        data = unb64(envelope["ciphertext"])
        known_owner = self.owners.get(sender_device)
        if known_owner is not None and known_owner != envelope["sender_id"]:
            raise DecryptionError("the sending device belongs to someone else")
        if envelope["type"] == "prekey":
            known = self.peers.get(sender_device)
            peer, plaintext = decrypt_prekey(self.keys, known, data)
            if known is not None and known.identity_key != peer.identity_key:
                self.identity_changes.append((sender_device, known.identity_key, peer.identity_key))
            self.peers[sender_device] = peer
        else:
            existing = self.peers.get(sender_device)
            if existing is None:
                raise DecryptionError("no session with the sending device")
            plaintext = existing.decrypt(data)
        self.owners[sender_device] = envelope["sender_id"]
        content = json.loads(plaintext)
        if content["conversation_id"] != envelope["conversation_id"]:
            raise DecryptionError("the message was written for another conversation")
        return Received(
            envelope_id=envelope["id"],
            message_id=envelope["message_id"],
            conversation_id=envelope["conversation_id"],
            seq=envelope["seq"],
            sender_id=envelope["sender_id"],
            sender_device_id=sender_device,
            text=content["text"],
            edit=envelope["edit"],
        )
