"""One app instance for the multi-instance tests, configured by environment (run under uvicorn).

    QLIK_URL=http://127.0.0.1:N REDIS_URL=redis://... SEAL_KEY=... KEY_PREFIX=t1: \
        python -m uvicorn tests.instance_app:create_app --factory --port M
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from qlik_sso_middleware import QlikIdentity, QlikSSO, QlikSSOMiddleware, QlikTarget
from qlik_sso_middleware.stores.redis import RedisSessionStore


def resolver(conn: HTTPConnection) -> QlikIdentity | None:
    user = conn.cookies.get("app_user")
    return QlikIdentity("ACME", user) if user else None


def create_app() -> ASGIApp:
    store = RedisSessionStore(
        os.environ["REDIS_URL"],
        sealing_keys=[os.environ["SEAL_KEY"]],
        key_prefix=os.environ["KEY_PREFIX"],
    )
    sso = QlikSSO(QlikTarget(os.environ["QLIK_URL"], prefix="sso"), resolver=resolver, store=store)

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def logout(request: Request) -> JSONResponse:
        user = request.cookies["app_user"]
        return JSONResponse({"dropped": await sso.logout(QlikIdentity("ACME", user))})

    app = Starlette(routes=[Route("/health", health), Route("/logout", logout, methods=["POST"])])
    return QlikSSOMiddleware(app, sso=sso)
