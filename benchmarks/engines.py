"""Client engines compared, as recorded in `benchmarks/README.md`: `python -m benchmarks.engines`.

Starts the upstream on CPU 0 and, pinned to CPU 1, measures the client-side CPU per 1 KiB GET
(sequential, and 32 concurrent) for httpx's default transport, the `httpx-aiohttp` transport (if
installed), our `AiohttpTransport`, aiohttp itself and our `ReqwestEngine` (pyreqwest); then CPU per
WebSocket echo round trip for `websockets`, aiohttp and picows (if installed). Every loop is a fixed
count.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx2 as httpx
import uvloop
from websockets.asyncio.client import connect
from yarl import URL

from qlik_sso_middleware import Timeouts
from qlik_sso_middleware.proxy.aiohttp_transport import AiohttpEngine, AiohttpTransport
from qlik_sso_middleware.proxy.reqwest_engine import ReqwestEngine

from . import procs

_HEADERS = [
    (b"accept", b"*/*"),
    (b"cookie", b"X-Qlik-Session-sso-HTTP=0123"),
    (b"hdr-usr", b"B\\b"),
]
_TIMEOUT = httpx.Timeout(5.0)


async def _cpu_per_call(one: Callable[[], Awaitable[None]], count: int, conns: int) -> float:
    async def worker(n: int) -> None:
        for _ in range(n):
            await one()

    await worker(50)
    started = time.process_time()
    await asyncio.gather(*(worker(count // conns) for _ in range(conns)))
    return (time.process_time() - started) / (count // conns * conns) * 1e6


async def _http_engines(base: str, count: int) -> list[tuple[str, float, float]]:
    url = base + "/sso/content/_sim/bytes?size=1024"
    headers = [(k, v) for k, v in _HEADERS] + [(b"host", base.split("//")[1].encode())]
    engines: list[tuple[str, Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]] = []

    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    client = httpx.AsyncClient(limits=limits)

    async def httpx_default() -> None:
        response = await client.send(httpx.Request("GET", url, headers=headers), stream=True)
        await response.aread()
        await response.aclose()

    engines.append(
        ("httpx AsyncClient, default transport (httpcore)", httpx_default, client.aclose)
    )
    try:  # optional: pip install httpx-aiohttp to include it
        third_party: Any = importlib.import_module("httpx_aiohttp")
    except ImportError:
        third_party = None
    if third_party is not None:
        session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        third = third_party.AiohttpTransport(client=session)

        async def httpx_aiohttp() -> None:
            response = await third.handle_async_request(httpx.Request("GET", url, headers=headers))
            await response.aread()
            await response.aclose()

        engines.append(("httpx-aiohttp transport", httpx_aiohttp, session.close))
    ours = AiohttpTransport()
    ours_engine = AiohttpEngine(ours, Timeouts())

    async def our_transport() -> None:
        response = await ours_engine.stream("GET", url, headers, None)
        await response.read()
        await response.aclose()

    engines.append(("AiohttpEngine.stream (ours, the default)", our_transport, ours.aclose))
    raw = aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(), skip_auto_headers=("User-Agent",)
    )
    raw_url = URL(url, encoded=True)
    raw_headers = [(k.decode(), v.decode()) for k, v in headers]

    async def aiohttp_itself() -> None:
        async with raw.get(raw_url, headers=raw_headers) as response:
            await response.read()

    engines.append(("aiohttp ClientSession", aiohttp_itself, raw.close))
    reqwest = ReqwestEngine(timeouts=Timeouts(), max_connections=100)

    async def reqwest_engine() -> None:
        response = await reqwest.stream("GET", url, headers, None)
        await response.read()
        await response.aclose()

    engines.append(("ReqwestEngine.stream (ours, [fast])", reqwest_engine, reqwest.aclose))
    results = []
    for name, one, close in engines:
        sequential = await _cpu_per_call(one, count, 1)
        concurrent = await _cpu_per_call(one, count, 32)
        results.append((name, sequential, concurrent))
        await close()
    return results


async def _ws_engines(base: str, count: int) -> list[tuple[str, float, float]]:
    url = "ws://" + base.split("//")[1] + "/sso/app/_sim_echo"
    small, big = "x" * 100, os.urandom(1024 * 1024)
    results = []
    async with connect(url, max_size=None, compression=None) as ws:

        async def ws_small() -> None:
            await ws.send(small)
            await ws.recv()

        async def ws_big() -> None:
            await ws.send(big)
            await ws.recv()

        results.append(
            (
                "websockets asyncio client",
                await _cpu_per_call(ws_small, count, 1),
                await _cpu_per_call(ws_big, max(20, count // 50), 1),
            )
        )
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, max_msg_size=0, autoping=False) as aws,
    ):

        async def aio_small() -> None:
            await aws.send_str(small)
            await aws.receive()

        async def aio_big() -> None:
            await aws.send_bytes(big)
            await aws.receive()

        results.append(
            (
                "aiohttp ws_connect",
                await _cpu_per_call(aio_small, count, 1),
                await _cpu_per_call(aio_big, max(20, count // 50), 1),
            )
        )
    results.extend(await _picows(url, small, big, count))
    return results


async def _picows(url: str, small: str, big: bytes, count: int) -> list[tuple[str, float, float]]:
    try:  # optional: pip install picows to include it
        picows: Any = importlib.import_module("picows")
    except ImportError:
        return []
    loop = asyncio.get_running_loop()

    class Listener(picows.WSListener):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.waiter: asyncio.Future[None] | None = None
            self.parts: list[bytes] = []

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            self.parts.append(frame.get_payload_as_bytes())
            if frame.fin and self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)

    transport, listener = await picows.ws_connect(Listener, url, max_frame_size=64 * 1024 * 1024)

    def round_trip(kind: Any, payload: bytes) -> Callable[[], Awaitable[None]]:
        async def one() -> None:
            listener.parts = []
            listener.waiter = loop.create_future()
            transport.send(kind, payload)
            await listener.waiter

        return one

    try:
        return [
            (
                "picows client",
                await _cpu_per_call(round_trip(picows.WSMsgType.TEXT, small.encode()), count, 1),
                await _cpu_per_call(
                    round_trip(picows.WSMsgType.BINARY, big), max(20, count // 50), 1
                ),
            )
        ]
    finally:
        transport.disconnect()


def main() -> None:
    port = procs.free_port()
    server = procs.start("upstream", procs.uvicorn_argv("benchmarks.upstream:app", port), port)
    try:
        os.sched_setaffinity(0, {procs.LOAD_CPU})
        http = uvloop.run(_http_engines(server.url, 3000))
        ws = uvloop.run(_ws_engines(server.url, 3000))
    finally:
        server.stop()
    print("| HTTP engine | CPU µs per 1 KiB GET, 1 conn | 32 concurrent |")
    print("|---|---:|---:|")
    for name, one, many in http:
        print(f"| {name} | {one:,.0f} | {many:,.0f} |")
    print()
    print("| WebSocket client | CPU µs per 100 B round trip | per 1 MiB round trip |")
    print("|---|---:|---:|")
    for name, small, big in ws:
        print(f"| {name} | {small:,.0f} | {big:,.0f} |")


if __name__ == "__main__":
    main()
