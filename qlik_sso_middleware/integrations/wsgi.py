"""`QlikWSGIMiddleware`: the same middleware for a plain WSGI app, HTTP only.

    from qlik_sso_middleware.integrations.wsgi import QlikWSGIMiddleware
    application = QlikWSGIMiddleware(wsgi_app, target=QlikTarget(...), resolver=...)

Requests under a Qlik mount path run through the one async core (`QlikSSOMiddleware`) on a
persistent event loop in a background thread (a2wsgi's `ASGIMiddleware` carries them across);
every other request goes to the WSGI app directly, untouched, on the server's own thread.

What WSGI cannot do: WebSockets. The WSGI protocol has no way to hand a socket over, so Qlik's
engine WebSocket (`/<prefix>/app/<appId>`) — which mashups and every Qlik page need — cannot work
here. Upgrade requests under a mount path get `501` with a page saying so. Serve the app through
an ASGI server instead (Django: `get_asgi_application()`, Flask: `serve_flask`, any WSGI app:
a2wsgi's `WSGIMiddleware` inside `QlikSSOMiddleware`). Also unsupported under WSGI: request
bodies without `Content-Length` (chunked uploads) reach Qlik empty.

The resolver sees a Starlette `HTTPConnection` built from the WSGI environ (headers, cookies,
client address), so the Flask and Django resolvers work unchanged.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from html import escape
from types import TracebackType
from typing import Any, Protocol

from a2wsgi import ASGIMiddleware
from starlette.types import Receive, Scope, Send

from ..core import QlikSSO
from ..identity import QlikIdentity
from ..middleware import QlikSSOMiddleware
from ..target import QlikTarget
from ._bridge import bind_loop, run_in_sso_loop

__all__ = ["QlikWSGIMiddleware", "WSGIApp"]


class _StartResponse(Protocol):
    def __call__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: tuple[type[BaseException], BaseException, TracebackType] | None = ...,
        /,
    ) -> Callable[[bytes], object]: ...


WSGIApp = Callable[[dict[str, Any], _StartResponse], Iterable[bytes]]

_NO_WEBSOCKET = (
    "This application is served through WSGI, which cannot carry WebSockets, so Qlik's engine "
    "connection (needed by Qlik pages and mashups) cannot be proxied. Serve the application "
    "with an ASGI server (for example uvicorn) through QlikSSOMiddleware instead."
)


async def _not_mounted(scope: Scope, receive: Receive, send: Send) -> None:
    # Only mount paths are sent through the core; anything else reaching here is a bug.
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


class _FromWSGI:
    """Repair what a2wsgi's environ → scope translation loses or invents, before the core runs.

    - WSGI's PATH_INFO is already percent-decoded (`%2f` became `/`), which would hide encoded
      tricks from the core's path checks; `RAW_URI` (gunicorn) or `REQUEST_URI` keep the original
      and become `raw_path`.
    - Servers put empty `CONTENT_LENGTH` / `CONTENT_TYPE` in the environ (wsgiref always does);
      forwarded as empty headers they make the request invalid HTTP, so they are dropped.
    - a2wsgi sets the client address only when the server gives `REMOTE_PORT` too (wsgiref
      does not); the address alone still matters for trusted-peer checks and X-Forwarded-For.
    """

    def __init__(self, app: QlikSSOMiddleware) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        environ: dict[str, Any] = scope.get("wsgi_environ") or {}
        scope = dict(scope)
        uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if isinstance(uri, str) and uri.startswith("/"):
            scope["raw_path"] = uri.split("?", 1)[0].encode("latin-1")
        if scope.get("client") is None and environ.get("REMOTE_ADDR"):
            scope["client"] = (environ["REMOTE_ADDR"], int(environ.get("REMOTE_PORT") or 0))
        scope["headers"] = [
            (name, value)
            for name, value in scope["headers"]
            if value.strip() or name not in (b"content-length", b"content-type")
        ]
        await self.app(scope, receive, send)


class QlikWSGIMiddleware:
    """Wraps a WSGI app; give either a ready `sso` or the options of `QlikSSO`.

    The event loop thread starts here and stops at `close()` (also a context manager). Options
    are validated at construction, exactly as for `QlikSSOMiddleware`.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        sso: QlikSSO | None = None,
        target: QlikTarget | None = None,
        targets: Sequence[QlikTarget] = (),
        **options: Any,
    ) -> None:
        self.app = app
        self.middleware = QlikSSOMiddleware(
            _not_mounted, sso=sso, target=target, targets=targets, **options
        )
        self.sso = self.middleware.sso
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, daemon=True, name="qlik-sso-wsgi"
        )
        self._thread.start()
        bind_loop(self.sso, self.loop)
        self._asgi = ASGIMiddleware(_FromWSGI(self.middleware), loop=self.loop)  # type: ignore[arg-type]
        self._closed = False

    def __call__(self, environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
        path = _wsgi_path(environ)
        if self.sso.upstream_for_path(path) is None:
            environ["qlik_sso"] = self.sso
            return self.app(environ, start_response)
        if "websocket" in environ.get("HTTP_UPGRADE", "").lower():
            return _websocket_refused(environ, start_response)
        return self._asgi(environ, start_response)  # type: ignore[arg-type]

    def logout(self, identity: QlikIdentity, *, target: str | None = None) -> int:
        """Sync form of `QlikSSO.logout` for WSGI views: runs it on the core's loop and waits."""
        return run_in_sso_loop(self.sso, lambda: self.sso.logout(identity, target=target))

    def close(self) -> None:
        """Close the core's clients and store, then stop the loop thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            asyncio.run_coroutine_threadsafe(self.sso.aclose(), self.loop).result(30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            if not self._thread.is_alive():
                self.loop.close()

    def __enter__(self) -> QlikWSGIMiddleware:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wsgi_path(environ: dict[str, Any]) -> str:
    # The same path a2wsgi gives the core (SCRIPT_NAME + PATH_INFO), so routing and the core's
    # checks agree; mount paths are therefore counted from the server root.
    raw: str = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    return raw.encode("latin-1").decode("utf-8", "replace") or "/"


def _websocket_refused(environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
    accept = environ.get("HTTP_ACCEPT", "")
    if "text/html" in accept:
        body = (
            "<!doctype html><title>501 WebSockets need ASGI</title>"
            f"<h1>501 WebSockets need ASGI</h1><p>{escape(_NO_WEBSOCKET)}</p>"
        ).encode()
        content_type = "text/html; charset=utf-8"
    else:
        body = json.dumps({"error": _NO_WEBSOCKET, "status": 501}).encode()
        content_type = "application/json"
    start_response(
        "501 Not Implemented",
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [body]
