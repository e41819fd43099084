"""`qlik-sso demo --cloud` in Chromium: the token broker answers the page's `getAccessToken`, and
the cookie proxy relays the tenant's `single/` page (iframe) and engine WebSocket (mashup) on the
app's origin, each as the logged-in user, with no tenant cookie ever in the browser."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from qlik_sso_middleware.demo.settings import DEMO_APP_ID, DEMO_MASHUP_OBJECT
from qlik_sso_middleware.testing import DEMO_APPS

from .conftest import VIEWPORT
from .cookie_audit import CookieAudit
from .demo_process import DemoProcess
from .flows import STATE_TIMEOUT_MS, login, screenshot, wait_connected

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="package")]

_APP = next(app for app in DEMO_APPS if app.id == DEMO_APP_ID)
_MASHUP_ROWS = [row[0] for row in next(o for o in _APP.objects if o.id == DEMO_MASHUP_OBJECT).rows]
#: Qlik Cloud's session cookies (Login API): none may reach the browser.
_TENANT_COOKIES = {"eas.sid", "eas.sid.sig", "_csrftoken", "_csrftoken.sig"}


async def _assert_cloud_embedded_as(page: Page, user: str) -> None:
    broker = page.locator("#broker[data-state=ready]")
    await broker.wait_for(timeout=STATE_TIMEOUT_MS)
    assert "Bearer token" in await page.locator("#broker-status").inner_text()
    frame = page.frame_locator("#qlik-frame")
    await wait_connected(frame)
    assert await frame.locator("#qlik-user").inner_text() == (
        f"Connected as UserDirectory=; UserId=ACME\\{user}"
    )
    assert await frame.locator("#qlik-app").inner_text() == _APP.name
    assert await frame.locator("#qlik-object").is_visible()
    await page.locator("#mashup[data-state=connected]").wait_for(timeout=STATE_TIMEOUT_MS)
    cells = await page.locator("#mashup-table tbody tr td:first-child").all_inner_texts()
    assert cells == [str(value) for value in _MASHUP_ROWS]


async def test_both_cloud_modes_work_in_the_browser_as_the_user(
    browser: Browser, cloud_demo: DemoProcess, tmp_path: Path
) -> None:
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        page = await context.new_page()
        audit = await CookieAudit.attach(context, page)
        await login(context, cloud_demo.url, "alice", page)
        await _assert_cloud_embedded_as(page, "alice")
        # The function qlik-embed would call gets alice's token; the page never shows it.
        token = await page.evaluate("() => window.getAccessToken()")
        assert isinstance(token, str) and len(token) > 20
        assert token not in await page.content()
        assert [c.get("name") for c in await context.cookies()] == ["demo_session"]
        assert not {n.lower() for n in audit.set_cookie_names} & _TENANT_COOKIES
        await screenshot(page, tmp_path, "demo-cloud-alice")
    finally:
        await context.close()


async def test_bob_gets_his_own_token_and_session(
    browser: Browser, cloud_demo: DemoProcess
) -> None:
    contexts = [await browser.new_context(viewport=VIEWPORT) for _ in range(2)]
    try:
        alice = await login(contexts[0], cloud_demo.url, "alice")
        bob = await login(contexts[1], cloud_demo.url, "bob")
        await _assert_cloud_embedded_as(bob, "bob")
        await _assert_cloud_embedded_as(alice, "alice")
        tokens = [await p.evaluate("() => window.getAccessToken()") for p in (alice, bob)]
        assert tokens[0] != tokens[1]
        # A second ask is the cached token: one impersonation per user.
        assert await alice.evaluate("() => window.getAccessToken()") == tokens[0]
    finally:
        for context in contexts:
            await context.close()
