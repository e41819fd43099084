"""`qlik-sso demo --embed-kit DIR`, the way a user starts it: the home page shows a live
`<qlik-embed ui="analytics/chart">` next to the iframe and the mashup, all as the logged-in user.
The kit is built from the npm packages at test time (`embed_kit.py`): nothing is downloaded.
With `QLIK_SSO_UPDATE_DOCS=1` the screenshot refreshes `docs/demo.png`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser

from qlik_sso_middleware.demo.settings import DEMO_APP_ID, DEMO_EMBED_OBJECT
from qlik_sso_middleware.testing import DEMO_APPS

from .demo_process import DemoProcess, running_demo
from .flows import STATE_TIMEOUT_MS, assert_embedded_as, login, qlik_cookies, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="package")]

_APP = next(app for app in DEMO_APPS if app.id == DEMO_APP_ID)
_EMBEDDED = next(o for o in _APP.objects if o.id == DEMO_EMBED_OBJECT)
_DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "demo.png"


@pytest_asyncio.fixture(loop_scope="package")
async def demo_with_kit(embed_kit: Path) -> AsyncIterator[DemoProcess]:
    async with running_demo("--embed-kit", str(embed_kit)) as running:
        yield running


async def test_the_demo_shows_qlik_embed_as_alice(
    browser: Browser, demo_with_kit: DemoProcess, tmp_path: Path
) -> None:
    assert "qlik-embed runtime" in demo_with_kit.banner
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = await login(context, demo_with_kit.url, "alice")
        await assert_embedded_as(page, "alice")
        rendered = page.locator("#qlik-embed-card[data-embed=on] .qlik-embed-standin")
        await page.locator("#qlik-embed-card .qlik-embed-standin[data-state=rendered]").wait_for(
            timeout=STATE_TIMEOUT_MS
        )
        assert await rendered.get_attribute("data-ui") == "analytics/chart"
        cells = await rendered.locator("tbody tr td:first-child").all_inner_texts()
        assert cells == [str(row[0]) for row in _EMBEDDED.rows]
        assert await qlik_cookies(context) == []
        shot = await screenshot(page, tmp_path, "demo-alice-qlik-embed")
        if os.environ.get("QLIK_SSO_UPDATE_DOCS"):
            shutil.copyfile(shot, _DOCS_SCREENSHOT)
    finally:
        await context.close()
