"""A stand-in for clamd speaking its socket protocol (clamd(8)), for the scan tests: a real
clamd needs its signature database, hundreds of megabytes that cannot be fetched here.

It answers `zPING`, `zVERSION` and `zINSTREAM` as clamd does, on a unix socket or TCP, and
is strict about framing: a command must be `z`-prefixed and NUL-terminated, each chunk
carries its length as 4 bytes big-endian, and a stream past `max_stream` bytes is cut
with clamd's own `INSTREAM size limit exceeded. ERROR`. A stream holding the EICAR test
string is reported FOUND under the name today's ClamAV databases give it; anything else
is OK. With `stall` set it reads everything and never answers (a hung daemon).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from rapport.media._processing._scan import EICAR

SIGNATURE = "Win.Test.EICAR_HDB-1"


@dataclass
class Stream:
    """One INSTREAM as received: its chunk sizes and bytes."""

    chunks: list[int] = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)


class FakeClamd:
    def __init__(self, *, max_stream: int = 25 * 1024 * 1024, stall: bool = False) -> None:
        self.max_stream = max_stream
        self.stall = stall
        self.streams: list[Stream] = []
        self.errors: list[str] = []
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.address = ""

    async def start_unix(self, path: Path) -> FakeClamd:
        self._server = await asyncio.start_unix_server(self._serve, path=str(path))
        self.address = f"unix:{path}"
        return self

    async def start_tcp(self) -> FakeClamd:
        self._server = await asyncio.start_server(self._serve, host="127.0.0.1", port=0)
        port = self._server.sockets[0].getsockname()[1]
        self.address = f"tcp:127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for handler in self._handlers:
                handler.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        try:
            command = await reader.readuntil(b"\x00")
            if command == b"zPING\x00":
                writer.write(b"PONG\x00")
            elif command == b"zVERSION\x00":
                writer.write(b"ClamAV 1.4.1/27400/Tue Nov 26 09:00:00 2026\x00")
            elif command == b"zINSTREAM\x00":
                reply = await self._instream(reader)
                if reply is None:
                    return
                writer.write(reply)
            else:
                self.errors.append(f"unknown command {command[:40]!r}")
                writer.write(b"UNKNOWN COMMAND\x00")
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as error:
            self.errors.append(f"broken framing: {error!r}")
        finally:
            self._handlers.discard(handler)
            writer.close()

    async def _instream(self, reader: asyncio.StreamReader) -> bytes | None:
        stream = Stream()
        self.streams.append(stream)
        while True:
            length = int.from_bytes(await reader.readexactly(4), "big")
            if length == 0:
                break
            if len(stream.data) + length > self.max_stream:
                return b"INSTREAM size limit exceeded. ERROR\x00"
            stream.chunks.append(length)
            stream.data += await reader.readexactly(length)
        if self.stall:
            await asyncio.Event().wait()  # until close() cancels it
            return None
        if EICAR in stream.data:
            return f"stream: {SIGNATURE} FOUND\x00".encode()
        return b"stream: OK\x00"
