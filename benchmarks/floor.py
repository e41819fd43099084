"""The floor: the cheapest proxy on the middleware's own parts, with none of its work.

`python -m benchmarks` measures this app in the same run as the middleware (column "floor"), so
every run shows how much of the middleware's cost is the architecture (uvicorn on one side,
pyreqwest / aiohttp's WebSocket client on the other) and how much is its own work. It is built
from the same libraries, configured the same way, and does only what any reverse proxy must:

- HTTP: the request goes on with the browser's headers minus hop-by-hop ones (Host rewritten by the
  client), body streamed; the answer comes back streamed. No identity, session, path, Origin or
  header checks, no login, no disconnect watcher, no error pages.
- WebSocket: connect upstream with the middleware's WebSocket client (`ws_client.connect_relay`,
  the same library choice), accept, relay messages both ways.

`QLIK_BENCH_FLOOR_BURN_US=N` makes it spend N µs of pure-Python CPU on each HTTP request first
(`benchmarks/overhead.py` uses it to show what N µs of Python work cost the whole process).

Not for use in front of anything: it forwards whatever it gets.

Run: `QLIK_BENCH_UPSTREAM=http://127.0.0.1:PORT uvicorn --factory benchmarks.floor:create_app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from pyreqwest.client import Client, ClientBuilder
from starlette.types import Receive, Scope, Send
from websockets.exceptions import ConnectionClosed

from qlik_sso_middleware.proxy.ws_client import connect_relay, quiet_logger, use_ws_client

_LOGGER = quiet_logger("benchmarks.floor")

_HOP_BY_HOP = frozenset(
    {
        b"host",
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"upgrade",
        b"te",
        b"trailer",
        b"proxy-connection",
    }
)


class FloorProxy:
    def __init__(self, upstream: str, burn_us: float = 0.0) -> None:
        self.burn = burn_us / 1e6
        self.upstream = upstream.rstrip("/")
        self.ws_upstream = "ws" + self.upstream.removeprefix("http")
        self.client: Client | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self.burn:
                until = time.thread_time() + self.burn
                while time.thread_time() < until:
                    pass
            await self.http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self.websocket(scope, receive, send)
        elif scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            if self.client is not None:
                await self.client.close()
            await send({"type": "lifespan.shutdown.complete"})

    def _target(self, scope: Scope, base: str) -> str:
        query = scope.get("query_string", b"")
        return base + scope["raw_path"].decode("ascii") + ("?" + query.decode() if query else "")

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.client is None:
            self.client = ClientBuilder().http1_only().follow_redirects(False).build()
        headers = [
            (k.decode("ascii"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k not in _HOP_BY_HOP
        ]
        builder: Any = self.client.request(scope["method"], self._target(scope, self.upstream))
        builder = builder.headers(headers)
        if any(k in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"]):
            builder = builder.body_stream(_body(receive))
        async with builder.build_streamed() as response:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": [
                        (k.encode("ascii"), v.encode("latin-1"))
                        for k, v in response.headers.items()
                        if k.encode("ascii") not in _HOP_BY_HOP
                    ],
                }
            )
            reader = response.body_reader
            while (chunk := await reader.read_chunk()) is not None:
                await send({"type": "http.response.body", "body": bytes(chunk), "more_body": True})
            await send({"type": "http.response.body", "body": b""})

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # websocket.connect
        url = self._target(scope, self.ws_upstream)
        headers = [(k.decode(), v.decode("latin-1")) for k, v in scope["headers"] if k == b"cookie"]
        # The middleware's own upstream WebSocket client (the same choice: ws_client.WS_CLIENTS).
        up = await connect_relay(
            url, headers=headers, subprotocols=None, open_timeout=10, logger=_LOGGER
        )
        try:
            await send({"type": "websocket.accept"})

            async def upward() -> None:
                while True:
                    message = await receive()
                    if message["type"] != "websocket.receive":
                        return
                    text = message.get("text")
                    await up.send(text if text is not None else message["bytes"])

            async def downward() -> None:
                with contextlib.suppress(ConnectionClosed):
                    async for data in up:
                        key = "text" if isinstance(data, str) else "bytes"
                        await send({"type": "websocket.send", key: data})
                await send({"type": "websocket.close", "code": 1000})

            tasks = [asyncio.create_task(upward()), asyncio.create_task(downward())]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await up.close()


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        if message.get("body"):
            yield message["body"]
        if not message.get("more_body"):
            return


def create_app() -> FloorProxy:
    if os.environ.get("QLIK_BENCH_WS_CLIENT"):
        use_ws_client(os.environ["QLIK_BENCH_WS_CLIENT"])
    burn = float(os.environ.get("QLIK_BENCH_FLOOR_BURN_US") or 0)
    return FloorProxy(os.environ["QLIK_BENCH_UPSTREAM"], burn)
