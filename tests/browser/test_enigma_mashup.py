"""Cross-check with the real Qlik engine client: enigma.js (npm) in Chromium, over our proxy.

The page (`tests/browser/static/enigma_mashup.*`) loads the enigma.js bundle and its engine schema
from `tests/js/node_modules`, opens `ws://<app>/sso/app/<id>` with nothing but the browser's
same-origin cookie, then `EngineVersion`, `OpenDoc`, `GetAppLayout`, `GetObject`, `GetLayout`.
Needs `npm ci --prefix tests/js`: skipped when missing, a failure with `CI` set.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser

from qlik_sso_middleware.demo.settings import DEMO_APP_ID, DEMO_MASHUP_OBJECT
from qlik_sso_middleware.testing import DEMO_APPS

from ..needs import unavailable
from .conftest import VIEWPORT
from .flows import STATE_TIMEOUT_MS, login, qlik_cookies, screenshot, wait_connected
from .inprocess import ENIGMA_DIR, InProcessDemo, demo_in_process

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="package")]

_APP = next(app for app in DEMO_APPS if app.id == DEMO_APP_ID)


@pytest_asyncio.fixture(loop_scope="package")
async def running() -> AsyncIterator[InProcessDemo]:
    if not (ENIGMA_DIR / "enigma.min.js").is_file():
        unavailable("tests/js/node_modules is missing (run `npm ci --prefix tests/js`)")
    async with demo_in_process() as demo:
        yield demo


async def test_enigma_js_in_the_browser_reads_a_layout_through_the_proxy(
    browser: Browser, running: InProcessDemo, tmp_path: Path
) -> None:
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        home = await login(context, running.url, "bob")
        # The home page opens sockets of its own: let them settle and go before counting.
        await home.locator("#mashup[data-state=connected]").wait_for(timeout=STATE_TIMEOUT_MS)
        await wait_connected(home.frame_locator("#qlik-frame"))
        await home.close()
        running.handshakes.handshakes.clear()
        seen_requests, seen_frames = len(running.sim.requests), len(running.sim.frames)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(
            f"{running.url}/enigma/enigma_mashup.html?app={DEMO_APP_ID}&obj={DEMO_MASHUP_OBJECT}"
        )
        await page.locator("body:not([data-state=loading])").wait_for(timeout=STATE_TIMEOUT_MS)
        status = await page.locator("#enigma-status").inner_text()
        assert await page.locator("body").get_attribute("data-state") == "connected", status
        assert errors == []
        await screenshot(page, tmp_path, "enigma-mashup")

        result = json.loads(await page.locator("#enigma-result").text_content() or "{}")
        assert result["title"] == _APP.name
        assert result["version"]["qComponentVersion"]
        assert "OnConnected" in result["notices"]
        matrix = result["layout"]["qHyperCube"]["qDataPages"][0]["qMatrix"]
        expected = next(o for o in _APP.objects if o.id == DEMO_MASHUP_OBJECT).rows
        assert [row[0]["qText"] for row in matrix] == [str(r[0]) for r in expected]

        # What Qlik saw: bob's socket, enigma.js's calls in order, the browser's same origin.
        (handshake,) = [h for h in running.handshakes.handshakes if h.answer == "accept"]
        assert handshake.origin == running.url
        new_requests = running.sim.requests[seen_requests:]
        engine = [r for r in new_requests if r.websocket and r.status == 101]
        assert [r.user for r in engine] == ["ACME\\bob"]
        methods = [
            json.loads(f.data)["method"]
            for f in running.sim.frames[seen_frames:]
            if f.direction == "in" and isinstance(f.data, str)
        ]
        assert methods[:5] == ["EngineVersion", "OpenDoc", "GetAppLayout", "GetObject", "GetLayout"]
        assert await qlik_cookies(context) == []
    finally:
        await context.close()
