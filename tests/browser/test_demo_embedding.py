"""The embedding story in Chromium against `qlik-sso demo`: iframe, mashup, two users, logout, cookies.

Everything is asserted where the user sees it: inside the `single/` iframe (the simulated Qlik
client's `#qlik-user`, `#qlik-object`, `body[data-state]`) and in the mashup panel; Qlik itself
(the simulator's QPS API) confirms which sessions exist. A screenshot of each case lands in the
test's `tmp_path` (`docs/demo.png` is refreshed by `test_demo_qlik_embed.py`, which runs the
demo with a qlik-embed kit).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser

from qlik_sso_middleware import QlikIdentity
from qlik_sso_middleware.demo.settings import DEMO_APP_ID, DEMO_FRAME_OBJECT, DEMO_MASHUP_OBJECT
from qlik_sso_middleware.testing import DEMO_APPS

from .conftest import VIEWPORT
from .cookie_audit import CookieAudit
from .demo_process import DemoProcess
from .flows import (
    QLIK_COOKIE_PREFIX,
    STATE_TIMEOUT_MS,
    assert_embedded_as,
    login,
    qlik_cookies,
    screenshot,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="package")]

_APP = next(app for app in DEMO_APPS if app.id == DEMO_APP_ID)
_MASHUP_ROWS = [row[0] for row in next(o for o in _APP.objects if o.id == DEMO_MASHUP_OBJECT).rows]


async def test_alice_sees_herself_in_the_iframe_and_the_mashup(
    browser: Browser, demo: DemoProcess, tmp_path: Path
) -> None:
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        # Watch every response from the start: not one may even try to set a Qlik cookie.
        page = await context.new_page()
        audit = await CookieAudit.attach(context, page)
        await login(context, demo.url, "alice", page)
        await assert_embedded_as(page, "alice")
        frame = page.frame_locator("#qlik-frame")
        # The frame is our own origin: the test can reach into it, and so can the app's scripts.
        src = await page.locator("#qlik-frame").get_attribute("src")
        assert src is not None
        assert src.startswith("/sso/single/")
        # The frame's object is the bar chart: one bar and one label per row.
        bars = [
            str(row[0]) for row in next(o for o in _APP.objects if o.id == DEMO_FRAME_OBJECT).rows
        ]
        assert await frame.locator("svg#qlik-object rect").count() == len(bars)
        assert await frame.locator("svg#qlik-object text").all_text_contents() == bars
        assert await qlik_cookies(context) == []
        assert [c.get("name") for c in await context.cookies()] == ["demo_session"]
        assert "demo_session" in audit.set_cookie_names  # the audit sees cookies being set...
        assert not [n for n in audit.set_cookie_names if n.lower().startswith(QLIK_COOKIE_PREFIX)]
        assert audit.blocked == []
        # ...and scripts in the frame see no Qlik cookie either.
        assert (
            QLIK_COOKIE_PREFIX
            not in (await frame.locator("body").evaluate("() => document.cookie")).lower()
        )
        # Without a qlik-embed kit the card says what a real Qlik serves instead.
        card = page.locator("#qlik-embed-card[data-embed=off]")
        assert "/sso/qlik-embed/main.js" in await card.inner_text()
        await screenshot(page, tmp_path, "demo-alice")
    finally:
        await context.close()


async def test_bob_in_a_second_context_sees_bob(
    browser: Browser, demo: DemoProcess, tmp_path: Path
) -> None:
    alice_context = await browser.new_context(viewport=VIEWPORT)
    bob_context = await browser.new_context(viewport=VIEWPORT)
    try:
        alice = await login(alice_context, demo.url, "alice")
        bob = await login(bob_context, demo.url, "bob")
        await assert_embedded_as(bob, "bob")
        await assert_embedded_as(alice, "alice")
        await screenshot(bob, tmp_path, "demo-bob")
        await screenshot(alice, tmp_path, "demo-alice")
        async with demo.qps() as qps:
            # One Qlik session per app user, however many pages and sockets the user opened.
            assert len(await qps.get_user_sessions(QlikIdentity("ACME", "bob"))) == 1
            assert len(await qps.get_user_sessions(QlikIdentity("ACME", "alice"))) == 1
        assert await qlik_cookies(alice_context) == []
        assert await qlik_cookies(bob_context) == []
    finally:
        await alice_context.close()
        await bob_context.close()


async def test_logout_in_the_app_ends_the_qlik_session(
    browser: Browser, demo: DemoProcess, tmp_path: Path
) -> None:
    context = await browser.new_context(viewport=VIEWPORT)
    bob = QlikIdentity("ACME", "bob")
    try:
        embedded = await login(context, demo.url, "bob")
        await assert_embedded_as(embedded, "bob")
        async with demo.qps() as qps:
            assert len(await qps.get_user_sessions(bob)) == 1
        # Log out from a second tab while the first one still shows Qlik.
        other = await context.new_page()
        await other.goto(f"{demo.url}/")
        await other.click("#logout-button")
        await other.wait_for_url(f"{demo.url}/login")
        # The page that still shows Qlik learns it at once: Qlik closed its sockets.
        frame = embedded.frame_locator("#qlik-frame")
        await frame.locator("body[data-state=logged-out]").wait_for(timeout=STATE_TIMEOUT_MS)
        mashup = embedded.locator("#mashup[data-state=error]")
        await mashup.wait_for(timeout=STATE_TIMEOUT_MS)
        assert "OnSessionClosed" in await embedded.locator("#mashup-status").inner_text()
        await screenshot(embedded, tmp_path, "demo-logged-out")
        # Qlik itself confirms: bob has no session left.
        async with demo.qps() as qps:
            assert await qps.get_user_sessions(bob) == []
        # Reloading the frame now lands on the app's login page, never on Qlik content.
        await embedded.locator("#qlik-frame").evaluate("f => f.contentWindow.location.reload()")
        await frame.locator("body[data-page=login]").wait_for(timeout=STATE_TIMEOUT_MS)
        login_frame = embedded.frame(url=lambda url: "/login" in url)
        assert login_frame is not None
        assert login_frame.url.startswith(f"{demo.url}/login?next=/sso/single/")
        await screenshot(embedded, tmp_path, "demo-logged-out-reloaded")
        assert await qlik_cookies(context) == []
    finally:
        await context.close()
