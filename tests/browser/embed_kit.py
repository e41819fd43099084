"""Qlik's current embedding toolkit for the browser tests: the build and the pages that use it.

`build_embed_kit(out)` runs `tests/js-embed/build.mjs` (packages pinned by its package-lock.json,
installed by `npm ci --prefix tests/js-embed`; no network): `out/runtime/` is the stand-in for
Qlik's `qlik-embed/main.js` the simulator serves (`QlikSimulator(embed_runtime=...)`),
`out/page/` the npm packages as an app ships them. `embed_test_pages(kit)` serves those and the
test pages under `/embed-test/` from the app itself: Chromium blocks a page Playwright fulfils
(`page.route`, a "public" page) from reaching 127.0.0.1.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from html import escape
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..needs import unavailable

__all__ = ["EMBED_JS_DIR", "EMBED_PAGES", "build_embed_kit", "embed_test_pages"]

_HERE = Path(__file__).resolve().parent
EMBED_JS_DIR = _HERE.parent / "js-embed"
#: Mount point of the test pages (outside the middleware's `/sso/`).
EMBED_PAGES = "/embed-test"


def build_embed_kit(out: Path) -> Path:
    """Build the kit into `out`; skip without the npm packages (a failure with `CI` set)."""
    node = shutil.which("node")
    missing = not (EMBED_JS_DIR / "node_modules" / "@qlik" / "api").is_dir()
    if node is None or missing:
        unavailable("tests/js-embed/node_modules is missing (run `npm ci --prefix tests/js-embed`)")
    subprocess.run(
        [node, str(EMBED_JS_DIR / "build.mjs"), str(out)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    return out


def _embed_page(request: Request) -> HTMLResponse:
    """`<qlik-embed>` elements as a user writes them: one per `ui` query value, the script tag
    pointing at this app's own origin plus the prefix (`host` overrides it). `client` adds
    `data-client-id`; `token` names the page's `getAccessToken` function (`data-get-access-token`,
    defined by `cloud_token.js`: it asks the token broker)."""
    query = request.query_params
    origin = f"{request.url.scheme}://{request.url.netloc}"
    host = query.get("host") or f"{origin}/sso"
    auth_type = query.get("auth", "windowscookie")
    attributes = json.loads(query.get("attrs", "{}"))
    script_data = f" data-auth-type='{escape(auth_type)}'"
    token_script = ""
    if query.get("client"):
        script_data += f" data-client-id='{escape(query['client'])}'"
    if query.get("token"):
        script_data += f" data-get-access-token='{escape(query['token'])}'"
        token_script = f"<script src='{EMBED_PAGES}/cloud_token.js'></script>"
    elements = []
    for index, ui in enumerate(query.getlist("ui")):
        attrs = "".join(
            f' {escape(name)}="{escape(str(value))}"'
            for name, value in attributes.get(ui, {}).items()
        )
        elements.append(
            f'<section class="embed"><h2>{escape(ui)}</h2>'
            f'<qlik-embed id="embed-{index}" ui="{escape(ui)}"{attrs}></qlik-embed></section>'
        )
    return HTMLResponse(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>qlik-embed test</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:1rem}.embed{height:260px;"
        "border:1px solid #ccc;margin:.5rem 0;padding:.25rem;overflow:auto}</style>"
        f"{token_script}<script src='{EMBED_PAGES}/vendor/embed-web-components.js'"
        f" data-host='{escape(host)}'{script_data}></script></head><body>{''.join(elements)}"
        "</body></html>"
    )


def embed_test_pages(kit: Path) -> Starlette:
    """`/embed-test/vendor/*` (the kit's page files), `/embed-test/qlik-embed` and the static
    `@qlik/api` page (`tests/browser/static/embed/`)."""
    return Starlette(
        routes=[
            Route(f"{EMBED_PAGES}/qlik-embed", _embed_page),
            Mount(f"{EMBED_PAGES}/vendor", app=StaticFiles(directory=kit / "page")),
            Mount(EMBED_PAGES, app=StaticFiles(directory=_HERE / "static" / "embed")),
        ]
    )
