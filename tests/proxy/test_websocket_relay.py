"""The WebSocket relay against what the simulator cannot make Qlik do.

`ScriptedQlik` stands between the middleware and the simulator on a real socket: plain HTTP (logins,
the CSRF token) goes to the simulator untouched; WebSocket upgrades are answered by a script that
writes raw frames: fragments, pings, close frames, invalid UTF-8, a dropped connection, a flood.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import hashlib
import json
import logging
import os
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any, cast

import psutil
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from qlik_sso_middleware import Timeouts
from qlik_sso_middleware.proxy import websocket
from qlik_sso_middleware.testing import DEMO_APPS, QlikSimulator, VirtualProxy

from ..apps import build_app
from ..needs import unavailable
from ..security.helpers import assert_no_secret, log_texts, simulator_secrets
from ..servers import serve

ENGINE = f"/sso/app/{DEMO_APPS[0].id}"
MiB = 1024 * 1024

Script = Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

pytestmark = pytest.mark.usefixtures("ws_client_name")


# -- a scripted Qlik ---------------------------------------------------------------------------------


def accept(head: bytes, extra: bytes = b"") -> bytes:
    """The 101 answer to the upgrade request `head`."""
    key = next(
        line.split(b":", 1)[1].strip()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    digest = hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + base64.b64encode(digest) + b"\r\n" + extra + b"\r\n"
    )


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True) -> bytes:
    """A server frame (unmasked)."""
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    if size < 126:
        return struct.pack("!BB", first, size) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", first, 126, size) + payload
    return struct.pack("!BBQ", first, 127, size) + payload


def close_frame(code: int, reason: str = "") -> bytes:
    return frame(0x8, struct.pack("!H", code) + reason.encode())


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    """The next client frame: (opcode, fin, unmasked payload)."""
    first, second = await reader.readexactly(2)
    size = second & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", await reader.readexactly(2))
    elif size == 127:
        (size,) = struct.unpack("!Q", await reader.readexactly(8))
    mask = await reader.readexactly(4) if second & 0x80 else b"\0\0\0\0"
    data = await reader.readexactly(size)
    if second & 0x80:
        key = (mask * (size // 4 + 1))[:size]
        data = (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")
    return first & 0x0F, bool(first & 0x80), data


async def read_message(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The next client data or close message, fragments joined, pongs skipped."""
    opcode, fin, data = await read_frame(reader)
    while opcode == 0xA:
        opcode, fin, data = await read_frame(reader)
    parts = [data]
    while not fin:
        _, fin, more = await read_frame(reader)
        parts.append(more)
    return opcode, b"".join(parts)


class ScriptedQlik:
    def __init__(self, sim: QlikSimulator, script: Script) -> None:
        self.sim = sim
        self.script = script
        self.handshakes: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> ScriptedQlik:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(cast("asyncio.Task[None]", task))
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if b"\r\nupgrade: websocket" in head.lower():
                self.handshakes.append(head)
                await self.script(head, reader, writer)
            else:
                await self._pipe(head, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._tasks.discard(cast("asyncio.Task[None]", task))

    async def _pipe(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.sim.proxy_port)
        up_writer.write(head)

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()

        try:
            await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))
        finally:
            up_writer.close()


@contextlib.asynccontextmanager
async def scripted(sim: QlikSimulator, script: Script, **target: Any) -> AsyncIterator[str]:
    """The middleware's URL, its Qlik being `script` (for WebSockets) and `sim` (for the rest)."""
    async with ScriptedQlik(sim, script) as qlik:
        app, _ = build_app(cast(QlikSimulator, SimpleNamespace(proxy_url=qlik.url)), target=target)
        async with serve(app) as url:
            yield url


def open_ws(url: str, **options: Any) -> Any:
    return connect(
        "ws" + url[4:] + ENGINE,
        origin=url,  # type: ignore[arg-type]
        additional_headers={"cookie": "app_user=alice"},
        max_size=None,
        open_timeout=10,
        **options,
    )


# -- messages ----------------------------------------------------------------------------------------


async def test_fragmented_messages_from_qlik_arrive_whole(simulator: QlikSimulator) -> None:
    text = "größer als 2 MiB ✓ " * 110_000
    raw = text.encode()
    binary = os.urandom(20 * MiB)
    pongs: list[bytes] = []

    async def script(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(accept(head))
        # Text cut inside a multi-byte character, with a ping between two fragments.
        w.write(frame(0x1, raw[:1], fin=False) + frame(0x0, raw[1:3], fin=False))
        w.write(frame(0x9, b"are you there") + frame(0x0, raw[3:], fin=True))
        # 20 MiB of binary in 1 MiB fragments.
        w.write(frame(0x2, binary[:MiB], fin=False))
        for start in range(MiB, len(binary), MiB):
            end = start + MiB
            w.write(frame(0x0, binary[start:end], fin=end >= len(binary)))
        w.write(frame(0x1, "ünfragmented".encode()))
        await w.drain()
        opcode, _, data = await read_frame(reader)
        pongs.append(data if opcode == 0xA else b"not a pong")
        opcode, echoed = await read_message(reader)
        assert (opcode, echoed) == (0x1, b"done")
        w.write(close_frame(1000))
        await w.drain()

    async with scripted(simulator, script) as url, open_ws(url) as ws:
        assert await ws.recv() == text
        assert await ws.recv() == binary
        assert await ws.recv() == "ünfragmented"
        await ws.send("done")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert pongs == [b"are you there"]
    assert ws.close_code == 1000


async def test_twenty_mib_text_round_trips_intact(simulator: QlikSimulator) -> None:
    app, _ = build_app(simulator)
    text = ("qSize ü€𝄞 " * (2 * MiB))[: 20 * MiB]
    async with (
        serve(app) as url,
        connect(
            "ws" + url[4:] + "/sso/app/_sim_echo",
            origin=url,  # type: ignore[arg-type]
            additional_headers={"cookie": "app_user=alice"},
            max_size=None,
        ) as ws,
    ):
        await ws.send(text)
        assert await ws.recv() == text


# -- closing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "seen"),
    [
        (close_frame(4123, "maintenance ✓"), (4123, "maintenance ✓")),
        (close_frame(1001, "going away"), (1001, "going away")),
        (frame(0x8), (1000, "")),  # no status code (1005 must not be sent on): normal closure
    ],
)
async def test_qlik_close_reaches_the_browser_and_is_answered(
    simulator: QlikSimulator, sent: bytes, seen: tuple[int, str]
) -> None:
    answers: list[tuple[int, bytes]] = []

    async def script(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(accept(head) + frame(0x1, b"hello") + sent)
        await w.drain()
        answers.append(await read_message(reader))
        w.close()  # the server closes the TCP connection first (RFC 6455 §7.1.1)

    async with scripted(simulator, script) as url, open_ws(url) as ws:
        assert await ws.recv() == "hello"
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert (ws.close_code, ws.close_reason) == seen
    assert answers[0][0] == 0x8
    if len(sent) > 2:
        assert struct.unpack("!H", answers[0][1][:2])[0] == seen[0]
    else:  # Qlik's close had no code: the answer may have none either (RFC 6455 §5.5.1)
        assert answers[0][1][:2] in (b"", struct.pack("!H", 1000))


async def test_qlik_dropping_the_connection_closes_the_browser_with_1011(
    simulator: QlikSimulator,
) -> None:
    async def script(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(accept(head) + frame(0x1, b"last words"))
        await w.drain()
        w.transport.abort()

    async with scripted(simulator, script) as url, open_ws(url) as ws:
        assert await ws.recv() == "last words"
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 1011


async def test_invalid_utf8_from_qlik_closes_both_sides_with_1007(
    simulator: QlikSimulator,
) -> None:
    answers: list[tuple[int, bytes]] = []

    async def script(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(accept(head) + frame(0x1, b"fine") + frame(0x1, b"\xff\xfe broken"))
        await w.drain()
        answers.append(await read_message(reader))
        w.write(close_frame(1007))
        await w.drain()

    async with scripted(simulator, script) as url, open_ws(url) as ws:
        assert await ws.recv() == "fine"
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 1007
    assert answers[0][0] == 0x8
    assert struct.unpack("!H", answers[0][1][:2])[0] == 1007


async def test_browser_gone_during_the_handshake_is_hung_up_on_qlik(
    simulator: QlikSimulator,
) -> None:
    arrived, gone, hung_up = asyncio.Event(), asyncio.Event(), asyncio.Event()
    seen: list[tuple[int, bytes]] = []

    async def script(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        arrived.set()
        await gone.wait()
        await asyncio.sleep(0.2)  # Qlik answers after the browser left
        w.write(accept(head))
        await w.drain()
        seen.append(await asyncio.wait_for(read_message(reader), 10))
        hung_up.set()

    async with scripted(simulator, script) as url:
        host = url.removeprefix("http://")
        _, writer = await asyncio.open_connection(*host.split(":"))
        writer.write(
            f"GET {ENGINE} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: {url}\r\nCookie: app_user=alice\r\n\r\n".encode()
        )
        await asyncio.wait_for(arrived.wait(), 10)
        writer.transport.abort()
        gone.set()
        await asyncio.wait_for(hung_up.wait(), 15)
    assert seen[0][0] == 0x8
    assert struct.unpack("!H", seen[0][1][:2])[0] == 1001


# -- a session Qlik forgot ---------------------------------------------------------------------------

MUST_AUTHENTICATE = json.dumps(
    {
        "jsonrpc": "2.0",
        "method": "OnAuthenticationInformation",
        "params": {"mustAuthenticate": True, "loginUri": "http://qlik/login"},
    }
).encode()
GREETING = json.dumps(
    {
        "jsonrpc": "2.0",
        "method": "OnAuthenticationInformation",
        "params": {"userId": "alice", "userDirectory": "ACME", "mustAuthenticate": False},
    }
).encode()


def forgetful_qlik(calls_first: int, seen: list[list[bytes]]) -> Script:
    """A Qlik restarted under the middleware's feet: its first socket waits for `calls_first`
    calls from the browser, then says mustAuthenticate and closes; its later sockets greet, and
    answer every call with the call's own id, method and the socket's number."""

    async def script(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        number = len(seen)
        got: list[bytes] = []
        seen.append(got)
        w.write(accept(head))
        if number == 0:
            for _ in range(calls_first):
                got.append((await read_message(reader))[1])
            w.write(frame(0x1, MUST_AUTHENTICATE) + close_frame(1000))
            await w.drain()
            await read_message(reader)  # the close's answer
            return
        w.write(frame(0x1, GREETING))
        while True:
            opcode, data = await read_message(reader)
            if opcode == 0x8:
                return
            got.append(data)
            call = json.loads(data)
            answer = {"jsonrpc": "2.0", "id": call["id"], "result": [call["method"], number]}
            w.write(frame(0x1, json.dumps(answer).encode()))
            await w.drain()

    return script


def call(number: int, method: str) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": number, "method": method, "handle": -1})


async def test_calls_sent_before_qlik_forgot_the_session_are_answered_on_the_renewed_socket(
    simulator: QlikSimulator,
) -> None:
    # enigma.js sends OpenDoc as soon as the socket opens; here it reaches a Qlik that has just
    # restarted, which answers with mustAuthenticate. The browser must still get its answers.
    seen: list[list[bytes]] = []
    async with scripted(simulator, forgetful_qlik(2, seen)) as url, open_ws(url) as ws:
        await ws.send(call(1, "OpenDoc"))
        await ws.send(call(2, "GetAppLayout"))
        assert json.loads(await ws.recv())["params"]["mustAuthenticate"] is False
        answers = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(2)]
        await ws.send(call(3, "GetObject"))
        answers.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
    assert [(a["id"], a["result"]) for a in answers] == [
        (1, ["OpenDoc", 1]),
        (2, ["GetAppLayout", 1]),
        (3, ["GetObject", 1]),
    ]
    # The renewed socket got each call once, in order; the first socket had got the first two.
    assert [json.loads(m)["id"] for m in seen[1]] == [1, 2, 3]
    assert [json.loads(m)["id"] for m in seen[0]] == [1, 2]
    assert simulator.logins("ACME\\alice") == 2  # the session was renewed once


async def test_past_the_replay_bound_the_browser_gets_qliks_must_authenticate(
    simulator: QlikSimulator,
) -> None:
    # A browser that floods a socket before Qlik spoke is not buffered without end: past the
    # bound, Qlik's answer reaches it as it came (and its next request gets a fresh session).
    seen: list[list[bytes]] = []
    flood = websocket.EARLY_MESSAGES + 1
    async with scripted(simulator, forgetful_qlik(flood, seen)) as url, open_ws(url) as ws:
        for number in range(1, flood + 1):
            await ws.send(call(number, "GetLayout"))
        notice = json.loads(await asyncio.wait_for(ws.recv(), 10))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
    assert notice["params"]["mustAuthenticate"] is True
    assert ws.close_code == 1000
    assert len(seen) == 1  # no second socket


# -- flow control ------------------------------------------------------------------------------------


def rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


async def stalled(progress: Callable[[], int], quiet: float = 1.0, limit: float = 60) -> int:
    """Wait until `progress()` stops moving for `quiet` seconds; return where it stopped.

    A quiet spell could also be a loaded machine pausing a writer that flow control did not
    stop, so each test runs the same wait as a positive control where progress is possible: it
    must then see the writer move on to the very end."""
    async with asyncio.timeout(limit):
        last = -1
        while (now := progress()) != last:
            last = now
            await asyncio.sleep(quiet)
    return last


def numbered(count: int) -> list[bytes]:
    """`count` incompressible 1 MiB messages, each starting with its number."""
    block = os.urandom(MiB)
    return [i.to_bytes(4, "big") + block[4:] for i in range(count)]


async def test_slow_browser_pauses_reading_from_qlik(simulator: QlikSimulator) -> None:
    messages = numbered(200)
    written = 0

    async def script(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal written
        w.write(accept(head))
        for message in messages:
            w.write(frame(0x2, message))
            await w.drain()
            written += 1
        await read_message(reader)  # the browser's close

    before = rss()
    async with (
        scripted(simulator, script) as url,
        open_ws(url, max_queue=1, compression=None) as ws,
    ):
        # The browser reads nothing: Qlik must soon be unable to write.
        stopped_at = await stalled(lambda: written)
        grown = rss() - before
        assert stopped_at < 100, f"Qlik wrote {stopped_at} MiB to a browser that reads nothing"
        assert grown < 64 * MiB, f"RSS grew by {grown / MiB:.0f} MiB"

        async def catch_up() -> list[bool]:
            return [await ws.recv() == message for message in messages]

        # The browser catches up: everything arrives, in order; the same wait sees Qlik write on
        # without a quiet spell until its last message.
        reading = asyncio.create_task(catch_up())
        assert await stalled(lambda: written) == len(messages)
        assert await asyncio.wait_for(reading, 60) == [True] * len(messages)


async def test_fast_browser_waits_for_qlik(simulator: QlikSimulator) -> None:
    messages = numbered(200)
    reading, finished = asyncio.Event(), asyncio.Event()
    received: list[bool] = []

    async def script(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(accept(head))
        await w.drain()
        await reading.wait()  # Qlik is busy: reads nothing for a while
        for message in messages:
            received.append(await read_message(reader) == (0x2, message))
        finished.set()

    sent = 0

    async def browser(ws: ClientConnection) -> None:
        nonlocal sent
        for message in messages:
            await ws.send(message)
            sent += 1

    before = rss()
    async with (
        scripted(simulator, script) as url,
        open_ws(url, write_limit=MiB, compression=None) as ws,
    ):
        sending = asyncio.create_task(browser(ws))
        stopped_at = await stalled(lambda: sent)
        grown = rss() - before
        assert stopped_at < 100, f"the browser sent {stopped_at} MiB to a Qlik that reads nothing"
        assert grown < 64 * MiB, f"RSS grew by {grown / MiB:.0f} MiB"
        reading.set()
        # Positive control: once Qlik reads, the same wait sees the browser send to the end.
        assert await stalled(lambda: sent) == len(messages)
        await asyncio.wait_for(sending, 60)
        await asyncio.wait_for(finished.wait(), 60)
    assert received == [True] * len(messages)


# -- the handshake -----------------------------------------------------------------------------------


async def test_handshake_carries_the_chosen_host_and_the_browser_subprotocols(
    simulator: QlikSimulator,
) -> None:
    async def script(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(accept(head, b"Sec-WebSocket-Protocol: qlik.v2\r\n") + frame(0x1, b"hi"))
        await w.drain()
        await read_message(reader)

    async with (
        ScriptedQlik(simulator, script) as qlik,
        serve(
            build_app(
                cast(QlikSimulator, SimpleNamespace(proxy_url=qlik.url)),
                target={"host_header": "qlik.internal"},
            )[0]
        ) as url,
        open_ws(url, subprotocols=["qlik.v1", "qlik.v2"]) as ws,  # type: ignore[list-item]
    ):
        assert ws.subprotocol == "qlik.v2"
        assert await ws.recv() == "hi"
    lines = qlik.handshakes[0].decode().split("\r\n")
    assert lines[0].startswith(f"GET {ENGINE}?qlik-csrf-token=")
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if line]
    assert [v for k, v in headers if k.lower() == "host"] == ["qlik.internal"]
    assert [v for k, v in headers if k.lower() == "sec-websocket-protocol"] == ["qlik.v1, qlik.v2"]
    assert [v for k, v in headers if k.lower() == "hdr-usr"] == ["ACME\\alice"]
    assert not [k for k, _ in headers if k.lower() == "sec-websocket-extensions"]


def answer(raw: bytes) -> Script:
    async def script(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(raw)
        await w.drain()

    return script


async def silent(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)


@pytest.mark.parametrize(
    ("script", "logged"),
    [
        (answer(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"), "answered 500"),
        (answer(b"HTTP/1.1 599 Odd\r\nContent-Length: 0\r\n\r\n"), "answered 599"),
        (
            answer(b"HTTP/1.1 302 Found\r\nLocation: /sso/app/x\r\nContent-Length: 0\r\n\r\n"),
            "answered 302",
        ),
        (answer(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"), "WebSocket unreachable"),
        (answer(b"garbage\r\n\r\n"), "WebSocket unreachable"),
        (answer(b""), "WebSocket unreachable"),  # hangs up
        (silent, "did not complete the WebSocket handshake in time"),
    ],
    ids=["500", "599", "302-not-followed", "bad-101", "garbage", "hang-up", "timeout"],
)
async def test_handshake_failures_close_the_browser_socket_with_1011(
    simulator: QlikSimulator, caplog: pytest.LogCaptureFixture, script: Script, logged: str
) -> None:
    caplog.set_level(logging.WARNING, "qlik_sso_middleware")
    timeouts = Timeouts(websocket_open=0.5)
    async with scripted(simulator, script, timeouts=timeouts) as url, open_ws(url) as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 1011
    assert any(logged in r.getMessage() for r in caplog.records), caplog.text


@pytest.mark.parametrize("status", [401, 403])
async def test_handshake_refused_by_qlik_is_refused_to_the_browser(
    simulator: QlikSimulator, status: int
) -> None:
    refusal = f"HTTP/1.1 {status} No\r\nContent-Length: 0\r\n\r\n".encode()
    async with scripted(simulator, answer(refusal)) as url:
        with pytest.raises(InvalidStatus) as info:
            async with open_ws(url):
                pass
    assert info.value.response.status_code == 403


async def test_handshake_headers_are_never_logged(
    simulator: QlikSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(1)  # below DEBUG too: a library may log the handshake at any level
    app, _ = build_app(simulator)
    async with serve(app) as url, open_ws(url) as ws:
        await ws.recv()
    assert caplog.records  # the run did log (the middleware's login line at least)
    assert_no_secret(log_texts(caplog), simulator_secrets(simulator))


# -- other upstream addresses ------------------------------------------------------------------------


async def test_wss_to_an_https_qlik() -> None:
    async with QlikSimulator(
        [VirtualProxy(prefix="sso", header_name="hdr-usr")], https=True
    ) as sim:
        assert sim.certificates is not None
        app, _ = build_app(sim, target={"verify": str(sim.certificates.root)})
        async with serve(app) as url, open_ws(url) as ws:
            first = await ws.recv()
    assert '"userId":"alice"' in str(first).replace(" ", "")


async def test_ipv6_qlik() -> None:
    if not socket_has_ipv6():
        unavailable("no IPv6 loopback (::1) on this machine")
    async with QlikSimulator(
        [VirtualProxy(prefix="sso", header_name="hdr-usr")], host="::1"
    ) as sim:
        app, _ = build_app(sim)
        async with serve(app) as url, open_ws(url) as ws:
            first = await ws.recv()
    assert '"userId":"alice"' in str(first).replace(" ", "")


def socket_has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True
