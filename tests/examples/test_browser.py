"""The examples in a real Chromium: the form login, the Qlik iframe and the mashup's JavaScript
(`examples/static/qlik-mashup.js`) on the engine WebSocket, then logout.

Skips when no Chromium is available, except with `CI` set, where that is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright, expect
from playwright.async_api import Error as PlaywrightError

from qlik_sso_middleware.testing import QlikSimulator

from .driver import APP, running

pytestmark = pytest.mark.browser

EXAMPLES = {
    "fastapi": ["examples/fastapi_app/app.py"],
    "starlette": ["examples/starlette_app/app.py"],
    "flask": ["examples/flask_app/app.py"],
    "django": ["examples/django_project/serve.py"],
}


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or None
    async with async_playwright() as pw:
        try:
            launched = await pw.chromium.launch(executable_path=path)
        except PlaywrightError as exc:
            if os.environ.get("CI"):
                pytest.fail(f"Chromium unavailable: {exc}")
            pytest.skip(f"Chromium unavailable: {exc}")
        try:
            yield launched
        finally:
            await launched.close()


@pytest.mark.parametrize("name", sorted(EXAMPLES))
async def test_example_in_a_browser(
    simulator: QlikSimulator, browser: Browser, tmp_path: Path, name: str
) -> None:
    env = {"QLIK_URL": simulator.proxy_url, "DJANGO_DB": str(tmp_path / "db.sqlite3")}
    async with running(EXAMPLES[name], env) as url:
        page = await (await browser.new_context()).new_page()
        await page.goto(url + "/login")
        await page.fill("input[name=username]", "alice")
        await page.fill("input[name=password]", "demo")
        await page.click("button")
        await page.wait_for_url(url + "/embed")
        # Qlik's own page inside the iframe connects its engine WebSocket as alice.
        frame = page.frame_locator("#qlik-frame")
        await expect(frame.locator("body[data-state=connected]")).to_be_attached(timeout=20_000)
        await expect(frame.locator("#qlik-user")).to_contain_text("ACME\\alice")
        # The example's own mashup script does the same through the app's origin.
        await page.goto(url + "/mashup")
        await expect(page.locator("#mashup[data-state=connected]")).to_be_attached(timeout=20_000)
        await expect(page.locator("#mashup-user")).to_have_text("Connected as ACME\\alice")
        rows = page.locator("#mashup-table tbody tr")
        await expect(rows).to_have_count(len(APP.objects[0].rows))
        await expect(rows.first).to_contain_text(str(APP.objects[0].rows[0][0]))
        await page.click("#logout")
        await page.wait_for_url(url + "/login")
    assert simulator.live_sessions("ACME\\alice") == []
    assert {r.user for r in simulator.requests if r.user} == {"ACME\\alice"}
