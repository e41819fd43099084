"""`QlikSSOMiddleware`: pure ASGI; proxies the Qlik mount paths, passes everything else through.

    app = QlikSSOMiddleware(app, sso=QlikSSO(QlikTarget("https://qlik.acme.com"), resolver=...))
    # or, with Starlette/FastAPI:
    app.add_middleware(QlikSSOMiddleware, target=QlikTarget(...), resolver=...)

Every request under a mount path goes through the same steps, HTTP and WebSocket alike: path
checks → cross-site checks → identity → the user's cached Qlik session → forward with hostile
headers stripped. Anything else reaches the wrapped app untouched, with `scope["qlik_sso"]` set so
routes can log users out of Qlik.

A Qlik Cloud target takes the same steps (its cookie proxy is a `ForwardingSession` like a Qlik
Sense session); its one own path, the token broker, answers the user's access token instead of
forwarding, after the strictest cross-site check (`QlikSSO.admit`, `check_same_origin`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .cloud.target import CloudTarget
from .core import Admission, QlikSSO
from .errors import ConfigurationError, NotAuthenticated, QlikSSOError
from .offload.endpoint import answer_auth, answer_redirect, redirect_of
from .offload.front import FrontProxy
from .proxy.http import forward_http
from .proxy.websocket import forward_websocket
from .responses import close_websocket, refuse_websocket, respond, respond_error
from .sessions.cloud import broker_answer
from .target import QlikTarget

__all__ = ["QlikSSOMiddleware"]

logger = logging.getLogger("qlik_sso_middleware.middleware")


class QlikSSOMiddleware:
    """Wraps any ASGI app. Give either a ready `sso` or the options of `QlikSSO` (`target`/
    `targets`, `resolver`, `store`, ...). All validation happens here, at construction.

    `front_proxy` turns on offload mode (nginx or Caddy carries Qlik's traffic, see `offload/`):
    the middleware then also answers the front proxy's auth sub-requests at
    `front_proxy.auth_path`, and the requests it sends through the app.
    """

    def __init__(
        self,
        app: ASGIApp,
        /,  # positional-only: lets mypy accept `add_middleware(QlikSSOMiddleware, **options)`
        *,
        sso: QlikSSO | None = None,
        target: QlikTarget | CloudTarget | None = None,
        targets: Sequence[QlikTarget | CloudTarget] = (),
        front_proxy: FrontProxy | None = None,
        **options: Any,
    ) -> None:
        self.app = app
        self.front_proxy = front_proxy
        if sso is None:
            chosen = [target] if target is not None else list(targets)
            if target is not None and targets:
                raise ConfigurationError("give target or targets, not both", field="target")
            if "resolver" not in options:
                raise ConfigurationError("a resolver is required", field="resolver")
            sso = QlikSSO(chosen, **options)
        elif target is not None or targets or options:
            raise ConfigurationError("give sso or its options, not both", field="sso")
        if front_proxy is not None:
            if not isinstance(front_proxy, FrontProxy):
                raise ConfigurationError("must be a FrontProxy", field="front_proxy")
            if sso.upstream_for_path(front_proxy.auth_path) is not None:
                raise ConfigurationError(
                    f"{front_proxy.auth_path!r} lies under a Qlik mount path", field="front_proxy"
                )
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
        code wins over `[resolver]`; `[offload] secret` turns on offload mode. Raises
        `ConfigurationError` naming the key and file line."""
        from .config import build_sso, load_config

        config = load_config(path, env)
        front: FrontProxy | None = None
        if config.offload.secret is not None:
            try:
                front = FrontProxy(config.offload.secret.reveal(), config.offload.auth_path)
            except ConfigurationError as exc:
                field = f"offload.{exc.field}"
                raise config.error(field, exc.message.split(": ", 1)[1]) from None
        return cls(app, sso=build_sso(config, resolver=resolver), front_proxy=front)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, receive, self._lifespan_send(send))
            return
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        front = self.front_proxy
        if front is not None and kind == "http" and scope["path"] == front.auth_path:
            await answer_auth(self.sso, front, scope, send)
            return
        upstream = self.sso.upstream_for_path(scope["path"])
        if upstream is None:
            scope["qlik_sso"] = self.sso
            await self.app(scope, receive, send)
            return
        try:
            admitted = await self.sso.admit(scope, upstream)
            redirect = redirect_of(front, scope) if front is not None else None
            if redirect is not None and await answer_redirect(admitted, redirect, send):
                return
        except QlikSSOError as exc:
            await self._refuse(scope, receive, send, exc)
            return
        if admitted.token_request:
            await self._access_token(scope, receive, send, admitted)
        elif kind == "websocket":
            await self._websocket(scope, receive, send, admitted)
        else:
            await self._http(scope, receive, send, admitted)

    async def _access_token(
        self, scope: Scope, receive: Receive, send: Send, admitted: Admission
    ) -> None:
        """The token broker: the user's access token as JSON, never stored by anyone between."""
        try:
            token = await self.sso.access_token(admitted.upstream, admitted.identity)
        except QlikSSOError as exc:
            await self._refuse(scope, receive, send, exc)
            return
        body = broker_answer(token, time.time())
        await respond(send, 200, body, "application/json", [(b"pragma", b"no-cache")])

    async def _http(self, scope: Scope, receive: Receive, send: Send, admitted: Admission) -> None:
        tracking = _TrackingSend(send, "http.response.start")
        route = admitted.upstream.route
        try:
            await forward_http(route, admitted.session, admitted.request, receive, tracking)
        except QlikSSOError as exc:
            if tracking.started:
                raise
            await self._refuse(scope, receive, send, exc)

    async def _websocket(
        self, scope: Scope, receive: Receive, send: Send, admitted: Admission
    ) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        tracking = _TrackingSend(send, "websocket.accept")
        route = admitted.upstream.route
        try:
            await forward_websocket(route, admitted.session, admitted.request, receive, tracking)
        except QlikSSOError as exc:
            _log_refusal(scope, exc)
            if tracking.started:
                await close_websocket(send, exc.ws_close_code)
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
                try:
                    for upstream in self.sso.upstreams:
                        await upstream.choose_engine()
                except ConfigurationError as exc:
                    # Fail the start-up: the server exits and prints why and what to change.
                    message = {"type": "lifespan.startup.failed", "message": str(exc)}
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
