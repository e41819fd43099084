"""The simulated client pages in a real Chromium: `single/` (also inside an iframe) and the hub.

Debian's Chromium only (`tests/chromium.py`), never a Playwright download; skips when it is
missing, except with `CI` set, where that is a failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, async_playwright

from qlik_sso_middleware.testing import QlikSimulator

from ..chromium import LAUNCH_ARGS, require_chromium
from .conftest import APP, login

pytestmark = pytest.mark.browser


@pytest.fixture
async def page(sim: QlikSimulator) -> AsyncIterator[Page]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=require_chromium(), headless=True, args=LAUNCH_ARGS
        )
        try:
            context = await browser.new_context()
            session_id, _, _ = await login(sim)
            await context.add_cookies(
                [{"name": sim.cookie_name(), "value": session_id, "url": sim.proxy_url}]
            )
            yield await context.new_page()
        finally:
            await browser.close()


async def test_single_page_in_an_iframe_shows_user_and_table(
    sim: QlikSimulator, page: Page
) -> None:
    await page.goto(f"{sim.proxy_url}/sso/qmc/")
    await page.evaluate(
        """src => { const f = document.createElement("iframe"); f.id = "embed"; f.src = src;
                    f.width = 600; f.height = 400; document.body.appendChild(f); }""",
        f"/sso/single/?appid={APP}&obj=sales-table",
    )
    frame = page.frame_locator("#embed")
    await frame.locator("body[data-state=connected]").wait_for(timeout=20_000)
    assert await frame.locator("#qlik-user").inner_text() == "Connected as ACME\\alice"
    rows = await frame.locator("#qlik-object tbody tr").all_inner_texts()
    assert rows[0].split("\t")[0] == "North"
    assert len(rows) == 4
    assert await frame.locator("#qlik-object").is_visible()


async def test_sense_app_page_renders_a_bar_chart(sim: QlikSimulator, page: Page) -> None:
    await page.goto(f"{sim.proxy_url}/sso/sense/app/{APP}/sheet/s/state/analysis/sales-bar")
    await page.locator("body[data-state=connected]").wait_for(timeout=20_000)
    assert await page.locator("svg#qlik-object rect").count() == 4
    assert await page.locator("#qlik-app").inner_text() == "Sales"


async def test_page_reports_logged_out_when_the_session_ends(
    sim: QlikSimulator, page: Page
) -> None:
    await page.goto(f"{sim.proxy_url}/sso/single/?appid={APP}&obj=sales-table")
    await page.locator("body[data-state=connected]").wait_for(timeout=20_000)
    sim.restart()
    await page.locator("body[data-state=logged-out]").wait_for(timeout=20_000)
    assert await page.locator("#qlik-status").inner_text() == "OnSessionClosed"
