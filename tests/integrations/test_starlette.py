"""Starlette/FastAPI: add_middleware's kwargs path, the scope-user resolver, the logout helpers."""

from __future__ import annotations

import json

import httpx2 as httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
    SimpleUser,
)
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from websockets.asyncio.client import connect

from qlik_sso_middleware import QlikSSOMiddleware, QlikTarget, ScopeUserResolver
from qlik_sso_middleware.errors import ConfigurationError
from qlik_sso_middleware.integrations.starlette import (
    QlikLogout,
    current_identity,
    get_qlik_sso,
    logout_current_user,
    qlik_logout,
)
from qlik_sso_middleware.testing import DEMO_APPS, QlikSimulator

from ..servers import serve


class CookieBackend(AuthenticationBackend):
    """The app's own authentication: a `user` cookie (stands in for any real backend)."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        name = conn.cookies.get("user")
        return (AuthCredentials(["authenticated"]), SimpleUser(name)) if name else None


def fastapi_app(sim: QlikSimulator) -> FastAPI:
    app = FastAPI()

    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, str | None]:
        identity = await current_identity(request)
        return {"identity": str(identity) if identity else None}

    @app.post("/logout")
    async def logout(qlik: QlikLogout = Depends(qlik_logout)) -> dict[str, int]:  # noqa: B008
        return {"dropped": await qlik()}

    # add_middleware builds the middleware lazily with keyword arguments; the one added last is
    # the outermost, so authentication runs before the Qlik middleware reads scope["user"].
    app.add_middleware(
        QlikSSOMiddleware,
        target=QlikTarget(sim.proxy_url, prefix="sso"),
        resolver=ScopeUserResolver("ACME"),
    )
    app.add_middleware(AuthenticationMiddleware, backend=CookieBackend())
    return app


async def test_fastapi_add_middleware_scope_user_and_logout_dependency(
    simulator: QlikSimulator,
) -> None:
    app = fastapi_app(simulator)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        client.cookies.set("user", "alice")
        me = await client.get("/sso/qps/user")
        assert (me.json()["userDirectory"], me.json()["userId"]) == ("ACME", "alice")
        assert (await client.get("/whoami")).json() == {"identity": "ACME\\alice"}
        assert len(simulator.live_sessions("ACME\\alice")) == 1
        async with connect(
            "ws" + url[4:] + f"/sso/app/{DEMO_APPS[0].id}",
            origin=url,  # type: ignore[arg-type]
            additional_headers={"cookie": "user=alice"},
        ) as ws:
            auth = json.loads(await ws.recv())
            assert auth["params"]["userId"] == "alice"
        response = await client.post("/logout", headers={"origin": url})
        assert response.json() == {"dropped": 1}
        assert simulator.live_sessions("ACME\\alice") == []
        # Nobody logged in: the dependency still works and drops nothing.
        client.cookies.clear()
        assert (await client.post("/logout")).json() == {"dropped": 0}
        assert (await client.get("/sso/qps/user")).status_code == 401


async def test_authentication_inside_the_qlik_middleware_means_nobody(
    simulator: QlikSimulator,
) -> None:
    # The documented hazard: with the order reversed, scope["user"] is not set yet.
    app = Starlette(
        middleware=[
            Middleware(
                QlikSSOMiddleware,
                target=QlikTarget(simulator.proxy_url, prefix="sso"),
                resolver=ScopeUserResolver("ACME"),
            ),
            Middleware(AuthenticationMiddleware, backend=CookieBackend()),
        ]
    )
    async with (
        serve(app) as url,
        httpx.AsyncClient(base_url=url, cookies={"user": "alice"}) as client,
    ):
        response = await client.get("/sso/qps/user")
    assert response.status_code == 401
    assert simulator.logins() == 0


async def test_starlette_logout_current_user_helper(simulator: QlikSimulator) -> None:
    async def logout(request: Request) -> JSONResponse:
        return JSONResponse({"dropped": await logout_current_user(request)})

    app = Starlette(
        routes=[Route("/logout", logout, methods=["POST"])],
        middleware=[
            Middleware(AuthenticationMiddleware, backend=CookieBackend()),
            Middleware(
                QlikSSOMiddleware,
                target=QlikTarget(simulator.proxy_url, prefix="sso"),
                resolver=ScopeUserResolver("ACME"),
            ),
        ],
    )
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        client.cookies.set("user", "bob")
        assert (await client.get("/sso/qps/user")).status_code == 200
        assert (await client.post("/logout")).json() == {"dropped": 1}
    assert simulator.live_sessions("ACME\\bob") == []
    assert simulator.live_sessions() == []


async def test_add_middleware_validates_options_when_the_app_starts(
    simulator: QlikSimulator,
) -> None:
    app = Starlette()
    app.add_middleware(QlikSSOMiddleware, target=QlikTarget(simulator.proxy_url))
    # No resolver: the error names the field as soon as Starlette builds the stack.
    with pytest.raises(ConfigurationError, match="resolver"):
        app.build_middleware_stack()


def test_get_qlik_sso_outside_the_middleware_is_a_clear_error() -> None:
    conn = HTTPConnection({"type": "http", "headers": [], "path": "/"})
    with pytest.raises(ConfigurationError, match="QlikSSOMiddleware"):
        get_qlik_sso(conn)
