"""The app under test: a tiny Starlette app behind `QlikSSOMiddleware`, as a user would deploy it.

Header authentication against the benchmark upstream, a cached session per user, every security check
on (path policy, Origin checks, identity header stripping). The app's "login" is a cookie
`app_user=<name>` read by an async resolver (a sync one would run in a thread per request, which is
the resolver's cost, not the proxy's: see the micro-benchmark).

Run: `QLIK_BENCH_UPSTREAM=http://127.0.0.1:PORT uvicorn --factory benchmarks.proxied:create_app`;
`create_offload_app` is the same app answering nginx's auth sub-requests (offload mode).
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from qlik_sso_middleware import FrontProxy, HeaderAuth, QlikIdentity, QlikSSOMiddleware, QlikTarget
from qlik_sso_middleware.proxy.ws_client import use_ws_client


async def cookie_resolver(conn: HTTPConnection) -> QlikIdentity | None:
    user = conn.cookies.get("app_user")
    return QlikIdentity("BENCH", user) if user else None


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("app home")


def create_app(front_proxy: FrontProxy | None = None) -> QlikSSOMiddleware:
    upstream = os.environ["QLIK_BENCH_UPSTREAM"]
    app = Starlette(routes=[Route("/", home)])
    engine = os.environ.get("QLIK_BENCH_ENGINE", "auto")  # "aiohttp": the bare install's engine
    if os.environ.get("QLIK_BENCH_WS_CLIENT"):  # "websockets": the relay on the websockets client
        use_ws_client(os.environ["QLIK_BENCH_WS_CLIENT"])
    target = QlikTarget(upstream, prefix="sso", auth=HeaderAuth("hdr-usr"), http_engine=engine)
    return QlikSSOMiddleware(app, target=target, resolver=cookie_resolver, front_proxy=front_proxy)


def create_offload_app() -> QlikSSOMiddleware:
    from .offload import SECRET

    return create_app(FrontProxy(SECRET))
