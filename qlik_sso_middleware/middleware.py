"""`QlikSSOMiddleware`: pure ASGI; proxies the Qlik mount paths, passes everything else through.

    app = QlikSSOMiddleware(app, sso=QlikSSO(QlikTarget("https://qlik.acme.com"), resolver=...))
    # or, with Starlette/FastAPI:
    app.add_middleware(QlikSSOMiddleware, target=QlikTarget(...), resolver=...)

Every request under a mount path goes through the same steps, HTTP and WebSocket alike: path
checks → cross-site checks → identity → the user's cached Qlik session → forward with hostile
headers stripped. Anything else reaches the wrapped app untouched, with `scope["qlik_sso"]` set so
routes can log users out of Qlik.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .core import QlikSSO
from .errors import ConfigurationError, NotAuthenticated, QlikSSOError
from .proxy.guards import check_cross_site
from .proxy.http import forward_http
from .proxy.request import ProxiedRequest
from .proxy.route import Route
from .proxy.session import ForwardingSession
from .proxy.websocket import forward_websocket
from .responses import refuse_websocket, respond, respond_error
from .target import QlikTarget

__all__ = ["QlikSSOMiddleware"]

logger = logging.getLogger("qlik_sso_middleware.middleware")


class QlikSSOMiddleware:
    """Wraps any ASGI app. Give either a ready `sso` or the options of `QlikSSO` (`target`/
    `targets`, `resolver`, `store`, ...). All validation happens here, at construction.
    """

    def __init__(
        self,
        app: ASGIApp,
        /,  # positional-only: lets mypy accept `add_middleware(QlikSSOMiddleware, **options)`
        *,
        sso: QlikSSO | None = None,
        target: QlikTarget | None = None,
        targets: Sequence[QlikTarget] = (),
        **options: Any,
    ) -> None:
        self.app = app
        if sso is None:
            chosen = [target] if target is not None else list(targets)
            if target is not None and targets:
                raise ConfigurationError("give target or targets, not both", field="target")
            if "resolver" not in options:
                raise ConfigurationError("a resolver is required", field="resolver")
            sso = QlikSSO(chosen, **options)
        elif target is not None or targets or options:
            raise ConfigurationError("give sso or its options, not both", field="sso")
        self.sso = sso

    @classmethod
    def from_config(
        cls,
        app: ASGIApp,
        path: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] = os.environ,
        *,
        resolver: Any = None,
    ) -> QlikSSOMiddleware:
        """Build from the TOML file / `QLIK_SSO_*` schema (see `config/`); a `resolver` given in
        code wins over `[resolver]`. Raises `ConfigurationError` naming the key and file line."""
        from .config import build_sso, load_config

        return cls(app, sso=build_sso(load_config(path, env), resolver=resolver))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, receive, self._lifespan_send(send))
            return
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        upstream = self.sso.upstream_for_path(scope["path"])
        if upstream is None:
            scope["qlik_sso"] = self.sso
            await self.app(scope, receive, send)
            return
        try:
            raw_path = scope.get("raw_path") or quote(scope["path"]).encode("ascii")
            req = ProxiedRequest(scope, upstream.paths.check(raw_path))
            websocket = kind == "websocket"
            check_cross_site(
                req,
                self.sso.allowed_origins,
                websocket=websocket,
                allow_missing_origin=self.sso.allow_missing_origin,
            )
            identity = await self.sso.identify(HTTPConnection(scope), upstream)
        except QlikSSOError as exc:
            await self._refuse(scope, receive, send, exc)
            return
        session = self.sso.user_session(upstream, identity, req.host)
        if kind == "websocket":
            await self._websocket(scope, receive, send, upstream.route, session, req)
        else:
            await self._http(scope, receive, send, upstream.route, session, req)

    async def _http(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: Route,
        session: ForwardingSession,
        req: ProxiedRequest,
    ) -> None:
        tracking = _TrackingSend(send, "http.response.start")
        try:
            await forward_http(route, session, req, receive, tracking)
        except QlikSSOError as exc:
            if tracking.started:
                raise
            await self._refuse(scope, receive, send, exc)

    async def _websocket(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: Route,
        session: ForwardingSession,
        req: ProxiedRequest,
    ) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        tracking = _TrackingSend(send, "websocket.accept")
        try:
            await forward_websocket(route, session, req, receive, tracking)
        except QlikSSOError as exc:
            _log_refusal(scope, exc)
            if tracking.started:
                await send({"type": "websocket.close", "code": exc.ws_close_code, "reason": ""})
            else:
                await refuse_websocket(scope, send, exc)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, exc: QlikSSOError) -> None:
        _log_refusal(scope, exc)
        if scope["type"] == "websocket":
            message = await receive()
            if message["type"] == "websocket.connect":
                await refuse_websocket(scope, send, exc)
            return
        if isinstance(exc, NotAuthenticated) and self.sso.login_url and _is_page_load(scope):
            target = scope.get("root_path", "") + scope["path"]
            if scope.get("query_string"):
                target += "?" + scope["query_string"].decode("latin-1")
            sep = "&" if "?" in self.sso.login_url else "?"
            location = f"{self.sso.login_url}{sep}next={quote(target, safe='/')}"
            await respond(send, 302, b"", "text/plain", [(b"location", location.encode("latin-1"))])
            return
        await respond_error(scope, send, exc)

    def _lifespan_send(self, send: Send) -> Send:
        async def lifespan_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                self.sso.ensure_open()
            elif message["type"] == "lifespan.shutdown.complete":
                await self.sso.aclose()
            await send(message)

        return lifespan_send

    async def aclose(self) -> None:
        """Close pooled clients and the store (when not run under an ASGI lifespan)."""
        await self.sso.aclose()


class _TrackingSend:
    """Wraps `send` to know whether the answer has started (then an error can no longer be a
    response of its own)."""

    __slots__ = ("_send", "_start", "started")

    def __init__(self, send: Send, start: str) -> None:
        self._send = send
        self._start = start
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == self._start:
            self.started = True
        await self._send(message)


def _log_refusal(scope: Scope, exc: QlikSSOError) -> None:
    level = logging.WARNING if exc.status_code >= 500 else logging.DEBUG
    logger.log(level, "%s %s refused: %s", scope["type"], scope["path"], exc.message)


def _is_page_load(scope: Scope) -> bool:
    headers: dict[bytes, bytes] = dict(scope["headers"])
    mode = headers.get(b"sec-fetch-mode")
    if mode is not None:
        return mode == b"navigate"
    return b"text/html" in headers.get(b"accept", b"") and b"x-requested-with" not in headers
