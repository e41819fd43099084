"""The auth endpoint on its own, as the front proxy's HTTP client sees it: what it grants, what it
refuses, and that nothing but the front proxy ever gets a Qlik cookie from it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx2 as httpx
import pytest
import pytest_asyncio

from qlik_sso_middleware import FrontProxy
from qlik_sso_middleware.testing import DEMO_APPS, QlikSimulator, VirtualProxy

from ..apps import build_app
from ..servers import serve
from .front import SECRET

pytestmark = pytest.mark.asyncio(loop_scope="module")

ENGINE = f"/sso/app/{DEMO_APPS[0].id}"


@dataclass
class App:
    sim: QlikSimulator
    url: str
    host: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app() -> AsyncIterator[App]:
    async with QlikSimulator([VirtualProxy(prefix="sso", header_name="hdr-usr")]) as sim:
        asgi, _ = build_app(sim, front_proxy=FrontProxy(SECRET))
        async with serve(asgi) as url:
            yield App(sim, url, url.removeprefix("http://"))


def sub_request(
    app: App,
    uri: str = "/sso/hub/",
    method: str = "GET",
    *,
    user: str | None = "alice",
    secret: str | None = SECRET,
    upgrade: str | None = None,
    origin: str | None = None,
    extra: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> list[tuple[str, str]]:
    headers = [("Host", app.host), ("X-Original-URI", uri), ("X-Original-Method", method)]
    if secret is not None:
        headers.append(("X-Qlik-SSO-Secret", secret))
    if user is not None:
        headers.append(("Cookie", f"app_user={user}"))
    if upgrade is not None:
        headers.append(("X-Original-Upgrade", upgrade))
    if origin is not None:
        headers.append(("Origin", origin))
    return [*headers, *extra]


async def ask(app: App, headers: list[tuple[str, str]]) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(f"{app.url}/_qlik_sso/auth", headers=headers)


def assert_nothing_granted(response: httpx.Response) -> None:
    assert not [
        k
        for k in response.headers
        if k.lower().startswith("x-qlik-sso-") and k.lower() != "x-qlik-sso-status"
    ]
    assert "x-qlik-session" not in response.text.lower()


async def test_a_grant_carries_the_users_session_the_checked_uri_and_host(app: App) -> None:
    response = await ask(app, sub_request(app, "/sso/content/_sim/echo?a=1&qlikTicket=stolen"))
    assert response.status_code == 200
    (session,) = app.sim.live_sessions("ACME\\alice")
    assert response.headers["x-qlik-sso-cookie"] == f"X-Qlik-Session-sso-HTTP={session.id}"
    assert response.headers["x-qlik-sso-uri"] == "/sso/content/_sim/echo?a=1"
    assert response.headers["x-qlik-sso-host"] == app.host
    assert "hdr-usr" not in {k.lower() for k in response.headers}  # on purpose: see endpoint.py
    assert response.headers["cache-control"] == "no-store"


async def test_a_websocket_grant_carries_a_fresh_csrf_token_and_drops_the_browsers(
    app: App,
) -> None:
    headers = sub_request(
        app, f"{ENGINE}?qlik-csrf-token=forged&x=1", upgrade="websocket", origin=app.url
    )
    app.sim.clear_log()
    first = await ask(app, headers)
    second = await ask(app, headers)
    (session,) = app.sim.live_sessions("ACME\\alice")
    for response in (first, second):
        assert response.status_code == 200
        assert (
            response.headers["x-qlik-sso-uri"]
            == f"{ENGINE}?x=1&qlik-csrf-token={session.csrf_token}"
        )
    # Asked of Qlik on every handshake: the probe is the proof that Qlik still knows the session.
    assert [r.path for r in app.sim.requests] == ["/sso/qps/csrftoken"] * 2


async def test_the_decoded_uri_keeps_question_marks_encoded_and_braces_are_never_raw(
    app: App,
) -> None:
    response = await ask(app, sub_request(app, "/sso/content/a%20b%3Fc?q={env.HOME}"))
    assert response.status_code == 200
    assert response.headers["x-qlik-sso-uri"] == "/sso/content/a%20b%3Fc?q=%7Benv.HOME%7D"
    assert response.headers["x-qlik-sso-decoded-uri"] == "/sso/content/a b%3Fc?q=%7Benv.HOME%7D"


@pytest.mark.parametrize(
    ("kwargs", "status", "why"),
    [
        ({"user": None}, 401, 401),
        ({"uri": "/sso/qrs/about"}, 403, 403),
        ({"uri": "/sso/%2e%2e/qrs/about"}, 403, 400),
        (
            {"uri": "/sso/content/_sim/echo", "method": "POST", "origin": "https://evil.example"},
            403,
            403,
        ),
        ({"uri": ENGINE, "upgrade": "websocket", "origin": "https://evil.example"}, 403, 403),
        ({"uri": ENGINE, "upgrade": "websocket"}, 403, 403),  # no Origin at all
        ({"uri": "/elsewhere/"}, 403, 404),
    ],
    ids=[
        "no-user",
        "blocked",
        "path-trick",
        "cross-site-post",
        "cswsh",
        "ws-no-origin",
        "unmounted",
    ],
)
async def test_refusals_are_401_or_403_with_the_real_status_and_reach_no_qlik(
    app: App, kwargs: dict[str, str | None], status: int, why: int
) -> None:
    app.sim.clear_log()
    response = await ask(app, sub_request(app, **kwargs))  # type: ignore[arg-type]
    assert response.status_code == status
    assert response.headers["x-qlik-sso-status"] == str(why)
    assert_nothing_granted(response)
    assert app.sim.requests == []


@pytest.mark.parametrize(
    "secret",
    [None, "", "front-proxy-test-secret-0123456789abcdeX", SECRET + "x", SECRET[:-1]],
    ids=["none", "empty", "wrong", "longer", "shorter"],
)
async def test_a_forged_sub_request_gets_no_session(
    app: App, secret: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    """A browser that reaches the endpoint (through a pass-through to the app, or the app's port)
    never gets a Qlik cookie: only the front proxy knows the secret."""
    caplog.set_level(logging.WARNING)
    response = await ask(app, sub_request(app, "/sso/hub/", secret=secret))
    assert response.status_code == 403
    assert_nothing_granted(response)
    assert "without the front proxy's secret" in caplog.text


async def test_two_secret_headers_are_refused_even_if_one_is_right(app: App) -> None:
    headers = sub_request(app, extra=[("X-Qlik-SSO-Secret", "guess-" * 8)])
    response = await ask(app, headers)
    assert response.status_code == 403
    assert_nothing_granted(response)


@pytest.mark.parametrize(
    "drop", ["X-Original-URI", "X-Original-Method"], ids=["no-uri", "no-method"]
)
async def test_a_sub_request_that_does_not_say_what_it_is_for_is_a_clear_error(
    app: App, drop: str
) -> None:
    headers = [(k, v) for k, v in sub_request(app) if k != drop]
    response = await ask(app, headers)
    assert response.status_code == 403
    assert response.headers["x-qlik-sso-status"] == "400"
    assert "X-Original-URI and X-Original-Method" in response.json()["error"]
    assert_nothing_granted(response)


@pytest.mark.parametrize(
    ("uri", "method"),
    [("sso/hub/", "GET"), ("/sso/hub/ x", "GET"), ("/sso/hub/", "get"), ("/sso/hub/", "G E")],
)
async def test_a_malformed_original_request_is_refused(app: App, uri: str, method: str) -> None:
    response = await ask(app, sub_request(app, uri, method))
    assert response.status_code == 403
    assert response.headers["x-qlik-sso-status"] == "400"
    assert_nothing_granted(response)


async def test_the_original_host_wins_and_an_empty_one_is_refused(app: App) -> None:
    granted = await ask(app, sub_request(app, extra=[("X-Original-Host", "portal.example")]))
    assert granted.headers["x-qlik-sso-host"] == "portal.example"
    refused = await ask(app, sub_request(app, extra=[("X-Original-Host", "evil@portal.example")]))
    assert refused.status_code == 403
    assert_nothing_granted(refused)


async def test_allow_listed_app_cookies_join_the_session_and_qlik_ones_never() -> None:
    async with QlikSimulator([VirtualProxy(prefix="sso", header_name="hdr-usr")]) as sim:
        asgi, _ = build_app(
            sim, front_proxy=FrontProxy(SECRET), forward_cookies=["lang", "X-Qlik-Session-sso"]
        )
        async with serve(asgi) as url:
            app = App(sim, url, url.removeprefix("http://"))
            smuggled = "lang=de; X-Qlik-Session-sso=bobs; lang2=x"
            response = await ask(app, sub_request(app, extra=[("Cookie", smuggled)]))
        (session,) = sim.live_sessions("ACME\\alice")
    assert response.headers["x-qlik-sso-cookie"] == (
        f"lang=de; X-Qlik-Session-sso-HTTP={session.id}"
    )
