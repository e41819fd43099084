"""Paths: traversal, encodings, admin surfaces, absolute-form targets and hostile `Host` headers.

Each request is written byte for byte. Whatever layer refuses it, the outcome must be safe: either
refused, or forwarded to the simulator under the `sso` prefix and never to an admin surface.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote

import pytest

from qlik_sso_middleware.testing import DEMO_APPS, RecordedRequest

from .conftest import OFFLOAD_TARGETS
from .helpers import Stack, raw_http, raw_websocket

pytestmark = pytest.mark.asyncio(loop_scope="module")
TARGETS = OFFLOAD_TARGETS

BLOCKED = ("qrs", "qmc", "dev-hub")
# The middleware's own calls (login, CSRF token) are not the browser's request.
OWN_CALLS = ("/sso/qps/user", "/sso/qps/csrftoken")


def browser_requests(stack: Stack) -> list[RecordedRequest]:
    return [r for r in stack.proxied() if r.path not in OWN_CALLS]


def canonical(path: str) -> str:
    """What the most lenient server could make of a path: decoded, NFKC, case-folded."""
    text = unicodedata.normalize("NFKC", unquote(unquote(path))).casefold()
    return "/".join(s.rstrip(". ") for s in text.replace("\\", "/").split("/"))


def assert_confined(stack: Stack) -> None:
    """Everything Qlik received stayed under /sso/ and off the admin surfaces."""
    for record in stack.proxied():
        seen = canonical(record.path)
        assert seen.startswith("/sso/"), record.path
        segments = seen.split("/")
        assert ".." not in segments and "." not in segments, record.path
        assert segments[2] not in BLOCKED, f"admin surface reached: {record.path}"


HOSTILE = [
    # traversal, raw and encoded
    "/sso/../qrs/about",
    "/sso/hub/../../qrs/about",
    "/sso/./qrs/about",
    "/sso/%2e%2e/qrs/about",
    "/sso/%2E%2E/qrs/about",
    "/sso/.%2e/qrs/about",
    "/sso/hub/%2e/",
    "/sso/hub%2f..%2fqrs/about",
    "/sso/hub%2F..%2Fqrs/about",
    "/sso/hub%5c..%5cqrs/about",
    "/sso/%252e%252e/qrs/about",
    "/sso/%25%32%65%25%32%65/qrs",
    "/sso/hub/%c0%ae%c0%ae/qrs/about",
    "/sso/%ef%bc%8e%ef%bc%8e/qrs/about",
    "/sso/hub%ef%bc%8f..%ef%bc%8fqrs/about",
    "/sso/hub\\..\\qrs\\about",
    "/sso//qrs/about",
    "/sso/hub//../qrs",
    "/sso/hub;jsessionid=1/../qrs",
    "/sso/hub/..;/qrs/about",
    "/sso/hub%3b/",
    "/sso/hub/%00",
    "/sso/hub/%0d%0aX-Injected:1",
    "/sso/hub/%zz",
    "/sso/hub/%2",
    # admin surfaces, in every spelling
    "/sso/qrs/about",
    "/sso/QRS/about",
    "/sso/QrS/about",
    "/sso/qrs",
    "/sso/qrs?xrfkey=0123456789abcdef",
    "/sso/qmc/",
    "/sso/QMC",
    "/sso/Qmc/apps",
    "/sso/dev-hub/",
    "/sso/DEV-HUB/",
    "/sso/%71rs/about",
    "/sso/q%72s/about",
    "/sso/Q%52S/about",
    "/sso/%51%4d%43/",
    "/sso/%64ev-hub/",
    "/sso/qrs./about",
    "/sso/qrs%20/about",
    "/sso/qrs../about",
    "/sso/%ef%bd%91rs/about",
    "/sso/%EF%BD%91%EF%BD%92%EF%BD%93/about",
    # outside the prefix
    "/sso",
    "/ss%6f/qrs/about",
    "/%73so/qrs/about",
]


@pytest.mark.parametrize("path", HOSTILE)
async def test_hostile_path_is_refused_or_confined(stack: Stack, path: str) -> None:
    response = await raw_http(stack, "GET", path)
    assert response.status is None or response.status < 500, response.head
    assert browser_requests(stack) == [] or response.status in (200, 404), response.head
    assert_confined(stack)


@pytest.mark.parametrize(
    "path",
    [
        "/sso/%71rs/about",
        "/sso/qrs./about",
        "/sso/%ef%bd%91rs/about",
        "/sso/%ef%bc%8e%ef%bc%8e/qrs/about",
        "/sso/hub/%0d%0aX-Injected:1",
    ],
)
async def test_encoded_admin_and_control_paths_are_refused_before_qlik(
    stack: Stack, path: str
) -> None:
    response = await raw_http(stack, "GET", path)
    assert response.status in (400, 403)
    assert browser_requests(stack) == []


@pytest.mark.parametrize(
    "target",
    [
        "http://evil.example/sso/qrs/about",
        "http://evil.example/sso/content/_sim/echo",
        "https://127.0.0.1/sso/%71rs/about",
        "//evil.example/sso/qrs/about",
        "*",
    ],
)
async def test_absolute_form_targets_are_refused_or_confined(stack: Stack, target: str) -> None:
    response = await raw_http(stack, "GET", target)
    assert response.status is None or response.status < 500
    assert_confined(stack)
    # Never forwarded anywhere but the configured Qlik: the simulator is the only upstream.
    # Caddy follows RFC 9112 §3.2.2 (a proxy takes an absolute-form target's host over Host), so
    # behind it Qlik may see that host: confined all the same (see the foreign Host test below).
    target_host = target.split("/")[2] if target.startswith("http") else None
    hosts = [[stack.host], [target_host]] if stack.front == "caddy" else [[stack.host]]
    for record in browser_requests(stack):
        assert record.header("host") in hosts


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8443",
        "EVIL.example",
    ],
)
async def test_foreign_host_is_confined_to_the_configured_qlik(stack: Stack, host: str) -> None:
    response = await raw_http(stack, "GET", "/sso/content/_sim/echo", host=host)
    # Forwarded to the configured Qlik (the simulator), under the prefix; Qlik sees the Host.
    assert response.status == 200
    echoed = response.json()
    assert isinstance(echoed, dict)
    assert echoed["user"] == "ACME\\alice"
    assert echoed["path"] == "/sso/content/_sim/echo"
    assert_confined(stack)


def injected_hosts(stack: Stack) -> list[str]:
    """Host values that would rewrite a URL built as scheme://<host><path>."""
    return [
        f"{stack.host}/sso/qrs/about?",
        f"{stack.host}/sso/qrs/about#",
        f"{stack.host}?",
        f"evil@{stack.host}",
        f"{stack.host}\\qrs",
        f"{stack.host} x",
        "",  # empty
    ]


def host_line(stack: Stack, index: int) -> bytes:
    return b"Host: " + injected_hosts(stack)[index].encode("latin-1") + b"\r\n"


@pytest.mark.parametrize("index", range(7))
async def test_host_that_would_rewrite_the_upstream_url_is_refused_on_http(
    stack: Stack, index: int
) -> None:
    response = await raw_http(
        stack, "GET", "/sso/content/_sim/echo", host=None, raw_header_block=host_line(stack, index)
    )
    assert response.status == 400
    assert browser_requests(stack) == []


@pytest.mark.parametrize("index", range(7))
async def test_host_that_would_rewrite_the_upstream_url_is_refused_on_websocket(
    stack: Stack, index: int
) -> None:
    """A Host like `me/sso/qrs/about?` once turned the engine socket into a QRS request."""
    # `allowed_origins` holds the portal, so the Origin check passes without the Host.
    upgrade = await raw_websocket(
        stack,
        f"/sso/app/{DEMO_APPS[0].id}",
        origin="https://portal.example",
        host=None,
        raw_header_block=host_line(stack, index),
    )
    assert upgrade.status in (400, 403)
    assert [r for r in stack.proxied() if r.websocket] == []
    assert_confined(stack)


@pytest.mark.parametrize(
    "path",
    [
        "/sso/app/..%2f..%2fqrs/about",
        "/sso/app/../../qrs/about",
        "/sso/%71rs/about",
        "/sso/qrs/about",
        "/sso//app/x",
        f"/sso/app/{DEMO_APPS[0].id}#fragment",
        f"/sso/app/{DEMO_APPS[0].id}?a#b",
        f"/sso/app/{DEMO_APPS[0].id}?qlikTicket=x#",
    ],
)
async def test_websocket_path_tricks_are_refused(stack: Stack, path: str) -> None:
    upgrade = await raw_websocket(stack, path)
    if stack.front == "caddy" and path.endswith("#fragment"):
        # Caddy (Go) turns a raw '#' into `%23` before anyone sees the request, as a browser
        # never sends one: Qlik may get that literal character (the in-process path accepts `%23`
        # too), never a fragment that could cut the URL we send.
        assert all("#" not in r.path and "#" not in r.query for r in stack.proxied())
        return
    assert upgrade.status in (400, 403, None)
    assert [r for r in stack.proxied() if r.websocket] == []


async def test_query_ticket_from_the_browser_never_reaches_qlik(stack: Stack) -> None:
    for name in ("qlikTicket", "QLIKTICKET", "qlik%54icket", "qlikticket"):
        response = await raw_http(stack, "GET", f"/sso/content/_sim/echo?{name}=stolen&a=1")
        assert response.status == 200
    for record in stack.proxied():
        assert "stolen" not in record.query
