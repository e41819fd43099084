"""`@qlik/api` (npm, Qlik's current toolkit) in Chromium, through the middleware, as a new user sets
it up: host = the app's own origin + `/sso`, auth type `windowscookie` or `none`.

The page (`static/embed/qlik_api.*`) opens an app session, reads the app layout, creates a session
object with a hypercube and reads its data. Qlik's embed runtime comes from the simulator
(`/sso/qlik-embed/main.js`, a stand-in built from @qlik/api's own modules: `embed_kit.py`).
What Qlik received is read from the simulator's records. Needs `npm ci --prefix tests/js-embed`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page

from qlik_sso_middleware.demo.settings import DEMO_APP_ID
from qlik_sso_middleware.testing import DEMO_APPS, RecordedRequest

from .conftest import VIEWPORT
from .flows import STATE_TIMEOUT_MS, log_in_and_settle, qlik_cookies, screenshot
from .inprocess import InProcessDemo, demo_in_process

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="package")]

_APP = next(app for app in DEMO_APPS if app.id == DEMO_APP_ID)
_REGIONS = next(o for o in _APP.objects if "Region" in o.dimensions).rows
PAGE = f"/embed-test/qlik_api.html?app={DEMO_APP_ID}"


@pytest_asyncio.fixture(loop_scope="package")
async def running(embed_kit: Path) -> AsyncIterator[InProcessDemo]:
    async with demo_in_process(kit=embed_kit) as demo:
        yield demo


async def _open(context: BrowserContext, url: str) -> tuple[Page, dict[str, Any]]:
    """Open the @qlik/api page; wait until it reports; return it and its result."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(url)
    await page.locator("body:not([data-state=loading])").wait_for(timeout=STATE_TIMEOUT_MS)
    status = await page.locator("#status").inner_text()
    assert await page.locator("body").get_attribute("data-state") == "connected", status
    assert errors == []
    result: dict[str, Any] = json.loads(await page.locator("#result").text_content() or "{}")
    return page, result


def _since(running: InProcessDemo, start: int) -> list[RecordedRequest]:
    return running.sim.requests[start:]


def _engine_methods(running: InProcessDemo, start: int, user: str) -> list[str]:
    """Methods the engine received on `user`'s sockets since frame `start`."""
    return [
        json.loads(f.data)["method"]
        for f in running.sim.frames[start:]
        if f.direction == "in" and isinstance(f.data, str) and f.user == user
    ]


@pytest.mark.parametrize("auth_type", ["windowscookie", "none"])
async def test_each_user_opens_an_app_and_reads_his_own_hypercube(
    browser: Browser, running: InProcessDemo, tmp_path: Path, auth_type: str
) -> None:
    contexts = [await browser.new_context(viewport=VIEWPORT) for _ in range(2)]
    try:
        for context, user in zip(contexts, ("alice", "bob"), strict=True):
            await log_in_and_settle(context, running.url, user)
        requests, frames = len(running.sim.requests), len(running.sim.frames)
        browser_urls: list[str] = []
        opened = []
        for context in contexts:
            context.on("request", lambda request: browser_urls.append(request.url))
            opened.append(_open(context, f"{running.url}{PAGE}&auth={auth_type}"))
        (alice_page, alice), (_, bob) = await asyncio.gather(*opened)
        await screenshot(alice_page, tmp_path, f"qlik-api-{auth_type}")

        expected = [[str(row[0]), f"{row[1]:,.0f}"] for row in _REGIONS]
        for result, user in ((alice, "alice"), (bob, "bob")):
            assert result["title"] == _APP.name
            assert result["user"] == f"UserDirectory=ACME; UserId={user}"
            assert result["matrix"] == expected
            assert result["page"] == expected[1:3]
        # What Qlik saw: each user's calls on his own session, in @qlik/api's order.
        for user in ("ACME\\alice", "ACME\\bob"):
            methods = _engine_methods(running, frames, user)
            assert methods[:2] == ["OpenDoc", "GetAppLayout"]
            for method in ("GetAuthenticatedUser", "CreateSessionObject", "GetHyperCubeData"):
                assert method in methods
        seen = _since(running, requests)
        assert {r.user for r in seen} == {"ACME\\alice", "ACME\\bob"}
        for user in ("ACME\\alice", "ACME\\bob"):
            paths = {r.path.split("?")[0] for r in seen if r.user == user}
            assert "/sso/qlik-embed/main.js" in paths
            assert f"/sso/app/{DEMO_APP_ID}" in paths
            assert all(r.header("hdr-usr") == [user] for r in seen if r.user == user)
        sockets = [r for r in seen if r.websocket]
        assert len({r.session_id for r in sockets}) == 2  # one Qlik session per user
        if auth_type == "windowscookie":
            _assert_xrfkey_pair_was_ours(seen, browser_urls)
        else:  # no auth type hint: @qlik/api asks the server what it is
            assert any(r.path.endswith("/product-info.json") and r.status == 200 for r in seen)
        for context in contexts:
            assert await qlik_cookies(context) == []
    finally:
        for context in contexts:
            await context.close()


def _assert_xrfkey_pair_was_ours(seen: list[RecordedRequest], browser_urls: list[str]) -> None:
    """`windowscookie` sent `qps/csrftoken?xrfkey=K` with `X-Qlik-XrfKey: K`; Qlik got our pair."""
    browser_keys = {
        value
        for url in browser_urls
        if urlsplit(url).path.endswith("/qps/csrftoken")
        for value in parse_qs(urlsplit(url).query).get("xrfkey", [])
    }
    assert browser_keys  # the client did send its pair
    tokens = [r for r in seen if r.path == "/sso/qps/csrftoken" and "xrfkey=" in r.query]
    assert tokens and all(r.status == 204 for r in tokens)
    for record in tokens:
        (key,) = parse_qs(record.query)["xrfkey"]
        assert record.header("x-qlik-xrfkey") == [key]
        assert key not in browser_keys


async def test_a_hostile_client_changes_nothing_and_gets_clear_answers(
    browser: Browser, running: InProcessDemo
) -> None:
    """A client module that adds Authorization, X-Qlik-User, the identity header, a Qlik ticket,
    its own CSRF token and xrfkey: still alice, nothing forged reaches Qlik, a lone key is a 403."""
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        await log_in_and_settle(context, running.url, "alice")
        start = len(running.sim.requests)
        _, result = await _open(context, f"{running.url}{PAGE}&auth=hostile")
        assert result["user"] == "UserDirectory=ACME; UserId=alice"
        assert result["rest"]["paired"]["status"] == 200
        assert result["rest"]["paired"]["body"]["userId"] == "alice"
        assert result["rest"]["lone"]["status"] == 403
        assert "XSRF prevention check failed" in result["rest"]["lone"]["body"]
        seen = _since(running, start)
        assert seen and {r.user for r in seen} == {"ACME\\alice"}
        for record in seen:
            text = (record.query + json.dumps(record.headers)).lower()
            for forged in ("mallory", "forged", "bearer"):
                assert forged not in text, (forged, record.path)
            assert record.header("authorization") == []
            assert record.header("x-qlik-user") == []
        (socket,) = [r for r in seen if r.websocket]
        session = running.sim.session(socket.session_id or "")
        assert session is not None
        assert parse_qs(socket.query)["qlik-csrf-token"] == [session.csrf_token]
    finally:
        await context.close()


async def test_qlik_restarting_mid_way_is_silent_until_the_page_resumes(
    browser: Browser, running: InProcessDemo
) -> None:
    """Qlik forgets every session (`sim.restart()`: `OnSessionClosed`, then close 1000). enigma.js
    inside @qlik/api ignores a normal close: no `suspended`/`closed` event, the next call fails.
    `appSession.resume()` reconnects: the middleware logs alice in again, a new session object
    reads the same data. Objects made before the restart went with Qlik's session."""
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        await log_in_and_settle(context, running.url, "alice")
        page, before = await _open(context, f"{running.url}{PAGE}")
        (old,) = running.sim.live_sessions("ACME\\alice")
        frames = len(running.sim.frames)
        running.sim.restart()
        await _wait(
            lambda: any(
                f.direction == "close_in" and f.session_id == old.id
                for f in running.sim.frames[frames:]
            )
        )
        failed = await page.evaluate(
            "() => window.qlikTest.read(window.qlikTest.doc)"
            ".then(() => 'answered', (e) => String((e && e.message) || e))"
        )
        assert failed != "answered"
        assert await page.evaluate("window.qlikTest.events") == ["opened"]
        start = len(running.sim.requests)
        after = await page.evaluate(
            "async () => { await window.qlikTest.session.resume();"
            " return window.qlikTest.read(window.qlikTest.doc); }"
        )
        assert after["user"] == before["user"] == "UserDirectory=ACME; UserId=alice"
        assert after["matrix"] == before["matrix"]
        assert after["objectId"] != before["objectId"]
        (new,) = running.sim.live_sessions("ACME\\alice")
        assert new.id != old.id
        assert old.end_reason == "restart"
        sockets = [r for r in _since(running, start) if r.websocket]
        assert sockets and all(r.session_id == new.id and r.status == 101 for r in sockets)
        assert await page.evaluate("window.qlikTest.events") == ["opened", "resuming", "resumed"]
        assert await qlik_cookies(context) == []
    finally:
        await context.close()


async def test_bypassing_the_middleware_loads_nothing_as_alice(
    browser: Browser, running: InProcessDemo
) -> None:
    """The same page pointed at the simulator itself: alice's app session is worth nothing there.
    Qlik redirects the runtime request to its login page (which Chromium will not run as a
    script), @qlik/api reports the runtime missing, no engine socket opens, no session exists."""
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        await log_in_and_settle(context, running.url, "alice")
        start, logins = len(running.sim.requests), running.sim.logins()
        page = await context.new_page()
        runtime_answers: list[int] = []
        messages: list[str] = []
        page.on(
            "response",
            lambda r: (
                runtime_answers.append(r.status) if r.url.endswith("/qlik-embed/main.js") else None
            ),
        )
        page.on("console", lambda message: messages.append(message.text))
        await page.goto(f"{running.url}{PAGE}&host={running.sim.proxy_url}/sso")
        await _wait(lambda: any("Qlik runtime system not found" in m for m in messages))
        assert runtime_answers == [302]
        assert await page.locator("body").get_attribute("data-state") == "loading"
        seen = _since(running, start)
        assert [r.path for r in seen][:1] == ["/sso/qlik-embed/main.js"]
        assert all(r.user is None and not r.websocket for r in seen)
        assert running.sim.logins() == logins
    finally:
        await context.close()


async def test_an_unmounted_prefix_gets_a_clear_404_and_reaches_no_qlik(
    browser: Browser, running: InProcessDemo
) -> None:
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        await log_in_and_settle(context, running.url, "alice")
        start = len(running.sim.requests)
        page = await context.new_page()
        statuses: list[int] = []
        messages: list[str] = []
        page.on(
            "response",
            lambda r: statuses.append(r.status) if r.url.endswith("/qlik-embed/main.js") else None,
        )
        page.on("console", lambda message: messages.append(message.text))
        await page.goto(f"{running.url}{PAGE}&host=/nosuch")
        # @qlik/api's loader reports the missing runtime on the console (and waits for ever).
        await _wait(lambda: any("Qlik runtime system not found" in m for m in messages))
        assert statuses == [404]
        assert all(not r.path.startswith("/nosuch") for r in _since(running, start))
    finally:
        await context.close()


async def _wait(condition: Any, attempts: int = 600) -> None:
    """Wait for a browser event recorded by a handler (bounded; not a timing assertion)."""
    for _ in range(attempts):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the browser never reported it")
