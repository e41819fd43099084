"""A small Starlette app behind `QlikSSOMiddleware`, pointed at a simulator, for proxy tests.

Its "login" is a plain cookie `app_user=<name>`: the resolver under test is not the point here (the
integration tests cover real framework sessions), the middleware's behaviour is.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from qlik_sso_middleware import FrontProxy, QlikIdentity, QlikSSO, QlikSSOMiddleware, QlikTarget
from qlik_sso_middleware.testing import QlikSimulator


def cookie_resolver(conn: HTTPConnection) -> QlikIdentity | None:
    user = conn.cookies.get("app_user")
    return QlikIdentity("ACME", user) if user else None


def build_app(
    sim: QlikSimulator,
    *,
    target: dict[str, Any] | None = None,
    front_proxy: FrontProxy | None = None,
    url: str | None = None,
    **options: Any,
) -> tuple[QlikSSOMiddleware, QlikSSO]:
    """The app behind the middleware; `url` replaces the simulator's own proxy URL (a host name
    its certificate names, say)."""

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse("app home")

    async def logout(request: Request) -> JSONResponse:
        sso: QlikSSO = request.scope["qlik_sso"]
        user = request.cookies.get("app_user")
        dropped = await sso.logout(QlikIdentity("ACME", user)) if user else 0
        return JSONResponse({"dropped": dropped})

    async def echo_cookies(request: Request) -> JSONResponse:
        return JSONResponse(dict(request.cookies))

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/logout", logout, methods=["POST"]),
            Route("/cookies", echo_cookies),
        ]
    )
    options.setdefault("resolver", cookie_resolver)
    sso = QlikSSO(QlikTarget(url or sim.proxy_url, prefix="sso", **(target or {})), **options)
    return QlikSSOMiddleware(app, sso=sso, front_proxy=front_proxy), sso
