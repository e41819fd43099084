"""Each example in `examples/`, in Chromium: log in through its own form, the `single/` iframe shows
the user, the mashup completes an engine round trip, logout ends the Qlik session.

Examples are started the way their own tests start them (`tests/examples/driver.py`: `python
examples/<name>/<script> --port N`, `QLIK_URL` pointing at a simulator configured as the example's
docstring says). The table below knows the special ones (Django's `serve.py`, the JWT example's
QPS API, the two tenants on `a.localhost` / `b.localhost`, which Chromium resolves to loopback);
any other `examples/<name>/app.py` is picked up with the default settings, and a table entry whose
example is not there fails (a skip would let an example vanish unnoticed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser

from qlik_sso_middleware.testing import QlikSimulator, VirtualProxy

from ..examples.driver import running
from .conftest import VIEWPORT
from .flows import STATE_TIMEOUT_MS, qlik_cookies, screenshot, wait_connected

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="package")]

_EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

Env = Callable[[QlikSimulator, Path], dict[str, str]]


def _no_env(sim: QlikSimulator, tmp_path: Path) -> dict[str, str]:
    return {}


def _django_env(sim: QlikSimulator, tmp_path: Path) -> dict[str, str]:
    return {"DJANGO_DB": str(tmp_path / "db.sqlite3")}


def _qps_env(sim: QlikSimulator, tmp_path: Path) -> dict[str, str]:
    assert sim.api_url is not None
    assert sim.certificates is not None
    return {"QLIK_API_URL": sim.api_url, "QLIK_CERT_DIR": str(sim.certificates.directory)}


@dataclass(frozen=True)
class Visitor:
    """Who logs in, on which host name (`{port}` filled in), and as whom Qlik must see them."""

    user: str
    qlik_user: str
    host: str = "127.0.0.1:{port}"


@dataclass(frozen=True)
class Example:
    name: str
    script: str = "app.py"
    proxies: tuple[VirtualProxy, ...] = (VirtualProxy(prefix="sso", header_name="hdr-usr"),)
    env: Env = _no_env
    visitors: tuple[Visitor, ...] = field(default=(Visitor("alice", "ACME\\alice"),))


_KNOWN = {
    example.name: example
    for example in (
        Example("fastapi_app"),
        Example("flask_app"),
        Example("starlette_app"),
        Example("django_project", script="serve.py", env=_django_env),
        Example(
            "jwt_resolver",
            proxies=(VirtualProxy(prefix="jwt", auth="ticket"),),
            env=_qps_env,
        ),
        Example(
            "tenants",
            proxies=(
                VirtualProxy(prefix="ta", header_name="hdr-a"),
                VirtualProxy(prefix="tb", header_name="hdr-b"),
            ),
            visitors=(
                Visitor("alice", "TENANT_A\\alice", "a.localhost:{port}"),
                Visitor("bob", "TENANT_B\\bob", "b.localhost:{port}"),
            ),
        ),
    )
}
_FOUND = {p.parent.name for p in _EXAMPLES.glob("*/app.py")}
_ALL = [_KNOWN.get(name, Example(name)) for name in sorted(_FOUND | set(_KNOWN))]


@pytest.mark.parametrize("example", _ALL, ids=[e.name for e in _ALL])
async def test_example_in_the_browser(example: Example, browser: Browser, tmp_path: Path) -> None:
    if not (_EXAMPLES / example.name / example.script).is_file():
        pytest.fail(
            f"examples/{example.name}/{example.script} is in the table but not in examples/"
        )
    async with QlikSimulator(list(example.proxies)) as sim:
        script = f"examples/{example.name}/{example.script}"
        env = {"QLIK_URL": sim.proxy_url, **example.env(sim, tmp_path)}
        async with running([script], env) as url:
            port = url.rsplit(":", 1)[1]
            for visitor in example.visitors:
                await _visit(
                    browser, f"http://{visitor.host.format(port=port)}", visitor, sim, tmp_path
                )


async def _visit(
    browser: Browser, url: str, visitor: Visitor, sim: QlikSimulator, tmp_path: Path
) -> None:
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        page = await context.new_page()
        await page.goto(f"{url}/login")
        await page.fill("input[name=username]", visitor.user)
        await page.fill("input[name=password]", "demo")
        async with page.expect_navigation():
            await page.press("input[name=password]", "Enter")
        assert "/login" not in page.url, f"login failed ({page.url})"

        await page.goto(f"{url}/embed")
        frame = page.frame_locator("#qlik-frame")
        await wait_connected(frame)
        connected = f"Connected as {visitor.qlik_user}"
        assert await frame.locator("#qlik-user").inner_text() == connected
        assert await frame.locator("#qlik-object").is_visible()
        await screenshot(page, tmp_path, f"{visitor.user}-embed")

        await page.goto(f"{url}/mashup")
        await page.locator("#mashup[data-state=connected]").wait_for(timeout=STATE_TIMEOUT_MS)
        assert await page.locator("#mashup-user").inner_text() == connected
        assert await page.locator("#mashup-table tr").count() > 1
        await screenshot(page, tmp_path, f"{visitor.user}-mashup")

        assert await qlik_cookies(context) == []
        assert len(sim.live_sessions(user=visitor.qlik_user)) == 1
        async with page.expect_navigation():
            await page.click("#logout")
        assert "/login" in page.url
        assert sim.live_sessions(user=visitor.qlik_user) == []
    finally:
        await context.close()
