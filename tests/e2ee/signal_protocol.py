"""Signal's X3DH key agreement and Double Ratchet, as a client plays them: small and
plain, for the reference client that proves Rapport relays what it cannot read.

Built from the specifications (signal.org/docs/specifications/x3dh and
/doubleratchet) with `cryptography`'s primitives:

- X3DH: an X25519 identity key (IK), a signed prekey (SPK, X25519) signed by the device's
  Ed25519 signing key over its 32 raw public bytes (Rapport's key directory keeps the
  signing key beside the identity key, in place of XEdDSA), and one-time prekeys (OPK).
  SK = HKDF(F || DH1 || DH2 || DH3 [|| DH4]) with F the 32 bytes 0xFF, a zero salt, and
  AD = IK_A || IK_B.
- Double Ratchet: KDF_RK is HKDF (salt the root key, input the DH output), KDF_CK is
  HMAC-SHA256 of the chain key with 0x01 (message key) and 0x02 (next chain key);
  a message key becomes an AES-256-GCM key and nonce through HKDF; the header (the
  sender's ratchet public key, the previous chain's length, the message number) is
  authenticated as associated data. Skipped message keys are kept, bounded both per
  step (MAX_SKIP) and in all (MAX_SKIPPED_KEYS, oldest dropped first).

A session's state changes only when a message decrypts: a tampered, replayed or
unreadable one leaves it as it was.
"""

from __future__ import annotations

import dataclasses
import hmac
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from hashlib import sha256

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

X3DH_INFO = b"Rapport X3DH"
RATCHET_INFO = b"Rapport ratchet"
MESSAGE_KEY_INFO = b"Rapport message keys"
# How many message keys one received message may make the receiver skip over, and how
# many skipped keys a session keeps in all: a sender cannot make a receiver do unbounded
# work or hold unbounded state.
MAX_SKIP = 1000
MAX_SKIPPED_KEYS = 2000
VERSION = 1
HEADER = struct.Struct(">32sII")  # ratchet public key, previous chain length, message number
PREKEY_PREFIX = struct.Struct(">B32s32sI?I")  # version, IK_A, EK_A, SPK id, has OPK, OPK id


class DecryptionError(Exception):
    """A message that does not decrypt: tampered, replayed, too far ahead, or not for us."""


class UntrustedBundle(Exception):
    """A key bundle whose signed prekey's signature does not verify."""


def raw(public_key: X25519PublicKey | Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_of(private_key: X25519PrivateKey) -> bytes:
    return raw(private_key.public_key())


def dh(private_key: X25519PrivateKey, public_key: bytes) -> bytes:
    return private_key.exchange(X25519PublicKey.from_public_bytes(public_key))


def hkdf(material: bytes, *, salt: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(material)


# -- The keys a device holds -------------------------------------------------------------


@dataclass
class SignedPrekey:
    key_id: int
    private_key: X25519PrivateKey
    signature: bytes

    @property
    def public_key(self) -> bytes:
        return public_of(self.private_key)


@dataclass
class DeviceKeys:
    """A device's private keys: its identity, the signing key that vouches for its signed
    prekey, the signed prekey, and the one-time prekeys not used yet (by id)."""

    identity: X25519PrivateKey
    signing: Ed25519PrivateKey
    signed_prekey: SignedPrekey
    one_time_prekeys: dict[int, X25519PrivateKey] = field(default_factory=dict)
    next_prekey_id: int = 1
    # Signed prekeys replaced by a newer one, kept for the prekey messages still in
    # flight that were written with them (a client drops them after a while).
    earlier_signed_prekeys: dict[int, SignedPrekey] = field(default_factory=dict)

    @classmethod
    def generate(cls, one_time_prekeys: int = 0) -> DeviceKeys:
        signing = Ed25519PrivateKey.generate()
        keys = cls(X25519PrivateKey.generate(), signing, _signed_prekey(signing, 1))
        keys.add_one_time_prekeys(one_time_prekeys)
        return keys

    @property
    def identity_key(self) -> bytes:
        return public_of(self.identity)

    @property
    def signing_key(self) -> bytes:
        return raw(self.signing.public_key())

    def add_one_time_prekeys(self, count: int) -> dict[int, bytes]:
        """`count` new one-time prekeys; their public halves, by id."""
        made = {}
        for key_id in range(self.next_prekey_id, self.next_prekey_id + count):
            self.one_time_prekeys[key_id] = X25519PrivateKey.generate()
            made[key_id] = public_of(self.one_time_prekeys[key_id])
        self.next_prekey_id += count
        return made

    def one_time_public(self, key_id: int) -> bytes:
        return public_of(self.one_time_prekeys[key_id])

    def signed_prekey_by_id(self, key_id: int) -> SignedPrekey | None:
        if key_id == self.signed_prekey.key_id:
            return self.signed_prekey
        return self.earlier_signed_prekeys.get(key_id)

    def rotate_signed_prekey(self) -> SignedPrekey:
        self.earlier_signed_prekeys[self.signed_prekey.key_id] = self.signed_prekey
        self.signed_prekey = _signed_prekey(self.signing, self.signed_prekey.key_id + 1)
        return self.signed_prekey


def _signed_prekey(signing: Ed25519PrivateKey, key_id: int) -> SignedPrekey:
    private_key = X25519PrivateKey.generate()
    return SignedPrekey(key_id, private_key, signing.sign(public_of(private_key)))


@dataclass(frozen=True)
class Bundle:
    """What the key directory hands out for one device (raw bytes)."""

    identity_key: bytes
    signing_key: bytes
    signed_prekey_id: int
    signed_prekey: bytes
    signature: bytes
    one_time_prekey_id: int | None = None
    one_time_prekey: bytes | None = None


# -- X3DH --------------------------------------------------------------------------------


def _agree(*outputs: bytes) -> bytes:
    return hkdf(b"\xff" * 32 + b"".join(outputs), salt=b"\x00" * 32, info=X3DH_INFO, length=32)


@dataclass(frozen=True)
class Initiation:
    """What the initiator of a session learns and must tell the responder."""

    shared_key: bytes
    associated_data: bytes
    ephemeral_key: bytes
    signed_prekey_id: int
    one_time_prekey_id: int | None


def x3dh_initiate(ours: DeviceKeys, bundle: Bundle) -> Initiation:
    """Alice's side: verify Bob's signed prekey, then DH1..DH4 with a fresh ephemeral key."""
    try:
        Ed25519PublicKey.from_public_bytes(bundle.signing_key).verify(bundle.signature, bundle.signed_prekey)
    except InvalidSignature as error:
        raise UntrustedBundle("the signed prekey's signature does not verify") from error
    ephemeral = X25519PrivateKey.generate()
    outputs = [
        dh(ours.identity, bundle.signed_prekey),  # DH1 = DH(IK_A, SPK_B)
        dh(ephemeral, bundle.identity_key),  # DH2 = DH(EK_A, IK_B)
        dh(ephemeral, bundle.signed_prekey),  # DH3 = DH(EK_A, SPK_B)
    ]
    if bundle.one_time_prekey is not None:
        outputs.append(dh(ephemeral, bundle.one_time_prekey))  # DH4 = DH(EK_A, OPK_B)
    return Initiation(
        shared_key=_agree(*outputs),
        associated_data=ours.identity_key + bundle.identity_key,
        ephemeral_key=public_of(ephemeral),
        signed_prekey_id=bundle.signed_prekey_id,
        one_time_prekey_id=bundle.one_time_prekey_id if bundle.one_time_prekey is not None else None,
    )


def x3dh_respond(
    ours: DeviceKeys,
    *,
    identity_key: bytes,
    ephemeral_key: bytes,
    signed_prekey_id: int,
    one_time_prekey_id: int | None,
) -> tuple[bytes, bytes]:
    """Bob's side: the shared key and associated data. The one-time prekey is not
    consumed here: only once the first message decrypts (see `Peer.decrypt_prekey`)."""
    signed_prekey = ours.signed_prekey_by_id(signed_prekey_id)
    if signed_prekey is None:
        raise DecryptionError(f"signed prekey {signed_prekey_id} is unknown")
    outputs = [
        dh(signed_prekey.private_key, identity_key),
        dh(ours.identity, ephemeral_key),
        dh(signed_prekey.private_key, ephemeral_key),
    ]
    if one_time_prekey_id is not None:
        one_time = ours.one_time_prekeys.get(one_time_prekey_id)
        if one_time is None:
            raise DecryptionError(f"one-time prekey {one_time_prekey_id} is unknown or used")
        outputs.append(dh(one_time, ephemeral_key))
    return _agree(*outputs), identity_key + ours.identity_key


# -- The Double Ratchet ------------------------------------------------------------------


def kdf_rk(root_key: bytes, dh_out: bytes) -> tuple[bytes, bytes]:
    derived = hkdf(dh_out, salt=root_key, info=RATCHET_INFO, length=64)
    return derived[:32], derived[32:]


def kdf_ck(chain_key: bytes) -> tuple[bytes, bytes]:
    """The next chain key and this message's key."""
    return hmac.new(chain_key, b"\x02", sha256).digest(), hmac.new(chain_key, b"\x01", sha256).digest()


def _seal(message_key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    derived = hkdf(message_key, salt=b"\x00" * 32, info=MESSAGE_KEY_INFO, length=44)
    # Each message key is used once, so the nonce derived with it is never reused.
    return AESGCM(derived[:32]).encrypt(derived[32:], plaintext, associated_data)


def _open(message_key: bytes, ciphertext: bytes, associated_data: bytes) -> bytes:
    derived = hkdf(message_key, salt=b"\x00" * 32, info=MESSAGE_KEY_INFO, length=44)
    try:
        return AESGCM(derived[:32]).decrypt(derived[32:], ciphertext, associated_data)
    except InvalidTag as error:
        raise DecryptionError("the message does not authenticate") from error


@dataclass(frozen=True)
class Header:
    dh: bytes
    previous_chain_length: int
    number: int

    def encode(self) -> bytes:
        return HEADER.pack(self.dh, self.previous_chain_length, self.number)

    @classmethod
    def decode(cls, data: bytes) -> Header:
        if len(data) < HEADER.size:
            raise DecryptionError("the message is too short for its header")
        return cls(*HEADER.unpack(data[: HEADER.size]))


@dataclass
class Ratchet:
    """The state of one side of a session (the specification's names, spelled out)."""

    associated_data: bytes
    root_key: bytes
    sending: X25519PrivateKey
    receiving: bytes | None = None
    sending_chain: bytes | None = None
    receiving_chain: bytes | None = None
    sent: int = 0
    received: int = 0
    previous_chain_length: int = 0
    skipped: OrderedDict[tuple[bytes, int], bytes] = field(default_factory=OrderedDict)

    @classmethod
    def as_initiator(cls, shared_key: bytes, associated_data: bytes, their_ratchet_key: bytes) -> Ratchet:
        sending = X25519PrivateKey.generate()
        root_key, sending_chain = kdf_rk(shared_key, dh(sending, their_ratchet_key))
        return cls(associated_data, root_key, sending, receiving=their_ratchet_key, sending_chain=sending_chain)

    @classmethod
    def as_responder(cls, shared_key: bytes, associated_data: bytes, our_ratchet_key: X25519PrivateKey) -> Ratchet:
        return cls(associated_data, shared_key, our_ratchet_key)

    def encrypt(self, plaintext: bytes) -> bytes:
        if self.sending_chain is None:
            raise DecryptionError("a responder sends only once the initiator's first message arrived")
        self.sending_chain, message_key = kdf_ck(self.sending_chain)
        header = Header(public_of(self.sending), self.previous_chain_length, self.sent).encode()
        self.sent += 1
        return header + _seal(message_key, plaintext, self.associated_data + header)

    def decrypt(self, message: bytes) -> bytes:
        """The plaintext; the state advances only if it decrypts."""
        trial = dataclasses.replace(self, skipped=OrderedDict(self.skipped))
        plaintext = trial._decrypt(message)
        for name in (f.name for f in dataclasses.fields(self)):
            setattr(self, name, getattr(trial, name))
        return plaintext

    def _decrypt(self, message: bytes) -> bytes:
        header = Header.decode(message)
        raw_header, ciphertext = message[: HEADER.size], message[HEADER.size :]
        skipped = self.skipped.pop((header.dh, header.number), None)
        if skipped is not None:
            return _open(skipped, ciphertext, self.associated_data + raw_header)
        if header.dh != self.receiving:
            self._skip_until(header.previous_chain_length)
            self._step(header.dh)
        self._skip_until(header.number)
        assert self.receiving_chain is not None
        self.receiving_chain, message_key = kdf_ck(self.receiving_chain)
        self.received += 1
        return _open(message_key, ciphertext, self.associated_data + raw_header)

    def _skip_until(self, until: int) -> None:
        if self.received + MAX_SKIP < until:
            raise DecryptionError("the message is too far ahead of its chain")
        if self.receiving_chain is None:
            return
        while self.received < until:
            self.receiving_chain, message_key = kdf_ck(self.receiving_chain)
            assert self.receiving is not None
            self.skipped[(self.receiving, self.received)] = message_key
            self.received += 1
        while len(self.skipped) > MAX_SKIPPED_KEYS:
            self.skipped.popitem(last=False)

    def _step(self, their_ratchet_key: bytes) -> None:
        """The DH ratchet step: a new receiving chain from their new key, then a new
        sending key pair and chain."""
        self.previous_chain_length, self.sent, self.received = self.sent, 0, 0
        self.receiving = their_ratchet_key
        self.root_key, self.receiving_chain = kdf_rk(self.root_key, dh(self.sending, their_ratchet_key))
        self.sending = X25519PrivateKey.generate()
        self.root_key, self.sending_chain = kdf_rk(self.root_key, dh(self.sending, their_ratchet_key))


# -- Sessions with one remote device, and the wire format --------------------------------


@dataclass
class Session:
    ratchet: Ratchet
    # Set while the session's first messages go unanswered: each carries what the
    # responder needs to run X3DH (Signal's PreKeySignalMessage). Cleared on a reply.
    pending_prekey: bytes | None = None
    # The initiator's ephemeral key, by which a responder recognises a session it has
    # already set up when more prekey messages of it arrive.
    base_key: bytes = b""


def prekey_prefix(ours: DeviceKeys, initiation: Initiation) -> bytes:
    return PREKEY_PREFIX.pack(
        VERSION,
        ours.identity_key,
        initiation.ephemeral_key,
        initiation.signed_prekey_id,
        initiation.one_time_prekey_id is not None,
        initiation.one_time_prekey_id or 0,
    )


@dataclass
class Peer:
    """Our sessions with one remote device, newest first: both sides may start a session
    at once, and messages of an older one may still be in flight."""

    identity_key: bytes
    sessions: list[Session] = field(default_factory=list)

    @classmethod
    def initiate(cls, ours: DeviceKeys, bundle: Bundle) -> Peer:
        initiation = x3dh_initiate(ours, bundle)
        ratchet = Ratchet.as_initiator(initiation.shared_key, initiation.associated_data, bundle.signed_prekey)
        session = Session(ratchet, prekey_prefix(ours, initiation), initiation.ephemeral_key)
        return cls(bundle.identity_key, [session])

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        """The envelope's type ("prekey" or "message") and its ciphertext."""
        session = self.sessions[0]
        message = session.ratchet.encrypt(plaintext)
        if session.pending_prekey is not None:
            return "prekey", session.pending_prekey + message
        return "message", message

    def decrypt(self, message: bytes) -> bytes:
        for session in self.sessions:
            try:
                plaintext = session.ratchet.decrypt(message)
            except DecryptionError:
                continue
            session.pending_prekey = None  # they answered: they have the session
            self._prefer(session)
            return plaintext
        raise DecryptionError("no session with this device decrypts the message")

    def _prefer(self, session: Session) -> None:
        self.sessions.remove(session)
        self.sessions.insert(0, session)


def parse_prekey_message(data: bytes) -> tuple[bytes, bytes, int, int | None, bytes]:
    """The initiator's identity key, ephemeral key, signed and one-time prekey ids, and
    the ratchet message."""
    if len(data) < PREKEY_PREFIX.size:
        raise DecryptionError("the prekey message is too short")
    version, identity_key, ephemeral_key, spk_id, has_opk, opk_id = PREKEY_PREFIX.unpack(data[: PREKEY_PREFIX.size])
    if version != VERSION:
        raise DecryptionError(f"unknown version {version}")
    return identity_key, ephemeral_key, spk_id, opk_id if has_opk else None, data[PREKEY_PREFIX.size :]


def decrypt_prekey(ours: DeviceKeys, peer: Peer | None, data: bytes) -> tuple[Peer, bytes]:
    """A prekey message: through the session it belongs to if we have it, else through a
    new one set up by X3DH (which then consumes its one-time prekey). The peer, its
    newest session first, and the plaintext."""
    identity_key, ephemeral_key, spk_id, opk_id, message = parse_prekey_message(data)
    if peer is not None and peer.identity_key == identity_key:
        for session in peer.sessions:
            if session.base_key == ephemeral_key:
                return peer, peer.decrypt(message)
    shared_key, associated_data = x3dh_respond(
        ours, identity_key=identity_key, ephemeral_key=ephemeral_key, signed_prekey_id=spk_id, one_time_prekey_id=opk_id
    )
    signed_prekey = ours.signed_prekey_by_id(spk_id)
    assert signed_prekey is not None  # x3dh_respond found it
    ratchet = Ratchet.as_responder(shared_key, associated_data, signed_prekey.private_key)
    plaintext = ratchet.decrypt(message)
    if opk_id is not None:
        del ours.one_time_prekeys[opk_id]  # used once: a replay of this message cannot set up a session again
    session = Session(ratchet, base_key=ephemeral_key)
    if peer is None or peer.identity_key != identity_key:
        return Peer(identity_key, [session]), plaintext
    peer.sessions.insert(0, session)
    return peer, plaintext
