"""Builds the FastAPI application from the domains' routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, OperationalError

from rapport import __version__
from rapport.config import Settings
from rapport.identity.api import router as identity_router
from rapport.kernel.db import create_engine
from rapport.kernel.errors import ServiceUnavailable
from rapport.kernel.http import (
    BodyLimitMiddleware,
    RequestContextMiddleware,
    install_error_handlers,
    problem_response,
)
from rapport.kernel.logging import configure_logging
from rapport.kernel.runtime import Runtime
from rapport.social.api import router as social_router
from rapport.social.api_parts import router as social_parts_router
from rapport.social.api_search import router as social_search_router

DESCRIPTION = """\
Rapport is a PostgreSQL-native backend for people-to-people applications.

Authenticate with `Authorization: Bearer <access token>` (from sign-in) or an API key.
Errors are `application/problem+json` (RFC 9457) with a stable `type`.
Lists are paginated with opaque `next` cursors.
"""


def create_app(settings: Settings, *, database_url: URL | str) -> FastAPI:
    """The app, connecting as `rapport_app` to `database_url` when it starts."""
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(database_url, pool_size=settings.database_pool_size)
        app.state.runtime = Runtime.build(settings, engine)
        try:
            yield
        finally:
            await app.state.runtime.close()

    app = FastAPI(
        title="Rapport",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(identity_router)
    app.include_router(social_router)
    app.include_router(social_parts_router)
    app.include_router(social_search_router)

    @app.get("/healthz", tags=["operations"])
    async def healthz(request: Request) -> Response:
        """200 when the database answers, 503 when it does not."""
        try:
            async with request.app.state.runtime.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (OSError, OperationalError, DBAPIError):
            return problem_response(ServiceUnavailable("The database is not reachable."), request)
        return JSONResponse({"status": "ok", "database": "ok", "version": __version__})

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics of this process."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
