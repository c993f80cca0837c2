"""Serving the web client (src/rapport/web/app): its shell at `/`, its files under `/app/`,
and the two files a PWA needs at the root, `/manifest.webmanifest` and `/sw.js` (a
service worker controls only the paths below its own, so it must live at `/`).

No build step: the files are served as they are in the tree. Each answer carries a strict
Content-Security-Policy (scripts, styles and connections of this origin only, no inline
script), and `Cache-Control: no-cache`, so a browser revalidates (ETag) and picks up a new
version at once, the service worker's cache being the offline copy. None of these routes
is in the OpenAPI document: they are pages, not API."""

from __future__ import annotations

import os
import re
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.types import Scope

WEB_APP = Path(__file__).resolve().parent.parent / "web" / "app"

# Set here rather than read from the system's MIME database, which differs between machines
# (a module script served as text/plain is refused by the browser).
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
# What a Host header may hold to be named in the policy; anything else is left out of it.
_HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def content_security_policy(host: str | None) -> str:
    """The client's policy. `connect-src` names the WebSocket origins of this host besides
    'self', since browsers that predate CSP 3 do not count ws: and wss: as 'self'."""
    sockets = f" ws://{host} wss://{host}" if host and _HOST.match(host) else ""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"connect-src 'self'{sockets}",
            "img-src 'self' blob: data:",
            "media-src 'self' blob:",
            "worker-src 'self'",
            "manifest-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def client_headers(host: str | None) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(host),
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }


def media_type_of(path: str | os.PathLike[str]) -> str:
    return MEDIA_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")


class ClientFiles(StaticFiles):
    """StaticFiles with the client's media types and headers on every file."""

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        request_headers = Headers(scope=scope)
        response = FileResponse(
            full_path,
            status_code=status_code,
            stat_result=stat_result,
            media_type=media_type_of(full_path),
            headers=client_headers(request_headers.get("host")),
        )
        if self.is_not_modified(response.headers, request_headers):
            return Response(status_code=304, headers=_not_modified_headers(response))
        return response


def _not_modified_headers(response: Response) -> dict[str, str]:
    kept = ("cache-control", "content-location", "date", "etag", "expires", "vary", "content-security-policy")
    return {name: value for name, value in response.headers.items() if name in kept}


def _file(request: Request, name: str, **extra: str) -> Response:
    path = WEB_APP / name
    response = FileResponse(
        path,
        stat_result=path.stat(),
        media_type=media_type_of(path),
        headers={**client_headers(request.headers.get("host")), **extra},
    )
    if request.headers.get("if-none-match") == response.headers.get("etag"):
        return Response(status_code=304, headers=_not_modified_headers(response))
    return response


pages = APIRouter(include_in_schema=False)


@pages.api_route("/", methods=["GET", "HEAD"])
async def shell(request: Request) -> Response:
    """The client's one page; its routes live in the URL's fragment (#/chats/…)."""
    return _file(request, "index.html")


@pages.api_route("/sw.js", methods=["GET", "HEAD"])
async def service_worker(request: Request) -> Response:
    return _file(request, "sw.js", **{"Service-Worker-Allowed": "/"})


@pages.api_route("/manifest.webmanifest", methods=["GET", "HEAD"])
async def manifest(request: Request) -> Response:
    return _file(request, "manifest.webmanifest")


def install_web_client(app: FastAPI) -> None:
    """Adds the client's routes and files to the app."""
    app.include_router(pages)
    app.mount("/app", ClientFiles(directory=WEB_APP), name="web-client")
