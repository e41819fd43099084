"""Cookie smuggling: no browser-supplied Qlik session, app cookie or other user's session reaches
Qlik, and no Qlik `Set-Cookie` reaches the browser."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from qlik_sso_middleware.testing import DEMO_APPS, QlikSimulator, VirtualProxy

from ..apps import build_app
from ..servers import serve
from .conftest import OFFLOAD_TARGETS
from .helpers import Stack, assert_never_reached, raw_http, raw_websocket

pytestmark = pytest.mark.asyncio(loop_scope="module")
TARGETS = OFFLOAD_TARGETS

ECHO = "/sso/content/_sim/echo"
QLIK_COOKIE = "X-Qlik-Session-sso-HTTP"


async def session_of(stack: Stack, user: str) -> str:
    """Log `user` in through the middleware and return their (server-side) Qlik session id."""
    await raw_http(stack, "GET", "/sso/qps/user", user=user)
    return stack.sim.live_sessions(f"ACME\\{user}")[0].id


def cookie_headers(stack: Stack) -> list[str]:
    return [v for r in stack.proxied() for v in r.header("cookie")]


def assert_only_own_session(stack: Stack, user: str) -> None:
    own = stack.sim.live_sessions(f"ACME\\{user}")[0].id
    for record in stack.proxied():
        assert record.header("cookie") == [f"{QLIK_COOKIE}={own}"], record.header("cookie")


SMUGGLED_NAMES = [
    QLIK_COOKIE,
    QLIK_COOKIE.lower(),
    QLIK_COOKIE.upper(),
    "X-Qlik-Session",
    "X-Qlik-Session-sso",
    "X-Qlik-Session-other-HTTP",
    " X-Qlik-Session-sso-HTTP",
    "X-Qlik-Session-sso-HTTP ",
]


@pytest.mark.parametrize("name", SMUGGLED_NAMES)
@pytest.mark.parametrize("where", ["before", "after", "separate-header"])
async def test_browser_qlik_session_cookie_never_reaches_qlik(
    stack: Stack, name: str, where: str
) -> None:
    bobs = await session_of(stack, "bob")
    await session_of(stack, "alice")
    stack.sim.clear_log()
    smuggled = f"{name}={bobs}"
    headers = [("Cookie", smuggled)] if where == "separate-header" else []
    block = b""
    if where == "before":
        block = f"Cookie: {smuggled}; app_user=alice\r\n".encode()
    elif where == "after":
        block = f"Cookie: app_user=alice; {smuggled}\r\n".encode()
    response = await raw_http(
        stack,
        "GET",
        ECHO,
        headers,
        user=None if where != "separate-header" else "alice",
        raw_header_block=block,
    )
    assert response.status == 200
    echoed = response.json()
    assert isinstance(echoed, dict)
    assert echoed["user"] == "ACME\\alice"
    assert_never_reached(stack.sim, bobs)
    assert_only_own_session(stack, "alice")


async def test_other_users_session_on_the_websocket_upgrade_never_reaches_qlik(
    stack: Stack,
) -> None:
    bobs = await session_of(stack, "bob")
    await session_of(stack, "alice")
    stack.sim.clear_log()
    upgrade = await raw_websocket(
        stack, f"/sso/app/{DEMO_APPS[0].id}", [("Cookie", f"{QLIK_COOKIE}={bobs}")]
    )
    assert upgrade.status == 101
    assert upgrade.first_text is not None and '"userId":"alice"' in upgrade.first_text.replace(
        " ", ""
    )
    assert_never_reached(stack.sim, bobs)
    assert_only_own_session(stack, "alice")


async def test_app_session_and_csrf_cookies_never_reach_qlik(stack: Stack) -> None:
    block = b"Cookie: sessionid=APP-SESSION-SECRET; csrftoken=APP-CSRF-SECRET\r\n"
    response = await raw_http(stack, "GET", ECHO, raw_header_block=block)
    assert response.status == 200
    upgrade = await raw_websocket(stack, f"/sso/app/{DEMO_APPS[0].id}", raw_header_block=block)
    assert upgrade.status == 101
    assert_never_reached(stack.sim, "APP-SESSION-SECRET", "APP-CSRF-SECRET", "app_user")


@pytest.mark.parametrize(
    "path", ["/sso/qps/user", "/sso/hub/", ECHO, "/sso/content/_sim/redirect?to=/sso/hub/"]
)
async def test_qlik_set_cookie_never_reaches_the_browser(stack: Stack, path: str) -> None:
    stack.sim.restart()  # every request below makes Qlik set a fresh session cookie
    response = await raw_http(stack, "GET", path)
    assert response.status is not None and response.status < 500
    assert b"set-cookie" not in response.head.lower()
    assert b"x-qlik-session" not in response.head.lower()


async def test_qlik_set_cookie_never_reaches_the_browser_on_errors(stack: Stack) -> None:
    stack.sim.restart()
    stack.sim.faults.fail_next(500, path_contains="_sim/echo")
    response = await raw_http(stack, "GET", ECHO)
    assert response.status == 500
    assert b"set-cookie" not in response.head.lower()


async def test_websocket_handshake_answer_carries_no_qlik_cookie(stack: Stack) -> None:
    stack.sim.restart()
    upgrade = await raw_websocket(stack, f"/sso/app/{DEMO_APPS[0].id}")
    assert upgrade.status == 101
    assert b"set-cookie" not in upgrade.head.lower()


# -- with an allow-listed app cookie (forward_cookies) ---------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def forwarding() -> AsyncIterator[Stack]:
    """The app forwards its `lang` cookie (and, wrongly, tries to forward a Qlik one)."""
    async with QlikSimulator([VirtualProxy(prefix="sso", header_name="hdr-usr")]) as sim:
        app, sso = build_app(sim, forward_cookies=["lang", QLIK_COOKIE])
        async with serve(app) as url:
            yield Stack(sim, url, sso)


async def test_allow_listed_cookie_is_forwarded_and_qlik_ones_never(forwarding: Stack) -> None:
    bobs = await session_of(forwarding, "bob")
    forwarding.sim.clear_log()
    block = f"Cookie: app_user=alice; lang=de; {QLIK_COOKIE}={bobs}\r\n".encode()
    response = await raw_http(forwarding, "GET", ECHO, user=None, raw_header_block=block)
    assert response.status == 200
    echoed = response.json()
    assert isinstance(echoed, dict)
    assert echoed["user"] == "ACME\\alice"
    assert echoed["cookies"]["lang"] == "de"
    assert_never_reached(forwarding.sim, bobs)


@pytest.mark.parametrize(
    "cookie",
    [
        "lang=de, {qlik}={bobs}",
        "lang=de,{qlik}={bobs}",
        'lang="de; {qlik}={bobs}"',
        'lang="de, {qlik}={bobs}"',
        "lang=de {qlik}={bobs}",
        "lang=de\t{qlik}={bobs}",
    ],
)
async def test_allow_listed_cookie_cannot_carry_a_qlik_session(
    forwarding: Stack, cookie: str
) -> None:
    """A comma or quote inside an allowed cookie's value must not smuggle a second cookie:
    servers that split `Cookie` on ',' (RFC 2965, older .NET) would read bob's session."""
    bobs = await session_of(forwarding, "bob")
    await session_of(forwarding, "alice")
    forwarding.sim.clear_log()
    value = cookie.format(qlik=QLIK_COOKIE, bobs=bobs)
    block = f"Cookie: app_user=alice; {value}\r\n".encode()
    response = await raw_http(forwarding, "GET", ECHO, user=None, raw_header_block=block)
    assert response.status == 200
    assert_never_reached(forwarding.sim, bobs)
