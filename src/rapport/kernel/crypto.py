"""Random tokens and how they are stored: only ever as a hash.

Refresh tokens, API keys and recovery codes carry 128+ bits of randomness, so a plain
SHA-256 is enough to store them. Six-digit e-mail codes do not: they are stored as an
HMAC under the server key, so a leaked table does not give them away by brute force.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def random_token(prefix: str, nbytes: int = 32) -> str:
    return prefix + secrets.token_urlsafe(nbytes)


def sha256(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def numeric_code(digits: int = 6) -> str:
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def recovery_code() -> str:
    """Ten base32 characters in two groups: easy to read aloud, 50 bits."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


class Keyring:
    """Keys derived from the one server secret, each for one purpose."""

    def __init__(self, secret_key: str) -> None:
        self._secret = secret_key.encode()

    def derive(self, purpose: str) -> bytes:
        return hmac.new(self._secret, purpose.encode(), hashlib.sha256).digest()

    def mac(self, purpose: str, value: str) -> bytes:
        return hmac.new(self.derive(purpose), value.encode(), hashlib.sha256).digest()

    def encrypt(self, purpose: str, plaintext: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + AESGCM(self.derive(purpose)).encrypt(nonce, plaintext, purpose.encode())

    def decrypt(self, purpose: str, blob: bytes) -> bytes:
        return AESGCM(self.derive(purpose)).decrypt(blob[:12], blob[12:], purpose.encode())
