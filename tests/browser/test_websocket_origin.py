"""A page on another origin cannot open our engine WebSocket, even with the user's cookie.

Cross-site WebSocket hijacking: a handshake carries the browser's cookies for the target whatever
page opens it, and the same-origin policy does not cover WebSockets. A page on
`127.0.0.1:<other port>` is the sharpest case: another origin but the same site, so the demo's
`SameSite=Lax` session cookie goes along (the recorder proves it did). The middleware must refuse by
`Origin`, before anything reaches Qlik. The control, the very same script on the app's own page,
shows that the socket opens for a legitimate page. The demo app runs in-process here (same
`build_demo_app` as `qlik-sso demo`) so the server side of each handshake can be recorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, ConsoleMessage

from qlik_sso_middleware.demo import DEMO_PREFIX
from qlik_sso_middleware.demo.settings import DEMO_APP_ID

from ..servers import serve
from .conftest import VIEWPORT
from .flows import STATE_TIMEOUT_MS, login, screenshot
from .inprocess import InProcessDemo, demo_in_process
from .sites import PROBE_SCRIPT, on_localhost, socket_probe_site

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="package")]


@pytest_asyncio.fixture(loop_scope="package")
async def recorded_demo() -> AsyncIterator[InProcessDemo]:
    async with demo_in_process() as running:
        yield running


async def test_foreign_pages_cannot_open_our_websocket(
    browser: Browser,
    recorded_demo: InProcessDemo,
    tmp_path: Path,
) -> None:
    base_url, recorder, sim = recorded_demo.url, recorded_demo.handshakes, recorded_demo.sim
    engine_path = f"/{DEMO_PREFIX}/app/{DEMO_APP_ID}"
    target = base_url.replace("http://", "ws://") + engine_path
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        home = await login(context, base_url, "alice")
        await home.locator("#mashup[data-state=connected]").wait_for(timeout=STATE_TIMEOUT_MS)
        # Control: the same script on the app's own page opens the socket as alice.
        own = await home.evaluate(PROBE_SCRIPT, target)
        assert own["outcome"] == "open"
        assert '"userId": "alice"' in own["first"]
        engine_sockets = sum(1 for r in sim.requests if r.websocket)
        recorder.handshakes.clear()

        async with serve(socket_probe_site(target)) as foreign:
            # Same site, other port (the session cookie goes along); then another site.
            for name, origin in (("same-site", foreign), ("cross-site", on_localhost(foreign))):
                page = await context.new_page()
                console: list[str] = []

                def collect(message: ConsoleMessage, into: list[str] = console) -> None:
                    into.append(message.text)

                page.on("console", collect)
                await page.goto(f"{origin}/")
                body = page.locator("body:not([data-outcome=pending])")
                await body.wait_for(state="attached", timeout=STATE_TIMEOUT_MS)
                assert await body.get_attribute("data-outcome") == "refused", name
                assert any("403" in text for text in console), console
                await screenshot(page, tmp_path, f"foreign-{name}")
                await page.close()

        same_site, cross_site = recorder.handshakes
        assert (same_site.path, cross_site.path) == (engine_path, engine_path)
        assert same_site.origin == foreign
        assert same_site.cookie_names == ["demo_session"]  # the user's session came along...
        assert same_site.answer == "403"  # ...and the middleware still refused
        assert cross_site.origin == on_localhost(foreign)
        assert cross_site.answer == "403"
        # Nothing of it reached Qlik.
        assert sum(1 for r in sim.requests if r.websocket) == engine_sockets
    finally:
        await context.close()
