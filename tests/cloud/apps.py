"""A Starlette app behind `QlikSSOMiddleware` serving a simulated Qlik Cloud tenant, for tests.

Its "login" is the plain cookie `app_user=<name>` (as in tests/apps.py); the identity carries a
name and an e-mail attribute so both the JWT login and provisioning have what they need. The
tenant's subject for `alice` is `ACME\\alice` (the default `CloudIdentityMapping`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx2 as httpx
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from qlik_sso_middleware import QlikIdentity, QlikSSO, QlikSSOMiddleware
from qlik_sso_middleware.cloud import CloudTarget
from qlik_sso_middleware.testing.cloud import CloudSimulator, CloudUser, SigningKeyPair
from tests.cloud.conftest import target_for
from tests.servers import serve

MOUNT = "/qlik-cloud/"
TOKEN_URL = MOUNT + "access-token"


def identity_of(user: str, **attributes: str) -> QlikIdentity:
    values = {"name": user.title(), "email": f"{user}@acme.example", **attributes}
    return QlikIdentity("ACME", user, values)


def cookie_resolver(conn: HTTPConnection) -> QlikIdentity | None:
    user = conn.cookies.get("app_user")
    if not user:
        return None
    group = conn.cookies.get("app_group")
    return identity_of(user, **({"group": group} if group else {}))


def tenant_user(name: str) -> CloudUser:
    """The tenant's record of app user `name` (impersonation needs it to exist)."""
    return CloudUser(f"ACME\\{name}", name.title(), f"{name}@acme.example")


def cloud_app(
    sim: CloudSimulator,
    key: SigningKeyPair,
    *,
    target: CloudTarget | None = None,
    **options: Any,
) -> tuple[QlikSSOMiddleware, QlikSSO]:
    """The app, with `target` (default: `target_for(sim, key)`, both modes on)."""

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse("app home")

    async def logout(request: Request) -> JSONResponse:
        sso: QlikSSO = request.scope["qlik_sso"]
        user = request.cookies.get("app_user")
        dropped = await sso.logout(identity_of(user)) if user else 0
        return JSONResponse({"dropped": dropped})

    app = Starlette(routes=[Route("/", home), Route("/logout", logout, methods=["POST"])])
    options.setdefault("resolver", cookie_resolver)
    sso = QlikSSO(target or target_for(sim, key), **options)
    return QlikSSOMiddleware(app, sso=sso), sso


def same_origin(url: str) -> dict[str, str]:
    """The headers a browser sends with a same-origin `fetch(..., {method: "POST"})`."""
    return {"origin": url, "sec-fetch-site": "same-origin", "sec-fetch-mode": "cors"}


@contextlib.asynccontextmanager
async def signed_in(
    app: QlikSSOMiddleware, user: str | None, **options: Any
) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """`app` served on loopback, and a client logged in as `user` (None: nobody)."""
    cookies = {"app_user": user} if user else {}
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, cookies=cookies, **options) as client,
    ):
        yield url, client
