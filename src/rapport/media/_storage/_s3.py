"""Blobs as objects of an S3-compatible bucket, spoken to over HTTP with httpx.

Path-style URLs (`<endpoint>/<bucket>/<key>`), which every S3-compatible server accepts,
and AWS Signature Version 4 in the `Authorization` header (`_sigv4`). An upload streams the
staged file in chunks with its length and its SHA-256 (`x-amz-content-sha256`), which the
server checks against the bytes it receives; a download streams the answer to a GET, with a
`Range` header for part of it. One connection pool per backend, closed by `close()`.

When the server says no, the error names the operation, the object, S3's error code and
what to check (a key, the bucket, the clock), and goes to the log.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import structlog

from rapport.media._storage import _sigv4
from rapport.media._storage._keys import CHUNK_BYTES, check_range, check_source, checked_key
from rapport.media._storage.errors import BlobMissing, InvalidRange, StorageRefused, StorageUnavailable

log = structlog.get_logger(__name__)

# An error document is a few hundred bytes; more is not read.
_ERROR_BODY_LIMIT = 64 * 1024
_XML_FIELD = re.compile(r"<(Code|Message)>([^<]*)</\1>")

# What an operator should check for the error codes that mean the settings are wrong.
_HINTS = {
    "SignatureDoesNotMatch": "RAPPORT_S3_SECRET_ACCESS_KEY does not belong to RAPPORT_S3_ACCESS_KEY_ID",
    "InvalidAccessKeyId": "the server does not know RAPPORT_S3_ACCESS_KEY_ID",
    "AccessDenied": "the access key may not do this in the bucket",
    "NoSuchBucket": "RAPPORT_S3_BUCKET does not exist on this server",
    "RequestTimeTooSkewed": "this machine's clock is too far from the server's",
    "AuthorizationHeaderMalformed": "RAPPORT_S3_REGION is not the bucket's region",
    "XAmzContentSHA256Mismatch": "the staged file changed while it was uploaded",
}


class S3Storage:
    provider = "s3"

    def __init__(
        self,
        *,
        endpoint: str,
        bucket: str,
        region: str,
        access_key_id: str,
        secret_access_key: str,
        timeout: httpx.Timeout | None = None,
    ) -> None:
        url = urlsplit(endpoint)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError(f"the S3 endpoint is not an http(s) URL: {endpoint!r}")
        self.endpoint = endpoint
        self.bucket = bucket
        self.region = region
        self._origin = f"{url.scheme}://{url.netloc}"
        self._host = url.netloc
        self._prefix = url.path.rstrip("/")
        self._credentials = _sigv4.Credentials(access_key_id, secret_access_key)
        self._timeout = timeout or httpx.Timeout(60.0, connect=10.0)
        self._client: httpx.AsyncClient | None = None

    async def put(self, key: str, source: Path, *, sha256_hex: str, size: int, content_type: str) -> None:
        await asyncio.to_thread(check_source, source, size)
        request = self._request(
            "PUT",
            key,
            {"content-type": content_type},
            payload_sha256=sha256_hex,
            # Given the length, httpx sends the stream as it is (S3 takes no chunked encoding).
            length=size,
            content=_file_chunks(source, size),
        )
        response = await self._send(request, key)
        try:
            if response.status_code != 200:
                await self._refused(response, "PUT", key)
        finally:
            await response.aclose()
        await asyncio.to_thread(source.unlink)

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        check_range(start, end)
        headers = {}
        if start > 0 or end is not None:
            headers["range"] = f"bytes={start}-{'' if end is None else end}"
        async with self._streamed(self._request("GET", key, headers), key) as response:
            if response.status_code == 404:
                raise BlobMissing(f"blob {key} is not in bucket {self.bucket} at {self.endpoint}")
            if response.status_code == 416:
                raise InvalidRange(f"{headers['range']} of blob {key}")
            if response.status_code not in (200, 206):
                await self._refused(response, "GET", key)
            try:
                async for chunk in response.aiter_bytes(CHUNK_BYTES):
                    yield chunk
            except httpx.TransportError as error:
                raise self._unreachable("GET", key, error) from error

    async def delete(self, key: str) -> None:
        response = await self._send(self._request("DELETE", key, {}), key)
        try:
            # S3 answers 204 whether or not the object was there.
            if response.status_code not in (200, 204, 404):
                await self._refused(response, "DELETE", key)
        finally:
            await response.aclose()

    async def exists(self, key: str) -> bool:
        response = await self._send(self._request("HEAD", key, {}), key)
        try:
            if response.status_code == 404:
                return False
            if response.status_code != 200:
                await self._refused(response, "HEAD", key)
            return True
        finally:
            await response.aclose()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- requests ---------------------------------------------------------------------

    def _client_for(self) -> httpx.AsyncClient:
        # Made on first use, inside the event loop that will use it.
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        return self._client

    def _request(
        self,
        method: str,
        key: str,
        headers: Mapping[str, str],
        *,
        payload_sha256: str = _sigv4.EMPTY_SHA256,
        length: int | None = None,
        content: AsyncIterator[bytes] | None = None,
    ) -> httpx.Request:
        path = _sigv4.canonical_path(f"{self._prefix}/{self.bucket}/{checked_key(key)}")
        timestamp = _sigv4.amz_date(datetime.now(UTC))
        signed = {
            **headers,
            "host": self._host,
            "x-amz-date": timestamp,
            "x-amz-content-sha256": payload_sha256,
        }
        authorization = _sigv4.sign(
            method,
            path,
            headers=signed,
            payload_sha256=payload_sha256,
            credentials=self._credentials,
            region=self.region,
            service="s3",
            timestamp=timestamp,
        ).authorization
        sent = {**signed, "authorization": authorization}
        if length is not None:
            sent["content-length"] = str(length)
        return self._client_for().build_request(method, self._origin + path, headers=sent, content=content)

    async def _send(self, request: httpx.Request, key: str) -> httpx.Response:
        try:
            return await self._client_for().send(request, stream=True)
        except httpx.TransportError as error:
            raise self._unreachable(request.method, key, error) from error

    @asynccontextmanager
    async def _streamed(self, request: httpx.Request, key: str) -> AsyncIterator[httpx.Response]:
        response = await self._send(request, key)
        try:
            yield response
        finally:
            await response.aclose()

    async def _refused(self, response: httpx.Response, method: str, key: str) -> None:
        body = bytearray()
        if method != "HEAD":
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= _ERROR_BODY_LIMIT:
                    break
        fields = {name: html.unescape(value) for name, value in _XML_FIELD.findall(body.decode("utf-8", "replace"))}
        code = fields.get("Code") or response.headers.get("x-amz-error-code")
        message = fields.get("Message") or response.reason_phrase
        if code is None and response.status_code == 403:
            hint = "check RAPPORT_S3_ACCESS_KEY_ID, RAPPORT_S3_SECRET_ACCESS_KEY and the key's rights on the bucket"
        else:
            hint = _HINTS.get(code or "", "")
        said = " ".join(part for part in (str(response.status_code), code, message) if part)
        reason = f"S3 refused {method} {self.bucket}/{key} at {self.endpoint}: {said}"
        if hint:
            reason += f" ({hint})"
        log.warning("media.storage_refused", method=method, key=key, status=response.status_code, reason=reason)
        raise StorageRefused(reason, server_status=response.status_code, code=code)

    def _unreachable(self, method: str, key: str, error: httpx.TransportError) -> StorageUnavailable:
        log.warning("media.storage_unreachable", method=method, key=key, error=repr(error))
        return StorageUnavailable(f"S3 at {self.endpoint} could not be reached for {method} {key}: {error!r}")


async def _file_chunks(source: Path, size: int) -> AsyncIterator[bytes]:
    fd = await asyncio.to_thread(os.open, source, os.O_RDONLY)
    try:
        position = 0
        while position < size:
            chunk = await asyncio.to_thread(os.pread, fd, min(CHUNK_BYTES, size - position), position)
            if not chunk:
                raise StorageUnavailable(f"{source} ended at {position} of {size} bytes while it was uploaded")
            position += len(chunk)
            yield chunk
    finally:
        os.close(fd)
