"""Real-browser fixtures: Debian's Chromium driven by Playwright, and `qlik-sso demo` as a subprocess.

Chromium is `/usr/bin/chromium` (never a downloaded browser; `tests/chromium.py`). When it is
missing the tests skip, except with `CI` set, where that is a failure. Browser and demo are started
once per package, in the package's event loop (every test module marks itself
`asyncio(loop_scope="package")`); each test gets fresh browser contexts, so no cookie crosses
tests.

Hazard: the demo's Qlik simulator caps a user at 5 parallel sessions, and a slot released by a
logout is reusable only after a 5-minute cool-down; tests that log out must stay well below that
per user for one demo process.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    BrowserContext,
    Playwright,
    ViewportSize,
    async_playwright,
)

from ..chromium import LAUNCH_ARGS, require_chromium
from .demo_process import DemoProcess, running_demo
from .embed_kit import build_embed_kit

#: Chromium's "cookie_controls_mode" profile preference: 0 allow all, 1 block third-party cookies.
ALLOW_THIRD_PARTY, BLOCK_THIRD_PARTY = 0, 1
VIEWPORT: ViewportSize = {"width": 1280, "height": 640}

ProfileLauncher = Callable[[int], Awaitable[BrowserContext]]


@pytest_asyncio.fixture(loop_scope="package", scope="package")
async def playwright() -> AsyncIterator[Playwright]:
    require_chromium()
    async with async_playwright() as pw:
        yield pw


@pytest_asyncio.fixture(loop_scope="package", scope="package")
async def browser(playwright: Playwright) -> AsyncIterator[Browser]:
    """One headless Chromium; its contexts are off-the-record (Playwright's default)."""
    chromium = await playwright.chromium.launch(
        executable_path=require_chromium(), headless=True, args=LAUNCH_ARGS
    )
    try:
        yield chromium
    finally:
        await chromium.close()


@pytest_asyncio.fixture(loop_scope="package", scope="package")
async def demo() -> AsyncIterator[DemoProcess]:
    """`qlik-sso demo --port 0` in a subprocess, stopped with SIGINT at the end of the package."""
    async with running_demo() as running:
        yield running


@pytest.fixture(scope="package")
def embed_kit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The qlik-embed runtime stand-in and the npm packages' page files, built once per package."""
    return build_embed_kit(tmp_path_factory.mktemp("embed-kit"))


@pytest_asyncio.fixture(loop_scope="package", scope="package")
async def cloud_demo() -> AsyncIterator[DemoProcess]:
    """`qlik-sso demo --cloud --port 0`: the simulated Qlik Cloud tenant behind the demo app."""
    async with running_demo("--cloud") as running:
        yield running


@pytest_asyncio.fixture(loop_scope="package")
async def profile_browser(playwright: Playwright, tmp_path: Path) -> AsyncIterator[ProfileLauncher]:
    """Launch Chromium with a real (persistent) profile whose third-party cookie setting is given.

    Why a profile: with this Chromium (156) the command-line switches tried change nothing
    (`--test-third-party-cookie-phaseout`, `--enable-features=TrackingProtection3pcd`, and the
    non-existent `--disable-third-party-cookies`), and neither does DevTools'
    `Network.setCookieControls`; the user setting "Block third-party cookies"
    (`profile.cookie_controls_mode`) does. Off-the-record contexts (Playwright's `new_context`)
    block them by default, so the allowing control needs a real profile too.
    """
    contexts: list[BrowserContext] = []

    async def launch(cookie_controls_mode: int) -> BrowserContext:
        profile = tmp_path / f"chromium-profile-{len(contexts)}"
        (profile / "Default").mkdir(parents=True)
        preferences = {"profile": {"cookie_controls_mode": cookie_controls_mode}}
        (profile / "Default" / "Preferences").write_text(json.dumps(preferences))
        context = await playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=require_chromium(),
            headless=True,
            args=LAUNCH_ARGS,
            viewport=VIEWPORT,
        )
        contexts.append(context)
        return context

    try:
        yield launch
    finally:
        for context in contexts:
            await context.close()
