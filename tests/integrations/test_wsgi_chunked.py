"""Request bodies under QlikWSGIMiddleware that a2wsgi alone mishandles: chunked ones (streamed to
Qlik whole, or refused with 411) and ones that end before their Content-Length (broken off).

Real servers on loopback: werkzeug's (which terminates a chunked `wsgi.input`) and wsgiref
(which does not); real clients; the simulator's upload endpoint counts and hashes what arrives.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import random
import socket
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler as WsgirefHandler
from wsgiref.simple_server import make_server as make_wsgiref_server

import httpx2 as httpx
import pytest
from werkzeug.serving import WSGIRequestHandler as WerkzeugHandler
from werkzeug.serving import make_server as make_werkzeug_server

from qlik_sso_middleware import QlikIdentity, QlikTarget
from qlik_sso_middleware.integrations.wsgi import QlikWSGIMiddleware
from qlik_sso_middleware.testing import QlikSimulator

from ..leaks import connections_to
from ..waiting import eventually

UPLOAD = "/sso/content/_sim/upload"
BODY_SIZE = 8 * 1024 * 1024
CLIENT_CHUNK = 256 * 1024


class _QuietWerkzeug(WerkzeugHandler):
    def log(self, type: str, message: str, *args: Any) -> None:
        pass


class _QuietWsgiref(WsgirefHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"wsgi app"]


def _cookie_user(conn: Any) -> QlikIdentity | None:
    user = conn.cookies.get("user")
    return QlikIdentity("ACME", user) if user else None


class _Watch:
    """What a test can see of a served middleware: reads of the server's `wsgi.input` (the loop
    a2wsgi would spin in is a read loop) and the tasks on the middleware's event loop."""

    def __init__(self) -> None:
        self.reads = 0
        self.middleware: QlikWSGIMiddleware | None = None

    def wrap(self, app: Any) -> Any:
        def counting(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            environ["wsgi.input"] = _CountedInput(environ["wsgi.input"], self)
            result: Iterable[bytes] = app(environ, start_response)
            return result

        return counting

    def loop_tasks(self) -> int:
        """Tasks alive on the middleware's loop (counted on that loop's own thread)."""
        assert self.middleware is not None

        async def count() -> int:
            return len(asyncio.all_tasks()) - 1  # not this one

        return asyncio.run_coroutine_threadsafe(count(), self.middleware.loop).result(10)


class _CountedInput:
    def __init__(self, stream: Any, watch: _Watch) -> None:
        self._stream = stream
        self._watch = watch

    def read(self, size: int = -1) -> bytes:
        self._watch.reads += 1
        data: bytes = self._stream.read(size)
        return data


@contextmanager
def _serving(
    simulator: QlikSimulator,
    server_kind: str,
    http_engine: str = "auto",
    watch: _Watch | None = None,
) -> Iterator[str]:
    target = QlikTarget(simulator.proxy_url, http_engine=http_engine)
    middleware = QlikWSGIMiddleware(_app, target=target, resolver=_cookie_user)
    app: Any = middleware
    if watch is not None:
        watch.middleware = middleware
        app = watch.wrap(middleware)
    server: Any
    if server_kind == "werkzeug":
        server = make_werkzeug_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=_QuietWerkzeug
        )
        port = server.port
    else:
        server = make_wsgiref_server("127.0.0.1", 0, app, handler_class=_QuietWsgiref)
        port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        middleware.close()


def _request_threads() -> list[threading.Thread]:
    # Threads of werkzeug's threaded server (socketserver.ThreadingMixIn), one per connection.
    return [t for t in threading.enumerate() if "process_request_thread" in t.name]


async def test_a_chunked_upload_reaches_qlik_whole_in_constant_memory(
    simulator: QlikSimulator,
) -> None:
    digest = hashlib.sha256()
    rng = random.Random(8)
    held: list[int] = []  # traced memory in use as each chunk is sent

    async def body() -> AsyncIterator[bytes]:
        for _ in range(BODY_SIZE // CLIENT_CHUNK):
            held.append(tracemalloc.get_traced_memory()[0])
            chunk = rng.randbytes(CLIENT_CHUNK)
            digest.update(chunk)
            yield chunk

    with _serving(simulator, "werkzeug") as url:
        async with httpx.AsyncClient(
            base_url=url, cookies={"user": "alice"}, headers={"origin": url}, timeout=60
        ) as client:
            # Log in first, so the measured request is the upload alone.
            assert (await client.get("/sso/qps/user")).status_code == 200
            tracemalloc.start()
            try:
                response = await client.post(UPLOAD, content=body())
            finally:
                tracemalloc.stop()
            # A body with a Content-Length takes the same path as before.
            again = await client.post(UPLOAD, content=b"abc")
    assert response.status_code == 200, response.text
    assert response.json() == {"size": BODY_SIZE, "sha256": digest.hexdigest()}
    assert again.json() == {"size": 3, "sha256": hashlib.sha256(b"abc").hexdigest()}
    # Client, WSGI server, core and simulator all live in this process: a body gathered anywhere
    # before being passed on would be held (nearly) whole when the last chunk goes out. (Memory
    # in use, not the peak: werkzeug's server allocates a 10 MB read buffer after each response.)
    grown = max(held) - held[0]
    assert grown < BODY_SIZE // 4, f"{grown} bytes held during the upload"
    uploads = [r for r in simulator.requests if r.path == UPLOAD]
    # Forwarded to Qlik as it came: chunked, with no invented length.
    assert uploads[0].header("transfer-encoding") == ["chunked"]
    assert uploads[0].header("content-length") == []
    assert uploads[0].header("hdr-usr") == ["ACME\\alice"]


async def test_a_slow_response_after_a_chunked_body_does_not_spin(
    simulator: QlikSimulator,
) -> None:
    # Past the body's end the core still listens for a disconnect while it streams the answer;
    # asking a2wsgi then would read EOF again and again, burning a core until the answer ends.
    async def body() -> AsyncIterator[bytes]:
        yield b"q" * 1000

    size, pieces, pause = 200_000, 10, 0.1
    query = f"size={size}&chunk={size // pieces}&delay={pause}"
    watch = _Watch()
    # aiohttp: the reqwest engine drops a GET's streamed body (the simulator's slow answer is a GET).
    with _serving(simulator, "werkzeug", http_engine="aiohttp", watch=watch) as url:
        async with httpx.AsyncClient(
            base_url=url, cookies={"user": "alice"}, headers={"origin": url}, timeout=60
        ) as client:
            assert (await client.get("/sso/qps/user")).status_code == 200
            before, started = watch.reads, time.monotonic()
            request = client.build_request(
                "GET", f"/sso/content/_sim/bytes?{query}", content=body()
            )
            response = await client.send(request)
            reads, wall = watch.reads - before, time.monotonic() - started
    assert response.status_code == 200
    assert len(response.content) == size
    forwarded = [r for r in simulator.requests if r.path == "/sso/content/_sim/bytes"]
    assert forwarded[0].header("transfer-encoding") == ["chunked"]
    assert wall >= (pieces - 1) * pause  # the answer was slow (a lower bound holds under load)
    # Counted, not timed: over the ~1 s answer a spin would read the ended input thousands of
    # times. The body's one chunk and its end take a few reads (and the count sees them).
    assert 2 <= reads <= 6, f"{reads} reads of a 1000-byte chunked body"


async def _upload_and_vanish(simulator: QlikSimulator, url: str, framing: str, body: bytes) -> None:
    """Send an upload's head (with `framing`) and part of its `body`, wait until it is under way
    at Qlik, then vanish mid-body."""
    port = int(url.rsplit(":", 1)[1])
    head = (
        f"POST {UPLOAD} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: user=alice\r\n"
        f"Origin: {url}\r\n{framing}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port))
    try:
        sock.sendall(head + body)
        await eventually(
            lambda: any(r.path == UPLOAD for r in simulator.requests), "the upload at Qlik"
        )
    finally:
        sock.close()


async def test_a_chunked_upload_that_breaks_off_is_not_forwarded_as_complete(
    simulator: QlikSimulator,
) -> None:
    with _serving(simulator, "werkzeug") as url:
        chunk = b"y" * 100_000
        framed = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") * 3
        await _upload_and_vanish(simulator, url, "Transfer-Encoding: chunked", framed)
        # The server's request thread ends (a2wsgi is not left waiting for the core)...
        await eventually(lambda: not _request_threads(), "the request thread to end")
        # ...and the server still serves.
        async with httpx.AsyncClient(base_url=url, cookies={"user": "alice"}) as client:
            assert (await client.get("/sso/qps/user")).status_code == 200
    uploads = [r for r in simulator.requests if r.path == UPLOAD]
    assert len(uploads) == 1
    # Qlik never answered the upload: its body ended without the last chunk, not as a whole one.
    assert uploads[0].status != 200


@pytest.mark.parametrize(
    ("accept", "marker"),
    [("application/json", '"status": 411'), ("text/html", "<h1>411 Length Required</h1>")],
)
async def test_a_chunked_upload_the_server_cannot_terminate_gets_411(
    simulator: QlikSimulator, accept: str, marker: str
) -> None:
    def post(url: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=30)
        try:
            conn.putrequest("POST", UPLOAD)
            for name, value in (
                ("Cookie", "user=alice"),
                ("Origin", url),
                ("Accept", accept),
                ("Transfer-Encoding", "chunked"),
            ):
                conn.putheader(name, value)
            # Only the head: wsgiref cannot read past it, so the body would just be left unread.
            conn.endheaders()
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()

    with _serving(simulator, "wsgiref") as url:
        status, text = await asyncio.to_thread(post, url)
    assert status == 411
    assert marker in text
    assert "wsgi.input_terminated" in text
    if accept == "application/json":
        assert json.loads(text)["status"] == 411
    # Nothing reached Qlik: not even the login, let alone an empty upload.
    assert simulator.requests == []


@pytest.mark.parametrize("server_kind", ["werkzeug", "wsgiref"])
async def test_an_upload_shorter_than_its_content_length_is_not_forwarded_as_complete(
    simulator: QlikSimulator, server_kind: str
) -> None:
    """A client that declares 1 MB and vanishes after 300 KB: the server's request thread ends,
    the server still serves, and Qlik never takes the upload for a whole one."""
    watch = _Watch()
    with _serving(simulator, server_kind, watch=watch) as url:
        async with httpx.AsyncClient(base_url=url, cookies={"user": "alice"}) as client:
            assert (await client.get("/sso/qps/user")).status_code == 200
        idle_tasks, before = watch.loop_tasks(), watch.reads
        await _upload_and_vanish(simulator, url, "Content-Length: 1000000", b"z" * 300_000)
        await eventually(lambda: not _request_threads(), "the request thread to end")
        reads = watch.reads - before
        # wsgiref serves one request at a time: this answer proves its only thread is free.
        async with httpx.AsyncClient(base_url=url, cookies={"user": "alice"}) as client:
            assert (await client.get("/sso/qps/user")).status_code == 200
        # Nothing left that could spin on the input that ended early: the core's tasks for the
        # upload are gone, and the 300 KB took a handful of 64 KiB reads, not a read loop.
        await eventually(lambda: watch.loop_tasks() <= idle_tasks, "the core's tasks to end")
        assert 2 <= reads <= 12, f"{reads} reads of 300 KB"
    uploads = [r for r in simulator.requests if r.path == UPLOAD]
    assert len(uploads) == 1
    assert uploads[0].status != 200


@pytest.mark.parametrize("server_kind", ["werkzeug", "wsgiref"])
async def test_a_download_the_browser_leaves_midway_frees_the_core_and_qlik(
    simulator: QlikSimulator, server_kind: str
) -> None:
    """The server stops iterating when the browser is gone (PEP 3333: it closes the iterable);
    the core's task streaming Qlik's answer must end with it, not wait forever to send."""
    watch = _Watch()
    with _serving(simulator, server_kind, watch=watch) as url:
        async with httpx.AsyncClient(base_url=url, cookies={"user": "alice"}) as client:
            assert (await client.get("/sso/qps/user")).status_code == 200
        idle_tasks, pooled = watch.loop_tasks(), connections_to(simulator.proxy_port)
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET /sso/content/_sim/bytes?size={1 << 30}&chunk=65536&delay=0.01 HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nCookie: user=alice\r\n\r\n".encode()
        )
        await reader.readexactly(200_000)  # the head and the first chunks: under way
        writer.transport.abort()
        await eventually(lambda: not _request_threads(), "the request thread to end")
        await eventually(lambda: watch.loop_tasks() <= idle_tasks, "the core's task to end")
        # Qlik's answer was let go too: its connection cannot serve again mid-body, so it closes.
        await eventually(
            lambda: connections_to(simulator.proxy_port) <= pooled, "Qlik's connection to close"
        )
        async with httpx.AsyncClient(base_url=url, cookies={"user": "alice"}) as client:
            assert (await client.get("/sso/qps/user")).status_code == 200
