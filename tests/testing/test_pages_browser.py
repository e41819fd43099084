"""The simulated client pages in a real Chromium: `single/` (also inside an iframe) and the hub.

Skips when no Chromium is available, except with `CI` set, where that is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, async_playwright

from qlik_sso_middleware.testing import QlikSimulator

from .conftest import APP, login

pytestmark = pytest.mark.browser


def _chromium_path() -> str | None:
    for candidate in (
        os.environ.get("CHROMIUM_PATH"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate:
            return candidate
    return None  # let playwright use its own download, if any


@pytest.fixture
async def page(sim: QlikSimulator) -> AsyncIterator[Page]:
    async with async_playwright() as pw:
        try:
            browser = await pw.chromium.launch(executable_path=_chromium_path())
        except PlaywrightError as exc:
            if os.environ.get("CI"):
                pytest.fail(f"Chromium unavailable: {exc}")
            pytest.skip(f"Chromium unavailable: {exc}")
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
