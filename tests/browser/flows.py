"""What a user does in the demo, as Playwright steps, and what the tests check on every page."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import BrowserContext, FrameLocator, Page

from qlik_sso_middleware.demo.settings import DEMO_APP_ID, DEMO_MASHUP_OBJECT, DEMO_PASSWORD
from qlik_sso_middleware.testing import DEMO_APPS

__all__ = [
    "QLIK_COOKIE_PREFIX",
    "assert_embedded_as",
    "log_in_and_settle",
    "login",
    "qlik_cookies",
    "screenshot",
    "wait_connected",
]

_APP = next(app for app in DEMO_APPS if app.id == DEMO_APP_ID)
_MASHUP_ROWS = [row[0] for row in next(o for o in _APP.objects if o.id == DEMO_MASHUP_OBJECT).rows]

#: Every Qlik session cookie name starts like this (`X-Qlik-Session-sso-HTTP` for the demo).
QLIK_COOKIE_PREFIX = "x-qlik-session"
#: Waits for page states: generous, because the machine is shared; never a timing assertion.
STATE_TIMEOUT_MS = 30_000


async def login(
    context: BrowserContext, base_url: str, user: str, page: Page | None = None
) -> Page:
    """Log `user` in through the app's own form (in `page` or a new one); return it, at `/`."""
    page = page or await context.new_page()
    await page.goto(f"{base_url}/login")
    await page.fill("#username", user)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#login-button")
    await page.wait_for_url(f"{base_url}/")
    return page


async def wait_connected(frame: FrameLocator) -> None:
    """Wait until the simulated Qlik client in `frame` reports its state "connected"."""
    await frame.locator("body[data-state=connected]").wait_for(timeout=STATE_TIMEOUT_MS)


async def assert_embedded_as(page: Page, user: str) -> None:
    """The iframe and the mashup on the demo home page both run as ACME\\<user>."""
    assert await page.locator("#app-user").inner_text() == f"ACME\\{user}"
    frame = page.frame_locator("#qlik-frame")
    await wait_connected(frame)
    assert await frame.locator("#qlik-user").inner_text() == f"Connected as ACME\\{user}"
    assert await frame.locator("#qlik-object").is_visible()
    assert await frame.locator("#qlik-app").inner_text() == _APP.name
    mashup = page.locator("#mashup[data-state=connected]")
    await mashup.wait_for(timeout=STATE_TIMEOUT_MS)
    assert await page.locator("#mashup-user").inner_text() == f"Connected as ACME\\{user}"
    cells = await page.locator("#mashup-table tbody tr td:first-child").all_inner_texts()
    assert cells == [str(value) for value in _MASHUP_ROWS]


async def log_in_and_settle(context: BrowserContext, base_url: str, user: str) -> None:
    """Log `user` in and close the home page once its own Qlik traffic is done (iframe and mashup
    connected), so a test's records after this start with the test's own page."""
    home = await login(context, base_url, user)
    await assert_embedded_as(home, user)
    await home.close()


async def qlik_cookies(context: BrowserContext) -> list[str]:
    """Names of the Qlik session cookies the browser holds (must always be empty)."""
    return [
        cookie.get("name", "")
        for cookie in await context.cookies()
        if cookie.get("name", "").lower().startswith(QLIK_COOKIE_PREFIX)
    ]


async def screenshot(page: Page, directory: Path, name: str) -> Path:
    """Save a full-page PNG of `page` as `<directory>/<name>.png`; return its path."""
    path = directory / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
