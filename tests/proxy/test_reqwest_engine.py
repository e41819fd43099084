"""`ReqwestEngine` (the default proxy engine) against a raw loopback server that records the wire bytes.

The same wire contract as `AiohttpEngine.stream` (test_aiohttp_transport.py), plus what differs
with pyreqwest: `str` headers (request values that are not UTF-8 and response values that are not
ASCII are dropped, never a crash), and
reqwest's `Accept`/`User-Agent` defaults when the browser sent none.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from qlik_sso_middleware import QlikTarget, Timeouts
from qlik_sso_middleware.errors import ConfigurationError, QlikTimeout, QlikUnavailable
from qlik_sso_middleware.proxy.aiohttp_transport import AiohttpEngine
from qlik_sso_middleware.proxy.reqwest_engine import ReqwestEngine, ReqwestResponse
from qlik_sso_middleware.upstream import Upstream

from ..waiting import eventually
from .raw_server import RawServer, ok, server_tls_files

pytestmark = pytest.mark.fast


@pytest.fixture
async def engine() -> AsyncIterator[ReqwestEngine]:
    e = ReqwestEngine(timeouts=Timeouts(), max_connections=4)
    yield e
    await e.aclose()


async def test_url_and_headers_go_out_as_checked(engine: ReqwestEngine) -> None:
    async with RawServer(ok()) as server:
        url = f"http://127.0.0.1:{server.port}/sso/a%7Eb/c%41?x=%2F&y=a+b"
        response = await engine.stream(
            "GET",
            url,
            [
                (b"host", b"app.example.com"),
                (b"x-custom", b"Value With Case"),
                (b"user-agent", b"Browser/1.0"),
                (b"accept", b"text/html"),
            ],
            None,
        )
        assert response.status_code == 200
        assert await response.read() == b"hello"
        await response.aclose()
    head = server.heads[0]
    assert head.startswith(b"GET /sso/a%7Eb/c%41?x=%2F&y=a+b HTTP/1.1\r\n")
    lines = head.lower().split(b"\r\n")
    assert b"host: app.example.com" in lines
    assert b"x-custom: value with case" in lines
    # The browser's own User-Agent and Accept, once each; nothing else added, no decompression.
    assert [ln for ln in lines if ln.startswith(b"user-agent:")] == [b"user-agent: browser/1.0"]
    assert [ln for ln in lines if ln.startswith(b"accept:")] == [b"accept: text/html"]
    for name in (b"accept-encoding:", b"cookie:"):
        assert not any(line.startswith(name) for line in lines), name


async def test_request_header_values_that_are_not_utf8_are_dropped(engine: ReqwestEngine) -> None:
    async with RawServer(ok()) as server:
        response = await engine.stream(
            "GET",
            f"http://127.0.0.1:{server.port}/",
            [(b"x-latin1", b"caf\xe9"), (b"x-utf8", "café".encode()), (b"x-ok", b"yes")],
            None,
        )
        await response.read()
        await response.aclose()
    head = server.heads[0].lower()
    assert b"x-latin1" not in head
    assert "x-utf8: café".encode() in head
    assert b"x-ok: yes" in head


async def test_response_headers_arrive_as_bytes_and_non_ascii_values_are_dropped(
    engine: ReqwestEngine, caplog: pytest.LogCaptureFixture
) -> None:
    extra = (
        b"set-cookie: a=1; Path=/\r\nset-cookie: b=2\r\n"
        b'content-disposition: attachment; filename="caf\xe9.xlsx"\r\n'
        + "x-name: café\r\n".encode()
    )
    async with RawServer(ok(extra=extra)) as server:
        response = await engine.stream("GET", f"http://127.0.0.1:{server.port}/", [], None)
        assert await response.read() == b"hello"
        await response.aclose()
    assert response.header_values(b"set-cookie") == [b"a=1; Path=/", b"b=2"]
    # obs-text (Latin-1 or UTF-8 bytes) cannot cross pyreqwest's `str` headers: dropped, warned.
    assert response.header(b"x-name") is None
    assert response.header(b"content-disposition") is None
    assert response.header(b"content-length") == b"5"
    assert "content-disposition" in caplog.text


async def test_cookies_set_by_the_upstream_are_never_sent_back(engine: ReqwestEngine) -> None:
    reply = ok(extra=b"set-cookie: X-Qlik-Session=alice-secret; Path=/\r\n")
    async with RawServer(reply) as server:
        for _ in range(2):
            response = await engine.stream("GET", f"http://127.0.0.1:{server.port}/", [], None)
            await response.read()
            await response.aclose()
    assert len(server.heads) == 2
    assert all(b"alice-secret" not in head for head in server.heads)


async def _parts() -> AsyncIterator[bytes]:
    for part in (b"abc", b"defg"):
        yield part


async def test_streamed_body_keeps_a_given_content_length(engine: ReqwestEngine) -> None:
    async with RawServer(ok()) as server:
        response = await engine.stream(
            "POST", f"http://127.0.0.1:{server.port}/up", [(b"content-length", b"7")], _parts()
        )
        await response.read()
        await response.aclose()
    assert server.bodies == [b"abcdefg"]
    assert b"transfer-encoding" not in server.heads[0].lower()


@pytest.mark.parametrize("method", ["POST", "PUT", "GET", "DELETE", "OPTIONS"])
async def test_streamed_body_without_length_is_chunked(engine: ReqwestEngine, method: str) -> None:
    # hyper sends no body at all for a GET of unknown length unless told it is chunked.
    async with RawServer(ok()) as server:
        response = await engine.stream(method, f"http://127.0.0.1:{server.port}/up", [], _parts())
        await response.read()
        await response.aclose()
    assert server.bodies == [b"abcdefg"]
    assert server.heads[0].lower().count(b"transfer-encoding: chunked") == 1


class _Gone(Exception):
    pass


async def test_an_error_raised_by_the_body_propagates_unchanged(engine: ReqwestEngine) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"abc"
        raise _Gone

    async with RawServer(ok()) as server:
        with pytest.raises(_Gone):
            await engine.stream(
                "POST",
                f"http://127.0.0.1:{server.port}/up",
                [(b"content-length", b"10")],
                broken(),
            )


async def test_chunked_response_is_relayed_whole(engine: ReqwestEngine) -> None:
    def reply(head: bytes) -> bytes:
        return (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
        )

    async with RawServer(reply) as server:
        response = await engine.stream("GET", f"http://127.0.0.1:{server.port}/", [], None)
        chunks = [c async for c in response.chunks()]
        await response.aclose()
    assert all(type(c) is bytes for c in chunks)  # ASGI servers want bytes, not pyreqwest's type
    assert b"".join(chunks) == b"abcdefg"


async def test_a_half_read_response_does_not_return_its_connection(engine: ReqwestEngine) -> None:
    # reqwest reads ahead of the caller, so a body it finished reading (a 1 MB one over loopback)
    # legitimately returns its connection; 20 MB cannot have been read ahead in full.
    big = b"x" * 20_000_000
    async with RawServer(ok(big)) as server:
        url = f"http://127.0.0.1:{server.port}/"
        response = await engine.stream("GET", url, [], None)
        async for _ in response.chunks():
            break
        await response.aclose()
        for _ in range(2):  # fully read: the connection is reused
            response = await engine.stream("GET", url, [], None)
            assert await response.read() == big
            await response.aclose()
    assert server.connections == 2


class HeldStream:
    """An upstream that sends a head and a first chunk, then holds the rest until `release`."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            await writer.drain()
            await self.release.wait()
            writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
            await writer.drain()
        writer.close()

    async def __aenter__(self) -> HeldStream:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)


async def test_the_head_and_first_bytes_of_a_slow_answer_are_not_held_back(
    engine: ReqwestEngine,
) -> None:
    """pyreqwest reads up to 64 KiB of body before handing over a streamed response unless told
    not to: a server-sent event stream would reach the browser only when it ends."""
    async with HeldStream() as upstream:
        url = f"http://127.0.0.1:{upstream.port}/"
        # The upstream holds the rest until released: a held-back head would wait the 30 s out.
        response = await asyncio.wait_for(engine.stream("GET", url, [], None), 30)
        chunks = response.chunks()
        assert await asyncio.wait_for(chunks.__anext__(), 30) == b"first"
        upstream.release.set()
        assert [c async for c in chunks] == [b"second"]
        await response.aclose()


async def _consume(response: ReqwestResponse, seen: list[bytes], raw: bool) -> None:
    if raw:  # pyreqwest's own reader, as the engine used it before
        reader = response._response.body_reader
        while (chunk := await reader.read_chunk()) is not None:
            seen.append(bytes(chunk))
    else:
        async for chunk in response.chunks():
            seen.append(chunk)


async def _cancel_as_the_next_chunk_lands(engine: ReqwestEngine, raw: bool) -> tuple[bool, bool]:
    """One trial: cancel the reading task after its read's waiter is done (the next chunk has
    arrived) but before the task resumes. Returns (that window was hit, the cancel was lost)."""
    async with HeldStream() as upstream:
        url = f"http://127.0.0.1:{upstream.port}/"
        response = await asyncio.wait_for(engine.stream("GET", url, [], None), 30)
        seen: list[bytes] = []
        task = asyncio.create_task(_consume(response, seen, raw))
        await eventually(lambda: bool(seen), "the first chunk")
        upstream.release.set()
        hit = False
        for _ in range(100_000):
            waiter = task._fut_waiter  # type: ignore[attr-defined]
            if waiter is not None and waiter.done():
                hit = task.cancel()
                break
            if task.done() or len(seen) > 1:
                break
            await asyncio.sleep(0)
        done, _ = await asyncio.wait({task}, timeout=10)
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=10)
        await response.aclose()
    return hit, hit and not (done and task.cancelled())


async def test_a_cancelled_read_is_never_completed_instead(engine: ReqwestEngine) -> None:
    """The browser left: the proxy cancels the task streaming Qlik's answer. A cancellation that
    lands just as the next chunk arrives is dropped by pyreqwest's own read, which returns the
    chunk (the positive control: this test does hit that window); the engine's read raises it."""
    raw = [await _cancel_as_the_next_chunk_lands(engine, raw=True) for _ in range(20)]
    ours = [await _cancel_as_the_next_chunk_lands(engine, raw=False) for _ in range(20)]
    assert any(lost for _, lost in raw), "the window was never hit: this test proves nothing"
    assert sum(hit for hit, _ in ours) >= 10
    assert not any(lost for _, lost in ours)


async def test_refused_connection_is_qlik_unavailable(engine: ReqwestEngine) -> None:
    async with RawServer(ok()) as server:
        port = server.port
    with pytest.raises(QlikUnavailable) as info:
        await engine.stream("GET", f"http://127.0.0.1:{port}/?token=secret", [], None)
    # Translated once, at the engine: the origin and pyreqwest's error class, never the query.
    assert type(info.value.__cause__).__name__ == "ConnectError"
    assert f"127.0.0.1:{port}" in info.value.message
    assert "secret" not in info.value.message


async def test_silent_upstream_is_a_qlik_timeout() -> None:
    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(release.wait(), 30)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    engine = ReqwestEngine(timeouts=Timeouts(read=0.2))
    try:
        # reqwest reports a stalled first answer as a connect-phase timeout: either way a 504.
        with pytest.raises(QlikTimeout):
            await engine.stream("GET", f"http://127.0.0.1:{port}/", [], None)
    finally:
        release.set()
        server.close()
        await engine.aclose()


# -- read timeouts count Qlik's silence, nothing else -------------------------------------------------


async def _answer_after_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, size: int, stall: bool
) -> None:
    """Read the request (its whole body), answer `size` bytes; with `stall`, fall silent after
    the first 64 KiB (until the client leaves)."""
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        head = await reader.readuntil(b"\r\n\r\n")
        if b"content-length:" in head.lower():
            await reader.readexactly(int(head.lower().split(b"content-length:")[1].split()[0]))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        writer.write(b"x" * (65536 if stall else size))
        await writer.drain()
        if stall:
            await reader.read()  # silent until the client hangs up
    writer.close()


@contextlib.asynccontextmanager
async def _upstream(size: int, *, stall: bool = False) -> AsyncIterator[str]:
    server = await asyncio.start_server(
        lambda r, w: _answer_after_body(r, w, size, stall), "127.0.0.1", 0
    )
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    finally:
        server.close()


async def _drain(response: ReqwestResponse) -> None:
    async for _ in response.chunks():
        pass


async def test_qlik_falling_silent_mid_body_is_a_qlik_timeout() -> None:
    """The positive control of the two tests below: one second of Qlik's silence does time out."""
    engine = ReqwestEngine(timeouts=Timeouts(read=1.0))
    async with _upstream(10 << 20, stall=True) as url:
        response = await engine.stream("GET", url, [], None)
        with pytest.raises(QlikTimeout):
            await asyncio.wait_for(_drain(response), 30)
        await response.aclose()
    await engine.aclose()


async def test_a_browser_that_reads_slowly_is_not_a_qlik_timeout() -> None:
    """The browser pauses (the proxy then stops reading Qlik's answer) for three times the read
    timeout: Qlik was never silent, so the download goes on (pyreqwest's own body timer ran
    while nobody read, and cut it off)."""
    engine = ReqwestEngine(timeouts=Timeouts(read=1.0))
    size = 32 << 20
    async with _upstream(size) as url:
        response = await engine.stream("GET", url, [], None)
        chunks = response.chunks()
        got = len(await chunks.__anext__())
        await asyncio.sleep(3.0)
        async for chunk in chunks:
            got += len(chunk)
        await response.aclose()
    await engine.aclose()
    assert got == size


async def test_a_slow_upload_is_not_a_qlik_timeout() -> None:
    """The browser's upload takes three times the read timeout: Qlik answers only once it has
    it all, which is not Qlik being silent (pyreqwest counted the upload against it)."""

    async def slowly() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"u" * 1000
            await asyncio.sleep(1.0)

    engine = ReqwestEngine(timeouts=Timeouts(read=1.0))
    async with _upstream(2) as url:
        response = await engine.stream("POST", url, [(b"content-length", b"3000")], slowly())
        assert (response.status_code, await response.read()) == (200, b"xx")
        await response.aclose()
    await engine.aclose()


async def test_qlik_not_taking_an_upload_is_a_qlik_timeout() -> None:
    """Qlik reads the head and then nothing: once the socket is full, the upload's next piece
    waits for Qlik, which `write` bounds (the browser's own pace never counts)."""
    release = asyncio.Event()

    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await release.wait()
        writer.close()

    async def plenty() -> AsyncIterator[bytes]:
        for _ in range(256):
            yield b"u" * (1 << 20)

    server = await asyncio.start_server(deaf, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    engine = ReqwestEngine(timeouts=Timeouts(write=1.0, read=60.0))
    try:
        with pytest.raises(QlikTimeout):
            await asyncio.wait_for(engine.stream("PUT", url, [], plenty()), 30)
    finally:
        release.set()
        server.close()
        await engine.aclose()


async def test_closed_engine_refuses_requests() -> None:
    engine = ReqwestEngine(timeouts=Timeouts())
    await engine.aclose()
    with pytest.raises(RuntimeError):
        await engine.stream("GET", "http://127.0.0.1:9/", [], None)


async def test_tls_verifies_against_the_given_ca_file(tmp_path: Path) -> None:
    server_tls, root = server_tls_files(tmp_path)
    engine = ReqwestEngine(timeouts=Timeouts(), verify=str(root))
    try:
        async with RawServer(ok(), tls=server_tls) as server:
            # Qlik's certificate names localhost; the browser's Host header still goes out.
            response = await engine.stream(
                "GET",
                f"https://localhost:{server.port}/sso/x",
                [(b"host", b"app.example.com")],
                None,
            )
            assert await response.read() == b"hello"
            await response.aclose()
    finally:
        await engine.aclose()
    assert b"host: app.example.com" in server.heads[0].lower()


@pytest.mark.parametrize("trust", ["platform CAs only", "another site's CA"])
async def test_tls_refuses_a_server_it_does_not_trust(tmp_path: Path, trust: str) -> None:
    server_tls, root = server_tls_files(tmp_path / "site", other_root=trust == "another site's CA")
    verify: bool | str = True if trust == "platform CAs only" else str(root)
    engine = ReqwestEngine(timeouts=Timeouts(), verify=verify)
    try:
        async with RawServer(ok(), tls=server_tls) as server:
            with pytest.raises(QlikUnavailable):
                await engine.stream("GET", f"https://localhost:{server.port}/", [], None)
    finally:
        await engine.aclose()
    assert server.heads == []


async def test_verify_false_accepts_an_untrusted_server(tmp_path: Path) -> None:
    server_tls, _ = server_tls_files(tmp_path, other_root=True)
    engine = ReqwestEngine(timeouts=Timeouts(), verify=False)
    try:
        async with RawServer(ok(), tls=server_tls) as server:
            response = await engine.stream("GET", f"https://localhost:{server.port}/", [], None)
            assert await response.read() == b"hello"
            await response.aclose()
    finally:
        await engine.aclose()


def test_engine_choice_follows_the_target() -> None:
    context = ssl.create_default_context()
    assert QlikTarget("http://qlik:80").resolved_http_engine == "reqwest"
    assert QlikTarget("https://qlik", verify=context).resolved_http_engine == "aiohttp"
    assert QlikTarget("http://qlik", http_engine="aiohttp").resolved_http_engine == "aiohttp"
    upstream = Upstream(QlikTarget("http://qlik:80"))
    assert isinstance(upstream.engine, ReqwestEngine)
    fallback = Upstream(QlikTarget("http://qlik:80", http_engine="aiohttp"))
    assert isinstance(fallback.engine, AiohttpEngine)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"http_engine": "curl"}, "'curl' is not one of auto, reqwest, aiohttp"),
        (
            {"http_engine": "reqwest", "verify": ssl.create_default_context()},
            "only be used by the aiohttp engine",
        ),
    ],
)
def test_bad_engine_settings_are_configuration_errors(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        QlikTarget("https://qlik", **options)  # type: ignore[arg-type]
    assert caught.value.field == "http_engine"
