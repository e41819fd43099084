"""Offload mode end to end behind real nginx and Caddy: what happens when Qlik forgets sessions
(a restart), Qlik's own redirects, the auth endpoint seen from a browser, and nginx's auth cache.
One simulator, app and front proxy per module and server."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx2 as httpx
import pytest
import pytest_asyncio
import websockets
from starlette.types import ASGIApp, Receive, Scope, Send

from qlik_sso_middleware import FrontProxy, QlikIdentity, QlikSSO
from qlik_sso_middleware.testing import DEMO_APPS, QlikSimulator, VirtualProxy

from ..apps import build_app
from ..servers import serve
from .front import SECRET, front_proxy

pytestmark = pytest.mark.asyncio(loop_scope="module")

ECHO = "/sso/content/_sim/echo"
ENGINE = f"/sso/app/{DEMO_APPS[0].id}"


@dataclass
class Offload:
    sim: QlikSimulator
    sso: QlikSSO
    url: str
    server: str
    auth_calls: list[str] = field(default_factory=list)

    def client(self, user: str | None = "alice") -> httpx.AsyncClient:
        cookies = {"app_user": user} if user else None
        return httpx.AsyncClient(base_url=self.url, cookies=cookies, timeout=10)

    async def echo(self, user: str = "alice") -> dict[str, object]:
        async with self.client(user) as client:
            response = await client.get(ECHO, headers={"Accept": "application/json"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert isinstance(body, dict)
        return body


def counting(app: ASGIApp, calls: list[str]) -> ASGIApp:
    async def counted(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/_qlik_sso/auth":
            calls.append(dict(scope["headers"]).get(b"x-original-uri", b"").decode())
        await app(scope, receive, send)

    return counted


@contextlib.asynccontextmanager
async def running(server: str, cache_seconds: float = 0) -> AsyncIterator[Offload]:
    async with QlikSimulator([VirtualProxy(prefix="sso", header_name="hdr-usr")]) as sim:
        app, sso = build_app(sim, front_proxy=FrontProxy(SECRET))
        calls: list[str] = []
        async with serve(counting(app, calls)) as app_url:
            async with front_proxy(
                server, qlik_url=sim.proxy_url, app_url=app_url, cache_seconds=cache_seconds
            ) as url:
                yield Offload(sim, sso, url, server, calls)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["nginx", "caddy"])
async def offload(request: pytest.FixtureRequest) -> AsyncIterator[Offload]:
    async with running(request.param) as stack:
        yield stack


@pytest.fixture
def clean(offload: Offload) -> Offload:
    offload.sim.faults.reset()
    offload.sim.clear_log()
    offload.auth_calls.clear()
    return offload


async def open_engine(stack: Offload, user: str = "alice") -> dict[str, object]:
    url = stack.url.replace("http://", "ws://") + ENGINE
    async with websockets.connect(
        url,
        origin=stack.url,
        additional_headers={"Cookie": f"app_user={user}"},  # type: ignore[arg-type]
    ) as socket:
        message = json.loads(await asyncio.wait_for(socket.recv(), 10))
    assert isinstance(message, dict)
    return message


async def test_http_and_the_engine_websocket_recover_after_a_qlik_restart(clean: Offload) -> None:
    await clean.echo()
    before = clean.sim.live_sessions("ACME\\alice")[0].id
    clean.sim.restart()  # Qlik forgets every session
    clean.sim.clear_log()
    body = await clean.echo()
    assert body["user"] == "ACME\\alice"
    (after,) = clean.sim.live_sessions("ACME\\alice")  # one new session, not one per request
    assert after.id != before
    # Qlik turned the dead cookie away with its login redirect; the app renewed, once.
    assert next(r.status for r in clean.sim.requests if r.path == ECHO) == 302
    for _ in range(3):
        assert (await clean.echo())["cookies"] == {"X-Qlik-Session-sso-HTTP": after.id}
    clean.sim.restart()
    notice = await open_engine(clean)
    assert notice["params"] == {
        "userId": "alice",
        "userDirectory": "ACME",
        "mustAuthenticate": False,
    }
    assert len(clean.sim.live_sessions("ACME\\alice")) == 1


async def test_a_post_that_qlik_turned_away_is_never_sent_twice(clean: Offload) -> None:
    await clean.echo()
    clean.sim.restart()
    clean.sim.clear_log()
    async with clean.client() as client:
        first = await client.post(ECHO, content=b"x=1", headers={"Origin": clean.url})
        assert first.status_code == 503
        assert first.headers["retry-after"] == "1"
        again = await client.post(ECHO, content=b"x=1", headers={"Origin": clean.url})
    assert again.status_code == 200
    assert again.json()["body_size"] == 3
    posts = [r for r in clean.sim.requests if r.path == ECHO and r.method == "POST"]
    assert [r.status for r in posts] == [302, 200]  # the first never ran, the retry ran once


async def test_a_large_upload_streams_through_to_qlik(clean: Offload) -> None:
    body = bytes(range(256)) * (12 * 1024)  # 3 MiB: over nginx's default body limit (1 MiB)
    async with clean.client() as client:
        response = await client.post(ECHO, content=body, headers={"Origin": clean.url})
    assert response.status_code == 200, response.text[:300]
    assert response.json()["body_size"] == len(body)


async def test_qlik_redirects_that_are_not_its_login_are_relayed(clean: Offload) -> None:
    async with clean.client() as client:
        response = await client.get("/sso/content/_sim/redirect?to=/sso/hub/")
    assert response.status_code == 302
    assert response.headers["location"] in ("/sso/hub/", f"{clean.url}/sso/hub/")
    assert "set-cookie" not in response.headers
    assert [r.path for r in clean.sim.requests if "_sim/redirect" in r.path] == [
        "/sso/content/_sim/redirect"
    ]  # relayed, not asked again


@pytest.mark.parametrize("secret", [None, "guess-" * 8, SECRET])
async def test_a_browser_cannot_use_the_auth_endpoint_through_the_front_proxy(
    clean: Offload, secret: str | None
) -> None:
    headers = {"X-Original-URI": "/sso/hub/", "X-Original-Method": "GET"}
    if secret is not None:
        headers["X-Qlik-SSO-Secret"] = secret  # even the right one: the front proxy clears it
    async with clean.client() as client:
        response = await client.get("/_qlik_sso/auth", headers=headers)
    assert response.status_code in (403, 404)  # nginx: internal location; Caddy: the app refuses
    assert not [k for k in response.headers if k.lower().startswith("x-qlik-sso-c")]
    assert "x-qlik-session" not in response.text.lower()


async def test_a_logged_out_browser_gets_the_apps_answer_not_qlik(clean: Offload) -> None:
    async with clean.client(user=None) as client:
        page = await client.get("/sso/hub/", headers={"Accept": "text/html"})
        socket = await client.get(ENGINE, headers={"Accept": "application/json"})
    assert page.status_code == 401 and "Not logged in" in page.text
    assert socket.status_code == 401
    assert clean.sim.requests == []


# -- nginx's auth cache ----------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cached() -> AsyncIterator[Offload]:
    async with running("nginx", cache_seconds=30) as stack:
        yield stack


async def test_nginx_reuses_an_auth_answer_for_the_same_request_and_user(cached: Offload) -> None:
    cached.auth_calls.clear()
    for _ in range(5):
        await cached.echo("alice")
    assert cached.auth_calls == [ECHO]  # asked once, reused four times
    body = await cached.echo("bob")  # same request line, another user: never alice's answer
    assert body["user"] == "ACME\\bob"
    assert cached.auth_calls == [ECHO, ECHO]
    async with cached.client() as client:
        await client.get(ECHO + "?other=1")  # another request line: asked again
        await client.get(ECHO, headers={"Origin": "https://evil.example"})  # another origin
    assert len(cached.auth_calls) == 4
    await open_engine(cached)
    await open_engine(cached)
    assert len(cached.auth_calls) == 6  # engine WebSockets are never answered from the cache


async def test_after_qlik_logout_a_cached_answer_only_leads_back_through_the_app(
    cached: Offload,
) -> None:
    await cached.echo("alice")
    ended = cached.sim.live_sessions("ACME\\alice")[0].id
    await cached.sso.logout(QlikIdentity("ACME", "alice"))
    assert cached.sim.live_sessions("ACME\\alice") == []
    cached.sim.clear_log()
    body = await cached.echo("alice")  # the cached answer still names the ended session...
    assert body["cookies"] != {"X-Qlik-Session-sso-HTTP": ended}
    first = next(r for r in cached.sim.requests if r.path == ECHO)
    assert first.status == 302  # ...which Qlik turns away: it serves nobody


async def test_qliks_api_pair_reaches_qlik_with_the_apps_key_and_a_lone_key_is_refused(
    clean: Offload,
) -> None:
    """`@qlik/api` (windowscookie) sends `xrfkey` in the query and `X-Qlik-Xrfkey` on every API
    call; no browser `X-Qlik-*` header passes the front proxy, so the app's key must."""
    browser_key = "abcdefghijklmnop"
    async with clean.client() as client:
        paired = await client.get(
            f"/sso/qps/csrftoken?xrfkey={browser_key}",
            headers={"X-Qlik-Xrfkey": browser_key},
        )
        lone = await client.get(f"/sso/qps/csrftoken?xrfkey={browser_key}")
        plain = await client.get(ECHO, headers={"X-Qlik-Xrfkey": browser_key})
    assert paired.status_code == 204, paired.text
    assert paired.headers["qlik-csrf-token"]
    assert lone.status_code == 403
    assert "XSRF" in lone.text
    (asked,) = [r for r in clean.sim.requests if r.path == "/sso/qps/csrftoken"]
    (key,) = asked.header("X-Qlik-Xrfkey")
    assert key != browser_key
    assert f"xrfkey={key}" in asked.query
    assert browser_key not in asked.query
    # Elsewhere no X-Qlik-Xrfkey reaches Qlik at all, not even an empty one.
    assert plain.status_code == 200
    (echoed,) = [r for r in clean.sim.requests if r.path == ECHO]
    assert echoed.header("X-Qlik-Xrfkey") == []
