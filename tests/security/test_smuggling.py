"""Request smuggling: framing tricks in what the browser sends can never make a second request
reach Qlik (least of all an admin surface) or desynchronise the upstream connection."""

from __future__ import annotations

import pytest

from .helpers import Stack, raw_exchange

pytestmark = pytest.mark.asyncio(loop_scope="module")

SMUGGLED = (
    b"GET /sso/qrs/about HTTP/1.1\r\nHost: x\r\nhdr-usr: ACME\\mallory\r\nConnection: close\r\n\r\n"
)
CHUNKED_SMUGGLE = b"0\r\n\r\n" + SMUGGLED

FRAMINGS = {
    "cl-and-te": ([b"Content-Length: 5", b"Transfer-Encoding: chunked"], CHUNKED_SMUGGLE),
    "te-and-cl": ([b"Transfer-Encoding: chunked", b"Content-Length: 5"], CHUNKED_SMUGGLE),
    "two-cl": ([b"Content-Length: 0", b"Content-Length: 75"], SMUGGLED),
    "cl-list": ([b"Content-Length: 0, 75"], SMUGGLED),
    "cl-plus": ([b"Content-Length: +75"], SMUGGLED),
    "cl-negative": ([b"Content-Length: -1"], SMUGGLED),
    "te-xchunked": ([b"Transfer-Encoding: xchunked"], CHUNKED_SMUGGLE),
    "te-chunked-identity": ([b"Transfer-Encoding: chunked, identity"], CHUNKED_SMUGGLE),
    "te-space": ([b"Transfer-Encoding : chunked"], CHUNKED_SMUGGLE),
    "te-tab": ([b"Transfer-Encoding:\tchunked"], CHUNKED_SMUGGLE),
    "te-underscore": ([b"Transfer_Encoding: chunked", b"Content-Length: 5"], CHUNKED_SMUGGLE),
    "te-obs-fold": ([b"X-A: 1", b" Transfer-Encoding: chunked"], CHUNKED_SMUGGLE),
    "chunk-ext": ([b"Transfer-Encoding: chunked"], b'5;x="a\r\n"\r\nhello\r\n' + CHUNKED_SMUGGLE),
    "bare-lf-chunk": ([b"Transfer-Encoding: chunked"], b"5\nhello\n" + CHUNKED_SMUGGLE),
    "pipelined": ([b"Content-Length: 0", b"Connection: keep-alive"], SMUGGLED),
    "two-cl-same": ([b"Content-Length: 5", b"Content-Length: 5", b"Connection: close"], b"hello"),
    "h2c-upgrade": (
        [
            b"Upgrade: h2c",
            b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
            b"Connection: Upgrade, HTTP2-Settings, close",
            b"Content-Length: 0",
        ],
        b"",
    ),
}


@pytest.mark.parametrize("framing", list(FRAMINGS))
@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_framing_tricks_never_smuggle_a_request_to_qlik(
    stack: Stack, framing: str, method: str
) -> None:
    headers, body = FRAMINGS[framing]
    head = [
        f"{method} /sso/content/_sim/echo HTTP/1.1".encode(),
        f"Host: {stack.host}".encode(),
        b"Cookie: app_user=alice",
        f"Origin: {stack.url}".encode(),
        *headers,
    ]
    response = await raw_exchange(stack.port, b"\r\n".join(head) + b"\r\n\r\n" + body)
    assert response.status is None or response.status != 500
    paths = [r.path for r in stack.proxied()]
    assert all("qrs" not in p.lower() for p in paths), paths
    assert paths.count("/sso/content/_sim/echo") <= 1
    for record in stack.proxied():
        assert record.header("hdr-usr") == ["ACME\\alice"]
    # A second request on the connection is a request of its own, checked like any other.
    if framing == "pipelined":
        assert b"HTTP/1.1 403 " in response.body


async def test_h2c_upgrade_headers_never_reach_qlik(stack: Stack) -> None:
    """h2c smuggling: an `Upgrade: h2c` that reached Qlik could tunnel requests past our checks."""
    head = [
        b"GET /sso/content/_sim/echo HTTP/1.1",
        f"Host: {stack.host}".encode(),
        b"Cookie: app_user=alice",
        b"Upgrade: h2c",
        b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
        b"Connection: Upgrade, HTTP2-Settings, close",
    ]
    response = await raw_exchange(stack.port, b"\r\n".join(head) + b"\r\n\r\n")
    assert response.status == 200
    for record in stack.proxied():
        assert record.header("upgrade") == [] and record.header("http2-settings") == []
