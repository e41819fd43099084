"""Cross-site: WebSocket hijacking (CSWSH) and unsafe requests from foreign origins are refused
before anything reaches Qlik; the app's own origin and configured origins work."""

from __future__ import annotations

import pytest

from qlik_sso_middleware.testing import DEMO_APPS

from .conftest import OFFLOAD_TARGETS
from .helpers import Stack, raw_http, raw_websocket

pytestmark = pytest.mark.asyncio(loop_scope="module")
TARGETS = OFFLOAD_TARGETS

ENGINE = f"/sso/app/{DEMO_APPS[0].id}"
ECHO = "/sso/content/_sim/echo"


def foreign_origins(stack: Stack) -> list[str | None]:
    host = stack.host
    port = stack.port
    return [
        "https://evil.example",
        "null",
        "file://",
        f"http://{host}.evil.example",
        f"http://evil.example@{host}",
        f"http://127.0.0.1:{port + 1}",
        f"http://localhost:{port}",
        "https://portal.example.evil.example",
        "https://portal.example:444",
        "https://evil.example, https://portal.example",
        f"chrome-extension://{host}",
        f"//{host}",
        host,
        None,  # no Origin at all (allow_missing_origin is off)
    ]


@pytest.mark.parametrize("index", range(14))
async def test_websocket_from_a_foreign_origin_is_refused(stack: Stack, index: int) -> None:
    origin = foreign_origins(stack)[index]
    upgrade = await raw_websocket(stack, ENGINE, origin=origin)
    assert upgrade.status == 403
    assert stack.sim.requests == []


async def test_websocket_with_an_empty_origin_is_refused(stack: Stack) -> None:
    upgrade = await raw_websocket(stack, ENGINE, origin=None, raw_header_block=b"Origin: \r\n")
    assert upgrade.status == 403
    assert stack.sim.requests == []


async def test_websocket_with_two_origins_is_refused(stack: Stack) -> None:
    upgrade = await raw_websocket(
        stack, ENGINE, [("Origin", "https://evil.example")], origin=stack.url
    )
    assert upgrade.status in (400, 403)  # the WebSocket server itself may refuse it first
    assert stack.sim.requests == []


async def test_websocket_with_a_foreign_origin_and_no_user_is_refused(stack: Stack) -> None:
    upgrade = await raw_websocket(stack, ENGINE, origin="https://evil.example", user=None)
    assert upgrade.status == 403
    assert stack.sim.requests == []


@pytest.mark.parametrize(
    "origin", ["", "upper", "https://portal.example", "HTTPS://Portal.Example"]
)
async def test_websocket_from_the_app_or_an_allowed_origin_works(stack: Stack, origin: str) -> None:
    if origin == "upper":
        origin = stack.url.upper()
    upgrade = await raw_websocket(stack, ENGINE, origin=origin)
    assert upgrade.status == 101
    assert upgrade.first_text is not None and "OnAuthenticationInformation" in upgrade.first_text
    assert [r.user for r in stack.proxied() if r.websocket] == ["ACME\\alice"]


UNSAFE = ["POST", "PUT", "PATCH", "DELETE", "post", "Delete"]


@pytest.mark.parametrize("method", UNSAFE)
@pytest.mark.parametrize(
    "headers",
    [
        [("Origin", "https://evil.example")],
        [("Origin", "null")],
        [("Origin", "https://portal.example.evil.example")],
        [("Sec-Fetch-Site", "cross-site")],
        [("Sec-Fetch-Site", "same-site")],
        [("Origin", "https://portal.example"), ("Origin", "https://evil.example")],
    ],
    ids=["evil", "null", "suffix", "fetch-cross-site", "fetch-same-site", "two-origins"],
)
async def test_unsafe_cross_site_request_is_refused(
    stack: Stack, method: str, headers: list[tuple[str, str]]
) -> None:
    response = await raw_http(stack, method, ECHO, headers, body=b"x=1")
    # uvicorn's parser refuses lower-case methods (400) before the app: also safe.
    assert response.status in ((403,) if method.isupper() else (400, 403))
    assert [r for r in stack.proxied() if r.path == ECHO] == []


async def test_cross_site_logout_of_qlik_is_refused(stack: Stack) -> None:
    await raw_http(stack, "GET", "/sso/qps/user")
    stack.sim.clear_log()
    response = await raw_http(
        stack, "DELETE", "/sso/qps/user", [("Origin", "https://evil.example")]
    )
    assert response.status == 403
    assert stack.sim.requests == []
    assert stack.sim.live_sessions("ACME\\alice")


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize(
    "headers",
    [
        [("Origin", "")],
        [("Origin", "https://portal.example")],
        [("Sec-Fetch-Site", "same-origin"), ("Origin", "")],
        [],  # a non-browser client: no Origin, no Sec-Fetch-Site
    ],
    ids=["same-origin", "allowed", "fetch-same-origin", "no-browser-headers"],
)
async def test_unsafe_same_site_request_is_forwarded(
    stack: Stack, method: str, headers: list[tuple[str, str]]
) -> None:
    headers = [(k, stack.url if k == "Origin" and v == "" else v) for k, v in headers]
    response = await raw_http(stack, method, ECHO, headers, body=b"x=1")
    assert response.status == 200
    assert [r.method for r in stack.proxied() if r.path == ECHO] == [method]


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
async def test_safe_methods_from_anywhere_are_forwarded(stack: Stack, method: str) -> None:
    response = await raw_http(stack, method, ECHO, [("Origin", "https://evil.example")])
    assert response.status == 200
