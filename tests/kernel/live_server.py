"""A real uvicorn server in the test's event loop, configured as `rapport serve` runs it,
for what the ASGI transport cannot show: connections, keep-alive, the server's own
handling of headers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from rapport.cli import server_options
from rapport.config import Settings


@asynccontextmanager
async def live_server(app: FastAPI, settings: Settings) -> AsyncIterator[str]:
    """Serve an already started app (its lifespan is the caller's) on a free loopback
    port; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan="off", log_config=None, timeout_graceful_shutdown=2, **server_options(settings)
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
