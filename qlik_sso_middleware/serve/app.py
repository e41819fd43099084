"""`qlik-sso serve`'s ASGI app: the middleware as a standalone reverse proxy, for apps that cannot
host ASGI.

    browser ──> qlik-sso serve ──/sso/...──> Qlik (with the user's Qlik session)
                               └─ anything else ──> the app ([serve].upstream)

Who the user is comes from `[resolver]`:
- `handoff`: after its own login the app redirects the browser to
  `/_qlik_sso/handoff?token=<Handoff(keys).issue(identity, next="/")>`; the proxy verifies the
  token (signature, expiry, once only), sets its own signed session cookie and redirects to `next`.
- `trusted_header`: an authenticating proxy in front sets a header (peer address must be trusted).

Own endpoints: `GET /_qlik_sso/health` (JSON), `GET /_qlik_sso/handoff`, `POST /_qlik_sso/logout`
(ends the Qlik session and the proxy session; same-origin only), and `[metrics].path` when
`[metrics] enabled = true` and prometheus-client is installed. `serve.runner` runs it under uvicorn.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import (
    QlikSSOConfig,
    build_auth,
    build_resolver,
    build_store,
    build_targets,
)
from ..core import QlikSSO
from ..errors import ConfigurationError, QlikError, QlikSSOError
from ..identity import QlikIdentity
from ..middleware import QlikSSOMiddleware
from ..responses import respond
from .app_proxy import AppProxy
from .handoff import Handoff, HandoffRejected, SessionCookie

if TYPE_CHECKING:
    from ..metrics import QlikMetrics

__all__ = ["PREFIX", "ServeApp", "build_serve_app"]

logger = logging.getLogger("qlik_sso_middleware.serve")
PREFIX = "/_qlik_sso/"


class ServeApp:
    """The standalone proxy's ASGI app: own endpoints, then the middleware over `AppProxy`."""

    def __init__(self, config: QlikSSOConfig, *, metrics: QlikMetrics | None = None) -> None:
        serve = config.serve
        if serve.upstream is None:
            raise config.error(
                "serve.upstream", "is required (the app's URL, e.g. http://127.0.0.1:8000)"
            )
        kind = config.resolver.kind
        keys = [k.reveal() for k in serve.keys]
        self.handoff: Handoff | None = None
        self.cookie: SessionCookie | None = None
        self.cookie_name = serve.cookie_name
        self.cookie_secure = serve.cookie_secure
        self.handoff_path = serve.handoff_path
        resolver: Any
        if kind == "handoff":
            if not keys:
                raise config.error("serve.keys", "at least one signing key is needed for handoff")
            try:
                self.handoff = Handoff(keys, max_age=serve.handoff_max_age)
                self.cookie = SessionCookie(keys, max_age=serve.session_max_age)
            except ConfigurationError as exc:
                raise config.error(f"serve.{exc.field}", exc.message.split(": ", 1)[-1]) from None
            resolver = self._cookie_identity
        elif kind == "trusted_header":
            resolver = build_resolver(config)
        else:
            raise config.error(
                "resolver.kind", "serve needs 'handoff' or 'trusted_header' to know the user"
            )
        self.metrics = metrics
        auth = build_auth(config)
        store = build_store(config)
        if metrics is not None:
            auth, store = metrics.wrap_auth(auth), metrics.wrap_store(store)
        targets = build_targets(config, auth=auth)
        app = config.app
        try:
            self.sso = QlikSSO(
                targets,
                resolver=resolver,
                store=store,
                allowed_origins=app.allowed_origins,
                trusted_proxies=app.trusted_proxies,
                forward_cookies=app.forward_cookies,
                login_url=app.login_url,
                allow_missing_origin=app.allow_missing_origin,
            )
        except ConfigurationError as exc:
            raise config.error(f"app.{exc.field}", exc.message.split(": ", 1)[-1]) from None
        try:
            self.app_proxy = AppProxy(
                serve.upstream, private_cookies=frozenset({serve.cookie_name})
            )
        except ConfigurationError as exc:
            raise config.error("serve.upstream", exc.message.split(": ", 1)[-1]) from None
        inner: ASGIApp = QlikSSOMiddleware(self.app_proxy, sso=self.sso)
        if metrics is not None:
            inner = metrics.wrap_app(inner, self.sso)
        self.inner = inner
        self.metrics_path = config.metrics.path if metrics is not None else None

    def _cookie_identity(self, conn: HTTPConnection) -> QlikIdentity | None:
        value = conn.cookies.get(self.cookie_name)
        if not value or self.cookie is None:
            return None
        return self.cookie.loads(value)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path.startswith(PREFIX) or path == self.handoff_path):
            await self._own(scope, receive, send)
            return
        await self.inner(scope, receive, send)

    async def _own(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path == PREFIX + "health" and method in ("GET", "HEAD"):
            await respond(send, 200, json.dumps({"status": "ok"}).encode(), "application/json")
        elif path == self.handoff_path and method == "GET" and self.handoff is not None:
            await self._handoff(scope, send)
        elif path == PREFIX + "logout" and method == "POST":
            await self._logout(scope, send)
        elif path == self.metrics_path and method == "GET" and self.metrics is not None:
            body, content_type = self.metrics.render()
            await respond(send, 200, body, content_type)
        else:
            await respond(send, 404, b"Not found", "text/plain; charset=utf-8")

    async def _handoff(self, scope: Scope, send: Send) -> None:
        assert self.handoff is not None and self.cookie is not None
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        tokens = query.get("token", [])
        try:
            if len(tokens) != 1:
                raise HandoffRejected("exactly one token parameter is needed")
            verified = self.handoff.verify(tokens[0])
        except QlikSSOError as exc:
            # The token itself is never logged.
            logger.warning("handoff refused: %s", exc.message)
            await respond(send, 401, b"Sign-in link invalid or expired", "text/plain")
            return
        logger.info("handoff: %s signed in", verified.identity)
        cookie = self._set_cookie(self.cookie.dumps(verified.identity), self.cookie.max_age)
        await respond(
            send,
            303,
            b"",
            "text/plain",
            [(b"location", verified.next.encode("utf-8")), (b"set-cookie", cookie)],
        )

    async def _logout(self, scope: Scope, send: Send) -> None:
        conn = HTTPConnection(scope)
        origin = conn.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != conn.headers.get("host"):
            await respond(send, 403, b"Cross-site logout refused", "text/plain")
            return
        identity = await self.sso.resolver.resolve(conn)
        if isinstance(identity, QlikIdentity):
            with contextlib.suppress(QlikError):  # logged by QlikSSO; the cookie goes anyway
                await self.sso.logout(identity, host=conn.headers.get("host"))
        await respond(
            send, 303, b"", "text/plain",
            [(b"location", b"/"), (b"set-cookie", self._set_cookie("", 0))],
        )  # fmt: skip

    def _set_cookie(self, value: str, max_age: int) -> bytes:
        parts = [f"{self.cookie_name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
        parts.append(f"Max-Age={max_age}")
        if self.cookie_secure:
            parts.append("Secure")
        return "; ".join(parts).encode("latin-1")


def build_serve_app(config: QlikSSOConfig) -> ServeApp:
    """The serve app for `config`, with metrics when `[metrics] enabled` (needs the extra)."""
    metrics = None
    if config.metrics.enabled:
        try:
            from ..metrics import QlikMetrics
        except ImportError:
            raise config.error(
                "metrics.enabled",
                "needs prometheus-client: pip install 'qlik-sso-middleware[metrics]'",
            ) from None
        metrics = QlikMetrics()
    return ServeApp(config, metrics=metrics)
