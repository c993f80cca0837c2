"""A client for clamd, ClamAV's daemon, over its socket protocol (clamd(8), "INSTREAM").

The bytes are streamed, never written to a file clamd would have to be allowed to read:
`zINSTREAM\\0`, then chunks each prefixed by its length as 4 bytes big-endian, then a
zero length; clamd answers one NUL-terminated line, `stream: OK`, `stream: <signature>
FOUND` or `<reason> ERROR`. clamd closes the stream early with
`INSTREAM size limit exceeded. ERROR` past its StreamMaxLength (25 MB by default): set it
to the largest upload Rapport accepts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from contextlib import suppress
from dataclasses import dataclass
from typing import Literal

# A chunk is a length and its bytes; clamd reads each into memory, so they stay small.
CHUNK_BYTES = 256 * 1024
# A reply is one short line.
_REPLY_LIMIT = 4096


class ClamdUnavailable(Exception):
    """clamd could not be reached or stopped answering: worth another try later."""


class ClamdRefused(Exception):
    """clamd answered with an ERROR (a stream past its size limit, a broken database): the
    same bytes would get the same answer."""


@dataclass(frozen=True)
class ClamdAddress:
    kind: Literal["unix", "tcp"]
    path: str = ""
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.kind == "unix" else f"tcp:{self.host}:{self.port}"


@dataclass(frozen=True)
class ClamdVerdict:
    infected: bool
    signature: str | None


def parse_address(value: str) -> ClamdAddress:
    """`unix:/run/clamav/clamd.ctl` or `tcp:host:port` (an IPv6 host in brackets).

    Raises:
        ValueError: neither form.
    """
    scheme, _, rest = value.partition(":")
    if scheme == "unix" and rest:
        return ClamdAddress("unix", path=rest)
    if scheme == "tcp":
        host, _, port = rest.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if host and port.isdigit() and 0 < int(port) < 65536:
            return ClamdAddress("tcp", host=host, port=int(port))
    raise ValueError(f"clamd's address is unix:/path or tcp:host:port, not {value!r}")


async def _connect(address: ClamdAddress) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if address.kind == "unix":
        return await asyncio.open_unix_connection(address.path, limit=_REPLY_LIMIT)
    return await asyncio.open_connection(address.host, address.port, limit=_REPLY_LIMIT)


def parse_reply(reply: bytes) -> ClamdVerdict:
    """Raises:
    ClamdRefused: an ERROR line, or one this client does not understand."""
    line = reply.rstrip(b"\x00").strip().decode("utf-8", "replace")
    if line.endswith(" ERROR") or line == "ERROR":
        raise ClamdRefused(f"clamd: {line}")
    _, _, verdict = line.partition(": ")
    if verdict == "OK":
        return ClamdVerdict(infected=False, signature=None)
    if verdict.endswith(" FOUND") and verdict.removesuffix(" FOUND").strip():
        return ClamdVerdict(infected=True, signature=verdict.removesuffix(" FOUND").strip())
    raise ClamdRefused(f"clamd answered something unexpected: {line[:200]!r}")


async def _read_reply(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\x00")
    except asyncio.IncompleteReadError as error:
        if error.partial:  # a reply cut by the closing connection, without its NUL
            return error.partial
        raise ClamdUnavailable("clamd closed the connection without an answer") from error
    except asyncio.LimitOverrunError as error:
        raise ClamdRefused("clamd's answer is far longer than a verdict") from error


async def close_stream(stream: AsyncIterable[bytes]) -> None:
    """Close a stream left before its end at once, not when collected: a storage stream
    holds a file or a connection."""
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


async def _send(writer: asyncio.StreamWriter, chunks: AsyncIterable[bytes]) -> None:
    writer.write(b"zINSTREAM\x00")
    try:
        async for piece in chunks:
            for start in range(0, len(piece), CHUNK_BYTES):
                chunk = piece[start : start + CHUNK_BYTES]
                writer.write(len(chunk).to_bytes(4, "big") + chunk)
                await writer.drain()
    finally:
        await close_stream(chunks)
    writer.write(b"\x00\x00\x00\x00")
    await writer.drain()


async def instream(address: ClamdAddress, chunks: AsyncIterable[bytes], *, within: float = 120.0) -> ClamdVerdict:
    """Scan a stream of bytes.

    Raises:
        ClamdUnavailable: not reachable, or no answer within `within` seconds.
        ClamdRefused: clamd answered ERROR.
    """
    try:
        async with asyncio.timeout(within):
            reader, writer = await _connect(address)
            try:
                # clamd stops reading past its size limit, and says why before closing.
                with suppress(ConnectionResetError, BrokenPipeError):
                    await _send(writer, chunks)
                return parse_reply(await _read_reply(reader))
            finally:
                writer.close()
                with suppress(OSError):
                    await writer.wait_closed()
    except TimeoutError as error:
        raise ClamdUnavailable(f"clamd at {address} did not answer within {within:g} s") from error
    except (ConnectionError, FileNotFoundError, OSError) as error:
        raise ClamdUnavailable(f"clamd at {address} is not reachable: {error}") from error


async def ping(address: ClamdAddress, *, within: float = 5.0) -> bool:
    """Whether clamd answers PONG."""
    try:
        async with asyncio.timeout(within):
            reader, writer = await _connect(address)
            try:
                writer.write(b"zPING\x00")
                await writer.drain()
                return (await reader.readuntil(b"\x00")).rstrip(b"\x00") == b"PONG"
            finally:
                writer.close()
                with suppress(OSError):
                    await writer.wait_closed()
    except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return False
