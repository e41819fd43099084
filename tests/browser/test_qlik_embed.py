"""`<qlik-embed>` (npm `@qlik/embed-web-components`) in Chromium, through the middleware: the script
tag a user copies (`data-host` = the app's own origin + `/sso`, `data-auth-type="windowscookie"`)
and `classic/app`, `analytics/chart` (an app object, and a chart on the fly) and
`analytics/sheet`, drawn by the simulator's stand-in runtime (`embed_kit.py`). What Qlik received
is read from the simulator's records. Needs `npm ci --prefix tests/js-embed`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page

from qlik_sso_middleware.demo.settings import DEMO_APP_ID
from qlik_sso_middleware.testing import DEMO_APPS

from .conftest import VIEWPORT
from .flows import STATE_TIMEOUT_MS, log_in_and_settle, qlik_cookies, screenshot
from .inprocess import InProcessDemo, demo_in_process

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="package")]

_APP = next(app for app in DEMO_APPS if app.id == DEMO_APP_ID)
_BAR = next(o for o in _APP.objects if o.kind == "barchart")
ELEMENTS: dict[str, dict[str, str]] = {
    "classic/app": {"app-id": _APP.id, "sheet-id": _APP.sheet_id},
    "analytics/chart": {"app-id": _APP.id, "object-id": _BAR.id},
    "analytics/sheet": {"app-id": _APP.id, "sheet-id": _APP.sheet_id},
}


@pytest_asyncio.fixture(loop_scope="package")
async def running(embed_kit: Path) -> AsyncIterator[InProcessDemo]:
    async with demo_in_process(kit=embed_kit) as demo:
        yield demo


def embed_url(base: str, elements: dict[str, dict[str, str]]) -> str:
    query = [("ui", ui) for ui in elements] + [("attrs", json.dumps(elements))]
    return f"{base}/embed-test/qlik-embed?{urlencode(query)}"


async def _rendered(page: Page, count: int) -> list[dict[str, Any]]:
    """Wait until `count` embeds finished (rendered or error); their ui, state and error."""
    await page.wait_for_function(
        "(n) => [...document.querySelectorAll('.qlik-embed-standin')]"
        ".filter((e) => e.dataset.state === 'rendered' || e.dataset.state === 'error')"
        ".length >= n",
        arg=count,
        timeout=STATE_TIMEOUT_MS,
    )
    states: list[dict[str, Any]] = await page.evaluate(
        "() => [...document.querySelectorAll('.qlik-embed-standin')]"
        ".map((e) => ({ui: e.dataset.ui, state: e.dataset.state, error: e.dataset.error}))"
    )
    return states


async def _open_as(context: BrowserContext, running: InProcessDemo, user: str) -> Page:
    await log_in_and_settle(context, running.url, user)
    page = await context.new_page()
    await page.goto(embed_url(running.url, ELEMENTS))
    return page


async def test_classic_app_and_analytics_uis_render_as_alice(
    browser: Browser, running: InProcessDemo, tmp_path: Path
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        await log_in_and_settle(context, running.url, "alice")
        start = len(running.sim.requests)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(embed_url(running.url, ELEMENTS))
        states = await _rendered(page, len(ELEMENTS))
        assert [(s["ui"], s["state"]) for s in states] == [(ui, "rendered") for ui in ELEMENTS]
        # classic/app: the Sense client in an iframe, connected through the middleware.
        frame = page.frame_locator("#embed-0 iframe")
        await frame.locator("body[data-state=connected]").wait_for(timeout=STATE_TIMEOUT_MS)
        assert await frame.locator("#qlik-user").inner_text() == "Connected as ACME\\alice"
        # analytics/chart and analytics/sheet: drawn from the engine's layouts.
        chart = page.locator("#embed-1 figure")
        assert await chart.get_attribute("data-object-id") == _BAR.id
        assert await chart.locator("tbody tr").count() == len(_BAR.rows)
        sheet_objects = page.locator("#embed-2 figure")
        assert await sheet_objects.count() == len(_APP.objects)
        assert errors == []
        await screenshot(page, tmp_path, "qlik-embed")

        seen = running.sim.requests[start:]
        paths = {r.path.split("?")[0] for r in seen}
        assert "/sso/qlik-embed/main.js" in paths
        assert f"/sso/sense/app/{_APP.id}/sheet/{_APP.sheet_id}/state/analysis" in paths
        assert f"/sso/app/{_APP.id}" in paths
        assert {r.user for r in seen} == {"ACME\\alice"}
        assert all(r.header("hdr-usr") == ["ACME\\alice"] for r in seen)
        assert len({r.session_id for r in seen}) == 1
        assert await qlik_cookies(context) == []
    finally:
        await context.close()


async def test_a_chart_on_the_fly_is_a_session_object_of_the_user(
    browser: Browser, running: InProcessDemo
) -> None:
    """`type`, `dimensions` and `measures` instead of an object id: qlik-embed asks the engine for
    a session object; bob's chart is computed on bob's Qlik session."""
    elements = {
        "analytics/chart": {
            "app-id": _APP.id,
            "type": "barchart",
            "dimensions": '["Quarter"]',
            "measures": '["Sum(Revenue)"]',
        }
    }
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        await log_in_and_settle(context, running.url, "bob")
        frames = len(running.sim.frames)
        page = await context.new_page()
        await page.goto(embed_url(running.url, elements))
        assert await _rendered(page, 1) == [
            {"ui": "analytics/chart", "state": "rendered", "error": None}
        ]
        cells = await page.locator("#embed-0 tbody tr td:first-child").all_inner_texts()
        assert cells == [str(row[0]) for row in _BAR.rows]
        created = [
            f
            for f in running.sim.frames[frames:]
            if f.direction == "in" and isinstance(f.data, str) and "CreateSessionObject" in f.data
        ]
        assert created and {f.user for f in created} == {"ACME\\bob"}
        assert '"Quarter"' in str(created[0].data)
    finally:
        await context.close()


async def test_after_qlik_restarts_the_embeds_say_so_and_a_reload_renders_again(
    browser: Browser, running: InProcessDemo
) -> None:
    """The Sense client in classic/app shows the session as ended (a real one shows its own
    "connection lost" dialog); reloading the page renders everything again as alice, on the new
    Qlik session the middleware made."""
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        page = await _open_as(context, running, "alice")
        await _rendered(page, len(ELEMENTS))
        frame = page.frame_locator("#embed-0 iframe")
        await frame.locator("body[data-state=connected]").wait_for(timeout=STATE_TIMEOUT_MS)
        (old,) = running.sim.live_sessions("ACME\\alice")
        running.sim.restart()
        await frame.locator("body[data-state=logged-out]").wait_for(timeout=STATE_TIMEOUT_MS)
        start = len(running.sim.requests)
        await page.reload()
        states = await _rendered(page, len(ELEMENTS))
        assert [s["state"] for s in states] == ["rendered"] * len(ELEMENTS)
        await (
            page.frame_locator("#embed-0 iframe")
            .locator("body[data-state=connected]")
            .wait_for(timeout=STATE_TIMEOUT_MS)
        )
        (new,) = running.sim.live_sessions("ACME\\alice")
        assert new.id != old.id
        seen = running.sim.requests[start:]
        assert seen and {r.session_id for r in seen} == {new.id}
        assert await qlik_cookies(context) == []
    finally:
        await context.close()
