"""The Python peers `python -m benchmarks` measures in the same run, set up as their docs say.

Each factory returns an ASGI app that reverse-proxies the whole upstream (`QLIK_BENCH_UPSTREAM`),
HTTP and WebSocket, the way a user would put the library in front of Qlik:

- asgiproxy 0.2 (aiohttp): `ProxyContext` + `make_simple_proxy_app`, configured as its README
  says ("see asgiproxy/__main__.py"): `BaseURLProxyConfigMixin` with `upstream_base_url` and
  `rewrite_host_header`, default `ProxyContext` (aiohttp session, 20 concurrent upstream requests);
- fastapi-proxy-lib 0.3 (httpx, httpx-ws): `ReverseHttpProxy` + `ReverseWebSocketProxy` with
  `base_url` = the upstream, both registered on one app with `RouterHelper` (what its
  `reverse_http_app` / `reverse_ws_app` helpers do, one proxy each), with the helper's lifespan
  closing the clients. Where FastAPI is not installed (the library needs only Starlette), the same
  catch-all routes on a Starlette app.

Both forward every request as is: no identity header, no login, no path or Origin checks; they have
no such features, so they do less work per request than the middleware does. Defaults are kept
(message sizes, timeouts, pools): that is what a user gets. What that means here:

- asgiproxy buffers request bodies of 512 KiB and more whole before sending them on (its
  `determine_incoming_streaming` streams only the small ones), so a 1 GiB upload costs ~2 GiB of
  RSS; its aiohttp WebSocket client keeps aiohttp's 4 MiB message limit, and a larger message from
  the upstream ends the client's socket with a 1000 (OK) close: the 20 MiB echo fails;
- fastapi-proxy-lib's httpx pool (100 connections, 20 kept alive) walks every pooled connection on
  each request (encode/httpx#3215): most of its CPU per request, even with sniffio installed.

Run: `QLIK_BENCH_UPSTREAM=http://127.0.0.1:PORT uvicorn --factory benchmarks.peers:asgiproxy_app`.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Peer:
    name: str  # the column in the tables
    distribution: str  # what `pip install` calls it (for the version)
    modules: tuple[str, ...]  # importable when installed
    factory: str  # `module:function` for `uvicorn --factory`
    setup: str  # one line for the report

    def installed(self) -> bool:
        return all(importlib.util.find_spec(m) is not None for m in self.modules)

    def version(self) -> str:
        try:
            return metadata.version(self.distribution)
        except metadata.PackageNotFoundError:
            return "?"


PEERS = [
    Peer(
        "asgiproxy",
        "asgiproxy",
        ("asgiproxy", "aiohttp"),
        "benchmarks.peers:asgiproxy_app",
        "aiohttp; `ProxyContext` + `make_simple_proxy_app`, `BaseURLProxyConfigMixin`",
    ),
    Peer(
        "fastapi-proxy-lib",
        "fastapi-proxy-lib",
        ("fastapi_proxy_lib", "httpx", "httpx_ws"),
        "benchmarks.peers:fastapi_proxy_lib_app",
        "httpx + httpx-ws; `ReverseHttpProxy` + `ReverseWebSocketProxy`, FastAPI `RouterHelper`",
    ),
]


def _upstream() -> str:
    return os.environ["QLIK_BENCH_UPSTREAM"].rstrip("/")


def asgiproxy_app() -> Any:
    """asgiproxy as its CLI (`python -m asgiproxy URL`, the documented reference) builds it."""
    from asgiproxy.config import BaseURLProxyConfigMixin, ProxyConfig
    from asgiproxy.context import ProxyContext
    from asgiproxy.simple_proxy import make_simple_proxy_app

    upstream = _upstream() + "/"
    # Requests go on as they came (Host rewritten): no identity header, as asgiproxy has no such
    # feature (nor login, path or Origin checks).
    config = type(
        "Config",
        (BaseURLProxyConfigMixin, ProxyConfig),
        {"upstream_base_url": upstream, "rewrite_host_header": urlsplit(upstream).netloc},
    )()
    return make_simple_proxy_app(ProxyContext(config))


def fastapi_proxy_lib_app() -> Any:
    """fastapi-proxy-lib's reverse HTTP and WebSocket proxies on the whole upstream."""
    from fastapi_proxy_lib.core.http import ReverseHttpProxy
    from fastapi_proxy_lib.core.websocket import ReverseWebSocketProxy

    base_url = _upstream() + "/"  # the library requires the trailing slash
    # Requests go on as they came (Host rewritten): no identity header, as fastapi-proxy-lib has no
    # such feature (nor login, path or Origin checks).
    http = ReverseHttpProxy(base_url=base_url)
    ws = ReverseWebSocketProxy(base_url=base_url)
    if importlib.util.find_spec("fastapi") is not None:
        from fastapi import FastAPI
        from fastapi_proxy_lib.fastapi.router import RouterHelper

        helper = RouterHelper()
        app = FastAPI(lifespan=helper.get_lifespan())
        app.include_router(helper.register_router(http))
        app.include_router(helper.register_router(ws))
        return app
    return _starlette_app(http, ws)


def _starlette_app(http: Any, ws: Any) -> Any:
    import contextlib
    from collections.abc import AsyncIterator

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    async def http_proxy(request: Request) -> Response:
        response: Response = await http.proxy(request=request)
        return response

    async def ws_proxy(websocket: WebSocket) -> None:
        await ws.proxy(websocket=websocket)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await http.aclose()
        await ws.aclose()

    methods = ["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"]
    return Starlette(
        routes=[
            Route("/{path:path}", http_proxy, methods=methods),
            WebSocketRoute("/{path:path}", ws_proxy),
        ],
        lifespan=lifespan,
    )
