"""AWS Signature Version 4 for requests whose signature goes in the `Authorization` header.

Three steps, as AWS documents them: the canonical request (method, the encoded path, the
sorted query, the signed headers lowercased and sorted, the payload's SHA-256), the string
to sign (algorithm, time, scope and the canonical request's hash), and the signature, an
HMAC of that string under a key derived from the secret by four HMACs (date, region,
service, `aws4_request`). The secret itself never leaves this process.

S3's one difference from other services is kept by the caller: the path is encoded once and
not normalised (`a//b` and `a/./b` are distinct keys), which is what `canonical_path` gives.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# RFC 3986's unreserved characters are the only ones left as they are.
_UNRESERVED = "-_.~"
_SPACES = re.compile(r" +")


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str


@dataclass(frozen=True)
class Signed:
    """A signature and what went into it, so a refusal can be explained and tests can
    compare each step with AWS's published values."""

    authorization: str
    canonical_request: str
    string_to_sign: str
    signature: str
    signed_headers: str


def uri_encode(value: str, *, keep_slash: bool = False) -> str:
    """Percent-encode everything but the unreserved characters (and `/` in a path), in
    upper-case hex, as SigV4 requires."""
    return quote(value, safe=_UNRESERVED + ("/" if keep_slash else ""))


def canonical_path(path: str) -> str:
    """An object path as S3 signs it and as it goes on the wire: each segment encoded once."""
    return uri_encode(path if path.startswith("/") else "/" + path, keep_slash=True)


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """The query's pairs encoded, then sorted by name and value; `?acl` is `acl=`."""
    encoded = sorted((uri_encode(name), uri_encode(value)) for name, value in params)
    return "&".join(f"{name}={value}" for name, value in encoded)


def amz_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    """The key of one day, region and service; `date` is YYYYMMDD."""
    key = _hmac(("AWS4" + secret_access_key).encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def sign(
    method: str,
    path: str,
    *,
    query: Iterable[tuple[str, str]] = (),
    headers: Mapping[str, str],
    payload_sha256: str,
    credentials: Credentials,
    region: str,
    service: str,
    timestamp: str,
) -> Signed:
    """Sign a request. `path` is already encoded (see `canonical_path`) and is sent as is;
    every header given is signed, `host` and `x-amz-date` (= `timestamp`, YYYYMMDDTHHMMSSZ)
    among them; `payload_sha256` is the hex SHA-256 of the body (`EMPTY_SHA256` for none).
    """
    canonical_headers = _canonical_headers(headers)
    signed_headers = ";".join(name for name, _ in canonical_headers)
    canonical_request = "\n".join(
        [
            method.upper(),
            path,
            canonical_query(query),
            "".join(f"{name}:{value}\n" for name, value in canonical_headers),
            signed_headers,
            payload_sha256,
        ]
    )
    scope = f"{timestamp[:8]}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join([ALGORITHM, timestamp, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = signing_key(credentials.secret_access_key, timestamp[:8], region, service)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    authorization = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return Signed(authorization, canonical_request, string_to_sign, signature, signed_headers)


def _canonical_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    # Names lowercased, values trimmed with inner runs of spaces made one, sorted by name.
    merged: dict[str, list[str]] = {}
    for name, value in headers.items():
        merged.setdefault(name.lower().strip(), []).append(_SPACES.sub(" ", value.strip()))
    return sorted((name, ",".join(values)) for name, values in merged.items())


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()
