"""A real browser through nginx in offload mode: the demo page (Qlik's `single/` page in an
iframe, a mashup socket) and enigma.js, with nginx carrying every Qlik byte and the app answering
nginx's auth sub-requests. The same page and client as the in-process tests, one more route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser

from qlik_sso_middleware.demo.settings import DEMO_APP_ID, DEMO_MASHUP_OBJECT
from qlik_sso_middleware.testing import DEMO_APPS

from .conftest import VIEWPORT
from .flows import STATE_TIMEOUT_MS, login, qlik_cookies, screenshot, wait_connected
from .inprocess import InProcessDemo, demo_in_process, enigma_page, require_enigma

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="package")]

_APP = next(app for app in DEMO_APPS if app.id == DEMO_APP_ID)


@pytest_asyncio.fixture(loop_scope="package")
async def behind_nginx() -> AsyncIterator[InProcessDemo]:
    require_enigma()
    async with demo_in_process(front="nginx") as demo:
        yield demo


async def test_the_embedded_page_and_enigma_js_work_through_nginx(
    browser: Browser, behind_nginx: InProcessDemo, tmp_path: Path
) -> None:
    running = behind_nginx
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        home = await login(context, running.url, "bob")
        await home.locator("#mashup[data-state=connected]").wait_for(timeout=STATE_TIMEOUT_MS)
        await wait_connected(home.frame_locator("#qlik-frame"))
        await screenshot(home, tmp_path, "offload-nginx-home")
        _, result = await enigma_page(context, running.url)
        assert result["title"] == _APP.name
        matrix = result["layout"]["qHyperCube"]["qDataPages"][0]["qMatrix"]
        expected = next(o for o in _APP.objects if o.id == DEMO_MASHUP_OBJECT).rows
        assert [row[0]["qText"] for row in matrix] == [str(r[0]) for r in expected]

        # nginx carried every engine socket: the app relayed none, Qlik saw bob's session with
        # its CSRF token and the browser's own origin, and no identity header from the browser.
        assert running.handshakes.handshakes == []
        engine = [r for r in running.sim.requests if r.websocket and r.status == 101]
        assert len(engine) >= 3 and {r.user for r in engine} == {"ACME\\bob"}
        for record in engine:
            assert "qlik-csrf-token=" in record.query
            assert record.header("origin") == [running.url]
            assert record.header("hdr-usr") == []
        assert await qlik_cookies(context) == []
    finally:
        await context.close()
