"""VAPID keys (RFC 8292): the P-256 key pair that identifies this server to the browsers'
push services. Browsers subscribe with its public half (`applicationServerKey`), and a
push service refuses pushes signed by any other key, so the pair is made once
(`rapport admin vapid-keys`) and kept in the settings."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


@dataclass(frozen=True)
class VapidKeyPair:
    # Both base64url without padding: the public key as the uncompressed point browsers
    # take as `applicationServerKey`, the private key as its raw 32-byte scalar.
    public_key: str
    private_key: str

    def environment(self) -> str:
        """The two settings, as lines to put in the environment or `.env`."""
        return f"RAPPORT_VAPID_PUBLIC_KEY={self.public_key}\nRAPPORT_VAPID_PRIVATE_KEY={self.private_key}"


def new_key_pair() -> VapidKeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    return VapidKeyPair(
        public_key=public_key_of(key), private_key=b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    )


def load_private_key(text: str) -> ec.EllipticCurvePrivateKey:
    """The private key as `vapid-keys` prints it (raw, base64url), or in PEM or base64 DER,
    the forms other Web Push tools write.

    Raises:
        ValueError: not a P-256 private key in any of these forms.
    """
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
    else:
        raw = b64url_decode(text)
        if len(raw) == 32:
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
        else:
            key = serialization.load_der_private_key(raw, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("a VAPID key is a P-256 (prime256v1) key")
    return key


def public_key_of(key: ec.EllipticCurvePrivateKey) -> str:
    return b64url(
        key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Base64url or plain base64, padded or not (browsers and tools write both)."""
    cleaned = text.strip().replace("+", "-").replace("/", "_").rstrip("=")
    return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
