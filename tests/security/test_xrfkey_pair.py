"""The xrfkey pair on Qlik's API paths is the middleware's own: the browser's value never reaches
Qlik, no `X-Qlik-*` header from a browser does either, and a browser that names a key without the
matching header (what a form, a link or an `<img>` can do) is refused before Qlik sees anything.

Why the middleware sends the pair at all: `@qlik/api`'s `windowscookie` auth sends
`xrfkey` + `X-Qlik-XrfKey` on every REST call (`qps/csrftoken` first), and Qlik refuses a key
without its header (docs/qlik-clients.md).
"""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from qlik_sso_middleware.testing import RecordedRequest
from qlik_sso_middleware.testing.xrfkey import valid_xrfkey

from .helpers import MALLORY, Stack, assert_never_reached, raw_http

pytestmark = pytest.mark.asyncio(loop_scope="module")

KEY = "abcdefghij012345"


def assert_alice_only(stack: Stack) -> None:
    assert_never_reached(stack.sim, "mallory")
    for record in stack.proxied():
        assert record.header("hdr-usr") == ["ACME\\alice"]
        assert record.user in (None, "ACME\\alice")


def _to(stack: Stack, path: str) -> list[RecordedRequest]:
    """What reached Qlik for `path` (the middleware's own login call aside)."""
    return [r for r in stack.proxied() if r.path == path]


def _keys(query: str) -> list[str]:
    return [v for k, values in parse_qs(query).items() if k.lower() == "xrfkey" for v in values]


@pytest.mark.parametrize("name", ["X-Qlik-Xrfkey", "x-qlik-xrfkey", "X_Qlik_XrfKey"])
@pytest.mark.parametrize("path", ["/sso/qps/csrftoken", "/sso/qps/user", "/sso/qrs/about"])
async def test_a_browser_pair_is_replaced_by_ours(stack: Stack, name: str, path: str) -> None:
    allow_qrs = path.startswith("/sso/qrs/")
    if allow_qrs:
        # QRS stays blocked by default; the pair rule is the same when an app allows it.
        response = await raw_http(stack, "GET", f"{path}?xrfkey={KEY}", [(name, KEY)])
        assert response.status == 403
        assert _to(stack, path) == []
        return
    response = await raw_http(stack, "GET", f"{path}?Xrfkey={KEY}&x=1", [(name, KEY)])
    assert response.status in (200, 204)
    (record,) = _to(stack, path)
    (sent,) = _keys(record.query)
    assert sent != KEY and valid_xrfkey(sent)
    assert record.header("x-qlik-xrfkey") == [sent]
    assert "x=1" in record.query
    assert_alice_only(stack)


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        (f"xrfkey={KEY}", []),
        (f"xrfkey={KEY}", [("X-Qlik-Xrfkey", KEY.upper())]),
        (f"xrfkey={KEY}", [("X-Qlik-Xrfkey", KEY), ("X-Qlik-Xrfkey", KEY)]),
        (f"xrfkey={KEY}&XRFKEY={KEY}", [("X-Qlik-Xrfkey", KEY)]),
        (f"%78rfkey={KEY}", []),
        ("xrfkey=short", [("X-Qlik-Xrfkey", "short")]),
        ("xrfkey=abcdefghij01234!", [("X-Qlik-Xrfkey", "abcdefghij01234!")]),
    ],
)
async def test_a_key_without_its_header_is_refused_before_qlik(
    stack: Stack, query: str, headers: list[tuple[str, str]]
) -> None:
    response = await raw_http(stack, "GET", f"/sso/qps/user?{query}", headers)
    assert response.status == 403
    assert b"XSRF prevention check failed" in response.body
    assert stack.proxied() == []  # refused before a session was even looked up


async def test_the_pair_cannot_carry_an_identity(stack: Stack) -> None:
    headers = [("X-Qlik-Xrfkey", KEY), ("X-Qlik-User", MALLORY), ("hdr-usr", MALLORY)]
    response = await raw_http(stack, "GET", f"/sso/qps/user?xrfkey={KEY}&qlikTicket=T", headers)
    assert response.status == 200
    assert response.json() == {
        "userDirectory": "ACME",
        "userId": "alice",
        "userName": "alice",
        "logoutUri": f"{stack.url}/sso/qps/user",
    }
    record = stack.proxied()[-1]
    assert record.path == "/sso/qps/user"
    assert "qlikticket" not in record.query.lower()
    assert KEY not in record.query and record.header("x-qlik-xrfkey") != [KEY]
    assert_alice_only(stack)


async def test_other_paths_and_keyless_calls_are_untouched(stack: Stack) -> None:
    echo = await raw_http(stack, "GET", f"/sso/content/_sim/echo?xrfkey={KEY}")
    plain = await raw_http(stack, "GET", "/sso/qps/csrftoken")
    assert echo.status == 200 and plain.status == 204
    (first,) = _to(stack, "/sso/content/_sim/echo")
    (second,) = _to(stack, "/sso/qps/csrftoken")
    assert _keys(first.query) == [KEY] and first.header("x-qlik-xrfkey") == []
    assert second.query == "" and second.header("x-qlik-xrfkey") == []
