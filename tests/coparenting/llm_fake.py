"""A local stand-in for an OpenAI-compatible chat-completions endpoint: a real HTTP server
(hypercorn on a free loopback port) answering `POST /v1/chat/completions` as the OpenAI
API does, checking the bearer key, and keeping what it was sent.

`answer(obj)` sets the JSON object the model "writes" (as the message's content);
`fail_next(status)`, `delay_next(seconds)` and `garble_next()` make the next request fail,
answer late or answer what is not JSON."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.notifications.fakes import FakeServer

API_KEY = "sk-test-rapport"
MODEL = "rapport-test-model"


class FakeLlm(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.content: dict[str, Any] = {"hostile": False, "tone": "neutral", "rewrite": None}
        self._delays: list[float] = []
        self._garbled = 0

    def answer(self, content: dict[str, Any]) -> None:
        self.content = content

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
        if (status := self._take_failure()) is not None:
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

    def _routes(self) -> list[Route]:
        return [Route("/v1/chat/completions", self._completions, methods=["POST"])]

    async def start(self) -> None:
        await super().start()
        # Clients are given the API's base, as they would be OpenAI's (…/v1).
        self.url += "/v1"
