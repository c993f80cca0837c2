"""Rapport serves its web client: the shell at `/` under a strict Content-Security-Policy,
every file the shell and its modules load under `/app/` with the right type, the PWA's
manifest and service worker at the root, and nothing of it in the OpenAPI document; the
API, /docs and the analytics page still answer beside it. No browser here: the browser
tests are the other files of this directory."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.module_database

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "rapport"
WEB_APP = PACKAGE / "web" / "app"
JAVASCRIPT = "text/javascript"
# import x from "./a.js"; import "./a.js"; export … from "./a.js"; import("./a.js");
# and main.js's routes, which name their view modules as plain strings for import().
_IMPORTS = re.compile(
    r"""(?:\bimport\s+(?:[\w*{}\s,$]+\s+from\s+)?|\bexport\s+[\w*{}\s,$]+\s+from\s+|\bimport\s*\(\s*)["']([^"']+)["']"""
)
_ROUTE_MODULES = re.compile(r"""["'](\./views/[\w-]+\.js)["']""")


class _Shell(HTMLParser):
    """What index.html loads, and its inline scripts (there must be none)."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.inline_scripts = 0
        self.inline_styles = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            self._in_script = "src" not in found
            if found.get("src"):
                self.loads.append(str(found["src"]))
        if tag == "link" and found.get("href") and found.get("rel") in ("stylesheet", "icon", "manifest"):
            self.loads.append(str(found["href"]))
        if "style" in found or tag == "style":
            self.inline_styles += 1
        if any(name.startswith("on") for name in found):
            self.inline_scripts += 1

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


def _shell() -> _Shell:
    parser = _Shell()
    parser.feed((WEB_APP / "index.html").read_text())
    return parser


def _resolve(url_path: str, specifier: str) -> str:
    base = url_path.rsplit("/", 1)[0]
    parts = [part for part in f"{base}/{specifier}".split("/") if part not in ("", ".")]
    resolved: list[str] = []
    for part in parts:
        if part == "..":
            resolved.pop()
        else:
            resolved.append(part)
    return "/" + "/".join(resolved)


def _modules() -> list[str]:
    """Every module the client can load, by URL: from main.js, each import followed."""
    start = [src for src in _shell().loads if src.endswith(".js")]
    seen: list[str] = []
    queue = list(start)
    while queue:
        url_path = queue.pop()
        if url_path in seen:
            continue
        seen.append(url_path)
        source = (WEB_APP / url_path.removeprefix("/app/")).read_text()
        specifiers = _IMPORTS.findall(source) + _ROUTE_MODULES.findall(source)
        queue.extend(_resolve(url_path, each) for each in specifiers if each.startswith("."))
    return sorted(seen)


def _policy(response: httpx.Response) -> dict[str, list[str]]:
    header = response.headers["content-security-policy"]
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {words[0]: words[1:] for words in directives}


async def test_the_shell_is_served_at_the_root_under_a_strict_policy(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert '<main id="main"' in response.text
    policy = _policy(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert set(policy["connect-src"]) == {"'self'", "ws://rapport.test", "wss://rapport.test"}
    assert set(policy["img-src"]) == {"'self'", "blob:", "data:"}
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert not any("unsafe" in value for values in policy.values() for value in values)


def test_the_shell_has_no_inline_script_or_style() -> None:
    shell = _shell()
    assert (shell.inline_scripts, shell.inline_styles) == (0, 0)
    assert "/app/js/main.js" in shell.loads


async def test_a_host_that_is_no_host_is_left_out_of_the_policy(client: httpx.AsyncClient) -> None:
    response = await client.get("/", headers={"Host": "evil; script-src *"})
    assert _policy(response)["connect-src"] == ["'self'"]
    assert _policy(response)["script-src"] == ["'self'"]


async def test_every_file_the_shell_loads_is_served_with_its_type(client: httpx.AsyncClient) -> None:
    expected = {
        ".css": "text/css",
        ".js": JAVASCRIPT,
        ".svg": "image/svg+xml",
        ".webmanifest": "application/manifest+json",
    }
    for url_path in _shell().loads:
        response = await client.get(url_path)
        assert response.status_code == 200, url_path
        assert response.headers["content-type"].split(";")[0] == expected[Path(url_path).suffix], url_path


async def test_every_module_the_client_imports_exists_and_is_served_as_javascript(client: httpx.AsyncClient) -> None:
    modules = _modules()
    # The shell, its helpers and each route's view are reached from main.js.
    for wanted in ("main", "api", "ui", "stream", "push", "views/auth", "views/account", "views/people"):
        assert f"/app/js/{wanted}.js" in modules
    for url_path in modules:
        response = await client.get(url_path)
        assert response.status_code == 200, url_path
        assert response.headers["content-type"].split(";")[0] == JAVASCRIPT, url_path
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-cache"


def test_node_parses_every_script_of_the_client() -> None:
    node = shutil.which("node")
    assert node is not None, "the client's scripts are checked with Node.js, which is not installed"
    scripts = sorted(WEB_APP.rglob("*.js"))
    assert len(scripts) >= 8
    for script in scripts:
        checked = subprocess.run(
            [node, "--input-type=module", "--check"],
            input=script.read_bytes(),
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert checked.returncode == 0, f"{script.relative_to(ROOT)}: {checked.stderr.decode()}"


async def test_the_manifest_describes_an_installable_app(client: httpx.AsyncClient) -> None:
    response = await client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/manifest+json"
    manifest = json.loads(response.content)
    assert manifest["name"] == "Rapport"
    assert manifest["short_name"]
    assert (manifest["start_url"], manifest["scope"], manifest["display"]) == ("/", "/", "standalone")
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", manifest["theme_color"])
    sizes = set()
    for icon in manifest["icons"]:
        served = await client.get(icon["src"])
        assert served.status_code == 200, icon["src"]
        assert served.headers["content-type"] == icon["type"]
        sizes.update(icon["sizes"].split())
    assert {"192x192", "512x512"} <= sizes


async def test_the_service_worker_is_served_at_the_root_for_the_whole_site(client: httpx.AsyncClient) -> None:
    response = await client.get("/sw.js")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == JAVASCRIPT
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["service-worker-allowed"] == "/"
    # What it keeps for starting offline is all there, and none of it is the API.
    shell = re.search(r"const SHELL = \[(.*?)\];", response.text, re.S)
    assert shell is not None
    paths = re.findall(r'"([^"]+)"', shell.group(1))
    assert "/" in paths and "/app/js/main.js" in paths
    assert not [path for path in paths if path.startswith("/v1")]
    for path in paths:
        assert (await client.get(path)).status_code == 200, path


async def test_the_pages_answer_head_and_refuse_other_methods(client: httpx.AsyncClient) -> None:
    for path in ("/", "/sw.js", "/manifest.webmanifest", "/app/js/main.js"):
        head = await client.head(path)
        assert (head.status_code, head.content) == (200, b""), path
        assert int(head.headers["content-length"]) > 0
        refused = await client.post(path, json={})
        assert refused.status_code == 405, path
        assert refused.headers["content-type"] == "application/problem+json"


async def test_an_unchanged_file_is_not_sent_again(client: httpx.AsyncClient) -> None:
    for path in ("/", "/sw.js", "/app/app.css"):
        first = await client.get(path)
        again = await client.get(path, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304, path
        assert again.content == b""


@pytest.mark.parametrize("path", ["/app/nothing-here.js", "/app/js/views/nowhere.js", "/app/%2e%2e/app.py"])
async def test_a_file_the_client_does_not_have_is_a_problem_404(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith(":not-found")


async def test_the_client_is_not_in_the_api_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if not path.startswith("/v1/") and path != "/healthz"]


async def test_the_api_docs_and_pages_still_answer(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert (await client.get("/docs/assets/swagger-ui.css")).status_code == 200
    assert (await client.get("/admin/analytics")).status_code == 200
    assert (await client.get("/healthz")).json()["status"] == "ok"
    unauthenticated = await client.get("/v1/auth/me")
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["content-type"] == "application/problem+json"
    assert (await client.post("/v1/auth/login", json={"email": "nobody@example.com"})).status_code == 422


def test_the_package_ships_every_file_of_the_client() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["rapport"]
    shipped = {path for pattern in patterns for path in PACKAGE.glob(pattern) if path.is_file()}
    client_files = {path for path in WEB_APP.rglob("*") if path.is_file()}
    assert client_files - shipped == set()
