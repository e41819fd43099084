"""With third-party cookies blocked, the embedding still works, because everything is first-party.

How blocking is switched on, and proved: this Chromium ignores the command-line switches for it
(`--test-third-party-cookie-phaseout` and friends change nothing), so the tests launch it with a
real profile whose "Block third-party cookies" setting is on (`cookie_controls_mode` 1) or off
(0). A control cookie (`SameSite=None; Secure`, set by a frame from another site) shows the
setting is in effect: stored and sent back with the setting off, refused with it on, and
Chromium's DevTools protocol names the reason. Then the demo runs in the blocking browser, and the
classic alternative (Qlik's own origin in the iframe, its cookie `SameSite=None; Secure`) is shown
to break in the very same browser while it works with third-party cookies allowed.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.async_api import Browser, BrowserContext

from qlik_sso_middleware import QlikIdentity
from qlik_sso_middleware.auth._qps import QPSClient, QPSSettings
from qlik_sso_middleware.demo.settings import DEMO_APP_ID, DEMO_FRAME_OBJECT
from qlik_sso_middleware.testing import QlikSimulator, VirtualProxy

from ..servers import serve
from .conftest import ALLOW_THIRD_PARTY, BLOCK_THIRD_PARTY, ProfileLauncher
from .cookie_audit import CookieAudit
from .demo_process import DemoProcess
from .flows import STATE_TIMEOUT_MS, login, qlik_cookies, screenshot, wait_connected
from .sites import CONTROL_COOKIE, control_site, embedder_site, on_localhost

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="package")]


async def _control_cookie_round_trip(
    context: BrowserContext, shots: Path
) -> tuple[str, CookieAudit]:
    """Embed the control site (localhost) in a page on 127.0.0.1; what did the frame get back?"""
    async with serve(control_site()) as third, serve(embedder_site()) as embedder:
        page = await context.new_page()
        audit = await CookieAudit.attach(context, page)
        await page.goto(f"{embedder}/?src={on_localhost(third)}/set")
        body = page.frame_locator("#embedded").locator("body[data-cookie]")
        await body.wait_for(timeout=STATE_TIMEOUT_MS)
        seen = await body.get_attribute("data-cookie")
        await screenshot(page, shots, "control-cookie")
        await page.close()
    return seen or "", audit


async def test_control_third_party_cookie_is_kept_when_allowed(
    profile_browser: ProfileLauncher, tmp_path: Path
) -> None:
    context = await profile_browser(ALLOW_THIRD_PARTY)
    seen, audit = await _control_cookie_round_trip(context, tmp_path)
    assert seen == "1"
    assert audit.third_party_blocked() == []
    assert CONTROL_COOKIE in [c.get("name") for c in await context.cookies()]


async def test_default_contexts_already_block_third_party_cookies(
    browser: Browser, tmp_path: Path
) -> None:
    """Worth knowing: Playwright's contexts are off-the-record profiles, where this Chromium blocks
    third-party cookies by default, so every other browser test runs under that rule as well."""
    context = await browser.new_context()
    try:
        seen, audit = await _control_cookie_round_trip(context, tmp_path)
    finally:
        await context.close()
    assert seen == "none"
    assert {c.name for c in audit.third_party_blocked()} == {CONTROL_COOKIE}


async def test_blocked_third_party_cookies_do_not_matter_to_the_demo(
    profile_browser: ProfileLauncher, demo: DemoProcess, tmp_path: Path
) -> None:
    context = await profile_browser(BLOCK_THIRD_PARTY)
    # The setting is in effect: the control cookie is refused, and Chromium says why.
    seen, control_audit = await _control_cookie_round_trip(context, tmp_path)
    assert seen == "none"
    refused = control_audit.third_party_blocked()
    assert {c.name for c in refused} == {CONTROL_COOKIE}
    assert CONTROL_COOKIE not in [c.get("name") for c in await context.cookies()]

    # The demo in that same browser: frame and mashup work, no cookie was refused on the way.
    page = await login(context, demo.url, "alice")
    audit = await CookieAudit.attach(context, page)
    await page.reload()
    frame = page.frame_locator("#qlik-frame")
    await wait_connected(frame)
    assert await frame.locator("#qlik-user").inner_text() == "Connected as ACME\\alice"
    await page.locator("#mashup[data-state=connected]").wait_for(timeout=STATE_TIMEOUT_MS)
    assert await page.locator("#mashup-user").inner_text() == "Connected as ACME\\alice"
    assert await qlik_cookies(context) == []
    await screenshot(page, tmp_path, "demo-third-party-cookies-blocked")
    # Logout works too, and reaches Qlik.
    await page.click("#logout-button")
    await page.wait_for_url(f"{demo.url}/login")
    async with demo.qps() as qps:
        assert await qps.get_user_sessions(QlikIdentity("ACME", "alice")) == []
    assert audit.blocked == []


@pytest.mark.parametrize(
    ("cookie_controls_mode", "expected_state"),
    [(ALLOW_THIRD_PARTY, "connected"), (BLOCK_THIRD_PARTY, "error")],
    ids=["allowed", "blocked"],
)
async def test_qlik_on_its_own_origin_in_an_iframe_breaks_when_they_are_blocked(
    profile_browser: ProfileLauncher, tmp_path: Path, cookie_controls_mode: int, expected_state: str
) -> None:
    """The setup the middleware replaces: the app gets a QPS ticket and frames Qlik's own site.

    Qlik's session cookie is then a third-party cookie (even with `SameSite=None; Secure`), so the
    frame works only while the browser allows those: the failure our same-origin proxy removes.
    """
    direct = VirtualProxy(prefix="direct", auth="ticket", samesite_http="None", secure_http=True)
    async with QlikSimulator([direct]) as sim, serve(embedder_site()) as embedder:
        assert sim.certificates is not None
        assert sim.api_url is not None
        settings = QPSSettings(
            api_url=sim.api_url,
            prefix="direct",
            root=sim.certificates.root,
            client_cert=sim.certificates.client,
            client_key=sim.certificates.client_key,
        )
        async with QPSClient(settings) as qps:
            ticket = await qps.create_ticket(QlikIdentity("ACME", "alice"))
        qlik_site = on_localhost(sim.proxy_url)
        src = (
            f"{qlik_site}/direct/single/?appid={DEMO_APP_ID}&obj={DEMO_FRAME_OBJECT}"
            f"&qlikTicket={ticket.ticket}"
        )
        context = await profile_browser(cookie_controls_mode)
        page = await context.new_page()
        audit = await CookieAudit.attach(context, page)
        await page.goto(f"{embedder}/?src={quote(src, safe='')}")
        frame = page.frame_locator("#embedded")
        await frame.locator(f"body[data-state={expected_state}]").wait_for(timeout=STATE_TIMEOUT_MS)
        await screenshot(page, tmp_path, f"direct-embed-{expected_state}")
        refused = {c.name for c in audit.third_party_blocked()}
        # Here, unlike through our proxy, Qlik's own cookie reaches the browser.
        assert sim.cookie_name("direct") in audit.set_cookie_names
        if expected_state == "connected":
            assert await frame.locator("#qlik-user").inner_text() == "Connected as ACME\\alice"
            assert refused == set()
        else:
            # The ticket was redeemed, but the session cookie never came back with the next call.
            assert sim.cookie_name("direct") in refused
            assert await frame.locator("#qlik-status").inner_text() == "no csrf token (200)"
