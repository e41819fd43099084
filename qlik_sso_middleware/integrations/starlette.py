"""Starlette and FastAPI: reach the core from routes, and log the current user out of Qlik.

Wiring (the middleware is pure ASGI, so it goes in like any Starlette middleware):

    app = Starlette(routes=..., middleware=[
        Middleware(SessionMiddleware, secret_key=...),               # outermost
        Middleware(AuthenticationMiddleware, backend=MyBackend()),   # sets scope["user"]
        Middleware(QlikSSOMiddleware, target=QlikTarget(...), resolver=ScopeUserResolver("ACME")),
    ])

Order matters: `AuthenticationMiddleware` (and the session middleware it reads) must be OUTSIDE
`QlikSSOMiddleware`, otherwise `scope["user"]` is not set yet when the resolver runs and every
Qlik request answers 401. With `app.add_middleware`, the middleware added *last* is the
outermost, so add `QlikSSOMiddleware` first.

FastAPI routes log the user out of Qlik with the `qlik_logout` dependency:

    @app.post("/logout")
    async def logout(request: Request, qlik: QlikLogout = Depends(qlik_logout)):
        await qlik()               # before the app's own session is cleared: the resolver needs it
        request.session.clear()

Nothing here imports FastAPI: dependencies are plain functions of a Starlette `Request`.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from ..core import QlikSSO
from ..errors import ConfigurationError
from ..identity import QlikIdentity
from ..resolvers.base import Resolved

__all__ = [
    "QlikLogout",
    "current_identity",
    "get_qlik_sso",
    "logout_current_user",
    "qlik_logout",
]


def get_qlik_sso(conn: HTTPConnection) -> QlikSSO:
    """The `QlikSSO` of the middleware that handled `conn` (also usable as a FastAPI dependency).

    Raises `ConfigurationError` when the request did not pass through `QlikSSOMiddleware` (the
    route is mounted outside it, or the middleware is missing).
    """
    sso = conn.scope.get("qlik_sso")
    if not isinstance(sso, QlikSSO):
        raise ConfigurationError(
            "request did not pass through QlikSSOMiddleware; add it to the app", field="middleware"
        )
    return sso


async def _resolve(conn: HTTPConnection) -> tuple[QlikSSO, QlikIdentity | None, str | None]:
    sso = get_qlik_sso(conn)
    result = await sso.resolver.resolve(conn)
    if isinstance(result, Resolved):
        return sso, result.identity, result.target
    return sso, result, None


async def current_identity(conn: HTTPConnection) -> QlikIdentity | None:
    """The Qlik identity the middleware would use for this request (`None`: nobody logged in)."""
    _, identity, _ = await _resolve(conn)
    return identity


async def logout_current_user(conn: HTTPConnection) -> int:
    """End the Qlik session(s) of the user logged in on `conn`; return how many cached sessions
    were dropped (0 when nobody is logged in).

    Call it *before* clearing the app's own session: the resolver reads the user from it. For a
    per-tenant resolver only the tenant's target is logged out.
    """
    sso, identity, target = await _resolve(conn)
    if identity is None:
        return 0
    return await sso.logout(identity, target=target)


class QlikLogout:
    """What the `qlik_logout` dependency gives a route: `await qlik()` logs the user out of Qlik.

    `identity` is who will be logged out (resolved when the dependency ran), `None` if nobody.
    """

    def __init__(self, sso: QlikSSO, identity: QlikIdentity | None, target: str | None) -> None:
        self.sso = sso
        self.identity = identity
        self._target = target

    async def __call__(self) -> int:
        if self.identity is None:
            return 0
        return await self.sso.logout(self.identity, target=self._target)


async def qlik_logout(conn: HTTPConnection) -> QlikLogout:
    """FastAPI dependency: `qlik: QlikLogout = Depends(qlik_logout)`, then `await qlik()`.

    The user is resolved when the dependency runs, i.e. before the route body clears the app's
    session, so the order inside the route does not matter.
    """
    sso, identity, target = await _resolve(conn)
    return QlikLogout(sso, identity, target)
