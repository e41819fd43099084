"""The demo app (`build_demo_app`, as `qlik-sso demo` runs it) in the test's own event loop, with a
simulator next to it, for tests that need to see the server side or serve extra test pages.

Extra pages: `/enigma/` serves `tests/browser/static/` and `/enigma/vendor/` the real enigma.js
bundle and engine schema from `tests/js/node_modules` (installed by `npm ci --prefix tests/js`);
with an embed kit (`embed_kit.py`), `/embed-test/` serves the qlik-embed / @qlik/api pages and the
simulator serves the kit's stand-in runtime as `/sso/qlik-embed/main.js`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from qlik_sso_middleware import FrontProxy
from qlik_sso_middleware.demo import DEMO_HEADER, DEMO_PREFIX, build_demo_app
from qlik_sso_middleware.demo.settings import DEMO_APP_ID, DEMO_MASHUP_OBJECT
from qlik_sso_middleware.testing import QlikSimulator, VirtualProxy

from ..needs import unavailable
from ..offload.front import SECRET, front_proxy
from ..servers import serve
from .embed_kit import EMBED_PAGES, embed_test_pages
from .flows import STATE_TIMEOUT_MS
from .handshakes import HandshakeRecorder

__all__ = ["ENIGMA_DIR", "InProcessDemo", "demo_in_process", "enigma_page", "require_enigma"]

_HERE = Path(__file__).resolve().parent
ENIGMA_DIR = _HERE.parent / "js" / "node_modules" / "enigma.js"
#: The schema the Node cross-check uses too (tests/js/enigma_check.mjs).
ENIGMA_SCHEMA = "12.1657.0.json"


def require_enigma() -> None:
    """enigma.js from `npm ci --prefix tests/js`: skip without it, fail when `CI` is set."""
    if not (ENIGMA_DIR / "enigma.min.js").is_file():
        unavailable("tests/js/node_modules is missing (run `npm ci --prefix tests/js`)")


@dataclass(frozen=True)
class InProcessDemo:
    url: str
    sim: QlikSimulator
    handshakes: HandshakeRecorder


def _file_route(path: str, file: Path) -> Route:
    async def endpoint(request: Request) -> FileResponse:
        return FileResponse(file)

    return Route(path, endpoint)


def _with_test_pages(app: ASGIApp, kit: Path | None) -> ASGIApp:
    """`app`, plus the test pages under `/enigma/` and `/embed-test/` (no SSO needed: they hold
    no Qlik data)."""
    embed = embed_test_pages(kit) if kit is not None else None
    pages = Starlette(
        routes=[
            _file_route("/enigma/vendor/enigma.min.js", ENIGMA_DIR / "enigma.min.js"),
            _file_route("/enigma/vendor/schema.json", ENIGMA_DIR / "schemas" / ENIGMA_SCHEMA),
            Mount("/enigma", app=StaticFiles(directory=_HERE / "static")),
        ]
    )

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/enigma/"):
            await pages(scope, receive, send)
        elif (
            embed is not None and scope["type"] == "http" and scope["path"].startswith(EMBED_PAGES)
        ):
            await embed(scope, receive, send)
        else:
            await app(scope, receive, send)

    return route


@contextlib.asynccontextmanager
async def demo_in_process(
    front: str | None = None, kit: Path | None = None
) -> AsyncIterator[InProcessDemo]:
    """The demo and a simulator; `front` ("nginx", "caddy") puts that front proxy in front of the
    app in offload mode, and the URL is the front proxy's; `kit` (`build_embed_kit`) adds the
    qlik-embed pieces (the simulator serves its runtime)."""
    runtime = kit / "runtime" if kit is not None else None
    vps = [VirtualProxy(prefix=DEMO_PREFIX, header_name=DEMO_HEADER)]
    async with QlikSimulator(vps, embed_runtime=runtime) as sim:
        offload = FrontProxy(SECRET) if front is not None else None
        recorder = HandshakeRecorder(build_demo_app(sim.proxy_url, front_proxy=offload))
        async with serve(_with_test_pages(recorder, kit)) as base_url:
            if front is None:
                yield InProcessDemo(base_url, sim, recorder)
                return
            async with front_proxy(front, qlik_url=sim.proxy_url, app_url=base_url) as url:
                yield InProcessDemo(url, sim, recorder)


async def enigma_page(context: BrowserContext, base_url: str) -> tuple[Page, dict[str, Any]]:
    """Open the enigma.js mashup page in `context`, wait until it connected without a page error,
    and return it with what enigma.js read (title, version, notices, layout)."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(
        f"{base_url}/enigma/enigma_mashup.html?app={DEMO_APP_ID}&obj={DEMO_MASHUP_OBJECT}"
    )
    await page.locator("body:not([data-state=loading])").wait_for(timeout=STATE_TIMEOUT_MS)
    status = await page.locator("#enigma-status").inner_text()
    assert await page.locator("body").get_attribute("data-state") == "connected", status
    assert errors == []
    result = json.loads(await page.locator("#enigma-result").text_content() or "{}")
    assert isinstance(result, dict)
    return page, result
