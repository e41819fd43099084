"""`AiohttpEngine` (over an `AiohttpTransport`'s pool) against a raw loopback HTTP server that records
the exact bytes it receives.

The server is a plain asyncio socket server, so the tests see what goes on the wire: the URL and
headers byte for byte, no cookie jar, no automatic headers, how bodies are framed, and which
connections are reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2 as httpx
import pytest

from qlik_sso_middleware.errors import QlikTimeout, QlikUnavailable
from qlik_sso_middleware.proxy.aiohttp_transport import AiohttpEngine, AiohttpTransport
from qlik_sso_middleware.proxy.engine import Timeouts

from .raw_server import RawServer, ok, server_tls_files


def _engine(transport: AiohttpTransport, read: float = 300.0) -> AiohttpEngine:
    return AiohttpEngine(transport, Timeouts(read=read))


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    t = AiohttpTransport(max_connections=4)
    yield t
    await t.aclose()


async def test_url_and_headers_go_out_byte_for_byte(transport: AiohttpTransport) -> None:
    async with RawServer(ok()) as server:
        url = f"http://127.0.0.1:{server.port}/sso/a%7Eb/c%41?x=%2F&y=a+b"
        response = await _engine(transport).stream(
            "GET",
            url,
            [(b"host", b"app.example.com"), (b"x-custom", b"Value With Case")],
            None,
        )
        assert await response.read() == b"hello"
        await response.aclose()
    head = server.heads[0]
    assert head.startswith(b"GET /sso/a%7Eb/c%41?x=%2F&y=a+b HTTP/1.1\r\n")
    lines = head.lower().split(b"\r\n")
    assert b"host: app.example.com" in lines
    assert b"x-custom: value with case" in lines
    # Nothing the caller did not ask for: no User-Agent, Accept, Accept-Encoding or Cookie.
    for name in (b"user-agent:", b"accept:", b"accept-encoding:", b"cookie:"):
        assert not any(line.startswith(name) for line in lines), name


async def test_cookies_set_by_the_upstream_are_never_sent_back(
    transport: AiohttpTransport,
) -> None:
    reply = ok(extra=b"set-cookie: X-Qlik-Session=alice-secret; Path=/\r\n")
    async with RawServer(reply) as server:
        for _ in range(2):
            response = await _engine(transport).stream(
                "GET",
                f"http://127.0.0.1:{server.port}/",
                [],
                None,
            )
            assert response.header_values(b"set-cookie") == [b"X-Qlik-Session=alice-secret; Path=/"]
            await response.read()
            await response.aclose()
    assert all(b"alice-secret" not in head for head in server.heads)


async def test_streamed_body_keeps_a_given_content_length(transport: AiohttpTransport) -> None:
    async def body() -> AsyncIterator[bytes]:
        for part in (b"abc", b"defg"):
            yield part

    async with RawServer(ok()) as server:
        response = await _engine(transport).stream(
            "POST",
            f"http://127.0.0.1:{server.port}/up",
            [(b"content-length", b"7")],
            body(),
        )
        await response.read()
        await response.aclose()
    assert server.bodies == [b"abcdefg"]
    assert b"transfer-encoding" not in server.heads[0].lower()


async def test_streamed_body_without_length_is_chunked(transport: AiohttpTransport) -> None:
    async def body() -> AsyncIterator[bytes]:
        for part in (b"abc", b"defg"):
            yield part

    async with RawServer(ok()) as server:
        response = await _engine(transport).stream(
            "POST",
            f"http://127.0.0.1:{server.port}/up",
            [],
            body(),
        )
        await response.read()
        await response.aclose()
    assert server.bodies == [b"abcdefg"]
    assert b"transfer-encoding: chunked" in server.heads[0].lower()


async def test_chunked_response_is_relayed_whole(transport: AiohttpTransport) -> None:
    def reply(head: bytes) -> bytes:
        return (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
        )

    async with RawServer(reply) as server:
        response = await _engine(transport).stream(
            "GET",
            f"http://127.0.0.1:{server.port}/",
            [],
            None,
        )
        assert b"".join([c async for c in response.chunks()]) == b"abcdefg"
        await response.aclose()


async def test_a_half_read_response_does_not_return_its_connection(
    transport: AiohttpTransport,
) -> None:
    big = b"x" * 1_000_000
    async with RawServer(ok(big)) as server:
        url = f"http://127.0.0.1:{server.port}/"
        response = await _engine(transport).stream("GET", url, [], None)
        async for _ in response.chunks():
            break
        await response.aclose()
        for _ in range(2):  # fully read: the connection is reused
            response = await _engine(transport).stream("GET", url, [], None)
            assert await response.read() == big
            await response.aclose()
    assert server.connections == 2


async def test_httpx_client_api_works_through_it() -> None:
    async with RawServer(ok(b'{"a": 1}')) as server:
        transport = AiohttpTransport()
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.post(
                f"http://127.0.0.1:{server.port}/x?q=%2F", content=b"body", headers={"h": "v"}
            )
        assert response.status_code == 200
        assert response.json() == {"a": 1}
    assert server.heads[0].startswith(b"POST /x?q=%2F HTTP/1.1\r\n")
    assert server.bodies == [b"body"]


async def test_bodiless_answers_end_every_time(transport: AiohttpTransport) -> None:
    """204s one after another (Qlik's `qps/csrftoken`): each body ends, none spins for ever."""

    def no_content(head: bytes) -> bytes:
        return b"HTTP/1.1 204 No Content\r\nqlik-csrf-token: t\r\n\r\n"

    async with RawServer(no_content) as server:
        for _ in range(3):
            response = await _engine(transport).stream(
                "GET", f"http://127.0.0.1:{server.port}/", [], None
            )
            assert response.status_code == 204
            assert [chunk async for chunk in response.chunks()] == []
            await response.aclose()
        async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
            for _ in range(3):
                answer = await client.get(f"http://127.0.0.1:{server.port}/")
                assert answer.headers["qlik-csrf-token"] == "t"


async def test_refused_connection_is_qlik_unavailable(transport: AiohttpTransport) -> None:
    async with RawServer(ok()) as server:
        port = server.port
    with pytest.raises(QlikUnavailable) as info:
        await _engine(transport).stream("GET", f"http://127.0.0.1:{port}/?token=secret", [], None)
    # Translated once, at the engine: the origin and aiohttp's error class, never the query.
    assert isinstance(info.value.__cause__, OSError)
    assert f"127.0.0.1:{port}" in info.value.message
    assert "secret" not in info.value.message


async def test_silent_upstream_is_a_qlik_timeout(transport: AiohttpTransport) -> None:
    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(release.wait(), 30)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(QlikTimeout):
            await _engine(transport, read=0.2).stream(
                "GET",
                f"http://127.0.0.1:{port}/",
                [],
                None,
            )
    finally:
        release.set()
        server.close()


async def test_closed_transport_refuses_requests() -> None:
    transport = AiohttpTransport()
    await transport.aclose()
    with pytest.raises(RuntimeError):
        await _engine(transport).stream("GET", "http://127.0.0.1:9/", [], None)


async def test_tls_verifies_against_the_given_ca_and_sends_the_browser_host(
    tmp_path: Path,
) -> None:
    server_tls, root = server_tls_files(tmp_path)
    transport = AiohttpTransport(ssl_context=ssl.create_default_context(cafile=str(root)))
    try:
        async with RawServer(ok(), tls=server_tls) as server:
            response = await _engine(transport).stream(
                "GET",
                f"https://127.0.0.1:{server.port}/sso/x",
                [(b"host", b"app.example.com")],
                None,
            )
            assert await response.read() == b"hello"
            await response.aclose()
    finally:
        await transport.aclose()
    assert b"host: app.example.com" in server.heads[0].lower()


@pytest.mark.parametrize("trust", ["system CAs only", "another site's CA"])
async def test_tls_refuses_a_server_the_context_does_not_trust(tmp_path: Path, trust: str) -> None:
    server_tls, root = server_tls_files(tmp_path / "site", other_root=trust == "another site's CA")
    client_ctx = (
        ssl.create_default_context()
        if trust == "system CAs only"
        else ssl.create_default_context(cafile=str(root))
    )
    transport = AiohttpTransport(ssl_context=client_ctx)
    try:
        async with RawServer(ok(), tls=server_tls) as server:
            with pytest.raises(QlikUnavailable):
                await _engine(transport).stream(
                    "GET",
                    f"https://127.0.0.1:{server.port}/",
                    [],
                    None,
                )
    finally:
        await transport.aclose()
    assert server.heads == []
