"""Each framework example in `examples/`, in Chromium: log in through its form, the `single/` iframe
shows the user, the mashup completes an engine round trip, logout ends the Qlik session.

Examples are found at collection time (`examples/<name>/app.py`) and started the way their own
tests start them (`tests/examples/driver.py`: `python examples/<name>/app.py --port N` with
`QLIK_URL` pointing at a simulator), so a new example is covered without editing this file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser

from qlik_sso_middleware.testing import QlikSimulator, VirtualProxy

from ..examples.driver import running
from .conftest import VIEWPORT
from .flows import STATE_TIMEOUT_MS, qlik_cookies, screenshot, wait_connected

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="package")]

_EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_NAMES = sorted(p.parent.name for p in _EXAMPLES.glob("*/app.py"))
_ALICE = "ACME\\alice"


@pytest_asyncio.fixture(loop_scope="package")
async def example_simulator() -> AsyncIterator[QlikSimulator]:
    async with QlikSimulator([VirtualProxy(prefix="sso", header_name="hdr-usr")]) as sim:
        yield sim


@pytest.mark.parametrize("name", _NAMES)
async def test_example_in_the_browser(
    name: str, browser: Browser, example_simulator: QlikSimulator, tmp_path: Path
) -> None:
    simulator = example_simulator
    app = f"examples/{name}/app.py"
    async with running([app], {"QLIK_URL": simulator.proxy_url}) as url:
        context = await browser.new_context(viewport=VIEWPORT)
        try:
            page = await context.new_page()
            await page.goto(f"{url}/login")
            await page.fill("input[name=username]", "alice")
            await page.fill("input[name=password]", "demo")
            async with page.expect_navigation():
                await page.press("input[name=password]", "Enter")
            assert "/login" not in page.url, f"{name}: login failed ({page.url})"

            await page.goto(f"{url}/embed")
            frame = page.frame_locator("#qlik-frame")
            await wait_connected(frame)
            assert await frame.locator("#qlik-user").inner_text() == f"Connected as {_ALICE}"
            assert await frame.locator("#qlik-object").is_visible()
            await screenshot(page, tmp_path, f"{name}-embed")

            await page.goto(f"{url}/mashup")
            await page.locator("#mashup[data-state=connected]").wait_for(timeout=STATE_TIMEOUT_MS)
            assert await page.locator("#mashup-user").inner_text() == f"Connected as {_ALICE}"
            assert await page.locator("#mashup-table tr").count() > 1
            await screenshot(page, tmp_path, f"{name}-mashup")

            assert await qlik_cookies(context) == []
            assert len(simulator.live_sessions(user=_ALICE)) == 1
            async with page.expect_navigation():
                await page.click("#logout")
            assert "/login" in page.url
            assert simulator.live_sessions(user=_ALICE) == []
        finally:
            await context.close()
