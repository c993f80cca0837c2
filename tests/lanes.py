"""Which lane answered a request: the hot lane (rapport.kernel.hot_routes) or FastAPI.

A test module that checks both lanes answer alike takes a client built here over the app
as it is served, which notes the lane of each request in a list."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from rapport.kernel.hot_routes import HotRoute, Receive, Scope, Send

HOT, FASTAPI = "hot lane", "FastAPI"


@asynccontextmanager
async def lane_watching_client(app: FastAPI, lanes: list[str]) -> AsyncIterator[httpx.AsyncClient]:
    """conftest's client, over the app as it is served, appending to `lanes` which lane
    answered each request, in order."""

    async def watched(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, send)
        if scope["type"] == "http":
            lanes.append(HOT if isinstance(scope.get("route"), HotRoute) else FASTAPI)

    transport = httpx.ASGITransport(app=watched, raise_app_exceptions=False, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://rapport.test") as http:
        yield http
    async with asyncio.timeout(10):
        await app.state.notifications.catch_up()
        await app.state.worker.wait_idle()
