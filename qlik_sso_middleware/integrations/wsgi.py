"""`QlikWSGIMiddleware`: the same middleware for a plain WSGI app, HTTP only.

    from qlik_sso_middleware.integrations.wsgi import QlikWSGIMiddleware
    application = QlikWSGIMiddleware(wsgi_app, target=QlikTarget(...), resolver=...)

Requests under a Qlik mount path run through the one async core (`QlikSSOMiddleware`) on a
persistent event loop in a background thread (a2wsgi's `ASGIMiddleware` carries them across);
every other request goes to the WSGI app directly, untouched, on the server's own thread.

Offload mode (`front_proxy=FrontProxy(...)`) is the way a WSGI app serves Qlik's engine WebSocket:
nginx or Caddy carries it, and asks this adapter's core (auth sub-requests) who may open it.

What WSGI cannot do itself: WebSockets. The WSGI protocol has no way to hand a socket over, so Qlik's
engine WebSocket (`/<prefix>/app/<appId>`) — which mashups and every Qlik page need — cannot work
here. Upgrade requests under a mount path get `501` with a page saying so. Serve the app through
an ASGI server instead (Django: `get_asgi_application()`, Flask: `serve_flask`, any WSGI app:
a2wsgi's `WSGIMiddleware` inside `QlikSSOMiddleware`).

Chunked uploads (`Transfer-Encoding: chunked`, no `Content-Length`) are streamed to Qlik, still
chunked, 64 KiB at a time on the server's thread, when the server dechunks the body and marks its
end with `wsgi.input_terminated` (gunicorn >= 20, werkzeug's server; waitress buffers the body and
passes a Content-Length instead). A server that does neither (wsgiref) leaves no way to find the
body's end, so such requests get `411 Length Required` rather than reaching Qlik empty. An upload
that breaks off midway (chunked, or shorter than its `Content-Length`) is never forwarded as
complete: Qlik's side of it breaks off too, and the server's thread is released.

The resolver sees a Starlette `HTTPConnection` built from the WSGI environ (headers, cookies,
client address), so the Flask and Django resolvers work unchanged.

Longer than most modules on purpose: the adapter and the request-body streaming it needs
(chunked and broken-off uploads on the server's thread) only make sense together.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from http import HTTPStatus
from types import TracebackType
from typing import Any, Protocol

from a2wsgi import ASGIMiddleware
from starlette.types import Message, Receive, Scope, Send

from ..core import QlikSSO
from ..errors import RequestRefused
from ..identity import QlikIdentity
from ..middleware import QlikSSOMiddleware
from ..offload.front import FrontProxy
from ..responses import error_body, respond, wants_html
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


_NO_LENGTH = (
    "This request body is chunked (no Content-Length) and this WSGI server does not mark where "
    "such a body ends (wsgi.input_terminated), so it cannot be forwarded to Qlik whole. Send a "
    "Content-Length, or serve the application with gunicorn, waitress or an ASGI server."
)

# Environ keys (of the copy handed to a2wsgi): the `_BodyInput` of a request with a body, and the
# `_CoreTask` through which the response iterable reaches the core's task for the request.
_BODY_INPUT = "qlik_sso.body_input"
_CORE_TASK = "qlik_sso.core_task"
# a2wsgi frames a request body by CONTENT_LENGTH alone; a chunked body is given one it never reaches.
_UNREACHABLE_LENGTH = str(sys.maxsize)


async def _not_mounted(scope: Scope, receive: Receive, send: Send) -> None:
    # Only mount paths are sent through the core; anything else reaching here is a bug.
    await respond(send, 404, b"", "text/plain")


class _FromWSGI:
    """Repair what a2wsgi's environ → scope translation loses or invents, before the core runs.

    - WSGI's PATH_INFO is already percent-decoded (`%2f` became `/`), which would hide encoded
      tricks from the core's path checks; `RAW_URI` (gunicorn) or `REQUEST_URI` keep the original
      and become `raw_path`.
    - Servers put empty `CONTENT_LENGTH` / `CONTENT_TYPE` in the environ (wsgiref always does);
      forwarded as empty headers they make the request invalid HTTP, so they are dropped.
    - a2wsgi sets the client address only when the server gives `REMOTE_PORT` too (wsgiref
      does not); the address alone still matters for trusted-peer checks and X-Forwarded-For.
    - A chunked body (see `_BodyInput`) loses the stand-in length a2wsgi was given; the
      request keeps its `transfer-encoding: chunked`, so the core streams the body on, chunked.
    """

    def __init__(self, app: QlikSSOMiddleware) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        environ: dict[str, Any] = scope.get("wsgi_environ") or {}
        core_task = environ.get(_CORE_TASK)
        if isinstance(core_task, _CoreTask):
            core_task.task = asyncio.current_task()
        scope = dict(scope)
        body = environ.get(_BODY_INPUT)
        if isinstance(body, _BodyInput):
            if body.length is None:
                scope["headers"] = [(n, v) for n, v in scope["headers"] if n != b"content-length"]
            channel = _BodyChannel(body, receive, send)
            receive, send = channel.receive, channel.send
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


class _BodyInput:
    """The `wsgi.input` of a request with a body, as a2wsgi reads it: on the server's thread.

    a2wsgi reads at most 64 KiB per `receive` of the core (constant memory) until the length it
    was given: the request's `Content-Length`, or for a chunked body `_UNREACHABLE_LENGTH` (then
    `length` is None and the first empty read is the end the server marked). A failed read, or an
    empty one before `length` bytes (the client went away), ends the stream as broken;
    `_BodyChannel` tells the core which it was. (a2wsgi itself would ask for the missing bytes
    again and again, forever: the request thread would spin.)
    """

    def __init__(self, stream: Any, length: int | None) -> None:
        self.stream = stream
        self.length = length
        self.received = 0
        self.eof = False
        self.error: str | None = None

    def read(self, size: int = -1) -> bytes:
        if self.eof:
            return b""
        try:
            data: bytes = self.stream.read(size)
        except Exception as exc:
            # Each server's reader raises its own errors (OSError, ValueError, werkzeug's
            # ClientDisconnected, gunicorn's http errors) for a malformed or broken-off body; the
            # core must learn of it (else a2wsgi would leave the request hanging), so it is noted
            # rather than raised here.
            self.error = type(exc).__name__
            data = b""
        self.received += len(data)
        if not data:
            self.eof = True
            if self.length is not None and self.received < self.length and self.error is None:
                self.error = "body shorter than its Content-Length"
        elif self.length is not None and self.received >= self.length:
            self.eof = True
        return data


class _BodyChannel:
    """The core's receive/send for one request with a body, around a2wsgi's.

    - The empty message a2wsgi sends at EOF (it still says `more_body`) becomes the body's end;
      after a failed read, `receive` raises `RequestRefused` instead, so the upstream body stream
      breaks off and Qlik never takes a truncated upload for a whole one.
    - After the end, a2wsgi is not asked again: it would read EOF again, at once, every time (a
      busy loop under the core's disconnect watch). `receive` then waits for the response to be
      sent and says `http.disconnect`, as a2wsgi does at that point.
    """

    def __init__(self, body: _BodyInput, receive: Receive, send: Send) -> None:
        self.body = body
        self._receive = receive
        self._send = send
        self._ended = False
        self._response_sent = asyncio.Event()

    async def receive(self) -> Message:
        if self._ended:
            await self._response_sent.wait()
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] != "http.request" or not self.body.eof:
            return message
        self._ended = True
        if self.body.error is not None:
            raise RequestRefused(f"The request body broke off ({self.body.error})")
        return {"type": "http.request", "body": message.get("body", b""), "more_body": False}

    async def send(self, message: Message) -> None:
        await self._send(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self._response_sent.set()


class _CoreTask:
    """The task a2wsgi runs the core in for one request (set by `_FromWSGI`, on the loop)."""

    __slots__ = ("task",)

    def __init__(self) -> None:
        self.task: asyncio.Task[Any] | None = None


class _Response:
    """a2wsgi's response iterable, with a `close()` that also ends the core's task.

    The server closes the iterable when the response ends (PEP 3333), normally or because the
    browser went away. a2wsgi's generator just stops in the second case, and the core's pending
    `send` (Qlik's next chunk, or an error page) would then wait forever, holding its task and
    Qlik's answer open. After a normal end the task is already done (a2wsgi waits for it), so
    cancelling it changes nothing; after an early one it is how the core learns of the
    disconnect.
    """

    def __init__(
        self, chunks: Iterable[bytes], core_task: _CoreTask, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._chunks = chunks
        self._core_task = core_task
        self._loop = loop

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)

    def close(self) -> None:
        try:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        finally:
            task = self._core_task.task
            if task is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(task.cancel)


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
        front_proxy: FrontProxy | None = None,
        **options: Any,
    ) -> None:
        self.app = app
        self.middleware = QlikSSOMiddleware(
            _not_mounted,
            sso=sso,
            target=target,
            targets=targets,
            front_proxy=front_proxy,
            **options,
        )
        self._auth_path = front_proxy.auth_path if front_proxy is not None else None
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
        if path == self._auth_path:
            # The front proxy's auth sub-request (offload mode): no body, answered by the core.
            return self._asgi(environ, start_response)  # type: ignore[arg-type]
        if self.sso.upstream_for_path(path) is None:
            environ["qlik_sso"] = self.sso
            return self.app(environ, start_response)
        if "websocket" in environ.get("HTTP_UPGRADE", "").lower():
            return _refused(
                environ,
                start_response,
                HTTPStatus.NOT_IMPLEMENTED,
                "WebSockets need ASGI",
                _NO_WEBSOCKET,
            )
        if _is_chunked(environ) and not environ.get("wsgi.input_terminated"):
            return _refused(
                environ,
                start_response,
                HTTPStatus.LENGTH_REQUIRED,
                "Length Required",
                _NO_LENGTH,
            )
        # On a copy: the server keeps its environ (and its input) as it made them.
        environ = dict(environ)
        if _is_chunked(environ):
            environ[_BODY_INPUT] = environ["wsgi.input"] = _BodyInput(environ["wsgi.input"], None)
            environ["CONTENT_LENGTH"] = _UNREACHABLE_LENGTH
        elif (length := _content_length(environ)) > 0:
            environ[_BODY_INPUT] = environ["wsgi.input"] = _BodyInput(environ["wsgi.input"], length)
        core_task = environ[_CORE_TASK] = _CoreTask()
        chunks = self._asgi(environ, start_response)  # type: ignore[arg-type]
        return _Response(chunks, core_task, self.loop)

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


def _content_length(environ: dict[str, Any]) -> int:
    """The declared body length; 0 when absent or not a plain number (a2wsgi reads none then)."""
    value = str(environ.get("CONTENT_LENGTH") or "").strip()
    return int(value) if value.isdigit() else 0


def _is_chunked(environ: dict[str, Any]) -> bool:
    """A chunked body without Content-Length (with one, a2wsgi frames the body as always)."""
    if environ.get("CONTENT_LENGTH"):
        return False
    codings = str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower().split(",")
    return "chunked" in (coding.strip() for coding in codings)


def _refused(
    environ: dict[str, Any],
    start_response: _StartResponse,
    status: HTTPStatus,
    title: str,
    message: str,
) -> Iterable[bytes]:
    html = wants_html(
        environ.get("HTTP_ACCEPT", "").encode("latin-1"),
        environ.get("HTTP_X_REQUESTED_WITH", "").encode("latin-1") or None,
    )
    body, content_type = error_body(status.value, message, html=html, title=title)
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
    ]
    start_response(f"{status.value} {status.phrase}", headers)
    return [body]
