"""`AppProxy`: the pass-through half of `qlik-sso serve` — every non-Qlik path goes to the app.

A plain streaming HTTP reverse proxy (bodies are never buffered). It speaks the ASGI lifespan
protocol because `QlikSSOMiddleware` hands the lifespan to the app it wraps. `Host` becomes the
app's; the browser's host, scheme and address travel in `X-Forwarded-Host/-Proto/-For`.
The proxy's own session cookie is removed before the request reaches the app: it is a credential
for Qlik, not for the app. The app's WebSockets are relayed the same way, to `ws(s)://` on the same
host, port and base path (`_app_websocket.py`), with `Origin` unchanged for the app's own check.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx2 as httpx
from starlette.types import Message, Receive, Scope, Send

from ..errors import ConfigurationError
from ..proxy.headers import HOP_BY_HOP, WEBSOCKET_HANDSHAKE, normalise_header_name
from ..responses import respond
from ..upstream import NoCookieJar
from .app_websocket import relay_app_websocket

__all__ = ["AppProxy"]

logger = logging.getLogger("qlik_sso_middleware.serve")
_FORWARDED = frozenset({b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto", b"host"})
_PROTO = {"ws": b"http", "wss": b"https"}
_PLAIN = "text/plain; charset=utf-8"


class AppProxy:
    """Forward HTTP requests to `upstream` (`http(s)://host[:port]`, optional base path)."""

    def __init__(self, upstream: str, *, private_cookies: frozenset[str], timeout: float = 60.0):
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ConfigurationError(
                f"{upstream!r} must be http(s)://host[:port][/base]", field="upstream"
            )
        self._base = upstream.rstrip("/")
        self._ws_base = "ws" + self._base.removeprefix("http")
        self._host = parts.netloc.encode("latin-1")
        self._private = frozenset(c.encode("latin-1") for c in private_cookies)
        self._timeout = httpx.Timeout(timeout, connect=10.0)
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            # No cookie jar: one user's cookies must never reach another user's request.
            self._client = httpx.AsyncClient(
                timeout=self._timeout, cookies=NoCookieJar(), follow_redirects=False,
                trust_env=False,
            )  # fmt: skip
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":
            # The client library writes Host and the handshake fields itself.
            headers = [
                (k.decode("latin-1"), v.decode("latin-1"))
                for k, v in self._headers(scope)
                if k != b"host" and k not in WEBSOCKET_HANDSHAKE
            ]
            await relay_app_websocket(
                self._url(scope, self._ws_base), headers, scope, receive, send
            )
        elif scope["type"] == "http":
            await self._forward(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _headers(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = []
        browser_host = b""
        for name, value in scope["headers"]:
            lowered = name.lower()
            if lowered == b"host":
                browser_host = value
            # `X_Forwarded_For` is `X-Forwarded-For` to WSGI servers and many frameworks (both
            # become HTTP_X_FORWARDED_FOR): compare the folded spelling, or a browser could set it.
            folded = normalise_header_name(name)
            if folded in HOP_BY_HOP or folded in _FORWARDED:
                continue
            if lowered == b"cookie":
                value = self._without_private(value)
                if not value:
                    continue
            headers.append((lowered, value))
        client = scope.get("client")
        scheme = scope.get("scheme", "http")
        headers += [
            (b"host", self._host),
            (b"x-forwarded-host", browser_host),
            (b"x-forwarded-proto", _PROTO.get(scheme) or scheme.encode("latin-1")),
        ]
        if client:
            headers.append((b"x-forwarded-for", str(client[0]).encode("latin-1")))
        return headers

    def _without_private(self, cookie: bytes) -> bytes:
        kept = [
            part.strip()
            for part in cookie.split(b";")
            if part.strip() and part.split(b"=", 1)[0].strip() not in self._private
        ]
        return b"; ".join(kept)

    @staticmethod
    def _url(scope: Scope, base: str) -> str:
        path = scope.get("raw_path") or scope["path"].encode("utf-8")
        url: str = base + path.decode("latin-1")
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        return url

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        url = self._url(scope, self._base)
        names = {name.lower() for name, _ in scope["headers"]}
        has_body = b"transfer-encoding" in names or (
            b"content-length" in names
            and dict(scope["headers"]).get(b"content-length", b"0").strip() != b"0"
        )
        request = self._http().build_request(
            scope["method"],
            url,
            headers=self._headers(scope),
            content=_body(receive) if has_body else None,
        )
        try:
            response = await self._http().send(request, stream=True)
        except httpx.HTTPError as exc:
            logger.warning("app upstream %s failed: %s", self._base, type(exc).__name__)
            await respond(send, 502, b"The application is not available", _PLAIN)
            return
        try:
            # Raw bytes are relayed, so Content-Length and Content-Encoding stay true.
            headers = [
                (k.lower(), v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP
            ]
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": headers}
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return
