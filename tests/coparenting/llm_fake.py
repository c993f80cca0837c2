"""A local stand-in for an OpenAI-compatible chat-completions endpoint: a real HTTP server
(hypercorn on a free loopback port) answering `POST /v1/chat/completions` as the OpenAI
API does, checking the bearer key, and keeping what it was sent.

`answer(obj)` sets the JSON object the model "writes" (as the message's content);
`fail_next(status)`, `delay_next(seconds)` and `garble_next()` make the next request fail,
answer late or answer what is not JSON."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Self

import orjson
from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support import free_port

API_KEY = "sk-test-rapport"
MODEL = "rapport-test-model"


class FakeLlm:
    url: str

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.content: dict[str, Any] = {"hostile": False, "tone": "neutral", "rewrite": None}
        self._failures: list[int] = []
        self._delays: list[float] = []
        self._garbled = 0
        self._shutdown = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def answer(self, content: dict[str, Any]) -> None:
        self.content = content

    def fail_next(self, status: int) -> None:
        self._failures.append(status)

    def delay_next(self, seconds: float) -> None:
        self._delays.append(seconds)

    def garble_next(self) -> None:
        self._garbled += 1

    def reset(self) -> None:
        self.received.clear()
        self.headers.clear()
        self._failures.clear()
        self._delays.clear()
        self._garbled = 0
        self.content = {"hostile": False, "tone": "neutral", "rewrite": None}

    async def _completions(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return JSONResponse(
                {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}, 401
            )
        body = await request.json()
        self.received.append(body)
        self.headers.append(dict(request.headers))
        if self._delays:
            await asyncio.sleep(self._delays.pop(0))
        if self._failures:
            status = self._failures.pop(0)
            return JSONResponse({"error": {"message": "The server is overloaded", "type": "server_error"}}, status)
        content = orjson.dumps(self.content).decode()
        if self._garbled:
            self._garbled -= 1
            content = "Sure! Here is a calmer version: please call me."
        return JSONResponse(
            {
                "id": "chatcmpl-rapport",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            }
        )

    async def start(self) -> None:
        port = free_port()
        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.accesslog = None
        config.errorlog = None
        config.graceful_timeout = 1
        self.url = f"http://127.0.0.1:{port}/v1"
        app = Starlette(routes=[Route("/v1/chat/completions", self._completions, methods=["POST"])])
        self._task = asyncio.create_task(serve(app, config, shutdown_trigger=self._shutdown.wait))  # type: ignore[arg-type]
        deadline = time.monotonic() + 10
        while True:
            if self._task.done():
                self._task.result()
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.01)
                continue
            writer.close()
            await writer.wait_closed()
            return

    async def stop(self) -> None:
        self._shutdown.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
