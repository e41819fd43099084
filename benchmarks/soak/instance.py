"""One app instance of the soak, run under uvicorn and configured by environment.

    QLIK_URL=... QLIK_API_URL=... QLIK_CERT_DIR=... SOAK_AUTH=session REDIS_URL=... SEAL_KEY=... \
        python -m uvicorn benchmarks.soak.instance:create_app --factory --port N

A Starlette app behind `QlikSSOMiddleware` with the Redis store, as an operator runs several:

- `POST /login` (form `user`) sets the app's session cookie (`app_user`), `POST /logout` logs the
  user out of Qlik (`sso.logout`) and clears it; the resolver reads the cookie. (How the app knows
  its user is not what the soak tests; the middleware behind it is.)
- `GET /health`; `GET /_soak/stats`: RSS, open fds and asyncio tasks of this process.
- Upstream timeouts are short (`read` 10 s) so a latency spike above them ends in 504s.

`SOAK_WS_CLIENT=aiohttp` (or `websockets`) opens the relays' upstream sockets with that client
instead of the library's default (`proxy/ws_client.py`).

`SOAK_LOG_LEVEL=INFO` writes the middleware's own log (logins, renewals, sessions Qlik ended) to
the instance's log as well (it logs nothing below WARNING otherwise).

`SOAK_CROSS_USER_EVERY=N` plants a bug for the checker's own test: the store hands out another
user's cached session once in N lookups. Never set it otherwise.
"""

from __future__ import annotations

import logging
import os
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from qlik_sso_middleware import (
    HeaderAuth,
    QlikIdentity,
    QlikSSO,
    QlikSSOMiddleware,
    QlikTarget,
    QPSSettings,
    SessionApiAuth,
    TicketAuth,
    Timeouts,
)
from qlik_sso_middleware.auth.base import AuthStrategy
from qlik_sso_middleware.errors import QlikSSOError
from qlik_sso_middleware.proxy.ws_client import use_ws_client
from qlik_sso_middleware.stores.base import QlikSession, SessionStore
from qlik_sso_middleware.stores.redis import RedisSessionStore

from .qlik import process_stats

__all__ = ["COOKIE", "DIRECTORY", "CrossUserStore", "create_app"]

COOKIE = "app_user"
DIRECTORY = "ACME"
TIMEOUTS = Timeouts(connect=5.0, read=10.0, write=30.0, pool=10.0, websocket_open=10.0)


class CrossUserStore:
    """A planted bug: once in `every` lookups, the session cached for another key comes back.

    Exists only so the soak's checker can be shown to catch what it is meant to catch."""

    def __init__(self, inner: SessionStore, every: int) -> None:
        self._inner = inner
        self._every = every
        self._lookups = 0
        self._seen: dict[str, QlikSession] = {}

    async def get(self, key: str) -> QlikSession | None:
        session = await self._inner.get(key)
        if session is not None:
            self._seen[key] = session
        self._lookups += 1
        if self._lookups % self._every == 0:
            other = next((s for k, s in self._seen.items() if k != key), None)
            if other is not None:
                return other
        return session

    async def set(self, key: str, session: QlikSession, ttl: float) -> None:
        await self._inner.set(key, session, ttl)

    async def delete(self, key: str) -> QlikSession | None:
        self._seen.pop(key, None)
        return await self._inner.delete(key)

    async def keys_for_user(self, user_key: str) -> list[str]:
        return await self._inner.keys_for_user(user_key)

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        return self._inner.lock(key)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _auth(kind: str) -> AuthStrategy:
    if kind == "header":
        return HeaderAuth("hdr-usr")
    certs = Path(os.environ["QLIK_CERT_DIR"])
    settings = QPSSettings(
        os.environ["QLIK_API_URL"],
        certs / "root.pem",
        prefix="sso",
        client_cert=certs / "client.pem",
        client_key=certs / "client_key.pem",
    )
    return SessionApiAuth(settings) if kind == "session" else TicketAuth(settings)


def resolver(conn: HTTPConnection) -> QlikIdentity | None:
    user = conn.cookies.get(COOKIE)
    return QlikIdentity(DIRECTORY, user) if user else None


def create_app() -> ASGIApp:
    if level := os.environ.get("SOAK_LOG_LEVEL"):
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("qlik_sso_middleware").setLevel(level.upper())
    if client := os.environ.get("SOAK_WS_CLIENT"):
        use_ws_client(client)
    store: SessionStore = RedisSessionStore(
        os.environ["REDIS_URL"], sealing_keys=[os.environ["SEAL_KEY"]], key_prefix="soak:"
    )
    if every := int(os.environ.get("SOAK_CROSS_USER_EVERY", "0")):
        store = CrossUserStore(store, every)
    target = QlikTarget(
        os.environ["QLIK_URL"],
        prefix="sso",
        auth=_auth(os.environ.get("SOAK_AUTH", "session")),
        timeouts=TIMEOUTS,
    )
    sso = QlikSSO(target, resolver=resolver, store=store)

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(process_stats())

    async def login(request: Request) -> Response:
        # A urlencoded form, read without python-multipart (not a dependency).
        user = parse_qs((await request.body()).decode()).get("user", [""])[0]
        if not user:
            return PlainTextResponse("user is required", status_code=400)
        response = PlainTextResponse("logged in")
        response.set_cookie(COOKIE, user, httponly=True, samesite="lax")
        return response

    async def logout(request: Request) -> Response:
        user = request.cookies.get(COOKIE)
        try:
            dropped = await sso.logout(QlikIdentity(DIRECTORY, user)) if user else 0
        except QlikSSOError as exc:
            # Redis away, Qlik away: the error knows its status (503, 502...). The user stays
            # logged in to the app, so the Qlik session is not left behind unreachable.
            return JSONResponse({"error": exc.public_message}, status_code=exc.status_code)
        response = JSONResponse({"dropped": dropped})
        response.delete_cookie(COOKIE)
        return response

    app = Starlette(
        routes=[
            Route("/health", health),
            Route("/_soak/stats", stats),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
        ]
    )
    return QlikSSOMiddleware(app, sso=sso)
