"""Identity injection: user ids and directories that could forge another identity or a header.

The app's resolver turns a (percent-encoded) sign-up name into a `QlikIdentity`, as an app with
self-chosen user names would. Every hostile name must be refused with 403 before any request
leaves for Qlik, on HTTP and on the WebSocket upgrade.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote, unquote

import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from qlik_sso_middleware import QlikIdentity, QlikSSO, QlikSSOMiddleware, QlikTarget
from qlik_sso_middleware.testing import DEMO_APPS, QlikSimulator, VirtualProxy

from ..servers import serve
from .helpers import Stack, raw_http, raw_websocket

pytestmark = pytest.mark.asyncio(loop_scope="module")


def signup_resolver(conn: HTTPConnection) -> QlikIdentity | None:
    """Directory and user id as the app stored them at sign-up (percent-encoded in test headers)."""
    uid = conn.headers.get("x-test-uid")
    if uid is None:
        return None
    return QlikIdentity(unquote(conn.headers.get("x-test-ud", "ACME")), unquote(uid))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_stack() -> AsyncIterator[Stack]:
    async with QlikSimulator([VirtualProxy(prefix="sso", header_name="hdr-usr")]) as sim:
        sso = QlikSSO(QlikTarget(sim.proxy_url, prefix="sso"), resolver=signup_resolver)
        async with serve(QlikSSOMiddleware(Starlette(), sso=sso)) as url:
            yield Stack(sim, url, sso)


HOSTILE_USER_IDS = [
    "ali\\ce",  # a second separator: `ACME\ali\ce`
    "alice\r\nhdr-usr: ACME\\admin",  # header injection
    "alice\n",
    "alice\r",
    "al\x00ice",
    "alice\x7f",
    "alice\x1b[2J",  # terminal escape in logs
    "alice\u2028",  # line separator
    "alice\u200b",  # zero-width space
    "\u202eecila",  # right-to-left override
    "аdmin",  # Cyrillic а
    "ａｄｍｉｎ",  # full-width
    "admin\u00a0",  # no-break space
    "ADMİN",  # dotted capital I
    "é",
    " admin",
    "admin ",
    "\tadmin",
    "",
    "   ",
    "x" * 257,
]

HOSTILE_DIRECTORIES = [
    "AC\\ME",
    "ACME\r\n",
    "ACME\x00",
    "АСМЕ",  # Cyrillic look-alike
    " ACME",
    "",
    "x" * 257,
]


def identity_headers(ud: str, uid: str) -> list[tuple[str, str]]:
    return [("X-Test-UD", quote(ud, safe="")), ("X-Test-UID", quote(uid, safe=""))]


@pytest.mark.parametrize("uid", HOSTILE_USER_IDS)
async def test_hostile_user_id_is_refused_before_anything_leaves(stack: Stack, uid: str) -> None:
    response = await raw_http(stack, "GET", "/sso/hub/", identity_headers("ACME", uid), user=None)
    assert response.status == 403
    upgrade = await raw_websocket(
        stack, f"/sso/app/{DEMO_APPS[0].id}", identity_headers("ACME", uid), user=None
    )
    assert upgrade.close_code == 1008
    assert stack.sim.requests == []


@pytest.mark.parametrize("ud", HOSTILE_DIRECTORIES)
async def test_hostile_directory_is_refused_before_anything_leaves(stack: Stack, ud: str) -> None:
    response = await raw_http(stack, "GET", "/sso/hub/", identity_headers(ud, "alice"), user=None)
    assert response.status == 403
    assert stack.sim.requests == []


@pytest.mark.parametrize(
    ("ud", "uid"),
    [
        ("ACME", "o'brien"),
        ("ACME", "a.b-c_d@x.org"),
        ("Dept 7", "$id$ud"),
        ("$id", "bob"),
        ("X$ud", "$id"),
    ],
)
async def test_unusual_but_safe_names_reach_qlik_exactly_as_given(
    stack: Stack, ud: str, uid: str
) -> None:
    response = await raw_http(
        stack, "GET", "/sso/content/_sim/echo", identity_headers(ud, uid), user=None
    )
    assert response.status == 200
    echoed = response.json()
    assert isinstance(echoed, dict)
    assert echoed["user"] == f"{ud}\\{uid}"
    for record in stack.proxied():
        assert record.header("hdr-usr") == [f"{ud}\\{uid}"]


async def test_placeholders_in_names_are_not_expanded() -> None:
    """`$id` in a directory once expanded into the user id: `$id\\bob` was sent as `bob\\bob`."""
    assert QlikIdentity("$id", "bob").header_value() == "$id\\bob"
    assert QlikIdentity("ACME", "$ud").header_value() == "ACME\\$ud"
    assert QlikIdentity("X$ud", "$id").header_value("$id") == "$id"
