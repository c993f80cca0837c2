"""Builds the FastAPI application from the domains' routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from rapport import __version__
from rapport.access import api as access_api
from rapport.access.api_hot import HOT_ROUTES as ACCESS_HOT_ROUTES
from rapport.analytics import api_admin as analytics_admin_api
from rapport.analytics import api_events as analytics_events_api
from rapport.analytics import api_experiments as analytics_experiments_api
from rapport.analytics import service as analytics_service
from rapport.analytics import service_reports as analytics_reports
from rapport.analytics.api_hot import HOT_ROUTES as ANALYTICS_HOT_ROUTES
from rapport.bots import api as bots_api
from rapport.bots import service as bots_service
from rapport.compliance import api_account as compliance_account_api
from rapport.compliance import api_admin as compliance_admin_api
from rapport.compliance import api_consents as compliance_consents_api
from rapport.compliance import api_exports as compliance_exports_api
from rapport.compliance import service_deletion as compliance_deletion
from rapport.compliance import service_retention as compliance_retention
from rapport.config import Settings
from rapport.encryption import api as encryption_api
from rapport.identity import service as identity_service
from rapport.identity.api import router as identity_router
from rapport.identity.api_phones import router as identity_phones_router
from rapport.kernel.api_web_client import install_web_client
from rapport.kernel.db import create_engine, create_system_engine
from rapport.kernel.errors import NotFound, ServiceUnavailable
from rapport.kernel.hot_routes import HotRoutes
from rapport.kernel.http import (
    BodyLimitMiddleware,
    ClientAddressMiddleware,
    RequestContextMiddleware,
    UnexpectedErrorMiddleware,
    install_error_handlers,
    may_read_metrics,
    problem_response,
)
from rapport.kernel.jobs import Worker
from rapport.kernel.logging import configure_logging
from rapport.kernel.openapi import document_problems
from rapport.kernel.parameters import refuse_unstorable_parameters
from rapport.kernel.partitions import PartitionUpkeep
from rapport.kernel.provisioning import WORKER_ROLE
from rapport.kernel.runtime import Runtime
from rapport.location.api import router as location_router
from rapport.media import service as media_service
from rapport.media.api import STREAMED_ROUTES as MEDIA_STREAMED_ROUTES
from rapport.media.api import router as media_router
from rapport.media.api_collections import router as media_collections_router
from rapport.media.api_thumbnails import router as media_thumbnails_router
from rapport.media.api_tus import router as media_tus_router
from rapport.messaging.api import router as messaging_router
from rapport.messaging.api_hot import HOT_ROUTES as MESSAGING_HOT_ROUTES
from rapport.messaging.api_streams import router as messaging_streams_router
from rapport.modules.community import api_habits as community_habits_api
from rapport.modules.community import api_stories as community_stories_api
from rapport.modules.coparenting import api_family as coparenting_family_api
from rapport.modules.coparenting import api_mediation as coparenting_mediation_api
from rapport.modules.coparenting import api_pairing as coparenting_pairing_api
from rapport.modules.coparenting import service as coparenting_service
from rapport.modules.matching import api_matches as matching_matches_api
from rapport.modules.matching import api_profiles as matching_profiles_api
from rapport.modules.matching import api_subscriptions as matching_subscriptions_api
from rapport.modules.matching import service as matching_service
from rapport.modules.support import api as support_api
from rapport.modules.support import service as support_service
from rapport.notifications.api import router as notifications_router
from rapport.notifications.tasks import Pipeline as NotificationPipeline
from rapport.realtime import service as realtime_service
from rapport.realtime.api import router as realtime_router
from rapport.realtime.api_presence import router as presence_router
from rapport.social.api import router as social_router
from rapport.social.api_parts import router as social_parts_router
from rapport.social.api_search import router as social_search_router

DESCRIPTION = """\
Rapport is a PostgreSQL-native backend for people-to-people applications.

Authenticate with `Authorization: Bearer <access token>` (from sign-in) or an API key.
Errors are `application/problem+json` (RFC 9457) with a stable `type`.
Lists are paginated with opaque `next` cursors.

Bodies are read strictly: no coercion (`"3"` is not a number, `"yes"` is not `true`),
no unknown fields, and no text PostgreSQL cannot store (NUL, unpaired surrogates) in any
field, key, list item, path or query parameter; each is a 422 naming the field.

PATCH, everywhere: a field left out is left alone; `null` clears an optional field; a
field that cannot be empty refuses `null` with a 422.
"""


# Swagger UI's files, served by Rapport so that /docs works offline (web/docs/README.md).
DOCS_ASSETS = Path(__file__).parent / "web" / "docs"
# Headers a browser script on another origin may read from an answer: media downloads'
# validators and ranges, and what a tus client reads (docs: tus 1.0 with CORS).
CORS_EXPOSED = [
    "X-Request-ID",
    "Retry-After",
    "ETag",
    "Content-Range",
    "Content-Disposition",
    "Accept-Ranges",
    "Location",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Expires",
    "Upload-Metadata",
    "Rapport-File-Id",
]
# Request headers a browser script on another origin may send: besides the API's own,
# conditional and range requests of media downloads, and tus's.
CORS_ALLOWED_HEADERS = [
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "X-Request-ID",
    "Range",
    "If-None-Match",
    "If-Range",
    "Tus-Resumable",
    "Upload-Length",
    "Upload-Offset",
    "Upload-Metadata",
]


def system_url_for(database_url: URL | str, settings: Settings) -> URL:
    """rapport_worker's URL on the same server and database as rapport_app's: provisioning
    gives it RAPPORT_WORKER_PASSWORD, or the app's password when that is unset."""
    url = make_url(database_url)
    password = settings.worker_password.get_secret_value() if settings.worker_password else url.password
    return url.set(username=WORKER_ROLE, password=password)


class Round(Protocol):
    """A domain's loop beside the job worker: a scheduled round or an outbox reader."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


def background_rounds(runtime: Runtime) -> list[tuple[str | None, Round]]:
    """Each domain's rounds and outbox readers, with the job queue whose processes run them
    (None: every process that runs jobs; where several do, one at a time advances, holding
    a lock, and the others wait). The server's in-process worker runs them all; `rapport
    worker` those of its queues."""
    return [
        # media: the hourly round that queues the collection of what nothing uses;
        (media_service.QUEUE, media_service.Collector(runtime)),
        # compliance: erasing accounts whose grace has ended, removing expired exports,
        # and the daily run of the retention policies;
        (compliance_deletion.QUEUE, compliance_deletion.rounds(runtime)),
        (compliance_retention.QUEUE, compliance_retention.RetentionSchedule(runtime)),
        # co-parenting: the topic organiser reads new messages; the pairings' round, and the
        # round that learns again the communication profiles of people who wrote since;
        (coparenting_service.QUEUE, coparenting_service.TopicOrganiser(runtime.system_engine)),
        (coparenting_service.QUEUE, coparenting_service.pairing_rounds(runtime)),
        (coparenting_service.QUEUE, coparenting_service.profile_rounds(runtime)),
        # bots: the dispatcher reads new messages and queues their deliveries; the round
        # ends the streamed answers bots left open past their time;
        (bots_service.QUEUE, bots_service.Dispatcher(runtime.system_engine)),
        (bots_service.QUEUE, bots_service.rounds(runtime)),
        # the support desk's watcher of rooms' first responses, and analytics' recorder of
        # sends, sign-ups and sign-ins (both read the outbox);
        (None, support_service.ResponseWatcher(runtime.system_engine)),
        (None, analytics_service.ServerEventRecorder(runtime.system_engine)),
        # matching's daily round of proposals and its refresher of the feature vectors of
        # people whose community tags changed (it reads the outbox), and analytics' hourly
        # round of the rollup.
        (matching_service.QUEUE, matching_service.daily_round(runtime)),
        (matching_service.QUEUE, matching_service.FeatureRefresher(runtime.system_engine)),
        (analytics_reports.QUEUE, analytics_reports.rollup_round(runtime)),
    ]


def start_rounds(rounds: list[Round]) -> None:
    for each in rounds:
        each.start()


async def stop_rounds(rounds: list[Round]) -> None:
    for each in rounds:
        await each.stop()


def create_app(
    settings: Settings,
    *,
    database_url: URL | str,
    system_database_url: URL | str | None = None,
    run_jobs: bool = True,
) -> FastAPI:
    """The app, connecting as `rapport_app` to `database_url` when it starts, and as
    `rapport_worker` for system work to `system_database_url` (by default the same
    server and database as `database_url`). With `run_jobs` off it never runs the job
    worker, whatever RAPPORT_WORKER_IN_PROCESS says: of several server processes, one does."""
    configure_logging(settings)
    system_url = system_database_url if system_database_url is not None else system_url_for(database_url, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pgbouncer = settings.database_pgbouncer
        engine = create_engine(database_url, pool_size=settings.database_pool_size, pgbouncer=pgbouncer)
        system_engine = create_system_engine(
            system_url, pool_size=settings.database_system_pool_size, pgbouncer=pgbouncer
        )
        app.state.runtime = Runtime.build(
            settings, engine, system_engine=system_engine, authenticate=identity_service.authenticate
        )
        partitions = await PartitionUpkeep.start(system_engine)
        # One reader of the outbox per process, for every socket it holds (docs/REALTIME.md).
        app.state.realtime = realtime_service.Realtime(app.state.runtime)
        await app.state.realtime.start()
        app.state.ephemeral = app.state.realtime.ephemeral
        # The job worker runs in this process unless `rapport worker` runs it elsewhere, and
        # with it the reading of the outbox into notifications, with this process's view of
        # who is connected (docs/decisions/0018).
        app.state.worker = Worker(app.state.runtime, concurrency=settings.worker_concurrency)
        app.state.notifications = NotificationPipeline(app.state.runtime, status_of=app.state.ephemeral.status_of)
        # Where files' bytes are kept, and the collector's hourly round beside the worker.
        app.state.media = media_service.MediaStore.from_settings(settings)
        rounds = [each for _, each in background_rounds(app.state.runtime)]
        if settings.worker_in_process and run_jobs:
            app.state.worker.start()
            await app.state.notifications.start()
            start_rounds(rounds)
        try:
            yield
        finally:
            await app.state.realtime.stop()
            await partitions.stop()
            await app.state.worker.stop()
            # After the worker: its last jobs may still push through the providers.
            await app.state.notifications.stop()
            await stop_rounds(rounds)
            await app.state.media.close()
            await app.state.runtime.close()

    app = FastAPI(
        title="Rapport",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Path and query text PostgreSQL cannot store is refused before any route runs.
        dependencies=[Depends(refuse_unstorable_parameters)],
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    # Added innermost first: a request meets CORS, then the client's address, the
    # request id, the catcher of unexpected errors (inside, so its 500 carries the
    # request id and CORS headers), the body limit, and the hot routes' own lane
    # (rapport.kernel.hot_routes) before FastAPI's routing.
    app.add_middleware(HotRoutes, routes=(*MESSAGING_HOT_ROUTES, *ACCESS_HOT_ROUTES, *ANALYTICS_HOT_ROUTES))
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, streamed=MEDIA_STREAMED_ROUTES)
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(ClientAddressMiddleware, trusted=settings.trusted_proxies, header=settings.forwarded_header)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=CORS_ALLOWED_HEADERS,
            expose_headers=CORS_EXPOSED,
            max_age=600,
        )
    # Routes are matched in the order they are included: messaging's hot routes first,
    # since they carry most requests (no path of one router is a path of another).
    app.include_router(messaging_router)
    app.include_router(messaging_streams_router)
    app.include_router(identity_router)
    app.include_router(identity_phones_router)
    app.include_router(social_router)
    # Encryption's before social's parts: it serves POST, GET and DELETE of /v1/devices for
    # both kinds of device (its routes hand social's bodies and ids to social's service).
    app.include_router(encryption_api.router)
    app.include_router(social_parts_router)
    app.include_router(social_search_router)
    app.include_router(realtime_router)
    app.include_router(presence_router)
    app.include_router(notifications_router)
    # Media's routers with fixed segments after /v1/media/ (uploads, albums, shared, ...)
    # before its /v1/media/{file_id}, which would take those segments for ids.
    app.include_router(media_tus_router)
    app.include_router(media_collections_router)
    app.include_router(media_thumbnails_router)
    app.include_router(media_router)
    app.include_router(compliance_consents_api.router)
    app.include_router(compliance_exports_api.router)
    app.include_router(compliance_account_api.router)
    app.include_router(compliance_admin_api.router)
    app.include_router(coparenting_pairing_api.router)
    app.include_router(coparenting_mediation_api.router)
    app.include_router(coparenting_family_api.router)
    app.include_router(community_stories_api.router)
    app.include_router(community_habits_api.router)
    app.include_router(matching_profiles_api.router)
    app.include_router(matching_matches_api.router)
    app.include_router(matching_subscriptions_api.router)
    app.include_router(access_api.router)
    app.include_router(bots_api.router)
    app.include_router(support_api.router)
    app.include_router(analytics_events_api.router)
    app.include_router(analytics_experiments_api.router)
    app.include_router(analytics_admin_api.router)
    app.include_router(analytics_admin_api.pages)
    app.include_router(location_router)
    document_problems(app)

    @app.get("/healthz", tags=["operations"])
    async def healthz(request: Request) -> Response:
        """200 when the database answers, 503 when it does not."""
        try:
            async with request.app.state.runtime.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (OSError, OperationalError, DBAPIError):
            return problem_response(ServiceUnavailable("The database is not reachable."), request)
        return JSONResponse({"status": "ok", "database": "ok", "version": __version__})

    # Left out of the OpenAPI document, and 404 to whoever may not read it: nothing
    # tells a stranger it exists (docs/OPERATIONS.md, "Metrics").
    metrics_token = settings.metrics_token.get_secret_value() if settings.metrics_token else None

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        """Prometheus metrics of this process."""
        if not may_read_metrics(request, metrics_token):
            return problem_response(NotFound(f"No resource at {request.url.path}."), request)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.mount("/docs/assets", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} API",
            swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs/assets/favicon-32x32.png",
            oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def docs_oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    # The web client: / and /app/*, with the PWA's manifest and service worker at the root.
    install_web_client(app)

    return app
